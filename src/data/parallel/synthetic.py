"""Synthetic sequence-to-sequence tasks (reverse or sort random token sequences) for fast tests,
in the batch format of :class:`~src.data.parallel.datamodule.ParallelTextDataModule`."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from src.data.errors import DataError
from src.data.parallel.pairs import EOS_ID, PAD_ID, SPECIALS, PairDataset, pair_collate
from src.data.resumable import ResumableDataLoader
from src.data.sampler import BucketBatchSampler

SPLITS = ("train", "val", "test")


class SyntheticSeqDataModule(LightningDataModule):
    """Random sequences of symbols ``4 .. 4 + num_symbols - 1`` (ids 0-3 are the specials) with
    their reversal (``task="reverse"``) or ascending sort (``"sort"``) as target.

    Splits are drawn from one generator seeded with ``seed`` (train, then val, then test), so
    they are reproducible. Text is the space-joined symbol numbers (symbol ``k`` is id ``k + 4``
    and reads ``"k"``), so exact match and BLEU work as on real text.

    Args:
        task: ``"reverse"`` or ``"sort"``.
        num_symbols: Distinct symbols.
        min_len: Shortest sequence. max_len: Longest sequence.
        num_train: Training pairs. num_val: Validation pairs. num_test: Test pairs.
        batch_size: Training batch size. eval_batch_size: For val/test/predict.
        seed: Seed of the data and of the batch shuffling.
    """

    pad_id = PAD_ID
    collate = staticmethod(pair_collate)

    def __init__(
        self,
        task: Literal["reverse", "sort"] = "reverse",
        num_symbols: int = 10,
        min_len: int = 3,
        max_len: int = 10,
        num_train: int = 5000,
        num_val: int = 500,
        num_test: int = 500,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if task not in ("reverse", "sort"):
            raise DataError(f"task must be 'reverse' or 'sort', got {task!r}")
        if not 1 <= min_len <= max_len:
            raise DataError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
        if num_symbols < 1 or min(num_train, num_val, num_test, batch_size, eval_batch_size) < 1:
            raise DataError("num_symbols, split sizes and batch sizes must be positive")
        self.save_hyperparameters()
        self.task, self.num_symbols = task, num_symbols
        self.min_len, self.max_len = min_len, max_len
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.datasets: dict[str, PairDataset] = {}

    @property
    def src_vocab_size(self) -> int:
        return self.num_symbols + len(SPECIALS)

    @property
    def tgt_vocab_size(self) -> int:
        return self.num_symbols + len(SPECIALS)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        rng = np.random.default_rng(self.seed)
        for split in SPLITS:
            lengths = rng.integers(self.min_len, self.max_len + 1, self.sizes[split])
            src = [rng.integers(4, self.src_vocab_size, n) for n in lengths]
            tgt = [s[::-1] if self.task == "reverse" else np.sort(s) for s in src]
            self.datasets[split] = PairDataset.from_lists(src, tgt)

    def encode_sources(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Space-separated symbol numbers (``"3 0 5"``) -> a source batch, as in training."""
        rows = []
        for i, text in enumerate(texts):
            words = text.split()
            bad = [w for w in words if not (w.isdigit() and int(w) < self.num_symbols)]
            if bad:
                raise ValueError(
                    f"row {i + 1}: {bad[0]!r} is not a symbol; write numbers "
                    f"0..{self.num_symbols - 1} separated by spaces"
                )
            rows.append({"src": [int(w) + len(SPECIALS) for w in words], "tgt": [], "index": i})
        return pair_collate(rows)

    def decode_target(self, ids: torch.Tensor) -> list[str]:
        """Text of ``(N, T)`` target ids, cut at the first ``<eos>``."""
        rows = []
        for row in ids.tolist():
            row = row[: row.index(EOS_ID)] if EOS_ID in row else row
            rows.append(" ".join(str(i - len(SPECIALS)) if i >= 4 else SPECIALS[i] for i in row))
        return rows

    def source_tokens(self, ids: torch.Tensor) -> list[str]:
        return [str(int(i) - len(SPECIALS)) for i in ids]

    def target_tokens(self, ids: torch.Tensor) -> list[str]:
        row = ids.tolist()
        row = row[: row.index(EOS_ID) + 1] if EOS_ID in row else row
        return [str(i - len(SPECIALS)) if i >= 4 else SPECIALS[i] for i in row]

    def references(self, split: str, index: torch.Tensor) -> list[str]:
        """Reference text of ``split`` at dataset positions ``index``."""
        ds = self.datasets[split]
        return [" ".join(str(int(t) - len(SPECIALS)) for t in ds[int(i)]["tgt"]) for i in index]

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        self.setup()
        ds = self.datasets[split]
        sampler = BucketBatchSampler(ds.lengths, batch_size, shuffle, seed=self.seed)
        if shuffle:  # training: resumable mid-epoch
            return ResumableDataLoader(ds, batch_sampler=sampler, collate_fn=pair_collate)
        return DataLoader(ds, batch_sampler=sampler, collate_fn=pair_collate)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(
            self.datasets["test"], batch_size=self.eval_batch_size, collate_fn=pair_collate
        )
