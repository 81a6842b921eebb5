"""Anomaly detection: injection, datamodule, LSTM autoencoder, evaluation helpers, task logging."""

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.data.anomaly.datamodule import (
    Anomaly,
    AnomalyDataModule,
    apply_anomalies,
    inject_anomalies,
    sample_anomalies,
)
from src.models.autoencoder import LSTMAutoencoder
from src.tasks import anomaly_eval as ev
from src.tasks.anomaly import AnomalyTask

SMALL = dict(n_points=900, window=30, batch_size=32)


# ---- injection ---------------------------------------------------------------------------------
def test_injection_labels_match_perturbed_steps_and_kinds():
    values = np.sin(np.linspace(0, 30, 2000))[:, None].repeat(2, 1).astype(np.float32)
    events = sample_anomalies(2000, 2, np.random.default_rng(0), rate=0.006, gap=5)
    assert len(events) == 12
    assert {e.kind for e in events} == {"spike", "level_shift", "noise_burst"}
    out, labels = apply_anomalies(values, events, np.random.default_rng(1))
    diff = out - values  # (T, C)
    np.testing.assert_array_equal(labels, (diff != 0).any(1))  # labels are the perturbed steps
    std = values.std(0)
    for e in events:
        steps = diff[e.start : e.start + e.length, e.channel]
        assert (diff[e.start : e.start + e.length, 1 - e.channel] == 0).all()  # one channel
        if e.kind == "spike":
            assert e.length == 1 and abs(e.size) == 4.0
            np.testing.assert_allclose(steps, e.size * std[e.channel], rtol=1e-5)
        elif e.kind == "level_shift":
            assert 10 <= e.length <= 40
            np.testing.assert_allclose(steps, e.size * std[e.channel], rtol=1e-4)  # constant
        else:
            assert e.size > 0 and steps.std() > 0.5 * e.size * std[e.channel]  # amplified noise
    ends = [e.start + e.length for e in events]
    assert all(b.start - a >= 5 for a, b in zip(ends, events[1:], strict=False))  # gap kept


def test_injection_is_seeded():
    values = np.zeros((500, 1), dtype=np.float32) + np.arange(500, dtype=np.float32)[:, None]
    a = inject_anomalies(values, np.random.default_rng(3), rate=0.01)
    b = inject_anomalies(values, np.random.default_rng(3), rate=0.01)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[1].sum() > 0 and a[0].dtype == np.float32 and a[1].dtype == bool


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(rate=-0.1), "rate"),
        (dict(rate=0.5), "rate"),
        (dict(kinds=("spike", "dip")), "unknown anomaly kinds"),
        (dict(min_len=20, max_len=5), "min_len"),
        (dict(spike_scale=0.0), "spike_scale"),
        (dict(rate=0.1, max_len=40, gap=20), "cannot place"),
    ],
)
def test_injection_bad_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        inject_anomalies(np.zeros((300, 1)), np.random.default_rng(0), **settings)


def test_injection_rejects_nan_and_bad_shape():
    with pytest.raises(ValueError, match="NaN"):
        inject_anomalies(np.array([[0.0], [np.nan], [1.0]]), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        inject_anomalies(np.zeros(10), np.random.default_rng(0))


# ---- datamodule --------------------------------------------------------------------------------
def test_datamodule_train_clean_windows_and_train_only_scaler():
    dm = AnomalyDataModule(**SMALL, stride=4)
    assert dm.input_size == 1  # readable before setup
    (a, b), (va, vb) = dm.segments["train"], dm.segments["val"]
    assert not dm.labels[a:b].any() and dm.labels[va:vb].any()
    assert dm.labels[dm.segments["test"][0] :].any()
    train = dm.data[a:b].double()
    assert abs(train.mean()) < 1e-5 and abs(train.std(unbiased=False) - 1) < 1e-4
    louder = AnomalyDataModule(**SMALL, stride=4, spike_scale=9.0, shift_scale=3.0)
    torch.testing.assert_close(louder.data[a:b], dm.data[a:b])  # val/test never reach the scaler
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    n = len(dm.window_starts["val"])  # 28 windows, one batch
    assert batch["x"].shape == (n, 30, 1) and batch["labels"].shape == (n, 30)
    assert batch["labels"].dtype == torch.bool and batch["start"].dtype == torch.long
    s = int(batch["start"][3])
    torch.testing.assert_close(batch["x"][3], dm.data[s : s + 30])
    torch.testing.assert_close(batch["labels"][3], dm.labels[s : s + 30])
    for stage, (lo, hi) in dm.segments.items():
        starts = dm.window_starts[stage]
        assert starts[0] == lo and starts[-1] == hi - 30  # every step covered, none outside
        assert (np.diff(starts) <= 4).all()


def test_datamodule_contaminate_train_and_multivariate():
    dm = AnomalyDataModule(**SMALL, series="multivariate", contaminate_train=True)
    assert dm.input_size == 3
    a, b = dm.segments["train"]
    assert dm.labels[a:b].any()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(window=200), "exceeds the val segment"),
        (dict(val_fraction=0.6, test_fraction=0.5), "sum to less than 1"),
        (dict(anomaly_rate=2.0), "rate"),
        (dict(kinds=["spike", "drift"]), "unknown anomaly kinds"),
    ],
)
def test_datamodule_bad_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        AnomalyDataModule(**{**SMALL, **settings}).setup()


# ---- autoencoder -------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_autoencoder_shapes_and_every_parameter_gets_a_gradient(cell):
    torch.manual_seed(0)
    net = LSTMAutoencoder(input_size=3, hidden_size=8, num_layers=2, latent_size=4, cell=cell)
    x = torch.randn(5, 12, 3)
    out = net(x)
    assert out.shape == (5, 12, 3) and net.encode(x).shape == (5, 4)
    (out - x).pow(2).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"


def test_autoencoder_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"\(N, W, 2\)"):
        LSTMAutoencoder(input_size=2, hidden_size=4)(torch.randn(2, 5, 3))


# ---- evaluation helpers ------------------------------------------------------------------------
def test_aggregate_windows_averages_overlaps():
    errors = torch.tensor([[1.0, 2.0, 3.0], [5.0, 6.0, 7.0]])  # windows at 10 and 11
    first, series, covered = ev.aggregate_windows(errors, torch.tensor([10, 11]))
    assert first == 10 and covered.all()
    torch.testing.assert_close(series, torch.tensor([1.0, 3.5, 4.5, 7.0], dtype=torch.float64))
    _, gapped, covered = ev.aggregate_windows(errors, torch.tensor([0, 4]))  # step 3 uncovered
    assert covered.tolist() == [True, True, True, False, True, True, True]
    values = torch.arange(12.0).view(2, 3, 2)  # (N, W, C) vectors average too
    assert ev.aggregate_windows(values, torch.tensor([0, 1]))[1].shape == (4, 2)


def test_precision_recall_f1_by_hand():
    predicted = np.array([1, 1, 0, 0, 1, 0], bool)
    labels = np.array([1, 0, 1, 0, 1, 1], bool)  # tp 2, fp 1, fn 2
    m = ev.precision_recall_f1(predicted, labels)
    assert m == pytest.approx({"precision": 2 / 3, "recall": 0.5, "f1": 4 / 7})
    assert ev.precision_recall_f1(np.zeros(3, bool), np.zeros(3, bool))["f1"] == 0.0


def test_best_f1_threshold_by_hand():
    scores = np.array([0.1, 0.9, 0.4, 0.8, 0.3, 0.35])
    labels = np.array([0, 1, 0, 1, 0, 1], bool)
    # flag top 2 (0.9, 0.8): F1 = 4/5; top 3 adds 0.4 (fp): 4/6; top 4 adds 0.35 (tp): 6/7
    threshold = ev.best_f1_threshold(scores, labels)
    assert threshold == pytest.approx((0.35 + 0.3) / 2)
    assert ev.precision_recall_f1(scores > threshold, labels)["f1"] == pytest.approx(6 / 7)
    tied = ev.best_f1_threshold(np.array([1.0, 1.0, 0.0]), np.array([1, 0, 0], bool))
    assert tied == pytest.approx(0.5)  # equal scores are never split
    assert ev.best_f1_threshold(scores, np.zeros(6, bool)) == 0.9  # no positives: flag nothing
    with pytest.raises(ValueError, match="NaN"):
        ev.best_f1_threshold(np.array([np.nan, 1.0]), np.array([0, 1], bool))


def test_smooth_and_rolling_zscore_by_hand():
    np.testing.assert_allclose(ev.smooth(np.array([3.0, 0.0, 0.0, 6.0]), 3), [1.5, 1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="odd"):
        ev.smooth(np.ones(4), 2)
    x = np.array([1.0, 3.0, 2.0, 4.0, 10.0])
    z = ev.rolling_zscore(x, window=3)
    # t=2: history [1, 3]: |2 - 2| / 1 = 0; t=3: [1, 3, 2]; t=4: [3, 2, 4] mean 3, std sqrt(2/3)
    assert z[:2].tolist() == [0.0, 0.0] and z[2] == 0.0
    assert z[3] == pytest.approx(2 / np.sqrt(2 / 3))
    assert z[4] == pytest.approx(7 / np.sqrt(2 / 3))


def test_zscore_baseline_detects_an_obvious_spike():
    rng = np.random.default_rng(0)
    x = 0.1 * rng.standard_normal(400)
    x[250] += 5.0
    labels = np.zeros(400, bool)
    labels[250] = True
    z = ev.rolling_zscore(x, 30)
    assert int(np.argmax(z)) == 250
    window, threshold = ev.choose_zscore_window(x, labels, [10, 30])
    assert window == 10 and ev.precision_recall_f1(z > threshold, labels)["f1"] == 1.0


# ---- task --------------------------------------------------------------------------------------
def test_task_logs_f1_and_plot_to_tensorboard(tmp_path):
    L.seed_everything(0)
    dm = AnomalyDataModule(**SMALL)
    task = AnomalyTask(LSTMAutoencoder(hidden_size=8, latent_size=4), input_noise=0.1, smoothing=3)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        logger=TensorBoardLogger(str(tmp_path), name="anomaly"),
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(task, datamodule=dm)
    assert torch.isfinite(task.threshold) and torch.isfinite(task.zscore_threshold)
    state = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)
    assert {"threshold", "zscore_threshold", "zscore_window"} <= set(state["state_dict"])
    metrics = trainer.test(task, datamodule=dm, verbose=False)[0]
    for name in ("f1", "precision", "recall", "zscore_f1", "zscore_recall"):
        assert 0.0 <= metrics[f"test/{name}"] <= 1.0
    events = EventAccumulator(trainer.logger.log_dir, size_guidance={"images": 0}).Reload()
    assert "test/f1" in events.Tags()["scalars"]
    assert "anomaly/test_plot" in events.Tags()["images"]
    assert events.Images("anomaly/test_plot")[0].width > 100


def test_task_test_without_validation_threshold_fails(tmp_path):
    dm = AnomalyDataModule(**SMALL)
    task = AnomalyTask(LSTMAutoencoder(hidden_size=4, latent_size=2))
    trainer = L.Trainer(logger=False, enable_progress_bar=False, default_root_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="no validation threshold"):
        trainer.test(task, datamodule=dm, verbose=False)


def test_anomaly_record():
    event = Anomaly("spike", 5, 1, 0, 4.0)
    assert event.kind == "spike" and event.start + event.length == 6
