"""Character corpus helpers for char-RNN language models (Karpathy 2015): reading a text file or
a review table, a character vocabulary, and contiguous parallel streams for truncated BPTT."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from src.data.errors import DataError, DataNotFoundError, read_error
from src.data.text import clean_text

UNK = "<unk>"
UNK_ID = 0
TABLE_SUFFIXES = (".csv", ".csv.gz")


def read_corpus(path: str | Path) -> str:
    """The corpus as one string.

    A ``.csv``/``.csv.gz`` table contributes its ``text`` column: each row cleaned with
    :func:`~src.data.text.clean_text` (HTML ``<br />`` removed, whitespace collapsed), rows joined
    by ``"\\n"``, so a newline marks a document boundary. Any other file is read as UTF-8 text
    (``"\\r\\n"`` becomes ``"\\n"``). Problems raise a one-line
    :class:`~src.data.errors.DataError`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"corpus {path} not found; pass a text file or a CSV with text")
    try:
        if path.name.endswith(TABLE_SUFFIXES):
            df = pd.read_csv(path, encoding="utf-8", keep_default_na=False, dtype={"text": str})
            if "text" not in df.columns:
                header = ",".join(map(str, df.columns))[:80]
                raise DataError(
                    f"{path}: no 'text' column; the header is {header!r}; name the column of "
                    "texts 'text' (lower case)"
                )
            text = "\n".join(t for t in map(clean_text, df["text"].astype(str)) if t)
        else:
            text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"corpus {path} is empty") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path} is not a readable CSV: {' '.join(str(e).split())}") from None
    except (ValueError, OSError, EOFError, zlib.error) as e:
        raise read_error(path, e) from None
    if not text:
        raise DataError(f"corpus {path} is empty")
    return text


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


class CharVocab:
    """Characters <-> ids: id 0 is ``<unk>`` (characters too rare in the training slice), then the
    kept characters in code-point order.

    Args:
        itos: The vocabulary, ``itos[0] == "<unk>"`` and single characters after it.
    """

    def __init__(self, itos: Sequence[str]) -> None:
        if not itos or itos[0] != UNK or any(len(c) != 1 for c in itos[1:]):
            raise ValueError(f"a character vocabulary is {UNK!r} followed by single characters")
        self.itos = list(itos)
        self.stoi = {c: i for i, c in enumerate(self.itos)}
        self._table = np.zeros(max(map(ord, self.itos[1:]), default=0) + 1, dtype=np.int32)
        self._table[[ord(c) for c in self.itos[1:]]] = np.arange(1, len(self.itos))

    @classmethod
    def build(cls, text: str, min_count: int = 1) -> CharVocab:
        """Keep the characters seen ``min_count`` times or more in ``text`` (training text only)."""
        counts = np.bincount(_code_points(text))
        return cls([UNK, *map(chr, np.flatnonzero(counts >= max(min_count, 1)))])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> np.ndarray:
        """``(len(text),)`` ids; unknown characters map to ``<unk>`` (0)."""
        cp = _code_points(text)
        ids = np.zeros(len(cp), dtype=np.int32)
        known = cp < len(self._table)
        ids[known] = self._table[cp[known]]
        return ids

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that are not in the vocabulary."""
        return sorted(set(text) - self.stoi.keys())

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The text of ``ids``, one character per id: ``<unk>`` shows as U+FFFD."""
        chars = ["\ufffd", *self.itos[1:]]
        return "".join(chars[i] for i in torch.as_tensor(ids).tolist())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"itos": self.itos}, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CharVocab:
        return cls(json.loads(Path(path).read_text("utf-8"))["itos"])


class CharStreamDataset(Dataset):
    """A long id stream cut into ``n_rows`` parallel rows, served as ``bptt``-step batches in order.

    Inputs are ``ids[:-1]`` and targets ``ids[1:]``. Row ``r`` holds the ``S = (T - 1) // n_rows``
    consecutive steps starting at ``r * S``; item ``k`` is the whole batch of steps
    ``k * bptt .. (k + 1) * bptt`` of every row, so row ``r`` of item ``k + 1`` continues row ``r``
    of item ``k`` (use a loader with ``batch_size=None`` and no shuffling). The last
    ``(T - 1) mod n_rows`` steps are dropped, and with ``drop_last`` also the final partial batch.

    Items: ``{"x": (n_rows, bptt) int64, "y": (n_rows, bptt) int64}`` (the last may be shorter).

    Args:
        ids: ``(T,)`` the encoded stream.
        n_rows: Parallel rows ``N`` (the batch size).
        bptt: Steps per batch (the truncated-BPTT length).
        drop_last: Drop the final batch when it is shorter than ``bptt``.
    """

    def __init__(self, ids: torch.Tensor, n_rows: int, bptt: int, drop_last: bool = False) -> None:
        steps = (len(ids) - 1) // n_rows
        if steps < (bptt if drop_last else 1):
            raise DataError(
                f"{len(ids)} characters are too few for batch_size={n_rows} rows of "
                f"{bptt if drop_last else 1}+ steps; lower batch_size/bptt or use more text"
            )
        self.x = ids[: n_rows * steps].view(n_rows, steps)  # (N, S)
        self.y = ids[1 : n_rows * steps + 1].view(n_rows, steps)  # (N, S), shifted by one
        self.bptt = bptt
        self.n_batches = steps // bptt if drop_last else -(-steps // bptt)

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        if not 0 <= k < self.n_batches:
            raise IndexError(k)
        cols = slice(k * self.bptt, (k + 1) * self.bptt)
        return {"x": self.x[:, cols].long(), "y": self.y[:, cols].long()}
