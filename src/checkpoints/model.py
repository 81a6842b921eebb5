"""Whether a checkpoint fits the model a config builds: the same task class and the same weight
names and shapes, else a one-line error saying which settings differ."""

from pathlib import Path
from typing import Any

import yaml
from torch import nn

from src.errors import SeqLabError


def _name(class_path: str) -> str:
    return class_path.rsplit(".", 1)[-1]


def _a(name: str) -> str:
    return f"{'an' if name[:1] in 'AEIOU' else 'a'} {name}"


def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"net": "RNNForecaster", "net.hidden_size": 128, ...}`` from a model config."""
    if not isinstance(config, dict):
        return {}
    out: dict[str, Any] = {}
    if "class_path" in config and prefix:
        out[prefix.rstrip(".")] = _name(str(config["class_path"]))
    args = config.get("init_args", config if "class_path" not in config else {})
    for key, value in (args or {}).items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _trained_with(path: Path) -> dict | None:
    """The model config of the run that wrote ``path`` (``<run>/checkpoints/x.ckpt`` next to
    ``<run>/config.yaml``), if it is there."""
    config = path.resolve().parent.parent / "config.yaml"
    if path.resolve().parent.name != "checkpoints" or not config.is_file():
        return None
    try:
        return (yaml.safe_load(config.read_text()) or {}).get("model")
    except yaml.YAMLError:
        return None


def _settings_apart(saved: dict, built: dict) -> tuple[str, str]:
    """The architecture settings that differ, as ``"hidden_size 128"`` / ``"hidden_size 8"``."""
    a, b = _flat(saved), _flat(built)
    training = ("optimizer", "scheduler")  # not architecture: they never change a weight's shape
    keys = [k for k in a if k in b and a[k] != b[k] and not k.startswith(training)]
    short = {k: k.rsplit(".", 1)[-1] for k in keys}
    return (
        ", ".join(f"{short[k]} {a[k]}" for k in keys),
        ", ".join(f"{short[k]} {b[k]}" for k in keys),
    )


def _fix(path: Path, trained: dict | None) -> str:
    hint = f" ({path.resolve().parent.parent / 'config.yaml'})" if trained else ""
    return f"give the config it was trained with{hint} or a checkpoint of this model"


def check_task(checkpoint: dict, class_path: str, path: str | Path) -> None:
    """Raise a one-line :class:`SeqLabError` if ``checkpoint`` holds another task class than
    ``class_path`` (the config's ``model.class_path``)."""
    saved = (checkpoint.get("hyper_parameters") or {}).get("_class_path")
    if saved and _name(saved) != _name(class_path):
        path, theirs, ours = Path(path), _a(_name(saved)), _a(_name(class_path))
        raise SeqLabError(
            f"checkpoint {path} holds {theirs}; the config builds {ours}: "
            + _fix(path, _trained_with(path))
        )


def check_model(model: nn.Module, checkpoint: dict, path: str | Path, built: dict | None) -> None:
    """Raise a one-line :class:`SeqLabError` unless ``checkpoint`` holds weights for ``model``.

    Args:
        model: the LightningModule the config builds.
        checkpoint: the loaded checkpoint.
        path: where it was read from (a run's ``config.yaml`` next to it names the settings).
        built: the model's config (``class_path`` / ``init_args``), to name differing settings.
    """
    path = Path(path)
    task = type(model).__name__
    check_task(checkpoint, task, path)
    trained = _trained_with(path)
    saved, own = checkpoint["state_dict"], model.state_dict()
    wrong = [k for k in own if k in saved and tuple(saved[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in saved]
    extra = [k for k in saved if k not in own]
    if not (wrong or missing or extra):
        return
    fix = _fix(path, trained)
    if trained is not None and built is not None:
        theirs, ours = _settings_apart(trained, built)
        if theirs:
            raise SeqLabError(
                f"checkpoint {path} holds {_a(task)} with {theirs}; the config builds one with "
                f"{ours}: {fix}"
            )
    if wrong:
        key = wrong[0]
        raise SeqLabError(
            f"checkpoint {path} holds {_a(task)} whose {key} has shape "
            f"{tuple(saved[key].shape)}; the config builds {tuple(own[key].shape)}: {fix}"
        )
    detail = f"lacks {missing[0]}" if missing else f"has {extra[0]}, which the model lacks"
    raise SeqLabError(
        f"checkpoint {path} holds {_a(task)} whose weights differ from the config's model "
        f"({len(missing)} missing, {len(extra)} extra; it {detail}): {fix}"
    )
