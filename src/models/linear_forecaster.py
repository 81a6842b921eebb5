"""Linear forecaster on the lookback window with a moving-average decomposition (DLinear,
Zeng et al. 2023): one linear map of the trend, one of the remainder, shared by all channels."""

import torch.nn.functional as F
from torch import Tensor, nn

from src.models.revin import InstanceNorm, RevIN


class LinearForecaster(nn.Module):
    """Inputs ``(N, L, C)`` -> forecasts ``(N, output_len, C)`` (or ``(N, output_len, C, Q)``).

    Per channel: ``trend`` = moving average of the window (``kernel_size`` steps, edges repeated
    so it keeps length ``L``), ``seasonal = x - trend``; forecast = ``Linear_L->H(seasonal) +
    Linear_L->H(trend)``. ``kernel_size=1`` makes the trend the series itself (one linear map).

    Args:
        input_size: Channels ``C`` (linked from the datamodule).
        output_len: Horizon ``H`` (linked from the datamodule).
        output_size: Forecast channels; must equal ``input_size`` (linked from the datamodule).
        input_len: Lookback ``L`` (the data's ``input_len``).
        kernel_size: Moving-average width (odd).
        instance_norm: ``"none"``, ``"revin"`` or ``"last"``; see :class:`~src.models.revin.RevIN`.
        num_quantiles: Values per forecast step; above 1 the output gains a last axis ``Q``.
    """

    def __init__(
        self,
        input_size: int = 7,
        output_len: int = 96,
        output_size: int = 7,
        input_len: int = 96,
        kernel_size: int = 25,
        instance_norm: InstanceNorm = "none",
        num_quantiles: int = 1,
    ) -> None:
        super().__init__()
        if output_size != input_size:
            raise ValueError(
                f"output_size={output_size} must equal input_size={input_size}: every input "
                "channel is forecast"
            )
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        self.input_len, self.output_len, self.kernel_size = input_len, output_len, kernel_size
        self.num_quantiles = num_quantiles
        self.revin = RevIN(input_size, instance_norm)
        self.seasonal = nn.Linear(input_len, output_len * num_quantiles)
        self.trend = nn.Linear(input_len, output_len * num_quantiles)

    def decompose(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` ``(N, C, L)`` -> ``(seasonal, trend)``, each ``(N, C, L)``."""
        pad = (self.kernel_size - 1) // 2
        padded = F.pad(x, (pad, pad), mode="replicate")  # (N, C, L + 2 pad)
        trend = F.avg_pool1d(padded, self.kernel_size, stride=1)  # (N, C, L)
        return x - trend, trend

    def forward(self, x: Tensor) -> Tensor:
        """Forecast from ``x`` ``(N, L, C)``; ``(N, H, C)``, or ``(N, H, C, Q)``."""
        n, length, c = x.shape
        if length != self.input_len:
            raise ValueError(f"expected a lookback of input_len={self.input_len}, got {length}")
        seasonal, trend = self.decompose(self.revin.normalize(x).transpose(1, 2))
        y = self.seasonal(seasonal) + self.trend(trend)  # (N, C, H * Q)
        y = y.view(n, c, self.output_len, self.num_quantiles).permute(0, 2, 1, 3)  # (N, H, C, Q)
        return self.revin.denormalize(y if self.num_quantiles > 1 else y.squeeze(-1))
