"""The ETT protocol on synthetic CSVs of the ETT layout: split borders, train-only scaler, window
counts, every evaluation window scored; SegRNN, RevIN, the linear and naive baselines, quantiles,
forecast plots and a fit through the CLI."""

from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from src.callbacks.forecast_plots import ForecastPlot
from src.cli import main
from src.data.series.ett import ETTDataModule
from src.models.linear_forecaster import LinearForecaster
from src.models.naive import NaiveForecaster
from src.models.revin import RevIN
from src.models.segrnn import SegRNN
from src.tasks.forecasting import ForecastingTask
from src.tasks.quantile import QuantileMetrics, pinball_loss

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
SMALL = dict(input_len=12, output_len=6, borders=(100, 140, 180), season_length=4)


def write_csv(folder: Path, rows: int, name: str = "ETTh1", seed: int = 0) -> Path:
    """A synthetic series with ETT's columns: daily-ish cycles plus noise, one row per hour."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)[:, None]
    values = 3 + np.sin(2 * np.pi * t / 24 + np.arange(7)) + 0.3 * rng.standard_normal((rows, 7))
    frame = pd.DataFrame(values * np.arange(1, 8), columns=COLUMNS)
    frame.insert(0, "date", pd.date_range("2016-07-01", periods=rows, freq="h").astype(str))
    frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def small_dm(folder: Path, **kwargs) -> ETTDataModule:
    return ETTDataModule(data_dir=str(folder), **{**SMALL, "batch_size": 16, **kwargs})


# ---- protocol ----------------------------------------------------------------------------------
def test_window_counts_at_the_published_sizes(tmp_path):
    dm = ETTDataModule(data_dir=str(write_csv(tmp_path, 14400)), output_len=96)
    assert [len(dm.window_starts(s)) for s in ("train", "val", "test")] == [8449, 2785, 2785]
    dm = ETTDataModule(data_dir=str(tmp_path), output_len=720)
    assert [len(dm.window_starts(s)) for s in ("train", "val", "test")] == [7825, 2161, 2161]


def test_split_borders_and_window_counts(tmp_path):
    dm = small_dm(write_csv(tmp_path, 200))
    dm.setup()
    # train: starts 0 .. 100 - 12 - 6 = 82; val/test: 40 target rows -> 40 - 6 + 1 = 35 windows
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [83, 35, 35]
    starts = {s: dm.window_starts(s) for s in ("train", "val", "test")}
    assert (starts["train"][0], starts["train"][-1]) == (0, 82)
    assert (starts["val"][0], starts["val"][-1]) == (88, 122)  # inputs from the 12 rows before 100
    assert (starts["test"][0], starts["test"][-1]) == (128, 162)  # last target row is 179
    assert dm.data.shape == (180, 7)  # rows from 180 on are never read
    first, last = dm.datasets["test"][0], dm.datasets["test"][34]
    torch.testing.assert_close(first["x"], dm.data[128:140])
    torch.testing.assert_close(first["y"], dm.data[140:146])
    torch.testing.assert_close(last["y"], dm.data[174:180])


def test_scaler_fitted_on_train_rows_only(tmp_path):
    folder = write_csv(tmp_path, 200)
    raw = pd.read_csv(folder / "ETTh1.csv")[COLUMNS].to_numpy()
    dm = small_dm(folder)
    np.testing.assert_allclose(dm.mean, raw[:100].mean(0))
    np.testing.assert_allclose(dm.std, raw[:100].std(0))
    scaled = (raw[:180] - raw[:100].mean(0)) / raw[:100].std(0)
    np.testing.assert_allclose(dm.data.numpy(), scaled, rtol=1e-5, atol=1e-5)
    for row, changes in ((150, False), (99, True)):  # a test row, then a train row
        frame = pd.read_csv(folder / "ETTh1.csv")
        frame.loc[row, "OT"] += 1000.0
        other = tmp_path / str(row)
        other.mkdir()
        frame.to_csv(other / "ETTh1.csv", index=False)
        assert (small_dm(other).mean[6] != dm.mean[6]) == changes


@pytest.mark.parametrize("channel_independent", [False, True])
def test_no_evaluation_window_dropped(tmp_path, channel_independent):
    dm = small_dm(write_csv(tmp_path, 200), channel_independent=channel_independent)
    channels = 7 if channel_independent else 1
    for stage in ("val", "test"):
        sizes = [len(b["y"]) for b in getattr(dm, f"{stage}_dataloader")()]
        assert sum(sizes) == 35 * channels and sizes[-1] == 35 * channels % 16  # partial batch kept


def test_channel_independent_items(tmp_path):
    dm = small_dm(write_csv(tmp_path, 200), channel_independent=True)
    dm.setup()
    assert (dm.input_size, dm.n_targets, len(dm.datasets["train"])) == (1, 1, 83 * 7)
    item = dm.datasets["val"][3 * 7 + 5]  # window 3, channel 5
    torch.testing.assert_close(item["x"], dm.data[91:103, 5:6])
    torch.testing.assert_close(item["y"], dm.data[103:109, 5:6])


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_dir"):
        _ = small_dm(tmp_path).data
    write_csv(tmp_path, 150)
    with pytest.raises(ValueError, match="has 150 rows, the split needs 180"):
        _ = small_dm(tmp_path).data
    with pytest.raises(ValueError, match="too short"):
        small_dm(write_csv(tmp_path, 200), output_len=41).window_starts("val")


def test_test_metrics_average_every_window_step_and_channel(tmp_path):
    dm = small_dm(write_csv(tmp_path, 200), eval_batch_size=16)
    task = ForecastingTask(NaiveForecaster(output_len=6, output_size=7))
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    metrics = trainer.test(task, datamodule=dm, verbose=False)[0]
    data = dm.data.numpy()
    err = np.stack([data[s + 12 : s + 18] - data[s + 11] for s in range(128, 163)])  # (35, 6, 7)
    assert metrics["test/mse"] == pytest.approx(float((err**2).mean()), rel=1e-5)
    assert metrics["test/mae"] == pytest.approx(float(np.abs(err).mean()), rel=1e-5)


# ---- networks ----------------------------------------------------------------------------------
def test_naive_forecasts_by_hand():
    x = torch.arange(48.0).view(1, 48, 1)
    assert NaiveForecaster(5, 1, 1)(x).flatten().tolist() == [47.0] * 5
    seasonal = NaiveForecaster(30, 1, 24)(x).flatten().tolist()
    assert seasonal == [float(24 + h % 24) for h in range(30)]  # step h + 1 repeats t - 24 + h


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("horizon", [12, 20])  # a multiple of seg_len and not
def test_segrnn_shapes_gradients_channel_independence(cell, horizon):
    torch.manual_seed(0)
    net = SegRNN(
        input_size=3, output_len=horizon, output_size=3, seg_len=4, hidden_size=8, cell=cell
    )
    x = torch.randn(5, 16, 3)
    out = net(x)
    assert out.shape == (5, horizon, 3)
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    net.eval()
    changed = x.clone()
    changed[..., 1:] += torch.randn(5, 16, 2)  # other channels only
    torch.testing.assert_close(net(changed)[..., 0], net(x)[..., 0])
    assert not torch.allclose(net(changed)[..., 1], net(x)[..., 1])
    q = SegRNN(3, horizon, 3, seg_len=4, hidden_size=8, cell=cell, num_quantiles=3)
    assert q(x).shape == (5, horizon, 3, 3)
    with pytest.raises(ValueError, match="multiple of seg_len"):
        net(torch.randn(2, 15, 3))


@pytest.mark.parametrize("mode", ["revin", "last", "none"])
def test_revin_round_trip(mode):
    torch.manual_seed(0)
    norm = RevIN(4, mode)
    if mode == "revin":
        norm.weight.data.uniform_(0.5, 2.0)
        norm.bias.data.normal_()
    x = 5 + 3 * torch.randn(6, 20, 4)
    z = norm.normalize(x)
    torch.testing.assert_close(norm.denormalize(z[:, -7:, :3]), x[:, -7:, :3], atol=1e-4, rtol=1e-4)
    quantiles = z[:, -7:, :3].unsqueeze(-1).expand(-1, -1, -1, 2)
    torch.testing.assert_close(
        norm.denormalize(quantiles)[..., 1], x[:, -7:, :3], atol=1e-4, rtol=1e-4
    )
    if mode == "revin":  # per window and channel: zero mean, unit std before the affine map
        plain = RevIN(4, mode, affine=False).normalize(x)
        torch.testing.assert_close(plain.mean(1), torch.zeros(6, 4), atol=1e-5, rtol=0)
        torch.testing.assert_close(
            plain.std(1, unbiased=False), torch.ones(6, 4), atol=1e-4, rtol=0
        )


def test_linear_decomposition_and_forecast_by_hand():
    net = LinearForecaster(input_size=1, output_len=2, output_size=1, input_len=5, kernel_size=3)
    seasonal, trend = net.decompose(torch.tensor([[[0.0, 0.0, 3.0, 0.0, 0.0]]]))
    assert trend.flatten().tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # edges repeated, then averaged
    assert seasonal.flatten().tolist() == [0.0, -1.0, 2.0, -1.0, 0.0]
    with torch.no_grad():
        net.seasonal.weight.zero_(), net.seasonal.bias.zero_(), net.trend.bias.zero_()
        net.trend.weight.copy_(torch.tensor([[0, 0, 0, 0, 1.0], [0, 0, 0, 1.0, 0]]))
    x = torch.arange(5.0).view(1, 5, 1)  # a straight line is its own trend inside the edges
    assert net(x).flatten().tolist() == [pytest.approx(11 / 3), 3.0]  # trend[4] = (3+4+4)/3


def test_linear_baseline_learns_a_linear_rule():
    torch.manual_seed(0)
    net = LinearForecaster(input_size=2, output_len=3, output_size=2, input_len=8, kernel_size=1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(300):
        x = torch.randn(64, 8, 2)
        y = x[:, -3:].flip(1) + 0.5  # reversed last three steps plus a constant
        loss = torch.nn.functional.mse_loss(net(x), y)
        opt.zero_grad(), loss.backward(), opt.step()
    assert loss.item() < 1e-3


# ---- quantiles ---------------------------------------------------------------------------------
def test_pinball_loss_and_coverage_by_hand():
    levels = torch.tensor([0.1, 0.5, 0.9])
    pred = torch.tensor([[1.0, 2.0, 3.0]])
    # y - p = (1, 0, -1): 0.1 * 1, 0, max(0.9 * -1, -0.1 * -1) = 0.1 -> mean 0.2 / 3
    assert pinball_loss(pred, torch.tensor([2.0]), levels).item() == pytest.approx(0.2 / 3)
    # y = 5 above every quantile: (0.1 * 4 + 0.5 * 3 + 0.9 * 2) / 3
    assert pinball_loss(pred, torch.tensor([5.0]), levels).item() == pytest.approx(3.7 / 3)
    metric = QuantileMetrics([0.1, 0.5, 0.9])
    pred = torch.tensor([[0.0, 1.0, 2.0]]).expand(4, 3)
    metric.update(pred, torch.tensor([0.0, 1.5, 2.0, 2.5]))  # the last one is outside
    assert metric.compute()["coverage"].item() == 0.75


def test_quantile_task_checks_the_net():
    with pytest.raises(ValueError, match="include 0.5"):
        ForecastingTask(SegRNN(3, 8, 3, seg_len=4, hidden_size=8), quantiles=[0.1, 0.4, 0.9])
    task = ForecastingTask(SegRNN(3, 8, 3, seg_len=4, hidden_size=8), quantiles=[0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="num_quantiles: 3"):
        task.point_forecast(task(torch.randn(2, 8, 3)))


# ---- CLI and plots -----------------------------------------------------------------------------
def _config(tmp_path: Path, name: str) -> Path:
    """The shipped YAML on the small synthetic CSV, with a tiny network."""
    cfg = yaml.safe_load((ROOT / "configs" / name).read_text())
    logs = str(tmp_path / "logs")
    cfg["trainer"].update(max_epochs=2, default_root_dir=logs, enable_progress_bar=False)
    cfg["data"]["init_args"].update(SMALL, data_dir=str(write_csv(tmp_path, 200)), batch_size=32)
    cfg["model"]["init_args"]["net"]["init_args"].update(hidden_size=8, seg_len=4)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("name", ["ett_segrnn.yaml", "ett_segrnn_quantile.yaml"])
def test_fit_and_test_through_the_cli(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, name)
    fit = main(["fit", "--config", str(config)])
    assert Path(fit.trainer.log_dir) == tmp_path / "logs" / Path(name).stem / "version_0"
    assert fit.trainer.current_epoch == 2 and np.isfinite(fit.trainer.callback_metrics["val/mse"])
    best = fit.trainer.checkpoint_callback.best_model_path
    tested = main(["test", "--config", str(config), "--ckpt_path", best])
    metrics = tested.trainer.callback_metrics
    assert "test/mse" in metrics and ("test/coverage" in metrics) == ("quantile" in name)
    events = list(Path(fit.trainer.log_dir).glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = EventAccumulator(str(events[0].parent)).Reload().Tags()["images"]
    assert "val/forecast" in tags  # the forecast-vs-truth figure


def test_forecast_plot_draws_the_interval():
    callback = ForecastPlot(num_windows=2, channels=[0, 2])
    x, y = torch.randn(2, 12, 3), torch.randn(2, 6, 3)
    figure = callback.figure(x, y, torch.randn(2, 6, 3, 3).sort(-1).values, [0, 34])
    assert len(figure.axes) == 4
    assert all(len(ax.collections) == 1 for ax in figure.axes)  # the shaded band
    one = callback.figure(x[..., :1], y[..., :1], torch.randn(2, 6, 1), [0, 1])  # one channel
    assert len(one.axes) == 2


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_segrnn_parallel_decoding_equals_the_recurrent_module(cell):
    torch.manual_seed(0)
    net = SegRNN(input_size=3, output_len=10, output_size=3, seg_len=4, hidden_size=8, cell=cell)
    segments = torch.randn(2 * 3, 4, 8)
    _, state = net.encoder(segments)
    queries = net._queries(3).unsqueeze(0).expand(2, -1, -1, -1).reshape(-1, 1, 8)  # (N*C*M, 1, d)

    def repeat(s):  # every window's state once per horizon segment (M = 3)
        return s.unsqueeze(2).expand(-1, -1, 3, -1).reshape(1, 2 * 3 * 3, 8)

    hx = tuple(map(repeat, state)) if cell == "lstm" else repeat(state)
    out, _ = net.encoder.rnn(queries, hx)  # (N*C*M, 1, d)
    torch.testing.assert_close(net.decode(state, 3), out.view(2, 3, 3, 8))


def test_bench_fits_tests_and_tabulates(tmp_path, monkeypatch):
    from bench import ett

    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, "ett_segrnn.yaml")
    result = ett.run(config, "ETTh1", 6, 2, [], out=tmp_path / "results")
    assert result["test_windows"] == 35 and result["params"] > 0 and result["epochs"] >= 1
    assert (tmp_path / "results" / "ett_segrnn-ETTh1-6-s2.json").exists()
    naive = ett.run(
        ROOT / "configs" / "ett_naive.yaml",
        "ETTh1",
        6,
        1,
        _small_args(tmp_path),
        out=tmp_path / "results",
    )
    assert naive["params"] == 0 and naive["epochs"] == 0
    monkeypatch.setattr(ett, "RESULTS", tmp_path / "results")
    assert "| ett_segrnn | ETTh1 | 6 | 2 |" in ett.table()
    assert "| ETTh1 192 | ett_segrnn |  |  | " in ett.comparison()  # no run at these sizes
    assert "| ETTh1 96 | ett_segrnn_large |  |  | " in ett.comparison()  # its point's config
    assert "| ETTh2 720 | ett_segrnn_mae |  |  | " in ett.comparison()  # its point's config


def _small_args(tmp_path: Path) -> list[str]:
    args = ["--data.init_args.data_dir", str(tmp_path), "--data.init_args.input_len", "12"]
    return args + ["--data.init_args.borders", "[100, 140, 180]"]
