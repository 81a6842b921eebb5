"""DDP with 2 CPU (gloo) processes equals one process: validation/test metrics of a checkpoint
exactly, weights after a few steps of 2 x batch B/2 vs 1 x batch B within 1e-5, shards
disjoint and complete. The cases (IMDB classifier, sine forecaster) are in tests/ddp_equal.py."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from tests import ddp_equal as cases

WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_ranks(work, world: int = WORLD, timeout: int = 240) -> None:
    """Start the ranks as a launcher would (``LOCAL_RANK`` etc. in the environment)."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    env |= {"WORLD_SIZE": str(world), "NODE_RANK": "0", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = str(cases.ROOT)
    procs = [
        subprocess.Popen(
            [sys.executable, str(cases.ROOT / "tests" / "ddp_equal.py"), str(work)],
            env=env | {"LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(world)
    ]
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for r, (p, out) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, f"rank {r} failed:\n{out[-3000:]}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process's weights and metrics per case, then the same from 2 DDP ranks."""
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks: the same kernels give the same sums
    work = tmp_path_factory.mktemp("ddp")
    single = {}
    try:
        for case in cases.CASES:
            dm = cases.datamodule(case, work)
            task, trainer = cases.fit(case, dm, world=1, rank=0)
            trainer.save_checkpoint(work / f"{case}.ckpt")
            weights = {k: v.clone() for k, v in task.state_dict().items()}
            metrics = cases.evaluate(case, dm, 1, work / f"{case}.ckpt")
            single[case] = {"weights": weights, "metrics": metrics, "dm": dm}
    finally:
        torch.set_num_threads(torch_threads)
    launch_ranks(work)
    ranks = [json.loads((work / f"rank{r}" / "record.json").read_text()) for r in range(WORLD)]
    return work, single, ranks


@pytest.mark.parametrize("case", cases.CASES)
def test_ddp_metrics_equal_one_process_exactly(runs, case):
    _, single, ranks = runs
    expected = single[case]["metrics"]
    assert {"val/loss", "test/loss"} <= set(expected)
    for record in ranks:  # every rank logs the synced value
        assert record[case]["metrics"] == expected


@pytest.mark.parametrize("case", cases.CASES)
def test_ddp_half_batches_give_the_same_weights(runs, case):
    work, single, _ = runs
    ddp = torch.load(work / "rank0" / f"{case}_weights.pt")
    initial = cases.model(case, single[case]["dm"]).state_dict()
    for name, value in single[case]["weights"].items():
        if value.is_floating_point() and name.startswith("net."):
            assert not torch.equal(value, initial[name]), f"{name} did not train"
        torch.testing.assert_close(ddp[name], value, rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("case", cases.CASES)
def test_ddp_shards_are_disjoint_and_complete(runs, case):
    _, single, ranks = runs
    dm = single[case]["dm"]
    for split in ("val", "test"):  # evaluation: every example exactly once
        parts = [record[case]["shards"][split] for record in ranks]
        assert all(parts) and sorted(parts[0] + parts[1]) == list(range(len(dm.datasets[split])))
    if case == "sine":  # training: one permutation split, padded by at most world - 1 repeats
        parts = [set(record[case]["shards"]["train"]) for record in ranks]
        assert parts[0] | parts[1] == set(range(len(dm.datasets["train"])))
        assert len(parts[0] & parts[1]) <= WORLD - 1
