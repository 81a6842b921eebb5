"""The CLI round trip on tiny data: fit, checkpoints, validate, test, predict, resume; pretrained
vectors. Every experiment config is run by test_configs.py."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from src.callbacks.predictions import PredictionWriter
from src.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"

# Datamodule class name -> overrides giving tiny data (shipped fixtures or short synthetic series).
TINY_DATA = {
    "IMDBDataModule": lambda tmp: {
        "data_dir": str(FIXTURES / "imdb"),
        "cache_dir": str(tmp / "cache"),
        "batch_size": 8,
    },
    "TimeSeriesDataModule": lambda tmp: {"n_points": 900, "batch_size": 16},
    "AnomalyDataModule": lambda tmp: {"n_points": 900, "batch_size": 16},
    "ParallelTextDataModule": lambda tmp: {
        "data_dir": str(FIXTURES / "multi30k"),
        "cache_dir": str(tmp / "cache"),
        "hub_name": "",
        "batch_size": 4,
        "eval_batch_size": 4,
    },
    "SyntheticSeqDataModule": lambda tmp: {
        "num_train": 64,
        "num_val": 16,
        "num_test": 16,
        "batch_size": 16,
    },
    "CharLMDataModule": lambda tmp: {
        "path": str(FIXTURES / "text" / "reviews.csv.gz"),
        "cache_dir": str(tmp / "cache"),
        "max_chars": None,
        "val_chars": 200,
        "test_chars": 200,
        "min_count": 1,
        "batch_size": 4,
        "bptt": 16,
    },
    "IMDBLMDataModule": lambda tmp: {
        "data_dir": str(FIXTURES / "imdb"),
        "cache_dir": str(tmp / "cache"),
        "unsup_path": str(FIXTURES / "text" / "reviews.csv.gz"),
        "min_freq": 1,
        "hub_name": "",
        "batch_size": 4,
        "bptt": 8,
    },
    "UDPOSDataModule": lambda tmp: {
        "data_dir": str(FIXTURES / "ud_ewt"),
        "cache_dir": str(tmp / "cache"),
        "min_freq": 1,
        "batch_size": 2,
    },
}


def _tiny_config(config: Path, tmp_path: Path, **trainer) -> Path:
    """The experiment YAML with tiny data, and every run's folder under ``tmp_path / "logs"``
    (``<experiment>/version_N/``, checkpoints in its ``checkpoints/``)."""
    cfg = yaml.safe_load(config.read_text())
    datamodule = cfg["data"]["class_path"].rsplit(".", 1)[-1]
    cfg["data"]["init_args"].update(TINY_DATA[datamodule](tmp_path))
    net = cfg["model"]["init_args"]["net"]["init_args"]
    if "hidden_size" in net:
        net["hidden_size"] = 8  # keep the step cheap; the architecture stays as shipped
    cfg["model"]["init_args"].pop("pretrained", None)  # another run's checkpoint: tested apart
    cfg["trainer"].update(
        default_root_dir=str(tmp_path / "logs"), enable_progress_bar=False, **trainer
    )
    path = tmp_path / config.name
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("name", ["sine_lstm", "imdb_bilstm"])
def test_round_trip_fit_test_predict(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    limits = {"max_epochs": 2, "limit_train_batches": 3, "limit_val_batches": 2}
    config = _tiny_config(ROOT / "configs" / f"{name}.yaml", tmp_path, **limits)
    fit = main(["fit", "--config", str(config)])
    run = tmp_path / "logs" / name / "version_0"
    assert Path(fit.trainer.log_dir) == run
    last = run / "checkpoints" / "last.ckpt"
    assert last.exists()
    assert len(list(last.parent.glob("epoch*.ckpt"))) == 1  # best
    assert (run / "config.yaml").exists()  # resolved config saved
    metric = "val/acc" if name.startswith("imdb") else "val/mse"
    assert metric in fit.trainer.callback_metrics

    args = ["--config", str(config), "--ckpt_path", str(last)]
    validated = main(["validate", *args])
    assert metric in validated.trainer.callback_metrics
    tested = main(["test", "--trainer.limit_test_batches", "2", *args])
    assert (
        "test/acc" if name.startswith("imdb") else "test/mse"
    ) in tested.trainer.callback_metrics

    predicted = main(["predict", "--trainer.limit_predict_batches", "2", *args])
    writer = next(c for c in predicted.trainer.callbacks if isinstance(c, PredictionWriter))
    rows = [json.loads(line) for line in writer.output_path.read_text().splitlines()]
    assert len(rows) == 2 * predicted.datamodule.predict_dataloader().batch_size
    if name.startswith("imdb"):
        assert all(abs(sum(r["probs"]) - 1) < 1e-5 and r["label"] in (0, 1) for r in rows)
        assert [r["index"] for r in rows] == list(range(len(rows)))  # dataset order kept
    else:
        assert all(len(r["forecast"]) == 10 for r in rows)

    resumed = main(
        ["fit", "--config", str(config), "--trainer.max_epochs", "3", "--ckpt_path", "last"]
    )
    assert resumed.trainer.current_epoch == 3  # continued from epoch 2, not from scratch


def test_pretrained_vectors_reach_the_embedding(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _tiny_config(ROOT / "configs" / "imdb_bilstm.yaml", tmp_path, fast_dev_run=True)
    cli = main(
        [
            "fit",
            "--config",
            str(config),
            "--data.init_args.vectors_path",
            str(FIXTURES / "glove.txt"),
            "--model.init_args.net.init_args.embedding_dim",
            "4",
            "--model.init_args.net.init_args.freeze_embeddings",
            "true",
        ]
    )
    movie = cli.datamodule.tokenizer.token_to_id("movie")
    weight = cli.model.net.embedding.weight
    torch.testing.assert_close(weight[movie], torch.tensor([0.5, -0.1, 0.0, 0.25]))  # frozen
    torch.testing.assert_close(weight, cli.datamodule.vectors)
