"""What a checkpoint holds beyond the weights, optimizer, scheduler and loop counters, so that a
fit resumed from it repeats the uninterrupted fit exactly: random generator states and the
metric state of the training epoch in progress."""

import random

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer

from src.tasks.epoch_log import load_running_state, running_state


def rng_state() -> dict:
    """The global random states of torch (CPU and CUDA), numpy and Python, as tensors and plain
    values (a checkpoint must load with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 (the global one)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))  # noqa: NPY002
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeState(Callback):
    """Saves the random states and the running epoch's metric inputs in every checkpoint, and
    puts them back when a fit resumes from one (installed by the CLI).

    Lightning restores callbacks before the fit starts; nothing draws random numbers between
    that point and the first training step except the sanity check, which Lightning runs with
    the random state isolated, and data loaders that draw their order or their workers' seed
    from the global generators (the project's training loaders do not:
    :class:`~src.data.resumable.ResumableDataLoader`). The random state saved at a checkpoint
    is therefore the one the next training step finds, as in the run that wrote it.
    """

    def __init__(self) -> None:
        self._trainer: Trainer | None = None
        self._module: LightningModule | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._trainer, self._module = trainer, pl_module

    def state_dict(self) -> dict:
        epoch = running_state(self._module) if self._module is not None else {}
        # a run stopped early and killed before it exited must not train on when resumed
        stop = bool(self._trainer.should_stop) if self._trainer is not None else False
        return {"rng": rng_state(), "epoch_metrics": epoch, "should_stop": stop}

    def load_state_dict(self, state_dict: dict) -> None:
        set_rng_state(state_dict["rng"])
        if self._module is not None:
            load_running_state(self._module, state_dict.get("epoch_metrics", {}))
        if self._trainer is not None and state_dict.get("should_stop"):
            self._trainer.should_stop = True

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Lightning skips ReduceLROnPlateau's step at the end of an epoch it resumed, as the
        # metric is missing when it resumes after the validation; an epoch resumed mid-way has
        # validated in this run, so the step happens as in the uninterrupted fit
        loop = trainer.fit_loop
        monitors = [c.monitor for c in trainer.lr_scheduler_configs if c.reduce_on_plateau]
        if loop.restarting and monitors and all(m in trainer.callback_metrics for m in monitors):
            loop.restarting = False
