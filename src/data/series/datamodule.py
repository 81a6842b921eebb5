"""Forecasting DataModule: sliding windows over a chronologically split series."""

from __future__ import annotations

from typing import Literal

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from src.data.errors import DataError
from src.data.resumable import ResumableDataLoader
from src.data.sampler import BucketBatchSampler
from src.data.series import source as gen
from src.data.series.windows import StreamDataset, WindowDataset

SeriesKind = Literal["sine", "multi_sine", "trend_seasonal", "multivariate", "random_walk", "csv"]
STAGES = ("train", "val", "test")
# Seasonal period of each synthetic series in units of t (multi_sine: its dominant sin(t);
# multivariate: sin(t) + 0.5 sin(t / 4) repeats every 8 pi); random_walk has none.
PERIODS = {"sine": 2 * np.pi, "multi_sine": 2 * np.pi, "trend_seasonal": 2 * np.pi}
PERIODS["multivariate"] = 8 * np.pi


class TimeSeriesDataModule(L.LightningDataModule):
    """Synthetic or CSV series, split train/val/test in time order, cut into windows per segment.

    Batches are dicts: ``x`` ``(N, input_len, C)`` scaled inputs (all channels), ``y``
    ``(N, output_len, T)`` scaled targets, ``last`` ``(N, T)`` the last observed target (the naive
    forecast), ``seasonal`` ``(N, output_len, T)`` the seasonal-naive forecast (the value one
    season earlier, read from the whole series and never past the window's end; NaN where the
    series is too short; absent without a season). No window crosses a segment boundary, and the
    per-channel scaler is fitted on the train segment only. With ``stateful`` the train loader
    yields :class:`~src.data.series.windows.StreamDataset` chunks instead (truncated BPTT).

    Distributed (``use_distributed_sampler: false``, as in the DDP preset): the training windows
    are split across ranks by a ``DistributedSampler`` seeded with ``seed``, and validation and
    test batches are dealt whole, each once, so DDP metrics equal a single process's. Stateful
    streams are not split: every rank trains on all of them.

    Args:
        series: which series; ``"csv"`` reads ``csv_path``, the others are synthetic
            (see :mod:`src.data.series.source`).
        csv_path: CSV file for ``series="csv"`` (one row per time step, chronological).
        target_columns: CSV columns to forecast (required for ``"csv"``).
        feature_columns: extra CSV input columns (covariates).
        n_points: length of a synthetic series (ignored for CSV).
        t_max: synthetic time grid is ``linspace(0, t_max, n_points)`` (unused by random_walk).
        noise_std: std of the Gaussian noise of synthetic series (step std of the random walk).
        input_len: steps in each input window.
        output_len: steps to forecast after each input window.
        stride: steps between consecutive window starts.
        val_fraction: share of the series (its middle part) used for validation.
        test_fraction: share of the series (its end) used for testing and prediction.
        scale: standardise each channel with the train segment's mean and std.
        batch_size: windows per batch.
        num_workers: DataLoader worker processes.
        seed: seed of the synthetic noise (the training shuffle follows ``seed_everything``).
        season_length: steps per season for the seasonal-naive baseline; ``None`` uses the
            synthetic series' known period (``round(period / dt)``, see ``PERIODS``) and no
            baseline for csv and random_walk; ``0`` turns it off.
        stateful: train on ``batch_size`` contiguous parallel streams cut into ``chunk_len``-step
            chunks, in order (val/test/predict keep the windows); linked to the task's
            ``stateful``.
        chunk_len: steps per stateful chunk; ``None`` means ``input_len``.
    """

    def __init__(
        self,
        series: SeriesKind = "sine",
        csv_path: str | None = None,
        target_columns: list[str] | None = None,
        feature_columns: list[str] | None = None,
        n_points: int = 10000,
        t_max: float = 200.0,
        noise_std: float = 0.1,
        input_len: int = 60,
        output_len: int = 10,
        stride: int = 1,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        scale: bool = True,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        season_length: int | None = None,
        stateful: bool = False,
        chunk_len: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if series == "csv" and not csv_path:
            raise DataError('series="csv" needs csv_path; set it, e.g. --data.csv_path data.csv')
        if series == "csv" and not target_columns:
            raise DataError('series="csv" needs target_columns, e.g. --data.target_columns [load]')
        for name, value in (("input_len", input_len), ("output_len", output_len)):
            if value < 1:
                raise DataError(f"{name} must be >= 1, got {value}")
        if stride < 1:
            raise DataError(f"stride must be >= 1, got {stride}")
        if season_length is not None and season_length < 0:
            raise DataError(f"season_length must be >= 0 (0 turns it off), got {season_length}")
        if chunk_len is not None and chunk_len < 1:
            raise DataError(f"chunk_len must be >= 1, got {chunk_len}")
        if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
            raise DataError(
                f"val_fraction={val_fraction} and test_fraction={test_fraction} must each lie in "
                "(0, 1) and sum to less than 1"
            )
        self.series, self.csv_path, self.seed = series, csv_path, seed
        self.target_columns, self.feature_columns = target_columns, feature_columns
        self.n_points, self.t_max, self.noise_std = n_points, t_max, noise_std
        self.input_len, self.output_len, self.stride = input_len, output_len, stride
        self.val_fraction, self.test_fraction, self.scale = val_fraction, test_fraction, scale
        self.batch_size, self.num_workers = batch_size, num_workers
        self._season_length, self.stateful = season_length, stateful
        self.chunk_len = chunk_len or input_len
        self._data: Tensor | None = None  # (T_total, C) scaled series, built on first access
        self._segments: dict[str, tuple[int, int]] = {}
        self._window_starts: dict[str, np.ndarray] = {}
        self._columns: list[str] = []
        self.datasets: dict[str, WindowDataset | StreamDataset] = {}

    # ---- data, built lazily and cached -----------------------------------------------------
    def _raw(self) -> tuple[np.ndarray, list[str]]:
        if self.series == "csv":
            return gen.load_csv(self.csv_path, self.target_columns, self.feature_columns)
        rng = np.random.default_rng(self.seed)
        n, t_max, std = self.n_points, self.t_max, self.noise_std
        if self.series == "random_walk":
            return gen.random_walk(n, step_std=std, rng=rng), ["target"]
        make = {"sine": gen.sine, "multi_sine": gen.multi_sine}
        make |= {"trend_seasonal": gen.trend_seasonal, "multivariate": gen.multivariate}
        if self.series not in make:
            raise DataError(f"unknown series {self.series!r}; pick one of {SeriesKind.__args__}")
        values = make[self.series](n, t_max=t_max, noise_std=std, rng=rng)
        return values, ["target"] + [f"covariate_{i}" for i in range(1, values.shape[1])]

    def _build(self) -> None:
        raw, self._columns = self._raw()
        total, window = len(raw), self.input_len + self.output_len
        n_val, n_test = round(total * self.val_fraction), round(total * self.test_fraction)
        n_train = total - n_val - n_test
        bounds = np.cumsum([0, n_train, n_val, n_test]).tolist()
        self._segments = {s: (bounds[i], bounds[i + 1]) for i, s in enumerate(STAGES)}
        hints = {"train": "lower val_fraction/test_fraction", "val": "raise val_fraction"}
        hints["test"] = "raise test_fraction"
        more = "use a longer CSV" if self.series == "csv" else "raise n_points"
        for stage, (start, end) in self._segments.items():
            if window > end - start:
                raise DataError(
                    f"input_len + output_len = {window} exceeds the {stage} segment of "
                    f"{end - start} points; lower them or {more}/{hints[stage]}"
                )
        self._window_starts = {
            s: np.arange(a, b - window + 1, self.stride) for s, (a, b) in self._segments.items()
        }
        train = raw[: bounds[1]].astype(np.float64)
        self.mean = train.mean(axis=0) if self.scale else np.zeros(raw.shape[1])
        std = train.std(axis=0) if self.scale else np.ones(raw.shape[1])
        self.std = np.where(std > 0, std, 1.0)  # a constant channel is only centred
        self._data = torch.from_numpy(((raw - self.mean) / self.std).astype(np.float32))

    def _ensure(self) -> None:
        if self._data is None:
            self._build()

    def _ensure_scaler(self) -> None:
        """The scaler and column names: restored from a checkpoint, else built from the data."""
        if self._data is None and not self._columns:
            self._build()

    def state_dict(self) -> dict[str, list]:
        """What forecasting new series needs without the data: every channel's train-fitted
        mean and std, and the column names (targets first)."""
        self._ensure_scaler()
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "columns": self._columns}

    def restore_state(self, state: dict[str, list]) -> None:
        """Restore the scaler and column names of a checkpoint."""
        self.mean, self.std = np.asarray(state["mean"]), np.asarray(state["std"])
        self._columns = list(state["columns"])

    @property
    def data(self) -> Tensor:
        """The whole scaled series, ``(T_total, C)``, generated or loaded on first access."""
        self._ensure()
        return self._data

    @property
    def segments(self) -> dict[str, tuple[int, int]]:
        """Half-open ``[start, end)`` index range of the train/val/test segments."""
        self._ensure()
        return self._segments

    @property
    def window_starts(self) -> dict[str, np.ndarray]:
        """Absolute start index of every window, per segment."""
        self._ensure()
        return self._window_starts

    @property
    def column_names(self) -> list[str]:
        """Names of the channels of ``x``, targets first."""
        self._ensure_scaler()
        return self._columns

    @property
    def season_length(self) -> int | None:
        """Steps per season of the seasonal-naive baseline (``None``: no baseline)."""
        if self._season_length is not None:
            return self._season_length or None
        if self.series not in PERIODS:
            return None
        return round(PERIODS[self.series] * (self.n_points - 1) / self.t_max)  # period / dt

    @property
    def input_size(self) -> int:
        """Channels in ``x`` (targets + features)."""
        return len(self.column_names)

    @property
    def n_targets(self) -> int:
        """Target channels in ``y``."""
        return len(self.target_columns) if self.series == "csv" else 1

    @property
    def target_mean(self) -> list[float]:
        """Train-fitted mean of each target channel (zeros when ``scale=False``)."""
        self._ensure_scaler()
        return [float(m) for m in self.mean[: self.n_targets]]

    @property
    def target_std(self) -> list[float]:
        """Train-fitted std of each target channel (ones when ``scale=False``)."""
        self._ensure_scaler()
        return [float(s) for s in self.std[: self.n_targets]]

    def inverse_transform_target(self, y: Tensor) -> Tensor:
        """Undo the scaling of a ``(..., T)`` target tensor."""
        mean = torch.tensor(self.target_mean, dtype=y.dtype, device=y.device)
        std = torch.tensor(self.target_std, dtype=y.dtype, device=y.device)
        return y * std + mean

    # ---- Lightning hooks -------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            args = (self.input_len, self.output_len, self.n_targets, self.season_length)
            starts = self.window_starts
            self.datasets = {s: WindowDataset(self.data, starts[s], *args) for s in STAGES}
            if self.stateful:
                first, end = self.segments["train"]
                self.datasets["train"] = StreamDataset(
                    self.data, first, end, self.batch_size, self.chunk_len, *args[1:]
                )

    def _world(self) -> dict[str, int]:
        """World size and rank: the trainer's, else ``torch.distributed``'s, else 1 and 0."""
        if self.trainer is not None:
            return {"num_replicas": self.trainer.world_size, "rank": self.trainer.global_rank}
        if dist.is_available() and dist.is_initialized():
            return {"num_replicas": dist.get_world_size(), "rank": dist.get_rank()}
        return {"num_replicas": 1, "rank": 0}

    def _loader(self, stage: str, shuffle: bool = False) -> DataLoader:
        self.setup()
        ds, world = self.datasets[stage], self._world()
        loader = ResumableDataLoader if stage == "train" else DataLoader  # resumable mid-epoch
        common = {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}
        if world["num_replicas"] == 1 or isinstance(ds, StreamDataset):
            return loader(ds, batch_size=self.batch_size, shuffle=shuffle, **common)
        # Distributed (the DDP preset leaves sharding to the datamodule): training shuffles
        # one permutation per epoch (seeded by ``seed``, the same on every rank) and splits it;
        # evaluation deals the single process's batches, each exactly once, so DDP metrics equal
        # a single process's.
        if shuffle:
            sampler = DistributedSampler(ds, shuffle=True, seed=self.seed, **world)
            return loader(ds, batch_size=self.batch_size, sampler=sampler, **common)
        batches = BucketBatchSampler(
            np.ones(len(ds)), self.batch_size, shuffle=False, even=False, **world
        )  # windows are of one length: the batches keep the time order
        return DataLoader(ds, batch_sampler=batches, **common)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=not self.stateful)  # streams stay in order

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")
