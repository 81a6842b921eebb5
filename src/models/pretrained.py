"""Initialise a classifier from a pretrained language model's embedding and recurrent layers
(LM-LSTM of Dai & Le 2015; ULMFiT, Howard & Ruder 2018)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from tokenizers import Tokenizer
from torch import nn

from src.errors import SeqLabError

Part = Literal["embedding", "encoder"]
PARTS: tuple[Part, ...] = ("embedding", "encoder")


def _differences(mine: dict[str, int], theirs: dict[str, int]) -> str:
    changed = sorted(set(mine.items()) ^ set(theirs.items()), key=lambda kv: kv[1])
    return ", ".join(f"{t!r}" for t, _ in changed[:5])


def check_vocabulary(checkpoint: dict, vocab: dict[str, int], path: str | Path) -> None:
    """Raise unless the checkpoint's tokenizer has exactly ``vocab`` (token -> id)."""
    if "tokenizer" not in checkpoint:
        raise SeqLabError(
            f"{path} stores no tokenizer, so its vocabulary cannot be checked; train the LM with "
            "src.data.imdb.lm.IMDBLMDataModule (configs/imdb_lm.yaml)"
        )
    theirs = Tokenizer.from_str(checkpoint["tokenizer"]).get_vocab()
    if theirs != vocab:
        raise SeqLabError(
            f"{path} was trained on another vocabulary ({len(theirs)} tokens, the classifier's "
            f"{len(vocab)}; differing: {_differences(vocab, theirs)}): give both stages the same "
            "data_dir, tokenizer, max_size, min_freq, val_size and seed"
        )


def load_language_model(
    net: nn.Module,
    path: str | Path,
    parts: list[Part] | tuple[Part, ...] = PARTS,
    vocab: dict[str, int] | None = None,
) -> list[str]:
    """Copy a language-model checkpoint's ``embedding`` and/or ``encoder`` weights into ``net``.

    ``path`` is a Lightning checkpoint of a :class:`~src.tasks.language_model.LanguageModelTask`
    whose net has ``embedding`` and ``encoder`` modules (e.g.
    :class:`~src.models.word_lm.WordLM`); ``net`` has the same names (e.g.
    :class:`~src.models.classifier.RNNClassifier`). Every tensor is copied as is, so the shapes
    must match: the same vocabulary, ``embedding_dim``, ``cell``, ``hidden_size`` and
    ``num_layers``. A bidirectional ``net`` takes the LM's weights for its forward direction
    (one layer only: deeper layers read both directions); its backward direction keeps its
    initialisation. A learned initial state of ``net`` is kept too.

    Args:
        net: The network to initialise, in place.
        path: The language model's checkpoint.
        parts: Which modules to copy: ``"embedding"``, ``"encoder"`` or both.
        vocab: The classifier's vocabulary (token -> id); checked against the tokenizer the
            checkpoint stores when given.

    Returns:
        The names of the copied tensors in ``net``.

    Raises:
        SeqLabError: a missing file, another vocabulary, or a tensor whose shape differs (the
            message names the sizes to use).
    """
    path = Path(path)
    if not path.is_file():
        raise SeqLabError(f"language-model checkpoint {path} not found; train it first")
    unknown = set(parts) - set(PARTS)
    if unknown or not parts:
        raise SeqLabError(f"parts must be a non-empty subset of {list(PARTS)}, got {list(parts)}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if vocab is not None:
        check_vocabulary(checkpoint, vocab, path)
    source = {
        k.removeprefix("net."): v
        for k, v in checkpoint.get("state_dict", {}).items()
        if k.startswith(tuple(f"net.{p}." for p in parts))
    }
    target = {
        k: v for k, v in net.state_dict().items() if k.startswith(tuple(f"{p}." for p in parts))
    }
    config = checkpoint.get("net_config", {})
    hint = {
        k: config[k] for k in ("embedding_dim", "hidden_size", "num_layers", "cell") if k in config
    }
    for name in target:
        if name.endswith("_reverse") or name.split(".")[-1] in ("h0", "c0"):
            continue  # no language model for them: they keep their initialisation
        if name not in source:
            raise SeqLabError(
                f"{path} has no {name!r} for the classifier; build it like the LM: {hint}"
            )
    for name, value in source.items():
        if name not in target:
            raise SeqLabError(
                f"the classifier has no {name!r} for {path}'s weights; build it like the LM: {hint}"
            )
        if value.shape != target[name].shape:
            raise SeqLabError(
                f"{path}: {name} has shape {tuple(value.shape)}, the classifier's "
                f"{tuple(target[name].shape)}; build the classifier like the LM: {hint}"
            )
    missing = net.load_state_dict(source, strict=False)
    assert not missing.unexpected_keys, missing.unexpected_keys
    return sorted(source)
