"""Text helpers: cleaning, labeled tables, Hugging Face tokenizers, fast id encoding, GloVe."""

from __future__ import annotations

import logging
import os
import re
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from src.data.errors import DataError, read_error

log = logging.getLogger(__name__)

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def clean_text(s: str) -> str:
    """Replace HTML line breaks (``<br />``, ``<br>``) by spaces and collapse runs of whitespace."""
    return " ".join(_BR.sub(" ", s).split())


def read_labeled_table(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read a CSV (``.csv``/``.csv.gz``) or Parquet file with columns ``text,label``.

    Returns the texts and the labels as an int64 array; labels must be 0 or 1. Every problem
    (truncated or damaged file, missing column, bad label, empty text, non-UTF-8 bytes) raises a
    one-line :class:`~src.data.errors.DataError` naming the file and the fix.
    """
    path = Path(path)
    try:
        if path.name.endswith(".parquet"):
            df = pd.read_parquet(path)
        else:  # keep_default_na=False: a review reading "NA" stays text, never becomes NaN
            df = pd.read_csv(path, encoding="utf-8", keep_default_na=False, dtype={"text": str})
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty; expected a header text,label and rows") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path} is not a readable CSV: {' '.join(str(e).split())}") from None
    except (ValueError, OSError, EOFError, zlib.error) as e:
        raise read_error(path, e) from None
    _check_columns(path, df.columns)
    if len(df) == 0:
        raise DataError(f"{path} has no rows: an empty split")
    labels = pd.to_numeric(df["label"], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        value = df["label"].iloc[i]
        value = value.item() if isinstance(value, np.generic) else value
        raise DataError(
            f"{path}: label {value!r} at row {i} is not 0 or 1 "
            f"({int(bad.sum())} bad labels); IMDB labels are 0 = negative, 1 = positive"
        )
    texts = df["text"].tolist()
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise DataError(f"{path}: empty or missing text at row {i}")
    return texts, labels.to_numpy(dtype=np.int64)


def _check_columns(path: Path, columns: pd.Index, expected: tuple[str, ...] = ("text", "label")):
    """One line naming the missing columns and the header actually found."""
    found = [str(c) for c in columns]
    missing = [c for c in expected if c not in found]
    if not missing:
        return
    lower = {c.strip().lower() for c in found}
    hint = (
        "column names are case-sensitive: write them in lower case"
        if all(c in lower for c in missing)
        else f"rename the columns to {','.join(expected)}"
    )
    header = ",".join(found)
    header = header if len(header) <= 80 else header[:77] + "..."
    raise DataError(
        f"{path}: no column {' or '.join(map(repr, missing))}; the header is {header!r}; {hint}"
    )


def build_tokenizer(
    texts: Sequence[str],
    kind: Literal["word", "bpe"] = "word",
    max_size: int = 30000,
    min_freq: int = 2,
    max_len: int | None = None,
) -> Tokenizer:
    """Train a tokenizer on ``texts`` (cleaned with :func:`clean_text`, lower-cased).

    Args:
        texts: training texts only (never validation or test).
        kind: ``"word"`` (WordLevel model) or ``"bpe"`` (byte-pair encoding subwords). Both split
            words from punctuation first (``Whitespace`` pre-tokenizer: ``\\w+|[^\\w\\s]+``).
        max_size: vocabulary size cap, special tokens included.
        min_freq: drop tokens (word) or merges (bpe) seen fewer times.
        max_len: if set, the tokenizer truncates every encoding to this many tokens.
    """
    specials = [PAD, UNK]
    if kind == "word":
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(
            vocab_size=max_size,
            min_frequency=min_freq,
            special_tokens=specials,
            show_progress=False,
        )
    elif kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=UNK))
        trainer = trainers.BpeTrainer(
            vocab_size=max_size,
            min_frequency=min_freq,
            special_tokens=specials,
            show_progress=False,
        )
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}; use 'word' or 'bpe'")
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator((clean_text(t) for t in texts), trainer=trainer, length=len(texts))
    assert tok.token_to_id(PAD) == PAD_ID and tok.token_to_id(UNK) == UNK_ID, "special token ids"
    if max_len is not None:
        tok.enable_truncation(max_len)
    return tok


def save_tokenizer(tokenizer: Tokenizer, path: str | Path) -> None:
    """Write the tokenizer's own JSON atomically (temporary file, then ``os.replace``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tokenizer.save(str(tmp))
    os.replace(tmp, path)


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer JSON written by :func:`save_tokenizer` and check its special tokens."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read the tokenizer {path} ({e}); rebuild it") from None
    return parse_tokenizer(text, path)


def parse_tokenizer(text: str, where: str | Path) -> Tokenizer:
    """A tokenizer from its JSON ``text`` (read from ``where``), special tokens checked."""
    try:
        tok = Tokenizer.from_str(text)
    except Exception as e:  # the Rust side raises its own exception type
        raise DataError(f"{where} is not a tokenizer ({' '.join(str(e).split())})") from None
    if tok.token_to_id(PAD) != PAD_ID or tok.token_to_id(UNK) != UNK_ID:
        raise DataError(f"{where}: expected {PAD}=0 and {UNK}=1 in the tokenizer vocabulary")
    return tok


def encode_ids(
    tokenizer: Tokenizer, texts: Sequence[str], max_len: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Clean and encode ``texts`` in parallel (``encode_batch``) into flat ids + offsets.

    Returns ``ids`` (int32, all sequences concatenated) and ``offsets`` (int64, ``len(texts) + 1``):
    text ``i`` is ``ids[offsets[i]:offsets[i + 1]]``. ``max_len`` truncates on top of the
    tokenizer's own truncation setting.
    """
    encodings = tokenizer.encode_batch([clean_text(t) for t in texts], add_special_tokens=False)
    parts = [np.asarray(e.ids[:max_len] if max_len else e.ids, dtype=np.int32) for e in encodings]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    return ids, offsets


def reverse_each(ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """A copy of ``ids`` with every sequence ``ids[offsets[i]:offsets[i + 1]]`` read back to
    front (the offsets stay valid): the input of a backward model (Howard & Ruder 2018)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    starts, ends = np.repeat(offsets[:-1], lengths), np.repeat(offsets[1:], lengths)
    positions = np.arange(offsets[0], offsets[-1])
    out = np.array(ids, copy=True)
    # position p of the sequence at [start, end) takes the token at start + end - 1 - p
    out[offsets[0] : offsets[-1]] = ids[starts + ends - 1 - positions]
    return out


def _glove_rows(
    path: str | Path, vocab: dict[str, int], dim: int | None
) -> tuple[dict[int, np.ndarray], int | None]:
    """Parse a GloVe text file: the vectors of vocabulary tokens by id, and the dimension."""
    rows: dict[int, np.ndarray] = {}
    file_dim = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n\r ").split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec-style "count dim" header
            if file_dim is None:  # the first vector line fixes the dimension
                file_dim = len(parts) - 1
                if dim is not None and dim != file_dim:
                    raise DataError(f"{path} has {file_dim}-d vectors but dim={dim} was asked")
            if file_dim < 1 or len(parts) < file_dim + 1:
                raise DataError(
                    f"{path}:{lineno}: malformed GloVe line, expected a word and {file_dim} "
                    f"numbers, got {len(parts) - 1} fields"
                )
            idx = vocab.get(" ".join(parts[:-file_dim]))  # a few GloVe words contain spaces
            if idx is not None:
                try:
                    rows[idx] = np.asarray(parts[-file_dim:], dtype=np.float32)
                except ValueError:
                    raise DataError(f"{path}:{lineno}: non-numeric value in a vector") from None
    return rows, file_dim


def load_glove(
    path: str | Path, tokenizer: Tokenizer, dim: int | None = None, seed: int = 0
) -> torch.Tensor:
    """Embedding matrix ``(V, dim)`` for ``tokenizer``'s vocabulary from a GloVe text file.

    Each line is ``word v1 ... v_dim`` (a word2vec ``count dim`` header line is skipped). Rows of
    tokens absent from the file are ``N(0, 1) * 0.1`` from a generator seeded with ``seed``; row 0
    (``<pad>``) is zeros. ``dim`` defaults to the file's dimension and must match it when given.
    Field counts are checked on every line, numbers on the lines that are used.
    """
    vocab = tokenizer.get_vocab()
    try:
        rows, dim = _glove_rows(path, vocab, dim)
    except (UnicodeDecodeError, OSError) as e:
        raise read_error(path, e) from None
    if dim is None:
        raise DataError(f"{path} is empty: no GloVe vectors")
    if not rows:
        raise DataError(f"{path}: none of the {len(vocab)} vocabulary tokens has a vector")
    weight = torch.randn(len(vocab), dim, generator=torch.Generator().manual_seed(seed)) * 0.1
    weight[torch.tensor(list(rows))] = torch.from_numpy(np.stack(list(rows.values())))
    weight[PAD_ID] = 0.0
    log.info("GloVe %s: %d of %d vocabulary tokens found", path, len(rows), len(vocab))
    return weight
