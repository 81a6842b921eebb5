"""Save and requeue a SLURM job on its pre-time-limit signal, at a training step that every DDP
rank has reached."""

import os
import re
import signal
import subprocess
from pathlib import Path

from lightning import LightningModule, Trainer
from lightning.pytorch import Callback
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn

_HPC = re.compile(r"hpc_ckpt_(\d+)\.ckpt$")


def next_hpc_path(root: str) -> Path:
    """``root/hpc_ckpt_<n>.ckpt`` with ``n`` one past the newest there (Lightning's naming: under
    SLURM a fit resumes from the highest ``n`` in ``default_root_dir``)."""
    names = (p.name for p in Path(root).glob("hpc_ckpt_*.ckpt"))
    found = [int(m.group(1)) for name in names if (m := _HPC.search(name))]
    return Path(root) / f"hpc_ckpt_{max(found, default=0) + 1}.ckpt"


class SlurmRequeue(Callback):
    """On ``requeue_signal``, save ``hpc_ckpt_<n>.ckpt`` in ``default_root_dir``, run
    ``scontrol requeue`` and stop; the requeued job (same id) resumes from that checkpoint.

    SLURM sends the signal before the time limit when asked to (``#SBATCH --signal=SIGUSR1@90``).
    Lightning's own handler (``SLURMEnvironment(auto_requeue=True)``) saves inside the signal
    handler, whose barrier can meet a rank that is still in a gradient all-reduce: both then
    wait for ever (a 2-rank job on a SLURM test cluster hung so until its time limit). Here the
    handler only notes the signal; every ``every_n_steps`` training batches the ranks agree on it
    (one all-reduce of a flag) and then save, requeue and stop together. Installed at setup, before
    Lightning's, it keeps Lightning from installing its own. Outside SLURM it does nothing.

    Args:
        requeue_signal: the signal's name, as in ``#SBATCH --signal``.
        every_n_steps: training batches between the ranks' checks for the signal.
    """

    def __init__(self, requeue_signal: str = "SIGUSR1", every_n_steps: int = 1) -> None:
        if requeue_signal not in signal.Signals.__members__:
            raise ValueError(f"requeue_signal {requeue_signal!r} is not a signal name like SIGUSR1")
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.signum = signal.Signals[requeue_signal]
        self.every_n_steps = every_n_steps
        self.signalled, self._armed, self._batches, self._previous = False, False, 0, None

    def _note(self, signum, frame) -> None:
        self.signalled = True  # no I/O or collectives inside a signal handler

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit" and SLURMEnvironment.detect():
            self._previous = signal.signal(self.signum, self._note)
            self._armed = True

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._armed:
            signal.signal(self.signum, self._previous or signal.SIG_DFL)
            self._armed = False

    def on_train_batch_end(self, trainer: Trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._batches += 1
        if not self._armed or self._batches % self.every_n_steps:
            return
        if not trainer.strategy.reduce_boolean_decision(self.signalled, all=False):
            return
        path = trainer.strategy.broadcast(str(next_hpc_path(trainer.default_root_dir)))
        rank_zero_info(f"SlurmRequeue: {self.signum.name} received; saving {path}")
        trainer.save_checkpoint(path)
        if trainer.is_global_zero:
            job = os.environ["SLURM_JOB_ID"]
            if "SLURM_ARRAY_JOB_ID" in os.environ:  # an array task is requeued by its array name
                job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
            done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
            if done.returncode == 0:
                rank_zero_info(f"SlurmRequeue: requeued SLURM job {job}")
            else:
                rank_zero_warn(f"SlurmRequeue: scontrol requeue {job} failed: {done.stderr}")
        trainer.should_stop = True
