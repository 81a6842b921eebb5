"""Parallel-text DataModule for translation (default Multi30k de->en, Elliott et al. 2016): BPE
vocabularies from the training side, cached ids, length-bucketed batches."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers
import torch
from lightning.pytorch import LightningDataModule
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from src.data.cache import CachedDataModule, CacheWriter, cache_key, content_digest
from src.data.errors import DataError
from src.data.parallel.pairs import EOS_ID, PAD_ID, PairDataset, pair_collate
from src.data.parallel.source import find_files, load_bpe, read_hub, read_local, write_cache
from src.data.resumable import ResumableDataLoader
from src.data.sampler import BucketBatchSampler
from src.data.vocab_check import check_vocabulary, fingerprint, short_hash, tokenizer_tokens

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
CACHE_VERSION = 2  # bump when the cache layout or the tokenisation code changes


class ParallelTextDataModule(CachedDataModule, LightningDataModule):
    """Sentence pairs ``{split}.{lang}[.gz]`` (one sentence a line) as padded id batches.

    ``prepare_data`` trains one BPE tokenizer per language on the training split only, encodes
    every split and caches tokenizers (JSON) and ids (``.npy``) under ``cache_dir/<key>``, the
    key hashing the files' content and the settings (files checked against their checksums when
    read; a damaged cache is rebuilt). Training pairs with a side longer than ``max_len``
    tokens are dropped (the count is logged); validation and test pairs are all kept. Batches:
    ``{"src" (N, S), "src_lengths" (N,), "tgt" (N, T) = <bos> y <eos>, "index" (N,)}``.

    Args:
        data_dir: Directory with the files (Multi30k: ``train``, ``val``, ``test_2016_flickr``).
        src_lang: Source language suffix. tgt_lang: Target language suffix.
        train_split: File stem of the training split. val_split: Of validation.
        test_split: Of test (also used by ``predict``, in file order).
        cache_dir: Where tokenizers and ids are cached.
        src_max_size: Source BPE vocabulary size (specials included).
        tgt_max_size: Target BPE vocabulary size (specials included).
        min_freq: Minimum count of a BPE merge in the training split.
        max_len: Longest training sequence in tokens, either side.
        batch_size: Training sentences per batch. eval_batch_size: For val/test/predict.
        bucket_size: Pool size of the length bucketing, in batches.
        seed: Seed of the bucket shuffling.
        num_workers: DataLoader worker processes.
        hub_name: Hugging Face dataset tried when the local files are missing; ``""`` disables.
    """

    pad_id = PAD_ID
    collate = staticmethod(pair_collate)

    def __init__(
        self,
        data_dir: str = "data/multi30k",
        src_lang: str = "de",
        tgt_lang: str = "en",
        train_split: str = "train",
        val_split: str = "val",
        test_split: str = "test_2016_flickr",
        cache_dir: str = "data/cache/multi30k",
        src_max_size: int = 8000,
        tgt_max_size: int = 8000,
        min_freq: int = 2,
        max_len: int = 100,
        batch_size: int = 64,
        eval_batch_size: int = 128,
        bucket_size: int = 50,
        seed: int = 42,
        num_workers: int = 0,
        hub_name: str = "bentrevett/multi30k",
    ) -> None:
        super().__init__()
        for name in ("src_max_size", "tgt_max_size", "max_len", "batch_size", "eval_batch_size"):
            if locals()[name] < 1:
                raise DataError(f"{name} must be positive, got {locals()[name]}")
        if min(src_max_size, tgt_max_size) <= 4:
            raise DataError("src_max_size and tgt_max_size must exceed the 4 special tokens")
        self.save_hyperparameters()
        self.data_dir, self.cache_dir, self.hub_name = data_dir, cache_dir, hub_name
        self.langs = (src_lang, tgt_lang)
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.settings = {
            "src_max_size": src_max_size,
            "tgt_max_size": tgt_max_size,
            "min_freq": min_freq,
        }
        self.max_len, self.batch_size, self.eval_batch_size = max_len, batch_size, eval_batch_size
        self.bucket_size, self.seed, self.num_workers = bucket_size, seed, num_workers
        self._cache_path: Path | None = None
        self._files: dict[str, list[Path]] | None = None
        self._sources: Any = None
        self._tokenizers: tuple[Tokenizer, Tokenizer] | None = None
        self.datasets: dict[str, PairDataset] = {}
        self.refs: dict[str, list[str]] = {}

    @property
    def cache_path(self) -> Path:
        """``cache_dir/<key>``: the key hashes the local files' content (or names the hub
        dataset) and every setting that changes the cached arrays."""
        if self._cache_path is None:
            self._files = find_files(self.data_dir, self.splits, self.langs)
            if self._files is None:
                if not self.hub_name:
                    read_hub(self.data_dir, self.splits, self.langs, self.hub_name)  # raises
                self._sources = ["hub", self.hub_name]
            else:
                self._sources = content_digest(p for pair in self._files.values() for p in pair)
            settings = {**self.settings, "splits": self.splits, "langs": self.langs}
            settings |= {"v": CACHE_VERSION, "tokenizers": tokenizers.__version__}
            self._cache_path = Path(self.cache_dir) / cache_key(self._sources, settings)
        return self._cache_path

    def _build(self, writer: CacheWriter) -> dict[str, Any]:
        if self._files is not None:
            data = read_local(self._files)
        else:
            data = read_hub(self.data_dir, self.splits, self.langs, self.hub_name)
        return {"sizes": write_cache(writer, data, **self.settings)}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        cache = self._open_cache()
        for split in SPLITS:
            arrays = [
                cache.read_npy(f"{split}_{side}_{kind}.npy")
                for side in ("src", "tgt")
                for kind in ("ids", "offsets")
            ]
            ds = PairDataset(*arrays)
            self.refs[split] = cache.read_json(f"{split}_refs.json")
            if split == "train":
                keep = np.flatnonzero(ds.lengths <= self.max_len)
                if len(keep) < len(ds):
                    log.warning(
                        "dropped %d of %d training pairs longer than max_len=%d tokens",
                        len(ds) - len(keep),
                        len(ds),
                        self.max_len,
                    )
                    ds = torch.utils.data.Subset(ds, keep.tolist())
                    ds.lengths = ds.dataset.lengths[keep]
            self.datasets[split] = ds

    @property
    def tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        """(source, target) tokenizers, built on first need."""
        if self._tokenizers is None:
            cache = self._open_cache()
            self._tokenizers = tuple(
                load_bpe(cache.read_text(name), self.cache_path / name)
                for name in ("src_tokenizer.json", "tgt_tokenizer.json")
            )
        return self._tokenizers

    def encode_sources(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Source sentences -> ``{"src" (N, S), "src_lengths" (N,), ...}`` as in training."""
        encodings = self.tokenizers[0].encode_batch(list(texts))
        return pair_collate(
            [{"src": e.ids, "tgt": [], "index": i} for i, e in enumerate(encodings)]
        )

    @property
    def vocabulary_fingerprint(self) -> dict[str, Any]:
        """Sizes, hash and settings of both vocabularies (see :mod:`src.data.vocab_check`)."""
        src, tgt = (tokenizer_tokens(tok) for tok in self.tokenizers)
        settings = {**self.settings, "splits": self.splits, "langs": list(self.langs)}
        settings["data"] = short_hash(self._sources)
        return fingerprint({"src": src, "tgt": tgt}, settings)

    def state_dict(self) -> dict[str, Any]:
        """What checkpoints carry of the data: the vocabularies' fingerprint, and both
        tokenizers' JSON, which translating new sentences needs (:meth:`restore_state`)."""
        src, tgt = (tok.to_str() for tok in self.tokenizers)
        return {
            "vocabulary": self.vocabulary_fingerprint,
            "src_tokenizer": src,
            "tgt_tokenizer": tgt,
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        """Take both tokenizers from a checkpoint's state: no data is read afterwards."""
        sides = ("src_tokenizer", "tgt_tokenizer")
        self._tokenizers = tuple(Tokenizer.from_str(state[side]) for side in sides)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Refuse a checkpoint whose model was trained with other vocabularies."""
        check_vocabulary(state_dict.get("vocabulary"), self.vocabulary_fingerprint)

    @property
    def src_vocab_size(self) -> int:
        return self.tokenizers[0].get_vocab_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.tokenizers[1].get_vocab_size()

    def decode_target(self, ids: torch.Tensor) -> list[str]:
        """Detokenised strings of ``(N, T)`` target ids, cut at the first ``<eos>``."""
        return [self.tokenizers[1].decode(row) for row in _until_eos(ids)]

    def source_tokens(self, ids: torch.Tensor) -> list[str]:
        """Subword strings of one source sequence (for attention plots)."""
        return [self.tokenizers[0].id_to_token(int(i)) for i in ids]

    def target_tokens(self, ids: torch.Tensor) -> list[str]:
        """Subword strings of one target sequence, up to and including ``<eos>``."""
        return [self.tokenizers[1].id_to_token(int(i)) for i in _until_eos(ids[None], True)[0]]

    def references(self, split: str, index: torch.Tensor) -> list[str]:
        """Raw reference target lines of ``split`` at dataset positions ``index``."""
        return [self.refs[split][int(i)] for i in index]

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        self.setup()
        ds = self.datasets[split]
        sampler = BucketBatchSampler(
            ds.lengths, batch_size, shuffle, False, self.bucket_size, self.seed
        )
        loader = ResumableDataLoader if shuffle else DataLoader  # training: resumable mid-epoch
        return loader(
            ds, batch_sampler=sampler, collate_fn=pair_collate, num_workers=self.num_workers
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """Test sources in file order."""
        self.setup()
        return DataLoader(
            self.datasets["test"], batch_size=self.eval_batch_size, collate_fn=pair_collate
        )


def _until_eos(ids: torch.Tensor, keep_eos: bool = False) -> list[list[int]]:
    """Rows of ``(N, T)`` ids cut at the first ``<eos>``, padding removed."""
    rows = []
    for row in ids.tolist():
        cut = row.index(EOS_ID) + keep_eos if EOS_ID in row else len(row)
        rows.append([i for i in row[:cut] if i != PAD_ID])
    return rows
