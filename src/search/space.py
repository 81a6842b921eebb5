"""Search spaces declared in YAML over the keys the CLI takes, sampled by an Optuna trial.

A space file holds the metric to optimise, the study settings every trial gets, and the
parameters to search, each keyed by its dotted CLI key::

    metric: val/acc
    direction: maximize
    settings:                       # the same for every trial, e.g. the trial budget
      trainer.max_epochs: 2
    params:
      model.init_args.optimizer.init_args.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      model.init_args.net.init_args.hidden_size: {type: int, low: 64, high: 256, step: 64}
      model.init_args.net.init_args.cell: {type: categorical, choices: [lstm, gru]}
      model.init_args.net.init_args.proj_size:   # only sampled when the cell is an LSTM
        {type: int, low: 0, high: 64, step: 32, when: {model.init_args.net.init_args.cell: lstm}}

``type`` is ``float`` (``low``, ``high``, optional ``log`` or ``step``), ``int`` (``low``,
``high``, optional ``step`` or ``log``) or ``categorical`` (``choices``). ``when`` maps earlier
parameters to a value or a list of values: the parameter is sampled only if they match (Optuna's
define-by-run conditionals). ``grid`` lists the values the grid sampler takes for a float.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from src.errors import SeqLabError

TYPES = {"float": ("low", "high"), "int": ("low", "high"), "categorical": ("choices",)}
OPTIONAL = {"log", "step", "when", "grid", "type"}


class SpaceError(SeqLabError, ValueError):
    """A search space file that cannot be used; the message names the key and the fix."""


@dataclass
class Param:
    """One searched CLI key: its distribution, the condition it depends on, its grid values."""

    key: str
    type: str
    spec: dict[str, Any]
    when: dict[str, list[Any]] = field(default_factory=dict)

    def active(self, values: dict[str, Any]) -> bool:
        """Whether ``when`` holds for the parameters sampled so far."""
        return all(k in values and values[k] in allowed for k, allowed in self.when.items())

    def suggest(self, trial: optuna.Trial) -> Any:
        s = self.spec
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, s["choices"])
        kwargs = {k: s[k] for k in ("step", "log") if k in s}
        if self.type == "int":
            return trial.suggest_int(self.key, int(s["low"]), int(s["high"]), **kwargs)
        return trial.suggest_float(self.key, float(s["low"]), float(s["high"]), **kwargs)

    def grid(self) -> list[Any]:
        """The values the grid sampler visits."""
        s = self.spec
        if "grid" in s:
            return list(s["grid"])
        if self.type == "categorical":
            return list(s["choices"])
        if self.type == "int" and not s.get("log"):
            return list(range(int(s["low"]), int(s["high"]) + 1, int(s.get("step", 1))))
        raise SpaceError(f"{self.key}: the grid sampler needs a list of values; add `grid: [...]`")


@dataclass
class SearchSpace:
    """A parsed space file. Build it with :meth:`load`."""

    metric: str
    direction: str
    params: list[Param]
    settings: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        """Read and check a space file; any problem is a :class:`SpaceError` naming the key."""
        path = Path(path)
        if not path.is_file():
            raise SpaceError(f"search space {path} not found; pass --space configs/search/<x>.yaml")
        raw = yaml.safe_load(path.read_text()) or {}
        unknown = set(raw) - {"metric", "direction", "settings", "params"}
        if unknown:
            raise SpaceError(f"{path}: unknown top-level keys {sorted(unknown)}")
        if "metric" not in raw or not raw.get("params"):
            raise SpaceError(f"{path}: needs `metric:` (e.g. val/acc) and a non-empty `params:`")
        direction = raw.get("direction", "minimize")
        if direction not in ("minimize", "maximize"):
            raise SpaceError(f"{path}: direction must be minimize or maximize, not {direction!r}")
        params: list[Param] = []
        for key, spec in raw["params"].items():
            params.append(_param(path, key, spec, [p.key for p in params]))
        return cls(raw["metric"], direction, params, dict(raw.get("settings") or {}))

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample every active parameter, in file order: ``{cli key: value}``."""
        values: dict[str, Any] = {}
        for param in self.params:
            if param.active(values):
                values[param.key] = param.suggest(trial)
        return values

    def grid(self) -> dict[str, list[Any]]:
        """The grid sampler's search space (conditional parameters cannot be gridded)."""
        for param in self.params:
            if param.when:
                raise SpaceError(
                    f"{param.key}: the grid sampler cannot take a conditional parameter; "
                    "drop its `when:` or use --sampler tpe/random"
                )
        return {p.key: p.grid() for p in self.params}


def _param(path: Path, key: str, spec: Any, earlier: list[str]) -> Param:
    where = f"{path}: params.{key}"
    if not isinstance(spec, dict) or spec.get("type") not in TYPES:
        raise SpaceError(f"{where} needs `type:` float, int or categorical")
    kind = spec["type"]
    missing = [k for k in TYPES[kind] if k not in spec]
    if missing:
        raise SpaceError(f"{where} ({kind}) needs {missing}")
    unknown = set(spec) - OPTIONAL - set(TYPES[kind])
    if unknown:
        raise SpaceError(f"{where}: unknown fields {sorted(unknown)}")
    if kind != "categorical" and not spec["low"] <= spec["high"]:
        raise SpaceError(f"{where}: low {spec['low']} exceeds high {spec['high']}")
    when = spec.get("when") or {}
    for dep, allowed in when.items():
        if dep not in earlier:
            raise SpaceError(f"{where}: `when` names {dep}, which must be a parameter above it")
        when[dep] = allowed if isinstance(allowed, list) else [allowed]
    return Param(key, kind, spec, when)


def cli_args(values: dict[str, Any]) -> list[str]:
    """``{key: value}`` -> ``["--key=value", ...]``: strings as they are, the rest as JSON."""
    return [f"--{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in values.items()]
