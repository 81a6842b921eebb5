"""Naive and seasonal-naive forecasts as a network without parameters (Hyndman &
Athanasopoulos, FPP3 5.2), so the baselines go through the same evaluation as trained models."""

import torch
from torch import Tensor, nn

from src.data.series.windows import seasonal_index


class NaiveForecaster(nn.Module):
    """Inputs ``(N, L, C)`` -> forecasts ``(N, output_len, output_size)``.

    Step ``h`` ahead repeats the last observation at the same phase of the season:
    ``x[:, L - 1 + h - s * ceil(h / s)]``; ``season_length=1`` is the naive (last value) forecast.

    Args:
        output_len: Horizon ``H`` (linked from the datamodule).
        output_size: Forecast channels, the first ones of the input (linked from the datamodule).
        season_length: Season ``s`` in steps, at most the lookback.
    """

    def __init__(self, output_len: int = 96, output_size: int = 7, season_length: int = 1) -> None:
        super().__init__()
        if season_length < 1:
            raise ValueError(f"season_length must be >= 1, got {season_length}")
        self.output_len, self.output_size, self.season_length = (
            output_len,
            output_size,
            season_length,
        )

    def forward(self, x: Tensor) -> Tensor:
        """Forecast ``(N, H, T)`` from ``x`` ``(N, L, C)``."""
        length = x.size(1)
        if self.season_length > length:
            raise ValueError(f"season_length={self.season_length} exceeds the lookback {length}")
        index = seasonal_index(torch.tensor(length - 1), self.output_len, self.season_length)
        return x[:, index.to(x.device), : self.output_size]  # (N, H, T)
