"""Optimizer and LR-scheduler wiring shared by the task modules (injected from YAML)."""

from collections.abc import Iterable
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable


def configure(
    module: torch.nn.Module,
    optimizer: OptimizerCallable,
    scheduler: LRSchedulerCallable | None,
    monitor: str,
    interval: Literal["epoch", "step"],
    params: Iterable[Any] | None = None,
) -> dict:
    """Build the ``configure_optimizers`` dict: ReduceLROnPlateau watches ``monitor``.

    ``params`` defaults to ``module.parameters()``; parameter groups (dicts) may carry an
    ``lr_scale``, which multiplies the optimizer's learning rate for that group (discriminative
    learning rates) before any scheduler records it.
    """
    opt = optimizer(module.parameters() if params is None else params)
    for group in opt.param_groups:
        group["lr"] *= group.get("lr_scale", 1.0)
    if scheduler is None:
        return {"optimizer": opt}
    sched = scheduler(opt)
    config = {"scheduler": sched, "interval": interval, "monitor": monitor}
    return {"optimizer": opt, "lr_scheduler": config}


def discriminative_groups(groups: list[list[torch.nn.Parameter]], decay: float) -> list[dict]:
    """Parameter groups from the bottom up, the top one at the full learning rate and each
    lower one at ``1 / decay`` of the one above it (Howard & Ruder 2018 use ``decay = 2.6``)."""
    if decay <= 0:
        raise ValueError(f"lr_decay must be positive, got {decay}")
    top = len(groups) - 1
    return [{"params": g, "lr_scale": decay ** (i - top)} for i, g in enumerate(groups) if g]
