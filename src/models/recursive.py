"""One-step forecaster applied recursively over the horizon, each prediction fed back as the newest
input (the iterated strategy of Taieb et al. 2012)."""

from typing import Any

import torch
from torch import Tensor, nn

from src.models.forecaster import RNNForecaster


class OneStepForecaster(RNNForecaster):
    """:class:`RNNForecaster` with ``output_len=1``: ``(N, L, H_in)`` -> ``(N, 1, output_size)``.

    Train it on the first target step and forecast the horizon with :func:`recursive_forecast`;
    ``ForecastingTask(recursive=True)`` does both. It takes no ``output_len``, so the CLI's link of
    the datamodule's horizon to the network skips it.

    Args:
        **kwargs: Any :class:`RNNForecaster` argument except ``output_len``.
    """

    def __init__(self, **kwargs: Any) -> None:
        if "output_len" in kwargs:
            raise ValueError("OneStepForecaster always predicts one step; drop output_len")
        super().__init__(output_len=1, **kwargs)


def recursive_forecast(net: nn.Module, x: Tensor, steps: int) -> Tensor:
    """Forecast ``steps`` ahead by sliding the window over the net's own one-step predictions.

    Args:
        net: Maps ``(N, L, C)`` to ``(N, S, C)`` with ``S >= 1``; only its first step is used.
        x: ``(N, L, C)`` input window. Every channel must be a target: future values of
            covariates are unknown, so they cannot be fed back.
        steps: Horizon ``H``.

    Returns:
        ``(N, H, C)`` forecasts.

    Raises:
        ValueError: ``net`` forecasts fewer channels than ``x`` has (inputs with covariates).
    """
    window, preds = x, []
    for _ in range(steps):
        step = net(window)[:, :1]  # (N, 1, C)
        if step.size(-1) != x.size(-1):
            raise ValueError(recursive_error(x.size(-1), step.size(-1)))
        preds.append(step)
        window = torch.cat([window[:, 1:], step], 1)  # drop the oldest step, append the forecast
    return torch.cat(preds, 1)


def recursive_error(n_inputs: int, n_targets: int) -> str:
    """The one-line error for recursive forecasting of a series with covariates."""
    return (
        f"recursive forecasting needs every input channel to be a target (got {n_inputs} inputs, "
        f"{n_targets} targets): future covariates are unknown; use a direct or seq2seq forecaster"
    )
