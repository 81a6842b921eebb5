"""Model checkpointing whose ``last.ckpt`` is always the latest completed epoch."""

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ModelCheckpoint, but ``save_last`` writes ``last.ckpt`` at every save point.

    Lightning 2.6 writes ``last.ckpt`` only when the top-k checkpoints changed in the same step,
    so after an epoch that did not improve the monitored metric, ``last.ckpt`` still held an
    older epoch and ``fit --ckpt_path last`` silently trained that epoch again. Here ``last.ckpt``
    follows every validation (or every training epoch end, when checkpoints are saved there),
    whether or not the metric improved. A ``fast_dev_run`` writes no checkpoint at all. Arguments
    are ModelCheckpoint's.
    """

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Lightning 2.6 writes last.ckpt here even in a fast_dev_run, which saves nothing else
        if not trainer.fast_dev_run:
            super().on_train_end(trainer, pl_module)

    def _save_last_if_behind(self, trainer: Trainer) -> None:
        if (
            not self.save_last
            or trainer.fast_dev_run
            or trainer.state.fn != TrainerFn.FITTING
            or trainer.sanity_checking
            or self._last_global_step_saved == trainer.global_step  # saved at this step already
        ):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
