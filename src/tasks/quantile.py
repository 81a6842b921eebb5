"""Quantile forecasts: the pinball loss (Koenker & Bassett 1978) and the interval metrics reported
for them (empirical coverage of the outer quantiles' interval, mean pinball loss)."""

import torch
from torch import Tensor
from torchmetrics import Metric


def pinball_loss(pred: Tensor, target: Tensor, quantiles: Tensor) -> Tensor:
    """Mean over every value and quantile of ``max(q (y - p), (q - 1) (y - p))``.

    Args:
        pred: ``(..., Q)`` quantile forecasts.
        target: ``(...)`` truths.
        quantiles: ``(Q,)`` levels in ``(0, 1)``.
    """
    err = target.unsqueeze(-1) - pred  # (..., Q)
    return torch.maximum(quantiles * err, (quantiles - 1) * err).mean()


def check_quantiles(quantiles: list[float]) -> int:
    """Validate the levels (sorted, in ``(0, 1)``, containing 0.5) and return the median's index."""
    if (
        len(quantiles) < 3
        or sorted(quantiles) != list(quantiles)
        or len(set(quantiles)) != len(quantiles)
    ):
        raise ValueError(f"quantiles must be at least 3 increasing levels, got {quantiles}")
    if not all(0 < q < 1 for q in quantiles) or 0.5 not in quantiles:
        raise ValueError(f"quantiles must lie in (0, 1) and include 0.5, got {quantiles}")
    return list(quantiles).index(0.5)


class QuantileMetrics(Metric):
    """Accumulates ``coverage`` (share of truths inside ``[q_first, q_last]``, the nominal level
    being ``q_last - q_first``) and ``pinball`` (mean pinball loss) over an epoch (DDP-synced)."""

    full_state_update = False

    def __init__(self, quantiles: list[float]) -> None:
        super().__init__()
        self.register_buffer("levels", torch.tensor(quantiles), persistent=False)
        for name in ("inside", "pinball", "count"):
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add quantile forecasts ``(..., Q)`` for truths ``(...)``."""
        inside = (target >= pred[..., 0]) & (target <= pred[..., -1])
        self.inside += inside.sum()
        self.pinball += pinball_loss(pred, target, self.levels).double() * target.numel()
        self.count += target.numel()

    def compute(self) -> dict[str, Tensor]:
        return {"coverage": self.inside / self.count, "pinball": self.pinball / self.count}
