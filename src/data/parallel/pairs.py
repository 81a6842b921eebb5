"""Parallel token-id pairs and their collate function (source ids, ``<bos> target <eos>``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIALS = [PAD, UNK, BOS, EOS]


class PairDataset(Dataset):
    """Source/target id sequences stored flat (``ids[offsets[i]:offsets[i + 1]]`` per side).

    Items are ``{"src": int32 tensor, "tgt": int32 tensor, "index": i}`` (views, no copies).

    Args:
        src_ids: all source ids concatenated. src_offsets: ``len(self) + 1`` start positions.
        tgt_ids: all target ids concatenated. tgt_offsets: ``len(self) + 1`` start positions.
    """

    def __init__(
        self,
        src_ids: np.ndarray,
        src_offsets: np.ndarray,
        tgt_ids: np.ndarray,
        tgt_offsets: np.ndarray,
    ) -> None:
        if len(src_offsets) != len(tgt_offsets):
            raise ValueError(
                f"{len(src_offsets) - 1} source but {len(tgt_offsets) - 1} target sequences"
            )
        for ids, offsets in ((src_ids, src_offsets), (tgt_ids, tgt_offsets)):
            if len(offsets) < 1 or offsets[-1] != len(ids):
                raise ValueError(f"offsets must end at len(ids)={len(ids)}")
        self.src = torch.from_numpy(np.ascontiguousarray(src_ids, dtype=np.int32))
        self.tgt = torch.from_numpy(np.ascontiguousarray(tgt_ids, dtype=np.int32))
        self.src_offsets = np.asarray(src_offsets, dtype=np.int64)
        self.tgt_offsets = np.asarray(tgt_offsets, dtype=np.int64)

    @classmethod
    def from_lists(cls, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> PairDataset:
        """Build from Python lists of id sequences."""

        def flat(seqs):
            offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
            np.cumsum([len(s) for s in seqs], out=offsets[1:])
            ids = np.concatenate([np.asarray(s, dtype=np.int32) for s in seqs]) if seqs else []
            return np.asarray(ids, dtype=np.int32), offsets

        return cls(*flat(src), *flat(tgt))

    @property
    def lengths(self) -> np.ndarray:
        """Bucketing length of every pair: the longer side (int64 array)."""
        return np.maximum(np.diff(self.src_offsets), np.diff(self.tgt_offsets))

    def __len__(self) -> int:
        return len(self.src_offsets) - 1

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "src": self.src[self.src_offsets[i] : self.src_offsets[i + 1]],
            "tgt": self.tgt[self.tgt_offsets[i] : self.tgt_offsets[i + 1]],
            "index": i,
        }


def pair_collate(examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad a list of pairs into a batch.

    Returns:
        ``{"src": (N, S), "src_lengths": (N,), "tgt": (N, T) = <bos> y <eos> then <pad>,
        "index": (N,)}`` (LongTensors).
    """
    if not examples:
        raise ValueError("pair_collate got an empty list of examples")
    src = [torch.as_tensor(ex["src"]).long() for ex in examples]
    for ex, s in zip(examples, src, strict=True):
        if s.ndim != 1 or len(s) == 0:
            raise ValueError(
                f"source at index {ex['index']} is empty or not 1-D; drop empty sentences"
            )
    bos, eos = torch.tensor([BOS_ID]), torch.tensor([EOS_ID])
    tgt = [torch.cat([bos, torch.as_tensor(ex["tgt"]).long(), eos]) for ex in examples]
    return {
        "src": pad_sequence(src, batch_first=True, padding_value=PAD_ID),
        "src_lengths": torch.tensor([len(s) for s in src]),
        "tgt": pad_sequence(tgt, batch_first=True, padding_value=PAD_ID),
        "index": torch.tensor([int(ex["index"]) for ex in examples]),
    }
