"""Model checkpointing whose ``last.ckpt`` always holds the latest completed epoch, or, with
periodic saves on, the latest of that and the last N training steps or minutes."""

import time
from typing import Any

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ModelCheckpoint, but ``save_last`` writes ``last.ckpt`` after every epoch.

    Lightning 2.6 writes ``last.ckpt`` only when the top-k checkpoints changed in the same step,
    so after an epoch that did not improve the monitored metric, ``last.ckpt`` still held an
    older epoch and ``fit --ckpt_path last`` silently trained that epoch again. Here ``last.ckpt``
    is written once each epoch is wholly done, its learning-rate scheduler step included (as the
    next epoch starts, and when training ends), whether or not the metric improved: a fit
    resumed from it repeats the uninterrupted fit exactly, where a checkpoint taken at
    validation would resume before a ReduceLROnPlateau step whose metric it lacks. Its
    ``epoch`` entry counts the completed epochs. The best (top-k) checkpoints still follow the
    validations. A ``fast_dev_run`` writes no checkpoint at all.

    Periodic saves rewrite ``last.ckpt`` during an epoch too, so that a killed run loses at most
    that much work; ``fit --ckpt_path last`` then resumes inside the epoch, at the step where the
    checkpoint was taken.

    Args:
        last_every_n_train_steps: also write ``last.ckpt`` every this many optimizer steps
            (0: only between epochs).
        last_every_n_minutes: also write ``last.ckpt`` when this many minutes passed since the
            last write (0: off).
        **kwargs: Lightning's ModelCheckpoint arguments (``monitor``, ``mode``, ``save_last``...).
    """

    def __init__(
        self, last_every_n_train_steps: int = 0, last_every_n_minutes: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if last_every_n_train_steps < 0 or last_every_n_minutes < 0:
            raise ValueError("last_every_n_train_steps and last_every_n_minutes must be >= 0")
        self.last_every_n_train_steps = last_every_n_train_steps
        self.last_every_n_minutes = last_every_n_minutes
        self._last_write = time.monotonic()
        self._writing_last = False

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        if trainer.current_epoch == 0:
            return
        # the previous epoch is complete, and Lightning counts this one as begun ("ready"); saved
        # as not begun, the checkpoint is the state between the two epochs (as at the end of
        # training), from which a resumed fit starts this epoch afresh
        counts = trainer.fit_loop.epoch_progress
        counts.total.ready -= 1
        counts.current.ready -= 1
        try:
            self._write_last(trainer)
        finally:
            counts.total.ready += 1
            counts.current.ready += 1

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._write_last(trainer)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, idx)
        steps, minutes = self.last_every_n_train_steps, self.last_every_n_minutes
        due = bool(steps) and trainer.global_step % steps == 0
        if minutes:
            due = due or time.monotonic() - self._last_write >= 60 * minutes
            due = trainer.strategy.broadcast(due)  # rank 0's clock decides for every rank
        if due:
            self._write_last(trainer)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        # Lightning leaves out the latest score; a resumed fit then ends with another state
        if self.dirpath == state_dict.get("dirpath", self.dirpath):
            self.current_score = state_dict.get("current_score", self.current_score)

    def _save_last_checkpoint(self, trainer: Trainer, monitor_candidates: dict) -> None:
        # Lightning calls this after each top-k save; last.ckpt is written by _write_last only
        if self._writing_last:
            super()._save_last_checkpoint(trainer, monitor_candidates)

    def _write_last(self, trainer: Trainer) -> None:
        if (
            not self.save_last
            or trainer.fast_dev_run
            or trainer.state.fn != TrainerFn.FITTING
            or trainer.sanity_checking
        ):
            return
        # Lightning skips the top-k save of a step that already has a checkpoint; a write of
        # last.ckpt must not stop the validation at the same step from saving the best one
        saved_step, self._writing_last = self._last_global_step_saved, True
        try:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        finally:
            self._writing_last, self._last_global_step_saved = False, saved_step
        self._last_write = time.monotonic()
