"""Token-id dataset over flat arrays and the padding collate function for variable lengths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset


class TokenDataset(Dataset):
    """Sequences stored flat: item ``i`` is ``ids[offsets[i]:offsets[i + 1]]``.

    Items are dicts ``{"tokens": 1-D int32 tensor (a view, no copy), "index": i}`` plus
    ``"label": int`` when ``labels`` is given; :func:`pad_collate` turns a list of them into a
    batch.

    Args:
        ids: all token ids concatenated (int32).
        offsets: ``len(self) + 1`` increasing start positions into ``ids`` (int64).
        labels: optional class label per sequence.
    """

    def __init__(
        self, ids: np.ndarray, offsets: np.ndarray, labels: np.ndarray | None = None
    ) -> None:
        if len(offsets) < 1 or offsets[-1] != len(ids):
            raise ValueError(f"offsets must end at len(ids)={len(ids)}")
        if labels is not None and len(labels) != len(offsets) - 1:
            raise ValueError(f"{len(labels)} labels for {len(offsets) - 1} sequences")
        self.ids = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int32))
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)

    @property
    def lengths(self) -> np.ndarray:
        """Length of every sequence (int64 array), e.g. for :class:`BucketBatchSampler`."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            "tokens": self.ids[self.offsets[i] : self.offsets[i + 1]],
            "index": i,
        }
        if self.labels is not None:
            item["label"] = int(self.labels[i])
        return item


def pad_collate(examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Right-pad a list of examples with 0 (``<pad>``) into one batch.

    Args:
        examples: dicts with ``"tokens"`` (1-D tensor or int array) and optionally ``"label"``
            (int) and ``"index"`` (position in the dataset, used in error messages).

    Returns:
        ``{"tokens": LongTensor (N, L), "lengths": LongTensor (N,), "labels": LongTensor (N,)}``
        with ``L`` the longest length in the batch; ``"labels"`` only when examples carry them.
    """
    if not examples:
        raise ValueError("pad_collate got an empty list of examples")
    seqs = [torch.as_tensor(ex["tokens"]).long() for ex in examples]
    for i, (ex, s) in enumerate(zip(examples, seqs, strict=True)):
        where = ex.get("index", i)
        if s.ndim != 1:
            raise ValueError(f"tokens at index {where} must be 1-D, got shape {tuple(s.shape)}")
        if len(s) == 0:
            raise ValueError(f"empty review after tokenisation at index {where}; drop empty texts")
    batch = {
        "tokens": pad_sequence(seqs, batch_first=True, padding_value=0),
        "lengths": torch.tensor([len(s) for s in seqs], dtype=torch.long),
    }
    if "label" in examples[0]:
        batch["labels"] = torch.tensor([int(ex["label"]) for ex in examples], dtype=torch.long)
    return batch
