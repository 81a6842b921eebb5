"""Part-of-speech tagging DataModule over CoNLL-U files (UD English EWT, Silveira et al. 2014)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from src.data.conllu.source import TaggedDataset, build_vocab, encode, read_conllu, tag_collate
from src.data.resumable import ResumableDataLoader
from src.data.sampler import BucketBatchSampler

SPLITS = ("train", "val", "test")


class UDPOSDataModule(LightningDataModule):
    """Sentences of word ids, character ids and UPOS tags, length-bucketed.

    ``prepare_data`` parses the three CoNLL-U files, builds the word (optionally lower-cased),
    character and tag vocabularies on the training split only, and caches them as
    ``vocab.json`` with the id arrays (``.npz``) under ``cache_dir/<key>`` (the key hashes the
    files' names, sizes and times and the settings), so a second run starts in a second.
    Batches: ``{"words" (N, L), "chars" (N, L, W), "lengths" (N,), "tags" (N, L)}``, tags
    padded with ``-100``.

    Args:
        data_dir: directory holding the CoNLL-U files (plain or ``.gz``).
        train_file: training file name inside ``data_dir``.
        val_file: validation file name.
        test_file: test file name.
        cache_dir: where vocabularies and id arrays are cached.
        lowercase: lower-case words for the word vocabulary (characters keep their case).
        min_freq: minimum training count of a word; rarer words become ``<unk>``.
        max_size: word vocabulary cap, ``<pad>`` and ``<unk>`` included.
        max_word_len: longer words keep this many characters (prefix and suffix halves).
        batch_size: training sentences per batch.
        eval_batch_size: validation/test/predict batch size; default ``batch_size``.
        num_workers: DataLoader worker processes.
        seed: seed of the bucket shuffling.
    """

    def __init__(
        self,
        data_dir: str = "data/ud_ewt",
        train_file: str = "en_ewt-ud-train.conllu.gz",
        val_file: str = "en_ewt-ud-dev.conllu.gz",
        test_file: str = "en_ewt-ud-test.conllu.gz",
        cache_dir: str = "data/cache/ud_ewt",
        lowercase: bool = True,
        min_freq: int = 2,
        max_size: int = 50000,
        max_word_len: int = 20,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 42,
    ) -> None:
        super().__init__()
        eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        sizes = {"max_size": max_size, "max_word_len": max_word_len, "batch_size": batch_size}
        for name, value in {
            **sizes,
            "eval_batch_size": eval_batch_size,
            "min_freq": min_freq,
        }.items():
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        self.save_hyperparameters()
        self.data_dir, self.cache_dir = Path(data_dir), Path(cache_dir)
        self.files = dict(zip(SPLITS, (train_file, val_file, test_file), strict=True))
        self.lowercase, self.min_freq, self.max_size = lowercase, min_freq, max_size
        self.max_word_len, self.batch_size = max_word_len, batch_size
        self.eval_batch_size, self.num_workers, self.seed = eval_batch_size, num_workers, seed
        self._cache_path: Path | None = None
        self._vocab: dict[str, list[str]] | None = None
        self.datasets: dict[str, TaggedDataset] = {}

    @property
    def cache_path(self) -> Path:
        """``cache_dir/<key>``: the key hashes the data files and the vocabulary settings."""
        if self._cache_path is None:
            stamp: list[Any] = [self.lowercase, self.min_freq, self.max_size, self.max_word_len]
            for split, name in self.files.items():
                path = self.data_dir / name
                if not path.is_file():
                    raise ValueError(
                        f"{split} file {path} not found; set data_dir or {split}_file "
                        "(UD English EWT: github.com/UniversalDependencies/UD_English-EWT)"
                    )
                stat = path.stat()
                stamp += [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
            key = hashlib.sha1(json.dumps(stamp).encode()).hexdigest()[:16]
            self._cache_path = self.cache_dir / key
        return self._cache_path

    def prepare_data(self) -> None:
        """Parse, build the vocabularies (train only) and cache, unless the cache is complete."""
        path = self.cache_path
        if (path / "vocab.json").is_file():
            return
        sentences = {s: read_conllu(self.data_dir / name) for s, name in self.files.items()}
        train = sentences["train"]
        norm = str.lower if self.lowercase else str
        words = Counter(norm(w) for forms, _ in train for w in forms)
        chars = Counter(c for forms, _ in train for w in forms for c in w)
        vocab = {
            "words": build_vocab(words, self.min_freq, self.max_size),
            "chars": build_vocab(chars),
            "tags": sorted({t for _, tags in train for t in tags}),
        }
        path.mkdir(parents=True, exist_ok=True)
        for split, sents in sentences.items():
            try:
                arrays = encode(sents, vocab, self.lowercase, self.max_word_len)
            except ValueError as e:
                raise ValueError(f"{self.data_dir / self.files[split]}: {e}") from None
            np.savez(path / f"{split}.npz", **arrays)
        tmp = path / "vocab.json.tmp"  # written last: its presence marks a complete cache
        tmp.write_text(json.dumps(vocab, ensure_ascii=False))
        tmp.replace(path / "vocab.json")

    def setup(self, stage: str | None = None) -> None:
        """Load the cached id arrays (building the cache first if it is missing)."""
        if self.datasets:
            return
        self.prepare_data()
        for split in SPLITS:
            with np.load(self.cache_path / f"{split}.npz") as arrays:
                self.datasets[split] = TaggedDataset(dict(arrays))

    @property
    def vocabularies(self) -> dict[str, list[str]]:
        """``{"words", "chars", "tags"}`` lists, position = id (built on first need)."""
        if self._vocab is None:
            self.prepare_data()
            self._vocab = json.loads((self.cache_path / "vocab.json").read_text())
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return len(self.vocabularies["words"])

    @property
    def char_vocab_size(self) -> int:
        return len(self.vocabularies["chars"])

    @property
    def num_tags(self) -> int:
        return len(self.vocabularies["tags"])

    @property
    def tag_names(self) -> list[str]:
        return list(self.vocabularies["tags"])

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        if not self.datasets:
            self.setup()
        ds = self.datasets[split]
        sampler = BucketBatchSampler(ds.lengths, batch_size, shuffle, seed=self.seed)
        loader = ResumableDataLoader if shuffle else DataLoader  # training: resumable mid-epoch
        return loader(
            ds, batch_sampler=sampler, collate_fn=tag_collate, num_workers=self.num_workers
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """Test sentences in file order (batch ``i`` holds sentences ``i * bs ...``)."""
        if not self.datasets:
            self.setup()
        return DataLoader(
            self.datasets["test"],
            batch_size=self.eval_batch_size,
            collate_fn=tag_collate,
            num_workers=self.num_workers,
        )
