"""GateMonitor writes gate traces, state heatmaps, histograms and saturation to TensorBoard."""

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.callbacks.gate_monitor import GateMonitor
from src.data.imdb.datamodule import IMDBDataModule
from src.data.series.datamodule import TimeSeriesDataModule
from src.models.classifier import RNNClassifier
from src.models.forecaster import RNNForecaster
from src.tasks.classification import ClassificationTask
from src.tasks.forecasting import ForecastingTask

FIXTURES = Path(__file__).parent / "fixtures"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _fit(task, datamodule, tmp_path, logger=True, **monitor) -> L.Trainer:
    L.seed_everything(0)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=2,
        logger=TensorBoardLogger(str(tmp_path), name="gates") if logger else False,
        callbacks=[GateMonitor(**monitor)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(task, datamodule=datamodule)
    return trainer


def _tags(trainer: L.Trainer) -> dict[str, list[str]]:
    events = EventAccumulator(trainer.logger.log_dir, size_guidance={"images": 0})
    return events.Reload().Tags()


def test_sine_lstm_handwritten(tmp_path):
    data = TimeSeriesDataModule(n_points=900, input_len=30, output_len=5, batch_size=16)
    net = RNNForecaster(output_len=5, hidden_size=8, implementation="handwritten")
    trainer = _fit(ForecastingTask(net), data, tmp_path, num_samples=3, max_units=4)
    tags = _tags(trainer)
    assert {"gates/traces/layer0", "gates/cell_state/layer0"} <= set(tags["images"])
    gates = ("input", "forget", "candidate", "output")
    assert {f"gates/saturation/{g}" for g in gates} <= set(tags["scalars"])
    assert {f"gates/hist/{g}" for g in (*gates, "cell", "hidden")} <= set(tags["histograms"])
    events = EventAccumulator(trainer.logger.log_dir).Reload()
    share = events.Scalars("gates/saturation/forget")[0].value
    assert 0.0 <= share <= 1.0


def test_imdb_bigru_classifier(tmp_path):
    data = IMDBDataModule(
        data_dir=str(FIXTURES / "imdb"), cache_dir=str(tmp_path / "cache"), batch_size=8
    )
    data.prepare_data()
    net = RNNClassifier(
        data.vocab_size, embedding_dim=8, hidden_size=6, cell="gru", num_layers=2,
        bidirectional=True, pooling="attention",
    )  # fmt: skip
    trainer = _fit(ClassificationTask(net), data, tmp_path)
    tags = _tags(trainer)
    for suffix in ("layer0", "layer0_reverse", "layer1", "layer1_reverse"):
        assert f"gates/traces/{suffix}" in tags["images"]
        assert f"gates/hidden_state/{suffix}" in tags["images"]
    assert {"gates/saturation/reset", "gates/saturation/update"} <= set(tags["scalars"])


def test_saturation_counts_valid_steps_only():
    monitor = GateMonitor(saturation=0.1)
    logged = {}

    class Writer:
        def add_scalar(self, tag, value, step):
            logged[tag] = value

        def add_histogram(self, tag, values, step):
            logged[tag] = values

        def add_figure(self, tag, figure, step):
            logged[tag] = figure

    forget = torch.tensor([[0.05, 0.5, 0.97, 0.0], [0.5, 0.5, 0.0, 0.0]])  # padding: 0.0
    gates = {"forget": forget.view(1, 2, 4, 1), "hidden": torch.zeros(1, 2, 4, 1)}
    monitor._log(Writer(), gates, torch.tensor([3, 2]), 1, 0)
    assert logged["gates/saturation/forget"] == pytest.approx(2 / 5)
    assert logged["gates/hist/forget"].numel() == 5
    assert "gates/traces/layer0" in logged and "gates/hidden_state/layer0" in logged


def test_without_tensorboard_warns_and_skips(tmp_path):
    data = TimeSeriesDataModule(n_points=900, input_len=30, output_len=5, batch_size=16)
    task = ForecastingTask(RNNForecaster(output_len=5, hidden_size=4, cell="gru"))
    with pytest.warns(UserWarning, match="no TensorBoardLogger"):
        _fit(task, data, tmp_path, logger=False)


def test_rejects_nets_without_gates():
    class Net(torch.nn.Module):
        pass

    trainer = L.Trainer(logger=False, enable_progress_bar=False)
    with pytest.raises(ValueError, match="GateMonitor needs pl_module.net"):
        GateMonitor().setup(trainer, ClassificationTask(Net()), "fit")
    with pytest.raises(ValueError, match="saturation must lie"):
        GateMonitor(saturation=0.7)
