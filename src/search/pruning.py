"""Lightning callback that reports a trial's validation metric to its Optuna study and stops the
run when the study's pruner says so.

The callback is built from plain values (storage, study name, trial number, the pruner as a
``class_path``), so it sits in the trial's saved config like any other callback and the study
can live in another process's storage. Optuna keeps no pruner in its storage: the callback is
given the study's. Each validation run (after the sanity check) is one step: with
``val_check_interval: 0.5`` an epoch reports twice, which gives the pruner finer rungs.
"""

from __future__ import annotations

import math
import time

import optuna
from lightning.pytorch import Callback, LightningModule, Trainer

from src.search.storage import open_storage


class OptunaPruning(Callback):
    """Report ``monitor`` after every validation run; stop training once the pruner prunes.

    Pruning stops the trainer (``should_stop``) on every rank instead of raising inside the fit
    loop, so checkpoints and logs close normally; the caller reads :attr:`pruned_at` and
    :attr:`values` afterwards.

    Args:
        storage: Optuna storage: a database URL (``sqlite:///study.db``) or a journal file path.
        study_name: the study in that storage.
        trial_number: the trial this run is (``trial.number``).
        monitor: logged metric to report, e.g. ``val/acc``.
        pruner: the study's pruner, e.g. ``optuna.pruners.HyperbandPruner``.
    """

    def __init__(
        self,
        storage: str,
        study_name: str,
        trial_number: int,
        monitor: str,
        pruner: optuna.pruners.BasePruner,
    ) -> None:
        self.storage, self.study_name = storage, study_name
        self.trial_number, self.monitor, self.pruner = trial_number, monitor, pruner
        self.values: list[float] = []  # the reported value of every validation run
        self.seconds: list[float] = []  # time since the fit started, at each of them
        self.pruned_at: int | None = None  # step at which the pruner stopped the run
        self._trial: optuna.Trial | None = None

    def _open_trial(self) -> optuna.Trial:
        if self._trial is None:
            storage = open_storage(self.storage)
            study = optuna.load_study(
                study_name=self.study_name, storage=storage, pruner=self.pruner
            )
            study_id = storage.get_study_id_from_name(self.study_name)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, self.trial_number)
            self._trial = optuna.Trial(study, trial_id)
        return self._trial

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        # milliseconds: a tiny model validates in well under a tenth of a second
        self.seconds.append(round(time.perf_counter() - self._start, 3))
        if self.monitor not in trainer.callback_metrics:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "nothing"
            raise KeyError(
                f"OptunaPruning: metric {self.monitor!r} was not logged (logged: {logged}); "
                "set `metric:` in the search space to one of them"
            )
        value = float(trainer.callback_metrics[self.monitor])
        self.values.append(value)
        prune = False
        if trainer.is_global_zero:
            trial = self._open_trial()
            step = len(self.values)
            if math.isfinite(value):
                trial.report(value, step)
            trial.set_user_attr("step_seconds", self.seconds)  # what each step cost, for reports
            # a diverged run (NaN/inf) has nothing left to show: stop it like a pruned one
            prune = not math.isfinite(value) or trial.should_prune()
        if trainer.strategy.broadcast(prune, src=0):
            self.pruned_at = len(self.values)
            trainer.should_stop = True
