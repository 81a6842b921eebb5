"""One search trial: the experiment's ``fit`` through the CLI with the trial's values, in its
own run directory, with the pruning callback added."""

from __future__ import annotations

import copy
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml

from src.cli import main
from src.errors import SeqLabError
from src.search.pruning import OptunaPruning
from src.search.space import SearchSpace, cli_args

PRUNING_CLASS = f"{OptunaPruning.__module__}.{OptunaPruning.__qualname__}"


def compose(configs: list[str]) -> dict[str, Any]:
    """The ``--config`` files merged as the CLI merges them: later files win, dicts merge."""

    def merge(into: dict, new: dict) -> dict:
        for key, value in new.items():
            both = isinstance(value, dict) and isinstance(into.get(key), dict)
            into[key] = merge(into[key], value) if both else copy.deepcopy(value)
        return into

    merged: dict[str, Any] = {}
    for config in configs:
        if not Path(config).is_file():
            raise SeqLabError(f"config {config} not found; pass --config configs/<exp>.yaml")
        merge(merged, yaml.safe_load(Path(config).read_text()) or {})
    return merged


def run_dir_args(base: dict[str, Any], run_dir: Path, callbacks: list[dict]) -> list[str]:
    """CLI arguments that put a run's folder (logs, config, checkpoints) under ``run_dir`` and
    append ``callbacks`` (``class_path``/``init_args`` dicts) to the experiment's own."""
    args = [f"--trainer.default_root_dir={run_dir}"]
    if (base.get("checkpoint") or {}).get("dirpath"):  # a fixed folder would be shared
        args.append(f"--checkpoint.dirpath={run_dir / 'checkpoints'}")
    own = (base.get("trainer") or {}).get("callbacks") or []
    return [*args, f"--trainer.callbacks={json.dumps(own + callbacks)}"]


def fit_args(
    configs: list[str], space: SearchSpace, values: dict[str, Any], run_dir: Path, pruning: dict
) -> list[str]:
    """The full ``src.cli`` argument list of a trial."""
    args = ["fit", *(a for c in configs for a in ("--config", c))]
    args += cli_args(space.settings) + cli_args(values)
    return args + run_dir_args(compose(configs), run_dir, [pruning])


def run_trial(
    trial: optuna.Trial,
    configs: list[str],
    space: SearchSpace,
    storage: str,
    study_dir: Path,
    pruner: dict[str, Any],
) -> float:
    """Fit the experiment with this trial's values; the best ``space.metric`` it reached.

    ``pruner`` is the study's pruner as ``{"class_path": ..., "init_args": {...}}``.

    Raises:
        optuna.TrialPruned: when the pruner stopped the run.
    """
    values = space.suggest(trial)
    run_dir = study_dir / f"trial_{trial.number:04d}"
    pruning = {
        "class_path": PRUNING_CLASS,
        "init_args": {
            "storage": storage,
            "study_name": trial.study.study_name,
            "trial_number": trial.number,
            "monitor": space.metric,
            "pruner": pruner,
        },
    }
    args = fit_args(configs, space, values, run_dir, pruning)
    trial.set_user_attr("run_dir", str(run_dir))
    start = time.perf_counter()
    with warnings.catch_warnings():  # the CLI warns that tune's own sys.argv is not its args
        warnings.filterwarnings("ignore", message=".*args parameter is intended")
        cli = main(args)
    trainer = cli.trainer
    trial.set_user_attr("seconds", round(time.perf_counter() - start, 1))
    callback = next(c for c in trainer.callbacks if isinstance(c, OptunaPruning))
    batches = trainer.fit_loop.epoch_loop.batch_progress.total.completed
    per_epoch = trainer.num_training_batches
    if math.isfinite(per_epoch) and per_epoch > 0:
        trial.set_user_attr("epochs", round(batches / per_epoch, 2))
    trial.set_user_attr("validations", len(callback.values))
    if trainer.log_dir is not None:
        trial.set_user_attr("config", str(Path(trainer.log_dir) / "config.yaml"))
    if callback.pruned_at is not None:
        raise optuna.TrialPruned(f"pruned after validation {callback.pruned_at}")
    finite = [v for v in callback.values if math.isfinite(v)]
    if not finite:
        raise RuntimeError(f"trial {trial.number} logged no finite {space.metric}")
    return max(finite) if space.direction == "maximize" else min(finite)
