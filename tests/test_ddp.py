"""DDP on CPU with 2 gloo processes: fit runs, and predict shards the data disjointly and fully."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.test_cli import ROOT, _tiny_config


def test_ddp_two_processes_fit_and_sharded_predict(tmp_path):
    config = _tiny_config(ROOT / "configs" / "imdb_bilstm.yaml", tmp_path, max_epochs=1)
    cfg = yaml.safe_load(config.read_text())
    cfg["predictions"] = {"path": str(tmp_path / "pred" / "predictions.jsonl")}
    config.write_text(yaml.safe_dump(cfg))
    last = tmp_path / "logs" / "imdb_bilstm" / "version_0" / "checkpoints" / "last.ckpt"
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    ddp += ["--trainer.use_distributed_sampler", "false"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for command in (["fit"], ["predict", "--ckpt_path", str(last)]):
        run = subprocess.run(
            [sys.executable, "-m", "src.cli", *command, "--config", str(config), *ddp],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert run.returncode == 0, run.stderr[-3000:]
    files = sorted((tmp_path / "pred").glob("predictions-rank*.jsonl"))
    assert [f.name for f in files] == ["predictions-rank0.jsonl", "predictions-rank1.jsonl"]
    shards = [{json.loads(line)["index"] for line in f.read_text().splitlines()} for f in files]
    assert shards[0] and shards[1] and not shards[0] & shards[1]  # disjoint
    n_test = len(Path(ROOT / "tests/fixtures/imdb/test.csv").read_text().splitlines()) - 1
    assert shards[0] | shards[1] == set(range(n_test))  # complete
