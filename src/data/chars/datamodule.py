"""Character-level language-model DataModule (Karpathy 2015 char-rnn): one text stream split into
train and held-out slices, served as contiguous parallel streams for truncated BPTT."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from src.data.chars.source import CharStreamDataset, CharVocab, read_corpus
from src.data.resumable import ResumableDataLoader

SPLITS = ("train", "val", "test")
CACHE_VERSION = 1  # bump when the cache layout or the corpus reading changes


def _line_start(text: str, i: int) -> int:
    """The first line start at or after ``i`` (``i`` itself when no newline follows)."""
    if i == 0 or text[i - 1] == "\n":
        return i
    k = text.find("\n", i)
    return k + 1 if k != -1 else i


def split_corpus(text: str, max_chars: int | None, val_chars: int, test_chars: int) -> dict:
    """Cut ``text`` into disjoint ``train``/``val``/``test`` slices.

    ``test`` is the last ``test_chars`` characters and ``val`` the ``val_chars`` before them, each
    moved forward to start at a line (review) boundary; ``train`` is the text before ``val``,
    truncated to its first ``max_chars`` characters. The held-out slices do not depend on
    ``max_chars``, so BPC stays comparable across training sizes.
    """
    n = len(text)
    if val_chars < 1 or test_chars < 1 or val_chars + test_chars >= n:
        raise ValueError(
            f"val_chars={val_chars} and test_chars={test_chars} must be positive and leave "
            f"training text in the {n}-character corpus"
        )
    test_start = _line_start(text, n - test_chars)
    val_start = _line_start(text, n - test_chars - val_chars)
    if not 0 < val_start < test_start < n:  # a line longer than a slice: cut inside it
        test_start, val_start = n - test_chars, n - test_chars - val_chars
    end = val_start if max_chars is None else min(max_chars, val_start)
    return {"train": text[:end], "val": text[val_start:test_start], "test": text[test_start:]}


class CharLMDataModule(LightningDataModule):
    """A character corpus as contiguous ``{"x", "y"}`` batches of ``(N, bptt)`` character ids.

    ``prepare_data`` reads ``path`` (see :func:`~src.data.chars.source.read_corpus`: a text file, or
    a CSV with a ``text`` column whose rows become newline-separated documents), holds out its end
    (:func:`split_corpus`), builds the vocabulary on the training slice only and caches
    ``vocab.json`` and the ids of each slice as ``.npy`` under ``cache_dir/<key>``. Every split is
    cut into ``N`` parallel rows read ``bptt`` steps at a time in order
    (:class:`~src.data.chars.source.CharStreamDataset`): row ``r`` of batch ``k + 1`` continues row
    ``r`` of batch ``k``, which is what makes the task's carried state meaningful (``stateful``,
    linked to the task). Training drops the final partial batch; evaluation scores every step.
    The streams run on one process (no DDP sharding).

    Args:
        path: Text file, or ``.csv``/``.csv.gz`` with a ``text`` column (the IMDB unlabeled
            reviews by default; never the test reviews).
        cache_dir: Where the vocabulary and ids are cached (one subdirectory per settings).
        max_chars: Training characters kept from the start of the corpus; ``None`` keeps all.
        val_chars: Characters held out for validation (just before the test slice).
        test_chars: Characters held out for testing (the end of the corpus).
        min_count: Characters seen fewer times in the training slice become ``<unk>``.
        batch_size: Parallel training rows ``N``.
        bptt: Steps per batch, the truncated-BPTT length ``L``.
        eval_batch_size: Parallel rows for validation/test; default ``batch_size``.
        num_workers: DataLoader worker processes.
    """

    stateful = True  # batches are contiguous streams: the task carries its state across them

    def __init__(
        self,
        path: str = "data/imdb/unsup.csv.gz",
        cache_dir: str = "data/cache/chars",
        max_chars: int | None = 5_000_000,
        val_chars: int = 250_000,
        test_chars: int = 250_000,
        min_count: int = 10,
        batch_size: int = 64,
        bptt: int = 128,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        sizes = {"batch_size": batch_size, "bptt": bptt, "eval_batch_size": eval_batch_size}
        if max_chars is not None:
            sizes["max_chars"] = max_chars
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        self.save_hyperparameters()
        self.path, self.cache_dir, self.max_chars = path, cache_dir, max_chars
        self.val_chars, self.test_chars, self.min_count = val_chars, test_chars, min_count
        self.batch_size, self.bptt, self.eval_batch_size = batch_size, bptt, eval_batch_size
        self.num_workers = num_workers
        self._vocab: CharVocab | None = None
        self.ids: dict[str, torch.Tensor] = {}

    @property
    def cache_path(self) -> Path:
        """``cache_dir/<key>``: the key hashes the corpus file's identity and every setting."""
        stat = Path(self.path).stat() if Path(self.path).is_file() else None
        blob = {
            "v": CACHE_VERSION,
            "src": [str(Path(self.path).resolve()), stat and stat.st_size, stat and stat.st_mtime],
            **{k: getattr(self, k) for k in ("max_chars", "val_chars", "test_chars", "min_count")},
        }
        key = hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]
        return Path(self.cache_dir) / key

    def prepare_data(self) -> None:
        """Read, split, build the vocabulary and cache the ids unless the cache exists."""
        out = self.cache_path
        if (out / "vocab.json").is_file():
            return
        corpus = read_corpus(self.path)
        slices = split_corpus(corpus, self.max_chars, self.val_chars, self.test_chars)
        vocab = CharVocab.build(slices["train"], self.min_count)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.mkdir(parents=True)
        for split, text in slices.items():
            np.save(tmp / f"{split}.npy", vocab.encode(text))
        vocab.save(tmp / "vocab.json")  # written last: its presence marks a complete cache
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished the same cache first
            shutil.rmtree(tmp, ignore_errors=True)

    def setup(self, stage: str | None = None) -> None:
        if not self.ids:
            self.prepare_data()
            self.ids = {s: torch.from_numpy(np.load(self.cache_path / f"{s}.npy")) for s in SPLITS}

    @property
    def vocab(self) -> list[str]:
        """The characters by id (``<unk>`` first); builds the cache when read before setup."""
        if self._vocab is None:
            self.prepare_data()
            self._vocab = CharVocab.load(self.cache_path / "vocab.json")
        return self._vocab.itos

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _loader(self, split: str, rows: int, drop_last: bool) -> DataLoader:
        if self.trainer is not None and self.trainer.world_size > 1:
            raise ValueError("CharLMDataModule streams run on one process; set trainer.devices=1")
        self.setup()
        dataset = CharStreamDataset(self.ids[split], rows, self.bptt, drop_last)
        loader = ResumableDataLoader if split == "train" else DataLoader  # resumable mid-epoch
        return loader(dataset, batch_size=None, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, drop_last=False)
