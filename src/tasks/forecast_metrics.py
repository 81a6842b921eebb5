"""Forecast errors in the series' units against the naive (last value) and seasonal-naive
baselines (Hyndman & Koehler 2006; Hyndman & Athanasopoulos, FPP3 5.2 and 5.8)."""

import torch
from torch import Tensor
from torchmetrics import Metric


class ForecastMetrics(Metric):
    """Accumulates MSE, MAE, sMAPE and the baselines' MSE over an epoch (DDP-synced).

    ``compute`` returns ``mse``, ``rmse``, ``mae``, ``smape`` (%), ``naive_mse``, ``rel_naive``
    (MSE / naive MSE) and, when seasonal forecasts were given, ``seasonal_mse`` and
    ``rel_seasonal`` (MSE / seasonal-naive MSE). Seasonal values that are NaN (no observation one
    season earlier) are left out of both seasonal figures, for the model and the baseline alike.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        names = ("sq", "abs", "smape", "naive_sq", "count")
        for name in names + ("seasonal_sq", "seasonal_model_sq", "seasonal_count"):
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self, pred: Tensor, target: Tensor, naive: Tensor, seasonal: Tensor | None = None
    ) -> None:
        """Add forecasts ``pred``, truths ``target`` and baselines, all ``(N, H, T)``."""
        err = (pred - target).double()
        self.sq += err.pow(2).sum()
        self.abs += err.abs().sum()
        denom = (pred.abs() + target.abs()).double().clamp_min(1e-8)
        self.smape += (2 * err.abs() / denom).sum()
        self.naive_sq += (naive - target).double().pow(2).sum()
        self.count += target.numel()
        if seasonal is not None:
            known = ~torch.isnan(seasonal)
            self.seasonal_sq += (seasonal - target).double()[known].pow(2).sum()
            self.seasonal_model_sq += err[known].pow(2).sum()
            self.seasonal_count += known.sum()

    def compute(self) -> dict[str, Tensor]:
        mse = self.sq / self.count
        naive_mse = self.naive_sq / self.count
        out = {
            "mse": mse,
            "rmse": mse.sqrt(),
            "mae": self.abs / self.count,
            "smape": 100 * self.smape / self.count,
            "naive_mse": naive_mse,
            "rel_naive": mse / naive_mse,
        }
        if self.seasonal_count > 0:
            out["seasonal_mse"] = self.seasonal_sq / self.seasonal_count
            out["rel_seasonal"] = self.seasonal_model_sq / self.seasonal_sq
        return out
