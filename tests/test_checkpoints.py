"""Checkpoint files: atomic writes, checksums that catch every changed byte, loading as tensors
and plain values only, and one-line errors for damaged, foreign or mismatched checkpoints."""

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import src.checkpoints.files as files
from src.checkpoints import CHECKSUM_KEY, load_checkpoint, save_atomic
from src.checkpoints.__main__ import main as checkpoints_main
from src.cli import main
from src.errors import SeqLabError
from tests.test_cli import ROOT, _tiny_config

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A tiny sine fit: its config and its last checkpoint (written by the CLI)."""
    tmp = tmp_path_factory.mktemp("fit")
    limits = {"max_epochs": 1, "limit_train_batches": 3, "limit_val_batches": 1}
    config = _tiny_config(ROOT / "configs" / "sine_lstm.yaml", tmp, **limits)
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        main(["fit", "--config", str(config)])
    finally:
        os.chdir(cwd)
    return config, tmp / "logs" / "sine_lstm" / "version_0" / "checkpoints" / "last.ckpt"


def test_checkpoints_load_with_weights_only_and_carry_their_checksum(fitted):
    checkpoint = torch.load(fitted[1], weights_only=True)
    assert len(checkpoint[CHECKSUM_KEY]) == 64
    assert load_checkpoint(fitted[1]).keys() == checkpoint.keys()


def _flip(source: Path, target: Path, rng: random.Random) -> int:
    data = bytearray(source.read_bytes())
    position = rng.randrange(len(data))
    data[position] ^= rng.randrange(1, 256)
    target.write_bytes(bytes(data))
    return position


def _flips_refused(path: Path, tmp: Path, count: int, seed: int) -> None:
    rng, target = random.Random(seed), tmp / "flipped.ckpt"
    for _ in range(count):
        position = _flip(path, target, rng)
        with pytest.raises(SeqLabError, match="damaged|truncated") as caught:
            load_checkpoint(target)
        assert str(target) in str(caught.value), position
        assert "\n" not in str(caught.value) and "weights_only=False" not in str(caught.value)


def test_random_byte_flips_are_refused(fitted, tmp_path):
    _flips_refused(fitted[1], tmp_path, count=12, seed=random.randrange(10**6))


@pytest.mark.slow
def test_fifty_random_byte_flips_are_refused(fitted, tmp_path):
    _flips_refused(fitted[1], tmp_path, count=50, seed=random.randrange(10**6))


def test_a_write_cut_short_leaves_the_old_file(fitted, tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    shutil.copy(fitted[1], path)
    before = path.read_bytes()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "elsewhere"))  # not used: the temp file is local
    seen = []

    def killed(fd):
        seen.extend(p.name for p in tmp_path.iterdir())
        raise KeyboardInterrupt  # the process dies while the data is on its way to disk

    monkeypatch.setattr(files.os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        save_atomic(load_checkpoint(path), path)
    assert any(name.startswith(".last.ckpt.") for name in seen)  # written beside the target
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "last.ckpt"
    ]


class _WritesAFile:
    """Unpickling this creates a file: what a checkpoint carrying code could do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_checkpoint_carrying_code_is_refused_without_running_it(fitted, tmp_path):
    marker, evil = tmp_path / "ran.txt", tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _WritesAFile(marker)}, evil)
    with pytest.raises(SeqLabError, match="holds pickled Python code"):
        load_checkpoint(evil)
    with pytest.raises(SeqLabError, match="holds pickled Python code"):
        main(["validate", "--config", str(fitted[0]), "--ckpt_path", str(evil)])
    assert not marker.exists()


def test_empty_truncated_foreign_and_unsigned_files_are_one_line_errors(fitted, tmp_path):
    data = fitted[1].read_bytes()
    cases = {
        "empty.ckpt": (b"", "is empty"),
        "half.ckpt": (data[: len(data) // 2], "truncated, damaged or not a checkpoint"),
        "notes.ckpt": (b"epoch,loss\n1,0.5\n", "truncated, damaged or not a checkpoint"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(SeqLabError, match=message) as caught:
            load_checkpoint(tmp_path / name)
        assert name in str(caught.value) and "weights_only=False" not in str(caught.value)
    with pytest.raises(SeqLabError, match="is a directory"):
        load_checkpoint(tmp_path)
    unsigned = tmp_path / "plain.ckpt"
    torch.save({k: v for k, v in torch.load(fitted[1]).items() if k != CHECKSUM_KEY}, unsigned)
    with pytest.raises(SeqLabError, match="carries no checksum.*sign"):
        load_checkpoint(unsigned)
    checkpoints_main(["sign", str(unsigned)])  # trusted: given fresh checksums
    checkpoints_main(["verify", str(unsigned)])


def test_cli_prints_one_line_and_exits_2_for_a_truncated_checkpoint(fitted, tmp_path):
    half = tmp_path / "half.ckpt"
    half.write_bytes(fitted[1].read_bytes()[:5000])
    command = ["validate", "--config", str(fitted[0]), "--ckpt_path", str(half)]
    done = subprocess.run(
        [sys.executable, "-m", "src.cli", *command], cwd=ROOT, env=ENV, capture_output=True
    )
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert err.strip().splitlines()[-1].startswith(f"error: {half} is truncated")
    assert "Traceback" not in err and "weights_only" not in err


def test_checkpoint_of_another_shape_or_task_names_the_difference(fitted):
    config, last = fitted
    wider = ["--model.init_args.net.init_args.hidden_size", "16", "--ckpt_path", str(last)]
    message = "holds a ForecastingTask with hidden_size 8; the config builds one with hidden_size"
    with pytest.raises(SeqLabError, match=message + " 16"):
        main(["validate", "--config", str(config), *wider])
    other = ROOT / "configs" / "anomaly_lstm_ae.yaml"
    message = "holds a ForecastingTask; the config builds an AnomalyTask"
    with pytest.raises(SeqLabError, match=message):
        main(["test", "--config", str(other), "--ckpt_path", str(last)])
