"""SlurmRequeue in one process with SLURM's environment faked: the signal is only noted, the
checkpoint and ``scontrol requeue`` follow at the next batch end, and a new fit resumes."""

import os
import signal
import stat

import pytest
import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.demos.boring_classes import BoringModel

from src.callbacks.requeue import SlurmRequeue, next_hpc_path


class SignalAt(Callback):
    """Sends this process SIGUSR1 at the start of one training batch."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.batch:
            os.kill(os.getpid(), signal.SIGUSR1)


@pytest.fixture
def slurm_env(tmp_path, monkeypatch):
    """SLURM's variables for a one-task job, and a fake ``scontrol`` that logs its arguments."""
    job = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "seqlab", "SLURM_JOB_ID": "77"}
    for key, value in job.items():
        monkeypatch.setenv(key, value)
    for key in ("SLURM_ARRAY_JOB_ID", "SLURM_NTASKS_PER_NODE"):
        monkeypatch.delenv(key, raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "scontrol"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def trainer(root, *callbacks) -> Trainer:
    return Trainer(
        default_root_dir=root, max_steps=12, limit_val_batches=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[SlurmRequeue(), *callbacks],
    )  # fmt: skip


def test_signal_saves_requeues_stops_and_the_next_fit_resumes(slurm_env, one_thread):
    first = trainer(slurm_env, SignalAt(batch=4))
    first.fit(BoringModel())
    assert first.global_step == 5  # the batch that was running when the signal came, then stop
    assert (slurm_env / "scontrol.log").read_text() == "requeue 77\n"
    saved = torch.load(slurm_env / "hpc_ckpt_1.ckpt", weights_only=False)
    assert saved["global_step"] == 5
    assert signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None)  # handler given back

    second = trainer(slurm_env)
    second.fit(BoringModel())  # under SLURM, Lightning resumes from the newest hpc checkpoint
    assert second.global_step == 12
    assert next_hpc_path(str(slurm_env)).name == "hpc_ckpt_2.ckpt"


def test_outside_slurm_the_signal_handler_is_left_alone(tmp_path, monkeypatch, one_thread):
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    before = signal.getsignal(signal.SIGUSR1)
    fitted = trainer(tmp_path)
    fitted.fit(BoringModel())
    assert fitted.global_step == 12 and not list(tmp_path.glob("hpc_ckpt_*"))
    assert signal.getsignal(signal.SIGUSR1) == before


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="'USR1' is not a signal name like SIGUSR1"):
        SlurmRequeue("USR1")
    with pytest.raises(ValueError, match="every_n_steps must be >= 1"):
        SlurmRequeue(every_n_steps=0)
