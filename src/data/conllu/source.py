"""CoNLL-U reading (Universal Dependencies, Nivre et al. 2016), vocabularies, id arrays, batches."""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import conllu
import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from src.data.errors import DataError, DataNotFoundError, read_error

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
IGNORE_INDEX = -100  # tag id at padded positions, skipped by the loss and the metrics

Sentence = tuple[list[str], list[str]]  # (word forms, UPOS tags)


def read_conllu(path: str | Path) -> list[Sentence]:
    """Words (column 2) and UPOS tags (column 4) of every sentence of a CoNLL-U file.

    Comment lines, multi-word token lines (ID ``3-4``) and empty nodes (ID ``8.1``) are skipped,
    so words and tags stay aligned one to one. ``.gz`` files are read through gzip. A missing
    file, bytes that are not UTF-8, or a malformed token line raise a one-line
    :class:`~src.data.errors.DataError`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"CoNLL-U file {path} not found; set data_dir (or the file names)")
    opener = gzip.open if path.suffix == ".gz" else open
    sentences: list[Sentence] = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for k, tokens in enumerate(conllu.parse_incr(f)):
                words = [t for t in tokens if isinstance(t["id"], int)]  # no MWT, no empty node
                bad = next((t for t in words if t.get("upos") in (None, "_")), None)
                if bad is not None:
                    raise DataError(
                        f"{path}: sentence {k + 1}, token {bad['id']} ({bad.get('form')!r}) has "
                        "no UPOS tag; expected 10 tab-separated CoNLL-U columns"
                    )
                if words:
                    sentences.append(([t["form"] for t in words], [t["upos"] for t in words]))
    except conllu.exceptions.ParseException as e:
        raise DataError(f"{path} is not valid CoNLL-U: {' '.join(str(e).split())}") from None
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as e:
        raise read_error(path, e) from None
    if not sentences:
        raise DataError(f"{path} holds no sentences: an empty split")
    return sentences


def build_vocab(counts: Counter, min_freq: int = 1, max_size: int | None = None) -> list[str]:
    """``[<pad>, <unk>, ...]`` then the items seen ``min_freq`` times, most frequent first."""
    kept = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
    items = [PAD, UNK, *kept]
    return items if max_size is None else items[:max_size]


def clip_word(word: str, max_len: int) -> str:
    """A word longer than ``max_len`` keeps its first and last characters (prefix + suffix)."""
    if len(word) <= max_len:
        return word
    head = (max_len + 1) // 2
    return word[:head] + word[len(word) - (max_len - head) :]


def encode(
    sentences: Sequence[Sentence], vocab: dict[str, Any], lowercase: bool, max_word_len: int
) -> dict[str, np.ndarray]:
    """Sentences -> flat id arrays: ``words``/``tags`` ``(T,)``, ``offsets`` ``(S + 1,)`` into
    them, ``chars`` ``(C,)`` with ``char_offsets`` ``(T + 1,)``. Unknown words and characters
    map to ``<unk>``; an unknown tag raises :class:`~src.data.errors.DataError`.
    """
    w2i = {w: i for i, w in enumerate(vocab["words"])}
    c2i = {c: i for i, c in enumerate(vocab["chars"])}
    t2i = {t: i for i, t in enumerate(vocab["tags"])}
    words, tags, chars, char_offsets, offsets = [], [], [], [0], [0]
    for forms, upos in sentences:
        for form, tag in zip(forms, upos, strict=True):
            if tag not in t2i:
                raise DataError(f"tag {tag!r} (word {form!r}) is absent from the training data")
            words.append(w2i.get(form.lower() if lowercase else form, UNK_ID))
            tags.append(t2i[tag])
            chars.extend(c2i.get(c, UNK_ID) for c in clip_word(form, max_word_len))
            char_offsets.append(len(chars))
        offsets.append(len(words))
    arrays = {"words": words, "tags": tags, "offsets": offsets}
    arrays |= {"chars": chars, "char_offsets": char_offsets}
    return {k: np.asarray(v, dtype=np.int64) for k, v in arrays.items()}


class TaggedDataset(Dataset):
    """Item ``i`` is sentence ``i``: ``{"words" (L,), "tags" (L,), "chars": L tensors, "index"}``.

    Args:
        arrays: the output of :func:`encode`.
    """

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.words = torch.from_numpy(arrays["words"])
        self.tags = torch.from_numpy(arrays["tags"])
        self.chars = torch.from_numpy(arrays["chars"])
        self.offsets, self.char_offsets = arrays["offsets"], arrays["char_offsets"]

    @property
    def lengths(self) -> np.ndarray:
        """Words per sentence, e.g. for :class:`~src.data.sampler.BucketBatchSampler`."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> dict[str, Any]:
        start, end = self.offsets[i], self.offsets[i + 1]
        bounds = self.char_offsets[start : end + 1]
        chars = [self.chars[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        return {"words": self.words[start:end], "tags": self.tags[start:end], "chars": chars}


def tag_collate(examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Right-pad sentences into ``{"words" (N, L), "chars" (N, L, W), "lengths" (N,),
    "tags" (N, L)}``: ids padded with 0, tags with :data:`IGNORE_INDEX`, ``W`` the longest word.
    """
    if not examples:
        raise ValueError("tag_collate got an empty list of examples")
    n, length = len(examples), max(len(ex["words"]) for ex in examples)
    width = max(len(c) for ex in examples for c in ex["chars"])
    chars = torch.zeros(n, length, width, dtype=torch.long)
    for i, ex in enumerate(examples):
        for j, c in enumerate(ex["chars"]):
            chars[i, j, : len(c)] = c
    return {
        "words": pad_sequence([ex["words"] for ex in examples], batch_first=True),
        "chars": chars,
        "lengths": torch.tensor([len(ex["words"]) for ex in examples]),
        "tags": pad_sequence(
            [ex["tags"] for ex in examples], batch_first=True, padding_value=IGNORE_INDEX
        ),
    }
