"""ETT benchmark DataModule (Zhou et al. 2021, Informer): the long-horizon protocol's fixed
12 / 4 / 4-month split, train-fitted scaler and stride-1 windows, multivariate or per channel."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from src.data.series.windows import WindowDataset

STAGES = ("train", "val", "test")
HOURLY_BORDERS = (8640, 11520, 14400)  # 12, 16 and 20 months of 30 days, in hours


class ChannelDataset(Dataset):
    """Every window of ``windows`` once per channel: item ``i`` is channel ``i % C`` of window
    ``i // C``, each value ``(..., C)`` cut to ``(..., 1)``.

    Args:
        windows: the multivariate windows.
        n_channels: channels ``C`` per window.
    """

    def __init__(self, windows: WindowDataset, n_channels: int) -> None:
        self.windows, self.n_channels = windows, n_channels

    def __len__(self) -> int:
        return len(self.windows) * self.n_channels

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        window, c = divmod(i, self.n_channels)
        return {k: v[..., c : c + 1] for k, v in self.windows[window].items()}


class ETTDataModule(L.LightningDataModule):
    """ETTh1 / ETTh2 (or any CSV of that layout) under the published long-horizon protocol.

    Rows ``[0, b0)`` train, ``[b0, b1)`` validation, ``[b1, b2)`` test with ``borders = (b0, b1,
    b2)``; rows from ``b2`` on are unused. Every window starts one step after the previous one;
    validation and test windows read their ``input_len`` inputs from the rows just before their
    segment, so the segment holds exactly the forecast targets: a segment of ``S`` rows gives
    ``S - output_len + 1`` windows (train: ``b0 - input_len - output_len + 1``). Each channel is
    standardised with the mean and (population) std of the training rows only; all figures are on
    these scaled values. Evaluation loaders keep the last partial batch.

    Batches are dicts: ``x`` ``(N, input_len, C)``, ``y`` ``(N, output_len, C)``, ``last``
    ``(N, C)`` (the naive forecast) and ``seasonal`` ``(N, output_len, C)`` (seasonal naive).
    With ``channel_independent`` each channel of each window is its own sample (``C = 1``, one
    model shared by all channels, ``C`` times the samples).

    Args:
        data_dir: folder holding ``<dataset>.csv``.
        dataset: file stem, ``"ETTh1"`` or ``"ETTh2"``.
        columns: channels to read (all are inputs and targets); ``None`` takes every column but
            ``date``, in file order.
        input_len: lookback steps.
        output_len: forecast horizon.
        borders: end rows of the train, validation and test segments.
        channel_independent: one sample per (window, channel).
        season_length: steps per season of the seasonal-naive forecast (24: a day of hours).
        batch_size: samples per training batch.
        eval_batch_size: samples per evaluation batch; ``None`` means ``batch_size``.
        num_workers: DataLoader worker processes.
    """

    def __init__(
        self,
        data_dir: str = "data/ett",
        dataset: str = "ETTh1",
        columns: list[str] | None = None,
        input_len: int = 96,
        output_len: int = 96,
        borders: tuple[int, int, int] = HOURLY_BORDERS,
        channel_independent: bool = False,
        season_length: int = 24,
        batch_size: int = 256,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        for name, value in (("input_len", input_len), ("output_len", output_len)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not 0 < borders[0] < borders[1] < borders[2]:
            raise ValueError(f"borders must increase from above 0, got {tuple(borders)}")
        if season_length < 1:
            raise ValueError(f"season_length must be >= 1, got {season_length}")
        self.path = Path(data_dir) / f"{dataset}.csv"
        self.columns, self.borders = columns, tuple(borders)
        self.input_len, self.output_len = input_len, output_len
        self.channel_independent, self.season_length = channel_independent, season_length
        self.batch_size, self.num_workers = batch_size, num_workers
        self.eval_batch_size = eval_batch_size or batch_size
        self._data: Tensor | None = None
        self.datasets: dict[str, Dataset] = {}

    def _load(self) -> None:
        if not self.path.is_file():
            raise FileNotFoundError(
                f"{self.path} not found; set --data.init_args.data_dir to the folder holding "
                f"{self.path.name} (see docs/forecasting.md)"
            )
        frame = pd.read_csv(self.path)
        names = self.columns or [c for c in frame.columns if c != "date"]
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise ValueError(f"columns {missing} not in {self.path.name}: {list(frame.columns)}")
        end = self.borders[2]
        if len(frame) < end:
            raise ValueError(
                f"{self.path.name} has {len(frame)} rows, the split needs {end}; check the file "
                "or lower borders"
            )
        values = frame[names].iloc[:end].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
            raise ValueError(f"{self.path.name} row {row} has a missing or non-finite value")
        train = values[: self.borders[0]]
        std = train.std(axis=0)
        self._mean, self._std = train.mean(axis=0), np.where(std > 0, std, 1.0)
        self.column_names = names
        self._data = torch.from_numpy(((values - self._mean) / self._std).astype(np.float32))

    @property
    def data(self) -> Tensor:
        """The scaled rows ``[0, borders[2])``, ``(T, C)``, read on first access."""
        if self._data is None:
            self._load()
        return self._data

    @property
    def mean(self) -> np.ndarray:
        """Per-channel mean of the training rows, ``(C,)``."""
        _ = self.data
        return self._mean

    @property
    def std(self) -> np.ndarray:
        """Per-channel (population) std of the training rows, ``(C,)``; 1 for a constant one."""
        _ = self.data
        return self._std

    @property
    def n_channels(self) -> int:
        """Channels ``C`` of the series."""
        return self.data.shape[1]

    @property
    def input_size(self) -> int:
        """Channels per sample (1 when channel-independent)."""
        return 1 if self.channel_independent else self.n_channels

    @property
    def n_targets(self) -> int:
        """Target channels per sample: every input channel is forecast."""
        return self.input_size

    def window_starts(self, stage: str) -> np.ndarray:
        """First input row of every window whose targets lie in ``stage``'s segment."""
        first = (0,) + self.borders[:2]
        i = STAGES.index(stage)
        start = max(first[i] - self.input_len, 0)
        stop = self.borders[i] - self.input_len - self.output_len + 1
        if stop <= start:
            raise ValueError(
                f"the {stage} segment [{first[i]}, {self.borders[i]}) is too short for "
                f"input_len={self.input_len} + output_len={self.output_len}; lower them"
            )
        return np.arange(start, stop)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        args = (self.input_len, self.output_len, self.n_channels, self.season_length)
        for s in STAGES:
            windows = WindowDataset(self.data, self.window_starts(s), *args)
            ci = self.channel_independent
            self.datasets[s] = ChannelDataset(windows, self.n_channels) if ci else windows

    def _loader(self, stage: str) -> DataLoader:
        self.setup()
        train = stage == "train"
        return DataLoader(
            self.datasets[stage],
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=False,  # the protocol scores every window
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")
