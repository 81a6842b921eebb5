"""Part-of-speech tagging DataModule over CoNLL-U files (UD English EWT, Silveira et al. 2014)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from src.data.cache import CachedDataModule, CacheWriter, cache_key, content_digest
from src.data.conllu.source import TaggedDataset, build_vocab, encode, read_conllu, tag_collate
from src.data.errors import DataError, DataNotFoundError
from src.data.resumable import ResumableDataLoader
from src.data.sampler import BucketBatchSampler
from src.data.vocab_check import check_vocabulary, fingerprint, short_hash

SPLITS = ("train", "val", "test")
ARRAYS = ("words", "tags", "offsets", "chars", "char_offsets")  # see source.encode
CACHE_VERSION = 2  # bump when the cache layout or the encoding changes


class UDPOSDataModule(CachedDataModule, LightningDataModule):
    """Sentences of word ids, character ids and UPOS tags, length-bucketed.

    ``prepare_data`` parses the three CoNLL-U files, builds the word (optionally lower-cased),
    character and tag vocabularies on the training split only, and caches them as
    ``vocab.json`` with the id arrays (``.npy``) under ``cache_dir/<key>`` (the key hashes the
    files' content and the settings; every file is checked against its checksum when read, a
    damaged cache is rebuilt), so a second run starts in a second.
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
                raise DataError(f"{name} must be positive, got {value}")
        self.save_hyperparameters()
        self.data_dir, self.cache_dir = Path(data_dir), Path(cache_dir)
        self.files = dict(zip(SPLITS, (train_file, val_file, test_file), strict=True))
        self.lowercase, self.min_freq, self.max_size = lowercase, min_freq, max_size
        self.max_word_len, self.batch_size = max_word_len, batch_size
        self.eval_batch_size, self.num_workers, self.seed = eval_batch_size, num_workers, seed
        self._cache_path: Path | None = None
        self._digest: Any = None
        self._vocab: dict[str, list[str]] | None = None
        self.datasets: dict[str, TaggedDataset] = {}

    def _settings(self) -> dict[str, Any]:
        return {
            "lowercase": self.lowercase,
            "min_freq": self.min_freq,
            "max_size": self.max_size,
            "max_word_len": self.max_word_len,
        }

    @property
    def cache_path(self) -> Path:
        """``cache_dir/<key>``: the key hashes the data files' content and the settings."""
        if self._cache_path is None:
            paths = []
            for split, name in self.files.items():
                path = self.data_dir / name
                if not path.is_file():
                    raise DataNotFoundError(
                        f"{split} file {path} not found; set data_dir or {split}_file "
                        "(UD English EWT: github.com/UniversalDependencies/UD_English-EWT)"
                    )
                paths.append(path)
            self._digest = content_digest(paths)
            settings = {"v": CACHE_VERSION, **self._settings()}
            self._cache_path = self.cache_dir / cache_key(self._digest, settings)
        return self._cache_path

    def _build(self, writer: CacheWriter) -> dict[str, Any]:
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
        for split, sents in sentences.items():
            try:
                arrays = encode(sents, vocab, self.lowercase, self.max_word_len)
            except DataError as e:
                raise DataError(f"{self.data_dir / self.files[split]}: {e}") from None
            for name in ARRAYS:
                writer.save_npy(f"{split}_{name}.npy", arrays[name])
        writer.save_json("vocab.json", vocab)
        return {"sentences": {s: len(sents) for s, sents in sentences.items()}}

    def setup(self, stage: str | None = None) -> None:
        """Load the cached id arrays (building the cache first if it is missing)."""
        if self.datasets:
            return
        cache = self._open_cache()
        for split in SPLITS:
            arrays = {name: cache.read_npy(f"{split}_{name}.npy") for name in ARRAYS}
            self.datasets[split] = TaggedDataset(arrays)

    @property
    def vocabularies(self) -> dict[str, list[str]]:
        """``{"words", "chars", "tags"}`` lists, position = id (built on first need)."""
        if self._vocab is None:
            self._vocab = self._open_cache().read_json("vocab.json")
        return self._vocab

    def encode_sentences(self, sentences: list[list[str]]) -> dict[str, torch.Tensor]:
        """Word lists -> ``{"words", "chars", "lengths", "tags"}`` encoded as the training data
        (placeholder tags, to be ignored)."""
        filler = self.vocabularies["tags"][0]
        pairs = [(words, [filler] * len(words)) for words in sentences]
        arrays = encode(pairs, self.vocabularies, self.lowercase, self.max_word_len)
        dataset = TaggedDataset(arrays)
        return tag_collate([dataset[i] for i in range(len(dataset))])

    @property
    def vocabulary_fingerprint(self) -> dict[str, Any]:
        """Sizes, hash and settings of the vocabularies (see :mod:`src.data.vocab_check`)."""
        vocab = self.vocabularies  # resolves the files' digest too
        return fingerprint(vocab, {**self._settings(), "data": short_hash(self._digest)})

    def state_dict(self) -> dict[str, Any]:
        """What checkpoints carry of the data: the vocabularies' fingerprint, and the
        vocabularies themselves, which tagging new sentences needs (:meth:`restore_state`)."""
        return {"vocabulary": self.vocabulary_fingerprint, "vocab": self.vocabularies}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Take the vocabularies from a checkpoint's state: no data is read afterwards."""
        self._vocab = {k: list(v) for k, v in state["vocab"].items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Refuse a checkpoint whose model was trained with other vocabularies."""
        check_vocabulary(state_dict.get("vocabulary"), self.vocabulary_fingerprint)

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
