"""Character-level language-model DataModule (Karpathy 2015 char-rnn): one text stream split into
train and held-out slices, served as contiguous parallel streams for truncated BPTT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from src.data.cache import CachedDataModule, CacheWriter, cache_key, content_digest
from src.data.chars.source import CharStreamDataset, CharVocab, read_corpus
from src.data.errors import DataError, DataNotFoundError
from src.data.resumable import ResumableDataLoader
from src.data.vocab_check import check_vocabulary, fingerprint, short_hash

SPLITS = ("train", "val", "test")
CACHE_VERSION = 2  # bump when the cache layout or the corpus reading changes


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
        raise DataError(
            f"val_chars={val_chars} and test_chars={test_chars} must be positive and leave "
            f"training text in the {n}-character corpus"
        )
    test_start = _line_start(text, n - test_chars)
    val_start = _line_start(text, n - test_chars - val_chars)
    if not 0 < val_start < test_start < n:  # a line longer than a slice: cut inside it
        test_start, val_start = n - test_chars, n - test_chars - val_chars
    end = val_start if max_chars is None else min(max_chars, val_start)
    return {"train": text[:end], "val": text[val_start:test_start], "test": text[test_start:]}


class CharLMDataModule(CachedDataModule, LightningDataModule):
    """A character corpus as contiguous ``{"x", "y"}`` batches of ``(N, bptt)`` character ids.

    ``prepare_data`` reads ``path`` (see :func:`~src.data.chars.source.read_corpus`: a text file, or
    a CSV with a ``text`` column whose rows become newline-separated documents), holds out its end
    (:func:`split_corpus`), builds the vocabulary on the training slice only and caches
    ``vocab.json`` and the ids of each slice as ``.npy`` under ``cache_dir/<key>`` (the key hashes
    the corpus' content and the settings; a damaged cache is rebuilt). Every split is
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
                raise DataError(f"{name} must be positive, got {value}")
        self.save_hyperparameters()
        self.path, self.cache_dir, self.max_chars = path, cache_dir, max_chars
        self.val_chars, self.test_chars, self.min_count = val_chars, test_chars, min_count
        self.batch_size, self.bptt, self.eval_batch_size = batch_size, bptt, eval_batch_size
        self.num_workers = num_workers
        self._vocab: CharVocab | None = None
        self._cache_path: Path | None = None
        self._digest: Any = None
        self.ids: dict[str, torch.Tensor] = {}

    def _settings(self) -> dict[str, Any]:
        keys = ("max_chars", "val_chars", "test_chars", "min_count")
        return {k: getattr(self, k) for k in keys}

    @property
    def cache_path(self) -> Path:
        """``cache_dir/<key>``: the key hashes the corpus' content and every setting."""
        if self._cache_path is None:
            path = Path(self.path)
            if not path.is_file():
                raise DataNotFoundError(
                    f"corpus {path} not found; pass a text file or a CSV with text"
                )
            self._digest = content_digest([path])
            settings = {"v": CACHE_VERSION, **self._settings()}
            self._cache_path = Path(self.cache_dir) / cache_key(self._digest, settings)
        return self._cache_path

    def _build(self, writer: CacheWriter) -> dict[str, Any]:
        corpus = read_corpus(self.path)
        slices = split_corpus(corpus, self.max_chars, self.val_chars, self.test_chars)
        vocab = CharVocab.build(slices["train"], self.min_count)
        for split, text in slices.items():
            writer.save_npy(f"{split}.npy", vocab.encode(text))
        writer.save_json("vocab.json", {"itos": vocab.itos})
        return {"corpus": str(self.path), "chars": {s: len(t) for s, t in slices.items()}}

    def setup(self, stage: str | None = None) -> None:
        if not self.ids:
            cache = self._open_cache()
            self.ids = {s: torch.from_numpy(cache.read_npy(f"{s}.npy")) for s in SPLITS}

    @property
    def vocab(self) -> list[str]:
        """The characters by id (``<unk>`` first); builds the cache when read before setup."""
        if self._vocab is None:
            itos = self._open_cache().read_json("vocab.json")["itos"]
            self._vocab = CharVocab(itos)
        return self._vocab.itos

    @property
    def vocabulary_fingerprint(self) -> dict[str, Any]:
        """Size, hash and settings of the vocabulary (see :mod:`src.data.vocab_check`)."""
        vocab = self.vocab  # resolves the corpus digest too
        return fingerprint({"chars": vocab}, {**self._settings(), "data": short_hash(self._digest)})

    def state_dict(self) -> dict[str, Any]:
        """What checkpoints carry of the data: the vocabulary's fingerprint."""
        return {"vocabulary": self.vocabulary_fingerprint}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Refuse a checkpoint whose model was trained with another vocabulary."""
        check_vocabulary(state_dict.get("vocabulary"), self.vocabulary_fingerprint)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _loader(self, split: str, rows: int, drop_last: bool) -> DataLoader:
        if self.trainer is not None and self.trainer.world_size > 1:
            raise DataError("CharLMDataModule streams run on one process; set trainer.devices=1")
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
