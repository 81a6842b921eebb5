"""Tests for the time-series generators, the CSV loader and TimeSeriesDataModule."""

import numpy as np
import pandas as pd
import pytest
import torch

from src.data.series import source as series
from src.data.series.datamodule import TimeSeriesDataModule

SMALL = dict(n_points=1000, input_len=20, output_len=5, batch_size=16)
KINDS = ["sine", "multi_sine", "trend_seasonal", "multivariate", "random_walk"]


def n_windows(length: int, window: int, stride: int) -> int:
    return (length - window) // stride + 1


def test_sine_matches_seed_formula():
    values = series.sine(rng=np.random.default_rng(3))
    t = np.linspace(0, 200, 10000)
    expected = np.sin(t) + 0.1 * np.random.default_rng(3).standard_normal(10000)
    assert values.shape == (10000, 1) and values.dtype == np.float32
    np.testing.assert_allclose(values[:, 0], expected, atol=1e-6)
    assert abs((values[:, 0] - np.sin(t)).std() - 0.1) < 0.005


@pytest.mark.parametrize("kind", KINDS)
def test_generators_shape_and_finite(kind):
    fn = getattr(series, kind)
    values = fn(500, rng=np.random.default_rng(0))
    channels = 3 if kind == "multivariate" else 1
    assert values.shape == (500, channels) and values.dtype == np.float32
    assert np.isfinite(values).all()


def test_multivariate_follows_its_equations():
    values = series.multivariate(400, noise_std=0.0, lag=5, rng=np.random.default_rng(0))
    t = np.linspace(0, 200, 400)
    y, c1, c2 = values.T
    np.testing.assert_allclose(c1, np.sin(0.25 * t), atol=1e-6)
    expected = np.sin(t[5:]) + 0.5 * c1[5:] + 0.8 * c2[:-5]
    np.testing.assert_allclose(y[5:], expected, atol=1e-5)


def _spectrum_peaks(y: np.ndarray, count: int) -> list[int]:
    """Bins of the ``count`` largest local maxima of ``|rfft(y)|``, lowest bin first."""
    power = np.abs(np.fft.rfft(y - y.mean()))
    local = np.flatnonzero((power[1:-1] > power[:-2]) & (power[1:-1] >= power[2:])) + 1
    return sorted(local[np.argsort(power[local])[-count:]].tolist())


def _fit(columns: list[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares coefficients of ``y`` on ``columns`` and the residuals' std."""
    design = np.stack(columns, 1)
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return coef, float((y - design @ coef).std())


@pytest.mark.parametrize(
    ("frequencies", "amplitudes"), [((1.0, 0.31, 2.3), (1.0, 0.6, 0.3)), ((0.5, 1.7), (2.0, 0.5))]
)
def test_multi_sine_spectrum_peaks_at_its_frequencies(frequencies, amplitudes):
    y = series.multi_sine(
        frequencies=frequencies, amplitudes=amplitudes, noise_std=0.2, rng=np.random.default_rng(0)
    )[:, 0].astype(np.float64)
    t = np.linspace(0, 200, 10000)
    bin_width = 2 * np.pi / (t[1] * len(t))  # angular frequency per rfft bin
    expected = sorted(round(f / bin_width) for f in frequencies)
    assert _spectrum_peaks(y, len(frequencies)) == expected
    columns = [fn(f * t) for f in frequencies for fn in (np.sin, np.cos)]
    coef, residual = _fit(columns, y)
    np.testing.assert_allclose(coef[0::2], amplitudes, atol=0.02)  # sine terms, given amplitudes
    np.testing.assert_allclose(coef[1::2], 0.0, atol=0.02)  # no cosine terms: phase 0 at t = 0
    assert residual == pytest.approx(0.2, rel=0.05)


@pytest.mark.parametrize(("slope", "period"), [(0.02, 2 * np.pi), (-0.05, 10.0)])
def test_trend_seasonal_recovers_slope_and_period(slope, period):
    y = series.trend_seasonal(
        slope=slope, period=period, amplitude=0.7, noise_std=0.3, rng=np.random.default_rng(1)
    )[:, 0].astype(np.float64)
    t = np.linspace(0, 200, 10000)
    trend = np.polyfit(t, y, 1)
    assert trend[0] == pytest.approx(slope, abs=2e-3)
    seasonal = y - np.polyval(trend, t)
    assert _spectrum_peaks(seasonal, 1) == [round(t[-1] / period)]  # cycles in the span
    angle = 2 * np.pi * t / period
    coef, residual = _fit([np.ones_like(t), t, np.sin(angle), np.cos(angle)], y)
    np.testing.assert_allclose(coef, [0.0, slope, 0.7, 0.0], atol=0.02)
    assert residual == pytest.approx(0.3, rel=0.05)


def test_random_walk_increments_and_growing_variance():
    rng = np.random.default_rng(2)
    walk = series.random_walk(20000, step_std=0.3, drift=0.05, rng=rng)[:, 0].astype(np.float64)
    assert walk[0] == 0.0
    steps = np.diff(walk)
    assert steps.mean() == pytest.approx(0.05, abs=0.01)
    assert steps.std() == pytest.approx(0.3, rel=0.03)
    assert abs(np.corrcoef(steps[:-1], steps[1:])[0, 1]) < 0.03  # independent increments
    # not stationary: over many walks the variance at step i is i * step_std ** 2
    walks = np.stack([series.random_walk(201, step_std=0.3, rng=rng)[:, 0] for _ in range(800)])
    variance = walks.astype(np.float64).var(0)
    for i in (25, 100, 200):
        assert variance[i] == pytest.approx(i * 0.09, rel=0.15)


def test_multivariate_covariates_as_designed():
    values = series.multivariate(20000, noise_std=0.2, lag=3, rng=np.random.default_rng(4))
    y, c1, c2 = values.astype(np.float64).T
    # c2 is AR(1) with coefficient 0.95 and shocks of std 0.3
    coef, residual = _fit([c2[:-1]], c2[1:])
    assert coef[0] == pytest.approx(0.95, abs=0.01)
    assert residual == pytest.approx(0.3, rel=0.03)
    # y loads on sin(t), c1 and c2 three steps back; not on c2 now
    t = np.linspace(0, 200, 20000)[3:]
    coef, residual = _fit([np.sin(t), c1[3:], c2[:-3], c2[3:]], y[3:])
    np.testing.assert_allclose(coef, [1.0, 0.5, 0.8, 0.0], atol=0.03)
    assert residual == pytest.approx(0.2, rel=0.05)
    lagged, now = np.corrcoef(y[3:], c2[:-3])[0, 1], np.corrcoef(y[3:], c2[3:])[0, 1]
    assert lagged > now > 0  # the target follows the driver with a lag


def test_windows_shapes_and_count():
    dm = TimeSeriesDataModule(**SMALL, stride=3)
    dm.setup("fit")
    for stage, (a, b) in dm.segments.items():
        assert len(dm.datasets[stage]) == n_windows(b - a, 25, 3)
    assert dm.segments == {"train": (0, 700), "val": (700, 850), "test": (850, 1000)}
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (16, 20, 1)
    assert batch["y"].shape == (16, 5, 1)
    assert batch["last"].shape == (16, 1)
    assert batch["x"].dtype == torch.float32


def test_default_matches_seed_recipe_window_count():
    dm = TimeSeriesDataModule()
    dm.setup("fit")
    assert dm.segments["train"] == (0, 7000)
    assert len(dm.datasets["train"]) == 7000 - 60 - 10 + 1


def test_no_window_crosses_a_segment():
    dm = TimeSeriesDataModule(**SMALL, stride=2)
    dm.setup()
    for stage, (a, b) in dm.segments.items():
        starts = dm.window_starts[stage]
        assert starts.min() >= a and starts.max() + 25 <= b
    # the val windows really carry the val segment's values
    val = dm.datasets["val"]
    s = int(val.starts[-1])
    torch.testing.assert_close(val[len(val) - 1]["x"], dm.data[s : s + 20])
    torch.testing.assert_close(val[len(val) - 1]["y"], dm.data[s + 20 : s + 25, :1])


def test_scaler_fitted_on_train_only():
    dm = TimeSeriesDataModule(series="trend_seasonal", **SMALL)
    raw = series.trend_seasonal(1000, rng=np.random.default_rng(0)).astype(np.float64)
    train = raw[:700, 0]
    assert dm.target_mean == pytest.approx([train.mean()], rel=1e-6)
    assert dm.target_std == pytest.approx([train.std()], rel=1e-6)
    assert dm.target_mean != pytest.approx([raw[:, 0].mean()], rel=1e-3)
    scaled_train = dm.data[:700].double()
    assert scaled_train.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert scaled_train.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)


def test_no_scaling():
    dm = TimeSeriesDataModule(**SMALL, scale=False)
    assert dm.target_mean == [0.0] and dm.target_std == [1.0]
    raw = series.sine(1000, rng=np.random.default_rng(0))
    torch.testing.assert_close(dm.data, torch.from_numpy(raw))


def test_last_is_naive_forecast_and_inverse_round_trips():
    dm = TimeSeriesDataModule(series="multivariate", **SMALL)
    batch = next(iter(dm.val_dataloader()))
    torch.testing.assert_close(batch["last"], batch["x"][:, -1, :1])
    raw = torch.from_numpy(series.multivariate(1000, rng=np.random.default_rng(0)))
    torch.testing.assert_close(dm.inverse_transform_target(dm.data[:, :1]), raw[:, :1])
    y = torch.randn(4, 5, 1, dtype=torch.float64)
    restored = dm.inverse_transform_target(y)
    std, mean = torch.tensor(dm.target_std), torch.tensor(dm.target_mean)
    torch.testing.assert_close((restored - mean.double()) / std.double(), y)


def test_properties_before_setup():
    dm = TimeSeriesDataModule(series="multivariate", **SMALL)
    assert dm.datasets == {}
    assert dm.input_size == 3 and dm.n_targets == 1 and dm.output_len == 5
    assert len(dm.target_mean) == 1 and len(dm.target_std) == 1
    assert dm.column_names == ["target", "covariate_1", "covariate_2"]


def test_val_and_test_loaders_in_order_predict_is_test():
    dm = TimeSeriesDataModule(**SMALL)
    first = next(iter(dm.val_dataloader()))
    torch.testing.assert_close(first["x"][0], dm.data[700:720])
    pred, test = next(iter(dm.predict_dataloader())), next(iter(dm.test_dataloader()))
    torch.testing.assert_close(pred["x"], test["x"])
    torch.testing.assert_close(test["x"][1], dm.data[851:871])


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_yields_batches(kind):
    dm = TimeSeriesDataModule(series=kind, **SMALL)
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        batch = next(iter(loader))
        assert batch["x"].shape[1:] == (20, dm.input_size)
        assert batch["y"].shape[1:] == (5, 1)
        assert torch.isfinite(batch["x"]).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(input_len=100, output_len=60), "exceeds the val segment of 150 points"),
        (dict(val_fraction=0.5, test_fraction=0.5), "sum to less than 1"),
        (dict(val_fraction=0.0), "must each lie in"),
        (dict(series="csv"), "needs csv_path"),
        (dict(series="csv", csv_path="x.csv"), "needs target_columns"),
        (dict(stride=0), "stride must be >= 1"),
        (dict(output_len=0), "output_len must be >= 1"),
    ],
)
def test_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        dm = TimeSeriesDataModule(**{**SMALL, **kwargs})
        _ = dm.input_size  # windows are checked when the data is first built


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "load.csv"
    rows = np.arange(200, dtype=np.float64)
    frame = pd.DataFrame({"date": rows, "load": np.sin(rows), "temp": rows / 10, "wind": rows % 7})
    frame.to_csv(path, index=False)
    return path


def test_load_csv(csv_file):
    values, names = series.load_csv(csv_file, ["load"], ["temp", "wind"])
    assert names == ["load", "temp", "wind"] and values.shape == (200, 3)
    np.testing.assert_allclose(values[:, 1], np.arange(200) / 10, rtol=1e-6)


def test_csv_datamodule(csv_file):
    dm = TimeSeriesDataModule(
        series="csv", csv_path=str(csv_file), target_columns=["load", "temp"],
        feature_columns=["wind"], input_len=10, output_len=3, batch_size=8,
    )  # fmt: skip
    assert dm.input_size == 3 and dm.n_targets == 2 and len(dm.target_std) == 2
    batch = next(iter(dm.train_dataloader()))
    assert batch["y"].shape == (8, 3, 2) and batch["last"].shape == (8, 2)
    assert len(dm.datasets["val"]) == n_windows(30, 13, 1)


def test_load_csv_errors(tmp_path, csv_file):
    with pytest.raises(FileNotFoundError, match="not found"):
        series.load_csv(tmp_path / "nope.csv", ["load"])
    with pytest.raises(ValueError, match=r"columns \['price'\] not in load.csv"):
        series.load_csv(csv_file, ["load"], ["price"])
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"load": ["1.0", "oops", "3"], "temp": [1, 2, 3]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="column load has 1 non-numeric values at rows 1"):
        series.load_csv(bad, ["load"])
    gaps = tmp_path / "gaps.csv"
    pd.DataFrame({"load": [1.0, np.nan, 3.0, np.nan]}).to_csv(gaps, index=False)
    with pytest.raises(ValueError, match="column load has 2 NaN values at rows 1, 3; fill or drop"):
        series.load_csv(gaps, ["load"])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        series.load_csv(empty, ["load"])


def test_sine_oracle_recovers_a_clean_sine_and_scores_predictions(tmp_path):
    import json

    from src.analysis.sine_oracle import phase_forecasts, report, split_windows

    dt, k = 0.02, np.arange(70)
    clean = np.sin(np.array([[0.3], [2.0], [4.5]]) + dt * k)  # (3, 70), three phases
    bayes, lsq = phase_forecasts(clean[:, :60], dt, 10, noise_std=0.01)
    np.testing.assert_allclose(bayes, clean[:, 60:], atol=2e-3)
    np.testing.assert_allclose(lsq, clean[:, 60:], atol=2e-3)

    dm = TimeSeriesDataModule("sine", n_points=2000, t_max=40.0, seed=1)
    w = split_windows(dm, "test")
    bayes, _ = phase_forecasts(w["x"], 40.0 / 1999, 10, 0.1)
    path = tmp_path / "predictions.jsonl"
    rows = [{"index": i, "forecast": [[v] for v in row]} for i, row in enumerate(bayes.tolist())]
    path.write_text("\n".join(json.dumps(r) for r in rows[::-1]))  # order restored by index
    test = report(dm, str(path))["test"]
    assert test["model"] == pytest.approx(test["bayes"]) and test["model_vs_bayes"] < 1e-12
    assert test["noise_floor"] < test["bayes"] < test["naive"]
    path.write_text("\n".join(json.dumps(r) for r in rows[:-1]))
    with pytest.raises(ValueError, match="forecasts, the test split has"):
        report(dm, str(path))
