"""Optimizer and LR-scheduler wiring shared by the task modules (injected from YAML)."""

from typing import Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable


def configure(
    module: torch.nn.Module,
    optimizer: OptimizerCallable,
    scheduler: LRSchedulerCallable | None,
    monitor: str,
    interval: Literal["epoch", "step"],
) -> dict:
    """Build the ``configure_optimizers`` dict: ReduceLROnPlateau watches ``monitor``."""
    opt = optimizer(module.parameters())
    if scheduler is None:
        return {"optimizer": opt}
    sched = scheduler(opt)
    config = {"scheduler": sched, "interval": interval, "monitor": monitor}
    return {"optimizer": opt, "lr_scheduler": config}
