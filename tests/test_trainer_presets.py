"""Every trainer preset in configs/trainer/ merges with an experiment config and builds its Trainer
here (GPUs swapped for CPU processes); the debug preset's fits repeat bit for bit."""

import os
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.strategies import StrategyRegistry

from src.cli import main

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "configs" / "trainer").glob("*.yaml"))
EXPERIMENT = ROOT / "configs" / "sine_lstm.yaml"
TINY = ["--data.init_args.n_points", "900", "--model.init_args.net.init_args.hidden_size", "8"]

# Trainer argument -> what the built Trainer reports for it.
READ_BACK = {
    "accelerator": lambda t: "cpu" if isinstance(t.accelerator, CPUAccelerator) else "other",
    "devices": lambda t: t.num_devices,
    "num_nodes": lambda t: t.num_nodes,
    "strategy": lambda t: t.strategy,
    "precision": lambda t: t.precision,
    "use_distributed_sampler": lambda t: t._accelerator_connector.use_distributed_sampler,
    "fast_dev_run": lambda t: t.fast_dev_run,
    "deterministic": lambda t: torch.are_deterministic_algorithms_enabled(),
}


def _cpu_overrides(preset: dict) -> dict:
    """What this machine needs changed: GPUs become CPU processes; ``devices: -1`` (all) two."""
    overrides = {}
    if preset.get("accelerator", "cpu") != "cpu":
        overrides["accelerator"] = "cpu"
    if preset.get("devices") == -1:
        overrides["devices"] = 2
    return overrides


@pytest.fixture
def restore_globals(monkeypatch, tmp_path):
    """Building a Trainer sets process-wide flags (deterministic algorithms, cuDNN benchmark)."""
    monkeypatch.chdir(tmp_path)  # the experiment's relative log and checkpoint paths
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic=True sets
    deterministic = torch.are_deterministic_algorithms_enabled()
    benchmark = torch.backends.cudnn.benchmark
    environ = dict(os.environ)
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = benchmark
    os.environ.clear()
    os.environ.update(environ)


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_preset_builds_its_trainer(path, restore_globals):
    preset = yaml.safe_load(path.read_text())["trainer"]
    unknown = sorted(preset.keys() - READ_BACK.keys())
    assert not unknown, (
        f"{path.name}: add how the built Trainer reports {unknown} to READ_BACK in {__file__}"
    )
    overrides = _cpu_overrides(preset)
    args = [arg for key, value in overrides.items() for arg in (f"--trainer.{key}", str(value))]
    cli = main(["--config", str(EXPERIMENT), "--config", str(path), *TINY, *args], run=False)
    parsed = cli.config["trainer"]
    experiment = yaml.safe_load(EXPERIMENT.read_text())["trainer"]
    assert parsed["max_epochs"] == experiment["max_epochs"]  # the experiment's own settings stay
    if not preset.get("fast_dev_run"):  # which runs one epoch
        assert cli.trainer.max_epochs == experiment["max_epochs"]
    assert cli.trainer.gradient_clip_val == experiment["gradient_clip_val"]
    for key, value in preset.items():
        expected = overrides.get(key, value)
        if key not in overrides:
            assert parsed[key] == value, f"{path.name}: trainer.{key} parsed as {parsed[key]!r}"
        built = READ_BACK[key](cli.trainer)
        if key == "strategy":
            assert isinstance(built, StrategyRegistry[value]["strategy"]), f"{path.name}: {key}"
        else:
            assert built == expected, f"{path.name}: Trainer {key} is {built!r}, not {expected!r}"
    if preset.get("strategy") == "ddp":  # datamodules shard their own length-bucketed batches
        assert cli.trainer._accelerator_connector.use_distributed_sampler is False


def test_debug_preset_fits_repeat_bit_for_bit_and_write_nothing(restore_globals, tmp_path):
    preset = str(ROOT / "configs" / "trainer" / "debug.yaml")
    runs = []
    for k in range(2):
        root = tmp_path / f"run{k}"
        args = ["--config", str(EXPERIMENT), "--config", preset, *TINY]
        cli = main(["fit", *args, "--trainer.default_root_dir", str(root)])
        assert cli.trainer.global_step == 1  # one training batch
        assert "val/mse" in cli.trainer.callback_metrics  # and one validation batch
        written = [p.relative_to(root) for p in root.rglob("*") if p.is_file()]
        assert not written, f"the debug preset wrote {written}"  # no logs, no checkpoints
        runs.append((dict(cli.trainer.callback_metrics), cli.model.state_dict()))
    (metrics, weights), (metrics_again, weights_again) = runs
    assert metrics.keys() == metrics_again.keys() and len(metrics) > 5
    for name, value in metrics.items():
        assert torch.equal(value, metrics_again[name]), name
    for name, value in weights.items():
        assert torch.equal(value, weights_again[name]), name
