"""A study's results: the trial table (CSV + Markdown), Optuna's plots (PNG files and a
TensorBoard event file) and ``best.yaml``, the best trial's config ready for ``src.cli fit``."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import optuna
import yaml
from optuna.trial import TrialState

from src.search.trial import PRUNING_CLASS, compose

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
from optuna.visualization import matplotlib as vis  # noqa: E402

COLUMNS = ["trial", "state", "value", "epochs", "seconds"]


def short_names(keys: list[str]) -> dict[str, str]:
    """``model.init_args.net.init_args.hidden_size`` -> ``hidden_size`` (longer if ambiguous)."""
    parts = {k: [p for p in k.split(".") if p != "init_args"] for k in keys}
    for depth in range(1, max((len(p) for p in parts.values()), default=1) + 1):
        names = {k: ".".join(p[-depth:]) for k, p in parts.items()}
        if len(set(names.values())) == len(names):
            return names
    return {k: k for k in keys}


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: number, state, metric value, epochs trained, seconds, parameters."""
    trials = study.get_trials(deepcopy=False)
    names = short_names(sorted({k for t in trials for k in t.params}))
    rows = []
    for t in trials:
        row = {"trial": t.number, "state": t.state.name, "value": t.value}
        row |= {c: t.user_attrs.get(c) for c in ("epochs", "seconds")}
        row |= {names[k]: v for k, v in t.params.items()}
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def write_table(study: optuna.Study, out_dir: Path) -> list[dict[str, Any]]:
    """``trials.csv`` and ``trials.md`` in ``out_dir``; returns the rows."""
    rows = trial_rows(study)
    columns = list(dict.fromkeys(COLUMNS + [k for r in rows for k in r]))
    with open(out_dir / "trials.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    cost = pruning_cost(study)
    if cost["full_steps"]:
        lines += [
            "",
            f"Pruning: {cost['steps']} of {cost['full_steps']} validation steps trained, "
            f"{cost['seconds']:.0f} s of an estimated {cost['full_seconds']:.0f} s for the same "
            f"trials run to the end ({100 * cost['saved']:.0f} % saved).",
        ]
    (out_dir / "trials.md").write_text("\n".join(lines) + "\n")
    return rows


def pruning_cost(study: optuna.Study) -> dict[str, Any]:
    """Validation steps and seconds the finished trials took, against the same trials run to
    the end: a full trial has as many steps as the longest complete one, and a pruned trial's
    missing steps are priced at its own mean seconds per step (``step_seconds``)."""
    done = (TrialState.COMPLETE, TrialState.PRUNED)
    trials = [t for t in study.get_trials(False, states=done) if t.user_attrs.get("step_seconds")]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    full = max((len(t.user_attrs["step_seconds"]) for t in complete), default=0)
    cost = {"steps": 0, "full_steps": 0, "seconds": 0.0, "full_seconds": 0.0}
    for t in trials:
        seconds = t.user_attrs["step_seconds"]
        whole = max(full, len(seconds)) if t.state == TrialState.PRUNED else len(seconds)
        cost["steps"] += len(seconds)
        cost["full_steps"] += whole
        cost["seconds"] += seconds[-1]
        cost["full_seconds"] += seconds[-1] / len(seconds) * whole
    cost["saved"] = 1 - cost["seconds"] / cost["full_seconds"] if cost["full_seconds"] else 0.0
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in cost.items()}


def write_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """History, intermediate values and (with two finished trials) parameter importances, as PNG
    files in ``out_dir`` and as figures in ``out_dir/tensorboard``."""
    from torch.utils.tensorboard import SummaryWriter

    plots = {"history": vis.plot_optimization_history, "intermediate": vis.plot_intermediate_values}
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    keys = done[0].params if done else {}
    varied = any(len({str(t.params.get(k)) for t in done}) > 1 for k in keys)
    if len(done) >= 2 and varied:
        plots["importance"] = vis.plot_param_importances
    written = []
    for old in (out_dir / "tensorboard").glob("events.out.tfevents.*"):
        old.unlink()  # an earlier report's figures (every worker writes one at its end)
    with SummaryWriter(str(out_dir / "tensorboard")) as writer:
        for name, plot in plots.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                figure = plot(study).figure
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            path = out_dir / f"{name}.png"
            figure.savefig(path, dpi=100)
            written.append(path)
            writer.add_figure(f"search/{name}", figure, close=True)
    plt.close("all")
    return written


def best_config(study: optuna.Study, configs: list[str]) -> dict[str, Any]:
    """The best trial's saved config without the pruning callback and without its run folder
    (root directory, logger folder and version, checkpoint folder), which the CLI then chooses
    as for any experiment: ``fit`` trains it as is."""
    saved = yaml.safe_load(Path(study.best_trial.user_attrs["config"]).read_text())
    base = compose(configs)
    trainer = saved.setdefault("trainer", {})
    for key in ("default_root_dir", "logger"):  # back to the experiment's, or the CLI default
        trainer.pop(key, None)
        if key in (base.get("trainer") or {}):
            trainer[key] = base["trainer"][key]
    callbacks = [c for c in trainer.get("callbacks") or [] if c.get("class_path") != PRUNING_CLASS]
    trainer["callbacks"] = callbacks or None
    if isinstance(saved.get("checkpoint"), dict):
        saved["checkpoint"]["dirpath"] = (base.get("checkpoint") or {}).get("dirpath")
    return saved


def write_best(study: optuna.Study, configs: list[str], out_dir: Path) -> Path | None:
    """``best.yaml`` with a header naming the study, the trial and its value."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial
    metric = study.user_attrs.get("metric", "value")
    header = [
        f"# Best trial of study {study.study_name!r}: trial {best.number}, {metric} = "
        f"{best.value:.6g} (best validation of the run).",
        f"# python -m src.cli fit --config {out_dir / 'best.yaml'}",
        *(f"#   {k}: {v}" for k, v in best.params.items()),
    ]
    path = out_dir / "best.yaml"
    body = yaml.safe_dump(best_config(study, configs), sort_keys=False)
    path.write_text("\n".join(header) + "\n" + body)
    return path


def write_report(study: optuna.Study, configs: list[str], out_dir: Path) -> dict[str, Any]:
    """Table, plots and ``best.yaml`` in ``out_dir``; a summary dict of what is there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = write_table(study, out_dir)
    plots = write_plots(study, out_dir)
    best = write_best(study, configs, out_dir)
    states = [r["state"] for r in rows]
    return {
        "trials": len(rows),
        **{s.lower(): states.count(s) for s in ("COMPLETE", "PRUNED", "FAIL")},
        "saved": pruning_cost(study)["saved"],
        "plots": [p.name for p in plots],
        "best": str(best) if best else None,
    }
