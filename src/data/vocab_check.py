"""Vocabulary fingerprints: saved in checkpoints by the text datamodules and compared when a
checkpoint is loaded, so a model never reads token ids through a vocabulary it was not trained
with (the same size is not enough: another data seed keeps the size and moves every id)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from src.data.errors import DataError


def short_hash(obj: Any) -> str:
    """16 hex digits of the SHA-256 of ``obj``'s canonical JSON."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def tokenizer_tokens(tokenizer: Any) -> list[str]:
    """A Hugging Face tokenizer's tokens by id."""
    return [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]


def fingerprint(vocabularies: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, Any]:
    """``{"sha256", "sizes", "settings"}``: the hash of every vocabulary (tokens by id), their
    sizes, and the data settings that built them (named in the error when two differ)."""
    return {
        "sha256": short_hash(vocabularies),
        "sizes": {name: len(tokens) for name, tokens in vocabularies.items()},
        "settings": settings,
    }


def _describe(print_: dict[str, Any]) -> str:
    sizes = ", ".join(f"{n} {name}" for name, n in print_.get("sizes", {}).items())
    return f"{sizes}, hash {print_['sha256']}"


def check_vocabulary(
    saved: dict[str, Any] | None, current: dict[str, Any], source: str = "the checkpoint"
) -> None:
    """Raise a one-line :class:`DataError` when ``saved`` (from a checkpoint) and ``current``
    (this run's data) fingerprint different vocabularies; nothing to compare passes.

    The message names the data settings that differ, whose training values rebuild the
    training vocabulary.
    """
    if not saved or "sha256" not in saved or saved["sha256"] == current["sha256"]:
        return
    old, new = saved.get("settings", {}), current.get("settings", {})
    differ = [
        f"{k}={old.get(k)!r} in training, {new.get(k)!r} now"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]
    why = "; ".join(differ) if differ else "same settings, so the data differs"
    raise DataError(
        f"{source} was trained with another vocabulary ({_describe(saved)}) than this data "
        f"builds ({_describe(current)}), so token ids would mean other tokens ({why}); "
        "use the training run's data and data settings, or retrain"
    )


def check_checkpoint_vocabulary(checkpoint: dict[str, Any], datamodule: Any) -> None:
    """:func:`check_vocabulary` for a loaded checkpoint dict and a datamodule that exposes
    ``vocabulary_fingerprint``; for code that reads checkpoints outside ``Trainer`` (or before
    the weights are loaded, e.g. from a task's ``on_load_checkpoint``)."""
    state = checkpoint.get(type(datamodule).__qualname__) or {}
    check_vocabulary(state.get("vocabulary"), datamodule.vocabulary_fingerprint)
