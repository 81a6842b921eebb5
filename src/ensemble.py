"""Evaluate an ensemble of text classifiers on a labelled split: the average of their class
probabilities, as ULMFiT averages a forward and a backward classifier (Howard & Ruder 2018).

    python -m src.ensemble --ckpt_path FORWARD.ckpt --ckpt_path BACKWARD.ckpt --split test
    python -m src.ensemble --ckpt_path lightning_logs/imdb_finetune \
        --ckpt_path lightning_logs/imdb_finetune_backward   # each newest run's best checkpoint

Each checkpoint is rebuilt with its own tokenizer and preprocessing (a backward model reads its
reviews reversed); the members must hold the same reviews with the same labels. Prints each
member's accuracy and AUROC and the ensemble's; ``--output`` also writes them as JSON. Errors
are one line on standard error and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_auroc

from src.checkpoints.restore import Loaded, restore
from src.data.collate import pad_collate
from src.errors import SeqLabError
from src.predict.base import length_batches
from src.run_dirs import best_checkpoint
from src.runtime import apply_cpu_settings

SPLIT_KEYS = ("data", "val_size", "seed")  # the data settings that decide a split's reviews


class EnsembleError(SeqLabError, ValueError):
    """Members that cannot be ensembled; the message names the problem and the fix."""


def split_settings(member: Loaded) -> dict[str, Any]:
    """The settings that decide which reviews the member's splits hold (from its datamodule's
    vocabulary fingerprint; empty when it has none)."""
    fingerprint = getattr(member.datamodule, "vocabulary_fingerprint", None) or {}
    settings = fingerprint.get("settings", {})
    return {k: settings[k] for k in SPLIT_KEYS if k in settings}


def set_up(member: Loaded, data_dir: str | None = None) -> None:
    """Load the member's labelled data (from ``data_dir`` when given)."""
    dm = member.datamodule
    if dm is None or not hasattr(dm, "datasets"):
        raise EnsembleError(f"{member.path} is not a text classifier with a labelled datamodule")
    if data_dir is not None:
        dm.data_dir = data_dir
    dm.setup("test")


def member_probs(member: Loaded, split: str, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One set-up checkpoint's class probabilities ``(R, K)`` on ``split`` in dataset order, and
    the labels ``(R,)``."""
    dm = member.datamodule
    dataset = dm.datasets.get(split)
    if dataset is None or dataset.labels is None or len(dataset) == 0:
        raise EnsembleError(f"{member.path}: its datamodule has no labelled {split!r} reviews")
    probs = torch.empty(len(dataset), member.task.hparams.num_classes)
    with torch.inference_mode():
        for indices in length_batches(dataset.lengths, batch_size):
            batch = pad_collate([dataset[int(i)] for i in indices])
            logits = member.task(batch["tokens"], batch["lengths"])
            probs[torch.as_tensor(indices)] = logits.softmax(-1)
    return probs, torch.as_tensor(dataset.labels)


def scores(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy and AUROC (macro over classes) of probabilities ``(R, K)`` against ``(R,)``."""
    k = probs.shape[1]
    acc = multiclass_accuracy(probs, labels, k, average="micro")
    return {"acc": float(acc), "auroc": float(multiclass_auroc(probs, labels, k))}


def evaluate(
    ckpt_paths: list[str], split: str = "test", batch_size: int = 64, data_dir: str | None = None
) -> dict[str, Any]:
    """Scores of every member and of the mean of their probabilities on ``split``."""
    if len(ckpt_paths) < 2:
        raise EnsembleError("an ensemble needs at least two --ckpt_path")
    members, labels, first = [], None, None
    for path in ckpt_paths:
        path = best_checkpoint(Path(path)) if Path(path).is_dir() else path
        member = restore(path)
        set_up(member, data_dir)
        settings = split_settings(member)  # checked before the member's slow inference
        first = settings if first is None else first
        if settings != first:
            differ = ", ".join(f"{k} {first.get(k)} vs {settings.get(k)}" for k in SPLIT_KEYS)
            raise EnsembleError(
                f"{path} was trained on another split than {ckpt_paths[0]} ({differ}); "
                "ensemble models trained on the same data, val_size and seed"
            )
        probs, member_labels = member_probs(member, split, batch_size)
        if labels is not None and not torch.equal(labels, member_labels):
            raise EnsembleError(
                f"{path} holds other {split!r} reviews than {ckpt_paths[0]} (labels differ); "
                "ensemble models trained on the same split (data, val_size, seed)"
            )
        labels = member_labels
        members.append({"ckpt_path": str(path), **scores(probs, labels), "probs": probs})
    mean = torch.stack([m.pop("probs") for m in members]).mean(0)
    return {"split": split, "reviews": len(labels), "members": members, **scores(mean, labels)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m src.ensemble", description=__doc__.split("\n")[0])
    p.add_argument(
        "--ckpt_path",
        action="append",
        required=True,
        help="a member: a checkpoint, or an experiment's run folder (its newest run's best "
        "checkpoint); repeat it",
    )
    p.add_argument("--split", choices=["val", "test"], default="test")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--data_dir", help="the data, if not where the checkpoints were trained")
    p.add_argument("--output", type=Path, help="also write the scores as JSON")
    args = p.parse_args(argv)
    apply_cpu_settings()
    try:
        result = evaluate(args.ckpt_path, args.split, args.batch_size, args.data_dir)
    except (SeqLabError, ValueError, FileNotFoundError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
    for m in result["members"]:
        print(f"{m['ckpt_path']}: acc {m['acc']:.4f} auroc {m['auroc']:.4f}")
    n = len(result["members"])
    print(
        f"ensemble of {n} on {result['reviews']} {args.split} reviews: "
        f"acc {result['acc']:.4f} auroc {result['auroc']:.4f}"
    )
    if args.output:
        args.output.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
