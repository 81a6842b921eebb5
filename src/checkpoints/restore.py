"""A checkpoint written by ``fit``, rebuilt from the file alone (no data, no config): the task with
its network, and the datamodule with its preprocessing state (tokenizer, scaler, ...) restored.

``python -m src.checkpoints.restore upgrade --config <run config.yaml> --ckpt_path old.ckpt``
adds that state to a checkpoint written before checkpoints carried it (the data must be at hand
once).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ArgumentParser
from lightning import LightningDataModule, LightningModule
from torch import nn

from src.checkpoints.checksum import CHECKSUM_KEY
from src.checkpoints.files import load_checkpoint, load_error, save_atomic
from src.errors import SeqLabError
from src.tasks.checkpointing import FORMAT, seqlab_entry


class CheckpointError(SeqLabError, ValueError):
    """A checkpoint that cannot be used; the message is one line naming the problem and the fix."""


@dataclass
class Loaded:
    """A rebuilt checkpoint: ``task`` in eval mode on the CPU, ``datamodule`` ready to encode."""

    task: LightningModule
    datamodule: LightningDataModule | None
    path: Path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's tensors and plain values, its checksums checked
    (:func:`src.checkpoints.load_checkpoint`); every failure is one line."""
    return load_checkpoint(path, map_location="cpu")


def _import(path: str, package: str, base: type, what: str) -> type:
    """The class at ``path``, which must live in ``package`` and subclass ``base``.

    Only seqlab's own classes are imported: a checkpoint cannot name arbitrary code to run.
    """
    module, _, name = path.rpartition(".")
    if not module.startswith(package):
        raise CheckpointError(f"the checkpoint's {what} {path!r} is not under {package}")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise CheckpointError(
            f"the checkpoint's {what} {path!r} does not exist in this version"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise CheckpointError(f"the checkpoint's {what} {path!r} is not a {base.__name__}")
    return cls


def _arguments(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that ``cls`` takes, as the CLI resolves its signature (following
    ``**kwargs`` into the parent classes it is passed on to). Recorded arguments can hold more:
    Lightning's private keys, and values of datamodule links whose target the class does not
    take (the CLI skips those links when it builds the class, but records their values)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "cls", fail_untyped=False)
    names = set(vars(parser.get_defaults()["cls"]))
    return {k: v for k, v in values.items() if k in names}


def _upgrade_hint(path: Path) -> str:
    return (
        f"add it with python -m src.checkpoints.restore upgrade --config <the run's config.yaml> "
        f"--ckpt_path {path}"
    )


def restore(path: str | Path) -> Loaded:
    """Rebuild the task, its network and its datamodule from ``path``; see the module doc."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    entry = ckpt.get("seqlab")
    if not isinstance(entry, dict) or not entry.get("net"):
        raise CheckpointError(f"{path} does not record its network; {_upgrade_hint(path)}")
    if entry.get("format", 0) > FORMAT:
        raise CheckpointError(f"{path} was written by a newer seqlab; update this copy")
    task_cls = _import(entry["task"], "src.tasks.", LightningModule, "task")
    net_cls = _import(entry["net"]["class_path"], "src.models.", nn.Module, "network")
    net = net_cls(**_arguments(net_cls, entry["net"]["init_args"]))
    task = task_cls(net=net, **_arguments(task_cls, ckpt.get("hyper_parameters", {})))
    try:
        task.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(
            f"{path}: the weights do not fit the recorded network ({str(e).splitlines()[0]})"
        ) from None
    datamodule = None
    if entry.get("datamodule"):
        dm_cls = _import(entry["datamodule"], "src.data.", LightningDataModule, "datamodule")
        hparams = ckpt.get("datamodule_hyper_parameters", {})
        datamodule = dm_cls(**_arguments(dm_cls, hparams))
        state = ckpt.get(dm_cls.__qualname__)
        if state and hasattr(datamodule, "restore_state"):
            datamodule.restore_state(state)
        elif hasattr(datamodule, "restore_state"):
            raise CheckpointError(
                f"{path} lacks its datamodule's preprocessing state; {_upgrade_hint(path)}"
            )
    return Loaded(task.eval(), datamodule, path)


def upgrade(config: str | Path, ckpt_path: str | Path, output: str | Path) -> Path:
    """Write ``ckpt_path`` plus the network spec and datamodule state to ``output``.

    The task and datamodule are built by the CLI from ``config`` (the ``config.yaml`` of the run,
    or its experiment YAML), which reads the data once; the checkpoint's weights must fit them.
    """
    import yaml

    from src.cli import main

    try:  # an older file may carry no checksum yet: read it as tensors and plain values only
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{ckpt_path} cannot be read safely ({load_error(e)})") from None
    cfg = yaml.safe_load(Path(config).read_text())
    cfg.pop("ckpt_path", None)  # a fit run's config.yaml carries the subcommand's own argument
    cfg.setdefault("trainer", {})["logger"] = False
    cli = main(cfg, run=False)
    try:
        cli.model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(
            f"{ckpt_path} does not fit {config} ({str(e).splitlines()[0]}); pass its own config"
        ) from None
    ckpt["seqlab"] = seqlab_entry(cli.model, cli.datamodule)
    state = cli.datamodule.state_dict()
    if state:
        ckpt[type(cli.datamodule).__qualname__] = state
    output = Path(output)
    save_atomic({k: v for k, v in ckpt.items() if k != CHECKSUM_KEY}, output)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.checkpoints.restore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="add the network spec and preprocessing state")
    up.add_argument("--config", required=True, help="the run's config.yaml or experiment YAML")
    up.add_argument("--ckpt_path", required=True, help="checkpoint written before they existed")
    up.add_argument("--output", help="where to write it (default: <name>-upgraded.ckpt)")
    args = parser.parse_args(argv)
    src = Path(args.ckpt_path)
    output = args.output or src.with_name(f"{src.stem}-upgraded.ckpt")
    try:
        print(upgrade(args.config, src, output))
    except (SeqLabError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
