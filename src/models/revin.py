"""Reversible instance normalisation for forecasters (RevIN, Kim et al. 2022), and its
last-value variant (subtract each window's last observation, as SegRNN and NLinear do)."""

from typing import Literal

import torch
from torch import Tensor, nn

InstanceNorm = Literal["none", "revin", "last"]


class RevIN(nn.Module):
    """Normalises each input window per channel and restores the statistics on the forecast.

    ``"revin"``: ``(x - mean) / std`` over the window's steps, then a learnable per-channel affine
    map (``weight``, ``bias``); the forecast is mapped back through the inverse of both.
    ``"last"``: ``x - x[:, -1]``, the forecast gets the last value added back. ``"none"``: both
    directions are the identity. Forecast channels are the first ``T`` input channels.

    Args:
        num_features: Input channels ``C``.
        mode: ``"revin"``, ``"last"`` or ``"none"``.
        affine: Learn the per-channel affine map (``"revin"`` only).
        eps: Added to the variance before the square root.
    """

    def __init__(
        self,
        num_features: int,
        mode: InstanceNorm = "revin",
        affine: bool = True,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if mode not in InstanceNorm.__args__:
            raise ValueError(f"instance norm mode must be one of {InstanceNorm.__args__}: {mode!r}")
        self.mode, self.eps = mode, eps
        self.affine = affine and mode == "revin"
        if self.affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        self._center: Tensor | None = None
        self._scale: Tensor | None = None

    def normalize(self, x: Tensor) -> Tensor:
        """``x`` ``(N, L, C)`` -> normalised ``(N, L, C)``; keeps the statistics for
        :meth:`denormalize`."""
        if self.mode == "none":
            return x
        if self.mode == "last":
            self._center = x[:, -1:].detach()  # (N, 1, C)
            return x - self._center
        self._center = x.mean(1, keepdim=True).detach()
        self._scale = (x.var(1, keepdim=True, unbiased=False) + self.eps).sqrt().detach()
        x = (x - self._center) / self._scale
        return x * self.weight + self.bias if self.affine else x

    def normalize_target(self, y: Tensor) -> Tensor:
        """Targets ``(N, H, T)`` in input units -> the units of the last :meth:`normalize`
        (e.g. a teacher-forcing target), ``T <= C``."""
        if self.mode == "none":
            return y
        t = y.size(2)
        y = y - self._center[..., :t]
        if self.mode == "last":
            return y
        y = y / self._scale[..., :t]
        return y * self.weight[:t] + self.bias[:t] if self.affine else y

    def denormalize(self, y: Tensor) -> Tensor:
        """Forecast ``(N, H, T)`` or quantiles ``(N, H, T, Q)`` in normalised units -> input
        units, ``T <= C`` (the first ``T`` channels' statistics)."""
        if self.mode == "none":
            return y
        t, quantiles = y.size(2), y.dim() == 4
        center = self._center[..., :t]  # (N, 1, T)
        if quantiles:
            center = center.unsqueeze(-1)
        if self.mode == "last":
            return y + center
        scale = self._scale[..., :t]
        if quantiles:
            scale = scale.unsqueeze(-1)
        if self.affine:
            weight, bias = self.weight[:t], self.bias[:t]
            if quantiles:
                weight, bias = weight.unsqueeze(-1), bias.unsqueeze(-1)
            y = (y - bias) / (weight + self.eps * self.eps)
        return y * scale + center
