"""Anomaly-detection DataModule (Malhotra et al. 2016 setting): a synthetic series with injected,
labelled spikes, level shifts and noise bursts, cut into scaled windows for reconstruction."""

from __future__ import annotations

from typing import Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from src.data.anomaly.injection import (
    KINDS,
    Anomaly,
    AnomalyKind,
    apply_anomalies,
    check_settings,
    inject_anomalies,
    sample_anomalies,
)
from src.data.errors import DataError
from src.data.resumable import ResumableDataLoader
from src.data.series import source as gen

__all__ = ["Anomaly", "AnomalyDataModule", "AnomalyWindows", "apply_anomalies"]
__all__ += ["inject_anomalies", "sample_anomalies"]
STAGES = ("train", "val", "test")
SeriesKind = Literal["sine", "multi_sine", "trend_seasonal", "multivariate", "random_walk"]


class AnomalyWindows(Dataset):
    """Windows ``data[s : s + window]`` with their labels and start index ``s``."""

    def __init__(self, data: Tensor, labels: Tensor, starts: np.ndarray, window: int) -> None:
        self.data, self.labels, self.starts, self.window = data, labels, starts, window

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        s = int(self.starts[i])
        steps = slice(s, s + self.window)
        return {"x": self.data[steps], "labels": self.labels[steps], "start": torch.tensor(s)}


class AnomalyDataModule(L.LightningDataModule):
    """A synthetic series split train/val/test in time order, anomalies injected per segment.

    Events are drawn separately inside each segment (none crosses a boundary) with generators
    seeded from ``seed``; the train segment stays clean unless ``contaminate_train``. Each channel
    is standardised with the train segment's mean and std. Windows of ``window`` steps, every
    ``stride`` steps, never cross a segment boundary; the last window of a segment always ends
    at its last step, so every step is covered. Batches: ``x`` ``(N, W, C)`` scaled values,
    ``labels`` ``(N, W)`` bool (True = injected anomaly), ``start`` ``(N,)`` long, the absolute
    index of each window's first step (to map per-step scores back onto the series).

    Args:
        series: synthetic series of :mod:`src.data.series.source` (as in ``TimeSeriesDataModule``).
        n_points: length of the whole series.
        t_max: time grid ``linspace(0, t_max, n_points)`` (unused by random_walk).
        noise_std: Gaussian noise of the clean series (step std of the random walk).
        window: steps per window ``W``.
        stride: steps between consecutive window starts.
        val_fraction: share of the series (its middle part) for validation (threshold choice).
        test_fraction: share of the series (its end) for testing and prediction.
        anomaly_rate: anomalous events per step in each contaminated segment (at least one).
        kinds: event kinds, taken in turn: ``spike`` (one step offset by ``spike_scale`` stds),
            ``level_shift`` (``min_len..max_len`` steps offset by ``shift_scale`` stds),
            ``noise_burst`` (``min_len..max_len`` steps plus noise of ``burst_scale`` stds).
        spike_scale: spike size in stds of the channel (within its segment).
        shift_scale: level-shift offset in stds of the channel.
        burst_scale: std of the burst's added noise in stds of the channel.
        min_len: shortest level shift / noise burst.
        max_len: longest level shift / noise burst.
        gap: least number of normal steps between two events.
        contaminate_train: inject anomalies into the train segment too (labels kept, unused in
            training).
        batch_size: windows per batch.
        num_workers: DataLoader worker processes.
        seed: seed of the series' noise and of the anomalies.
    """

    def __init__(
        self,
        series: SeriesKind = "sine",
        n_points: int = 10000,
        t_max: float = 200.0,
        noise_std: float = 0.1,
        window: int = 60,
        stride: int = 1,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        anomaly_rate: float = 0.004,
        kinds: list[AnomalyKind] | None = None,
        spike_scale: float = 4.0,
        shift_scale: float = 1.5,
        burst_scale: float = 2.5,
        min_len: int = 10,
        max_len: int = 40,
        gap: int = 20,
        contaminate_train: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if window < 2 or stride < 1:
            raise DataError(f"window must be >= 2 and stride >= 1, got {window} and {stride}")
        if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
            raise DataError(
                f"val_fraction={val_fraction} and test_fraction={test_fraction} must each lie in "
                "(0, 1) and sum to less than 1"
            )
        kinds = tuple(kinds or KINDS)
        scales = dict(spike_scale=spike_scale, shift_scale=shift_scale, burst_scale=burst_scale)
        check_settings(kinds, anomaly_rate, *scales.values(), min_len, max_len, gap)
        self.settings = dict(rate=anomaly_rate, kinds=kinds, **scales, gap=gap)
        self.settings |= dict(min_len=min_len, max_len=max_len)
        self.window, self.stride, self.batch_size = window, stride, batch_size
        self.num_workers, self.contaminate_train = num_workers, contaminate_train
        self._built: dict | None = None  # series, labels, segments, window starts; built lazily
        self.datasets: dict[str, AnomalyWindows] = {}

    def _clean(self) -> np.ndarray:
        h, rng = self.hparams, np.random.default_rng(self.hparams.seed)
        if h.series == "random_walk":
            return gen.random_walk(h.n_points, step_std=h.noise_std, rng=rng)
        make = {"sine": gen.sine, "multi_sine": gen.multi_sine}
        make |= {"trend_seasonal": gen.trend_seasonal, "multivariate": gen.multivariate}
        if h.series not in make:
            raise DataError(f"unknown series {h.series!r}; pick one of {sorted(make)}")
        return make[h.series](h.n_points, t_max=h.t_max, noise_std=h.noise_std, rng=rng)

    def _build(self) -> dict:
        raw = self._clean()
        if not np.isfinite(raw).all():
            raise DataError("the series contains NaN or infinite values; check noise_std/t_max")
        total = len(raw)
        n_val = round(total * self.hparams.val_fraction)
        n_test = round(total * self.hparams.test_fraction)
        bounds = np.cumsum([0, total - n_val - n_test, n_val, n_test]).tolist()
        segments = {s: (bounds[i], bounds[i + 1]) for i, s in enumerate(STAGES)}
        values, labels = raw.copy(), np.zeros(total, dtype=bool)
        for i, (stage, (a, b)) in enumerate(segments.items()):
            if self.window > b - a:
                raise DataError(
                    f"window = {self.window} exceeds the {stage} segment of {b - a} points; "
                    "lower window or raise n_points"
                )
            if stage != "train" or self.contaminate_train:
                rng = np.random.default_rng([self.hparams.seed, i])  # one stream per segment
                values[a:b], labels[a:b] = inject_anomalies(raw[a:b], rng, **self.settings)
        train = values[: bounds[1]].astype(np.float64)
        self.mean, std = train.mean(axis=0), train.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)  # a constant channel is only centred
        window_starts = {}
        for stage, (a, b) in segments.items():
            starts = np.arange(a, b - self.window + 1, self.stride)
            if starts[-1] != b - self.window:  # cover the segment's tail too
                starts = np.append(starts, b - self.window)
            window_starts[stage] = starts
        data = torch.from_numpy(((values - self.mean) / self.std).astype(np.float32))
        labels = torch.from_numpy(labels)
        return dict(data=data, labels=labels, segments=segments, window_starts=window_starts)

    def _get(self, name: str) -> Tensor | dict:
        if self._built is None:
            self._built = self._build()
        return self._built[name]

    @property
    def data(self) -> Tensor:
        """The whole scaled series with anomalies, ``(T, C)``, built on first access."""
        return self._get("data")

    @property
    def labels(self) -> Tensor:
        """``(T,)`` bool, True at injected anomalies."""
        return self._get("labels")

    @property
    def segments(self) -> dict[str, tuple[int, int]]:
        """Half-open ``[start, end)`` index range of the train/val/test segments."""
        return self._get("segments")

    @property
    def window_starts(self) -> dict[str, np.ndarray]:
        """Absolute start index of every window, per segment."""
        return self._get("window_starts")

    def state_dict(self) -> dict[str, list]:
        """What scoring new series needs without the data: each channel's train-fitted mean
        and std."""
        self._get("data")
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    def restore_state(self, state: dict[str, list]) -> None:
        """Restore the scaler of a checkpoint."""
        self.mean, self.std = np.asarray(state["mean"]), np.asarray(state["std"])

    @property
    def column_names(self) -> list[str]:
        """Channel names: ``value``, then ``covariate_1`` ... (multivariate series)."""
        if not hasattr(self, "mean"):
            self._get("data")
        return ["value"] + [f"covariate_{i}" for i in range(1, len(self.mean))]

    @property
    def input_size(self) -> int:
        """Channels ``C`` of ``x`` (linked to the network's ``input_size``)."""
        return self.data.shape[1]

    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            self.datasets = {
                s: AnomalyWindows(self.data, self.labels, self.window_starts[s], self.window)
                for s in STAGES
            }

    def _loader(self, stage: str, shuffle: bool = False) -> DataLoader:
        self.setup()
        loader = ResumableDataLoader if stage == "train" else DataLoader  # resumable mid-epoch
        return loader(
            self.datasets[stage],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")
