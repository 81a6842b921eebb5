"""scripts/slurm.sbatch on a real single-node SLURM cluster (scripts/slurm/cluster.sh): a 2-task
DDP fit runs to the end with its checkpoints, and a job signalled before its time limit saves,
requeues itself and resumes from that checkpoint until it finishes. ``make test-slurm``."""

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.test_cli import ROOT, _tiny_config

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
CLUSTER = ROOT / "scripts" / "slurm" / "cluster.sh"
# CPU overrides of the GPU sbatch script: one node, 2 tasks, 1 CPU each
SBATCH = ["--nodes=1", "--ntasks-per-node=2", "--gpus-per-node=0", "--cpus-per-task=1"]
CPU = ["--trainer.accelerator", "cpu", "--trainer.precision", "32-true"]


def _run(*command: str, env: dict, cwd: Path | None = None) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running cluster; its environment (SLURM_CONF) for the client commands."""
    if shutil.which("slurmctld") is None:
        pytest.fail("SLURM is not installed: apt-get install -y slurm-wlm munge")
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "SEQLAB_SLURM_PORT": str(random.randrange(20000, 30000, 2))}
    _run(str(CLUSTER), "start", str(state), env=env)
    env["SLURM_CONF"] = str(state / "slurm.conf")
    yield env
    _run(str(CLUSTER), "stop", str(state), env=env)


@pytest.fixture
def workdir(tmp_path):
    """A submit directory: the tiny sine experiment that never stops early, and the presets."""
    config = _tiny_config(ROOT / "configs" / "sine_lstm.yaml", tmp_path)
    cfg = yaml.safe_load(config.read_text())
    cfg["early_stopping"] = {"patience": 10**6}
    config.write_text(yaml.safe_dump(cfg))
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    (tmp_path / "lightning_logs").mkdir()
    return tmp_path


def submit(slurm: dict, workdir: Path, *options: str, args: list[str]) -> str:
    env = {**slurm, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    script = str(ROOT / "scripts" / "slurm.sbatch")
    command = ["sbatch", "--parsable", *SBATCH, *options, script, "sine_lstm.yaml", *CPU, *args]
    return _run(*command, env=env, cwd=workdir).strip()


def wait(slurm: dict, job: str, timeout: float) -> dict[str, str]:
    """Wait for ``job`` to end; a requeued job is let start at once (SLURM holds it 2 minutes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _run("squeue", "-h", "-j", job, "-o", "%T %r", env=slurm).strip()
        if state == "PENDING BeginTime":
            _run("scontrol", "update", f"JobId={job}", "StartTime=now", env=slurm)
        if not state:
            fields = _run("scontrol", "-o", "show", "job", job, env=slurm).split()
            return dict(f.split("=", 1) for f in fields if "=" in f)
        time.sleep(3)
    _run("scancel", job, env=slurm)
    raise AssertionError(f"job {job} did not end within {timeout} s")


def test_sbatch_two_task_ddp_fit_finishes_with_checkpoints(slurm, workdir):
    job = submit(slurm, workdir, "--time=10", args=["--trainer.max_epochs", "2"])
    info = wait(slurm, job, timeout=300)
    log = (workdir / "lightning_logs" / f"slurm-{job}.out").read_text()
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), log[-3000:]
    assert "MEMBER: 1/2" in log and "MEMBER: 2/2" in log and "distributed_backend=gloo" in log
    run = workdir / "lightning_logs" / f"slurm-{job}" / "sine_lstm" / "version_0"
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 1 and last["global_step"] > 0
    assert len(list((run / "checkpoints").glob("epoch*.ckpt"))) == 1  # the best one


def test_preempted_job_saves_requeues_and_resumes_to_the_end(slurm, workdir):
    # SLURM signals 60 s (up to a minute more) before the 3-minute limit; the run needs 2
    # minutes of training (max_time, kept across restarts), so it is preempted at least once.
    options = ["--time=3", "--signal=SIGUSR1@60"]
    args = ["--trainer.max_epochs", "100000", "--trainer.max_time", "00:00:02:00"]
    job = submit(slurm, workdir, *options, args=args)
    info = wait(slurm, job, timeout=900)
    log = (workdir / "lightning_logs" / f"slurm-{job}.out").read_text()
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), log[-3000:]
    assert int(info["Restarts"]) >= 1
    hpc = f"lightning_logs/slurm-{job}/hpc_ckpt_1.ckpt"
    assert f"SlurmRequeue: SIGUSR1 received; saving {hpc}" in log
    assert f"SlurmRequeue: requeued SLURM job {job}" in log
    assert f"Restored all states from the checkpoint at {hpc}" in log
    assert "Time limit reached" in log  # the resumed run trained to the end of its budget
    saved = torch.load(workdir / hpc, weights_only=False)
    runs = workdir / "lightning_logs" / f"slurm-{job}" / "sine_lstm"
    last = max(
        (torch.load(p, weights_only=False) for p in runs.glob("version_*/checkpoints/last.ckpt")),
        key=lambda c: c["global_step"],
    )
    assert 0 < saved["global_step"] < last["global_step"]
