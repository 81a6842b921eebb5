"""Forecasting samples cut from a scaled series: sliding windows, contiguous parallel streams for
stateful truncated-BPTT training (Williams & Peng 1990; char-RNN batching), and the
seasonal-naive baseline (Hyndman & Athanasopoulos, FPP3 5.2)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from src.data.errors import DataError


def seasonal_index(end: Tensor, horizon: int, season: int) -> Tensor:
    """Source index of the seasonal-naive forecast of steps ``end + 1 .. end + horizon``.

    Step ``h`` ahead takes the value ``season * ceil(h / season)`` steps earlier, i.e. the same
    phase in the last season observed by ``end``, so it never reads past ``end`` even when
    ``season < horizon``.

    Args:
        end: ``(...)`` absolute index of the last observed step.
        horizon: forecast steps ``H``.
        season: season length in steps (>= 1).

    Returns:
        ``(..., H)`` indices, ``<= end``; negative where the series has no value that early.
    """
    h = torch.arange(1, horizon + 1)
    return end.unsqueeze(-1) + h - season * ((h + season - 1) // season)


def seasonal_naive(data: Tensor, end: Tensor, horizon: int, season: int, n_targets: int) -> Tensor:
    """Seasonal-naive forecasts ``(..., H, T)`` for observation ends ``end`` ``(...)``.

    ``data`` is the ``(T_total, C)`` series; values before the series' start are NaN.
    """
    index = seasonal_index(end, horizon, season)  # (..., H)
    values = data[index.clamp(min=0), :n_targets]  # (..., H, T)
    return values.masked_fill((index < 0).unsqueeze(-1), float("nan"))


class WindowDataset(Dataset):
    """Windows ``data[s : s + input_len]`` -> ``data[s + input_len : s + input_len + output_len]``.

    Args:
        data: ``(T_total, C)`` scaled series; channels ``0 .. n_targets - 1`` are the targets.
        starts: absolute start index of each window.
        input_len: steps fed to the model.
        output_len: steps to forecast.
        n_targets: number of target channels.
        season: season length for the ``"seasonal"`` baseline; ``None`` leaves it out.
    """

    def __init__(
        self,
        data: Tensor,
        starts: np.ndarray,
        input_len: int,
        output_len: int,
        n_targets: int,
        season: int | None = None,
    ) -> None:
        self.data, self.starts, self.season = data, starts, season
        self.input_len, self.output_len, self.n_targets = input_len, output_len, n_targets

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        s = int(self.starts[i])
        x = self.data[s : s + self.input_len]  # (input_len, C)
        y = self.data[s + self.input_len : s + self.input_len + self.output_len, : self.n_targets]
        item = {"x": x, "y": y, "last": x[-1, : self.n_targets]}
        if self.season:
            end = torch.tensor(s + self.input_len - 1)
            item["seasonal"] = seasonal_naive(
                self.data, end, self.output_len, self.season, self.n_targets
            )  # (output_len, T)
        return item


class StreamDataset(Dataset):
    """Contiguous, non-overlapping chunks of ``n_streams`` parallel streams, in order.

    The range ``[start, start + n_streams * n_chunks * chunk_len)`` is cut into ``n_streams``
    adjacent streams; item ``k * n_streams + b`` is chunk ``k`` of stream ``b``, so a loader with
    ``batch_size=n_streams`` and no shuffling yields chunk ``k`` of every stream as batch ``k``
    and row ``b`` of batch ``k`` continues row ``b`` of batch ``k - 1``. Every step ``t`` of a
    chunk carries the targets of the ``horizon`` steps after it (read past the chunk's end, but
    never past ``limit``).

    Items: ``x`` ``(chunk_len, C)``; ``y`` ``(chunk_len, H, T)`` with ``y[j, h] =
    data[t_j + 1 + h]``; ``last`` ``(chunk_len, T)`` = ``data[t_j]`` (the naive forecast);
    ``seasonal`` ``(chunk_len, H, T)`` when ``season`` is set.

    Args:
        data: ``(T_total, C)`` scaled series; channels ``0 .. n_targets - 1`` are the targets.
        start: first index of the first stream.
        limit: end (exclusive) of the segment the targets may read.
        n_streams: parallel streams ``B`` (the batch size).
        chunk_len: steps per chunk (the truncated-BPTT length).
        horizon: future steps forecast at every step.
        n_targets: number of target channels.
        season: season length for the ``"seasonal"`` baseline; ``None`` leaves it out.
    """

    def __init__(
        self,
        data: Tensor,
        start: int,
        limit: int,
        n_streams: int,
        chunk_len: int,
        horizon: int,
        n_targets: int,
        season: int | None = None,
    ) -> None:
        usable = limit - start - horizon  # steps whose whole horizon lies before ``limit``
        self.n_chunks = usable // (n_streams * chunk_len)
        if self.n_chunks < 1:
            raise DataError(
                f"stateful training needs batch_size * chunk_len = {n_streams * chunk_len} <= "
                f"{usable} usable train steps; lower batch_size or chunk_len"
            )
        self.data, self.start, self.season = data, start, season
        self.n_streams, self.chunk_len, self.horizon = n_streams, chunk_len, horizon
        self.n_targets = n_targets
        self.stream_len = self.n_chunks * chunk_len

    def __len__(self) -> int:
        return self.n_streams * self.n_chunks

    def position(self, i: int) -> int:
        """Absolute index of the first step of item ``i``."""
        chunk, stream = divmod(i, self.n_streams)
        return self.start + stream * self.stream_len + chunk * self.chunk_len

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        p, k, h, t = self.position(i), self.chunk_len, self.horizon, self.n_targets
        future = self.data[p + 1 : p + k + h, :t]  # (K + H - 1, T)
        y = future.unfold(0, h, 1).transpose(1, 2)  # (K, H, T): y[j, s] = data[p + j + 1 + s]
        item = {"x": self.data[p : p + k], "y": y, "last": self.data[p : p + k, :t]}
        if self.season:
            ends = torch.arange(p, p + k)
            item["seasonal"] = seasonal_naive(self.data, ends, h, self.season, t)  # (K, H, T)
        return item
