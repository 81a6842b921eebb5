"""Parallel-text DataModule for translation (default Multi30k de->en, Elliott et al. 2016): BPE
vocabularies from the training side, cached ids, length-bucketed batches."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from src.data.parallel.pairs import EOS_ID, PAD_ID, PairDataset, pair_collate
from src.data.parallel.source import cache_key, load_bpe, read_pairs, write_cache
from src.data.resumable import ResumableDataLoader
from src.data.sampler import BucketBatchSampler

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


class ParallelTextDataModule(LightningDataModule):
    """Sentence pairs ``{split}.{lang}[.gz]`` (one sentence a line) as padded id batches.

    ``prepare_data`` trains one BPE tokenizer per language on the training split only, encodes
    every split and caches tokenizers (JSON) and ids (``.npy``) under ``cache_dir/<key>``, the
    key hashing the files and the settings. Training pairs with a side longer than ``max_len``
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
                raise ValueError(f"{name} must be positive, got {locals()[name]}")
        if min(src_max_size, tgt_max_size) <= 4:
            raise ValueError("src_max_size and tgt_max_size must exceed the 4 special tokens")
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
        self._tokenizers: tuple[Tokenizer, Tokenizer] | None = None
        self.datasets: dict[str, PairDataset] = {}
        self.refs: dict[str, list[str]] = {}

    @property
    def cache_path(self) -> Path:
        """``cache_dir/<key>``; reading it reads (and fingerprints) the corpus once."""
        if self._cache_path is None:
            self._data, fingerprint = read_pairs(
                self.data_dir, self.splits, self.langs, self.hub_name
            )
            key = cache_key(fingerprint, {**self.settings, "splits": self.splits})
            self._cache_path = Path(self.cache_dir) / key
        return self._cache_path

    def prepare_data(self) -> None:
        """Train the tokenizers on the training split and cache every split's ids."""
        path = self.cache_path
        if (path / "meta.json").is_file():
            return
        write_cache(path, self._data, **self.settings)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.prepare_data()
        for split in SPLITS:
            arrays = [
                np.load(self.cache_path / f"{split}_{side}_{kind}.npy")
                for side in ("src", "tgt")
                for kind in ("ids", "offsets")
            ]
            ds = PairDataset(*arrays)
            self.refs[split] = json.loads(
                (self.cache_path / f"{split}_refs.json").read_text("utf-8")
            )
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
            self.prepare_data()
            self._tokenizers = tuple(
                load_bpe(self.cache_path / f"{side}_tokenizer.json") for side in ("src", "tgt")
            )
        return self._tokenizers

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
