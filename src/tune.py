"""Hyperparameter search with Optuna (Akiba et al. 2019): grid, random or TPE sampling (Bergstra
et al. 2011), median or Hyperband pruning (Li et al. 2018), every trial a ``src.cli fit`` run.

``python -m src.tune --config configs/imdb_bilstm.yaml --space configs/search/imdb_bilstm.yaml
--trials 16``. Start the same command in several processes (or on several machines that share a
database) to run one study in parallel; start it again after a crash to continue the study.
"""

from __future__ import annotations

import argparse
import importlib
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from src.errors import exit_on_error
from src.run_dirs import ROOT_DIR
from src.search.report import write_report
from src.search.space import SearchSpace, SpaceError
from src.search.storage import open_storage
from src.search.trial import compose, run_trial

# trials that count towards --trials; failed ones do not (a failed trial is queued again)
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


def _resource(value: str) -> int | str:
    """``auto`` or a positive number of validation steps."""
    if value != "auto" and not (value.isdigit() and int(value) > 0):
        raise argparse.ArgumentTypeError(f"{value!r}: give a number of steps or auto")
    return value if value == "auto" else int(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m src.tune", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", action="append", required=True, help="experiment YAML (repeatable)")
    p.add_argument("--space", required=True, help="search space YAML (configs/search/)")
    p.add_argument("--trials", type=int, help="trials in the study (default: grid size, or 20)")
    p.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe")
    p.add_argument("--startup-trials", type=int, default=10, help="TPE's random trials first")
    p.add_argument("--seed", type=int, help="sampler seed (give each worker its own)")
    p.add_argument("--pruner", choices=("hyperband", "median", "none"), default="hyperband")
    p.add_argument("--min-resource", type=int, default=1, help="Hyperband: first rung (steps)")
    p.add_argument("--max-resource", type=_resource, default="auto", help="Hyperband: full trial")
    p.add_argument("--reduction-factor", type=int, default=3, help="Hyperband: keep 1 in this")
    p.add_argument("--warmup-steps", type=int, default=1, help="median: never prune before")
    p.add_argument("--study-name", help="default: the space file's name")
    p.add_argument("--study-dir", help="trial runs and report (lightning_logs/search/<study>)")
    p.add_argument("--storage", help="sqlite:///x.db or a journal file (default <study-dir>)")
    p.add_argument("--heartbeat", type=int, default=60, help="seconds; 0 turns heartbeats off")
    p.add_argument("--report-only", action="store_true", help="write the report and exit")
    return p.parse_args(argv)


def make_sampler(args: argparse.Namespace, space: SearchSpace) -> optuna.samplers.BaseSampler:
    if args.sampler == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=args.seed)
    if args.sampler == "random":
        return optuna.samplers.RandomSampler(seed=args.seed)
    return optuna.samplers.TPESampler(n_startup_trials=args.startup_trials, seed=args.seed)


def pruner_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The pruner as ``class_path``/``init_args``: the trials' pruning callbacks build it too."""
    if args.pruner == "hyperband":
        kwargs = {"min_resource": args.min_resource, "max_resource": args.max_resource}
        name, kwargs = "HyperbandPruner", kwargs | {"reduction_factor": args.reduction_factor}
    elif args.pruner == "median":
        name, kwargs = "MedianPruner", {"n_warmup_steps": args.warmup_steps}
    else:
        name, kwargs = "NopPruner", {}
    return {"class_path": f"optuna.pruners.{name}", "init_args": kwargs}


def build(spec: dict[str, Any]) -> Any:
    """Instantiate a ``class_path``/``init_args`` dict."""
    module, name = spec["class_path"].rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**spec.get("init_args", {}))


def open_study(args: argparse.Namespace, space: SearchSpace, pruner: dict) -> optuna.Study:
    """Create the study, or load it when it exists and was made by the same search."""
    storage = open_storage(args.storage, args.heartbeat or None)
    study = optuna.create_study(
        storage=storage,
        study_name=args.study_name,
        sampler=make_sampler(args, space),
        pruner=build(pruner),
        direction=space.direction,
        load_if_exists=True,
    )
    search = {"configs": args.config, "space": str(args.space), "metric": space.metric}
    if not study.user_attrs:
        for key, value in search.items():
            study.set_user_attr(key, value)
    elif {k: study.user_attrs.get(k) for k in search} != search:
        raise SpaceError(
            f"study {args.study_name!r} in {args.storage} was made by {study.user_attrs}, not "
            f"{search}; pass another --study-name or the same --config/--space"
        )
    return study


def _work_left(study: optuna.Study, trials: int) -> bool:
    """Whether a trial is queued or the study holds fewer than ``trials``; first marks the
    trials of killed workers (stale heartbeats) failed, which queues them again."""
    optuna.storages.fail_stale_trials(study)
    if study.get_trials(False, states=(TrialState.WAITING,)):
        return True
    return len(study.get_trials(False, states=COUNTED)) < trials


def run(args: argparse.Namespace, pruner: dict[str, Any] | None = None) -> dict:
    """Run trials until the study holds ``args.trials`` of them, then write the report.

    ``pruner`` (``class_path``/``init_args``) replaces the one ``args`` names.
    """
    pruner = pruner or pruner_spec(args)
    space = SearchSpace.load(args.space)
    compose(args.config)  # a missing config file stops here, before the study records a trial
    args.study_name = args.study_name or Path(args.space).stem
    study_dir = Path(args.study_dir or Path(ROOT_DIR) / "search" / args.study_name)
    args.storage = args.storage or f"sqlite:///{study_dir / 'study.db'}"
    if args.trials is None:
        grid = space.grid() if args.sampler == "grid" else {}
        args.trials = 1 if grid else 20
        for values in grid.values():
            args.trials *= len(values)
    study = open_study(args, space, pruner)
    objective = partial(
        run_trial,
        configs=args.config,
        space=space,
        storage=args.storage,
        study_dir=study_dir,
        pruner=pruner,
    )
    while not args.report_only and _work_left(study, args.trials):
        study.optimize(objective, n_trials=1)
    return write_report(study, args.config, study_dir)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats and stale-trial checks are marked experimental; they are what makes resuming work
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    summary = run(args)
    print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return summary


if __name__ == "__main__":
    exit_on_error(main)
