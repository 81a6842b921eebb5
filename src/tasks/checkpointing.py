"""What a task adds to its checkpoints so that :mod:`src.checkpoints.restore` can rebuild it from
the file alone: the task's class path and its network's class path and constructor arguments."""

from __future__ import annotations

import copy
import json
from typing import Any

from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from torch import nn

FORMAT = 1  # version of the ``checkpoint["seqlab"]`` entry


def class_path(obj: Any) -> str:
    """``module.QualName`` of an object's class (or of a class)."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _plain(value: Any) -> bool:
    """True when ``value`` is JSON data (what ``torch.load(weights_only=True)`` reads back)."""
    try:
        return json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False


def net_spec(net: nn.Module) -> dict[str, Any] | None:
    """The network's ``{"class_path", "init_args"}`` as plain data, or None when unknown.

    Known when the task is built by LightningCLI (the config it instantiates the task from holds
    the network's class path and arguments, sizes linked from the datamodule included: Lightning
    hands it to ``save_hyperparameters``), or when the network keeps its own constructor arguments
    in a ``config`` dict (:class:`~src.models.char_rnn.CharRNN`).
    """
    given = _given_hyperparameters.get() or {}
    spec = given.get("net")
    if isinstance(spec, dict) and spec.get("class_path") == class_path(net):
        init_args = {**spec.get("init_args", {}), **spec.get("dict_kwargs", {})}
        spec = {"class_path": spec["class_path"], "init_args": copy.deepcopy(init_args)}
    elif isinstance(getattr(net, "config", None), dict):
        spec = {"class_path": class_path(net), "init_args": dict(net.config)}
    else:
        return None
    return spec if _plain(spec) else None


def seqlab_entry(task: Any, datamodule: Any) -> dict[str, Any]:
    """``checkpoint["seqlab"]``: the class paths of the task, its network and its datamodule, and
    the network's constructor arguments (see :func:`net_spec`)."""
    return {
        "format": FORMAT,
        "task": class_path(task),
        "net": getattr(task, "_net_spec", None),
        "datamodule": None if datamodule is None else class_path(datamodule),
    }


class SelfContained:
    """Task mixin: checkpoints carry :func:`seqlab_entry` under ``checkpoint["seqlab"]``.

    Call :meth:`keep_net_spec` in ``__init__``. The task's own arguments are Lightning's
    ``hyper_parameters``; the datamodule's preprocessing state (tokenizer, scaler, ...) is its
    ``state_dict``, which Lightning stores under the datamodule's class name.
    """

    def keep_net_spec(self, net: nn.Module) -> None:
        self._net_spec = net_spec(net)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        datamodule = getattr(self._trainer, "datamodule", None)
        checkpoint["seqlab"] = seqlab_entry(self, datamodule)
