"""IMDB sentiment DataModule (Maas et al. 2011): cached token ids, length-bucketed batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch import LightningDataModule
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from tokenizers import Tokenizer
from torch.utils.data import DataLoader, DistributedSampler

from src.data.cache import CachedDataModule, CacheWriter
from src.data.collate import TokenDataset, pad_collate
from src.data.errors import DataError
from src.data.imdb.source import Source, build_cache, cache_key, find_source
from src.data.resumable import ResumableDataLoader
from src.data.sampler import BucketBatchSampler
from src.data.text import PAD_ID, encode_ids, load_glove, parse_tokenizer, reverse_each
from src.data.vocab_check import check_vocabulary, fingerprint, short_hash, tokenizer_tokens

SPLITS = ("train", "val", "test")


class IMDBDataModule(CachedDataModule, LightningDataModule):
    """IMDB movie reviews as padded token-id batches for binary sentiment (0 neg, 1 pos).

    Sources, in order: ``data_dir`` holding the original ``aclImdb/`` tree (or being it), or
    ``train``/``test`` tables (``.csv``, ``.csv.gz``, ``.parquet``; columns ``text,label``),
    else the Hugging Face hub. ``prepare_data`` carves the validation split out of train,
    trains the tokenizer on the rest and caches the ids as ``.npy`` under
    ``cache_dir/<key>/`` (the key hashes the source files' content and every tokenisation
    setting; every file is checked against its checksum when read, a damaged cache is rebuilt);
    ``setup`` loads them. Batches are ``{"tokens" (N, L), "lengths" (N,), "labels" (N,)}``.
    Checkpoints carry the vocabulary's fingerprint, and one trained with another vocabulary is
    refused (:mod:`src.data.vocab_check`).

    Distributed: the bucketed loaders shard whole batches across ranks themselves
    (``num_replicas``/``rank`` from the trainer, epoch from Lightning's ``set_epoch``): training
    batches in equal numbers per rank, validation and test batches each dealt once (a rank may
    hold one more), so DDP metrics equal a single process's. The DDP trainer preset should
    therefore set ``use_distributed_sampler: false``. If
    it is left ``true``, Lightning injects a ``DistributedSampler`` into the batch sampler,
    which then buckets that rank's shard of examples instead: also disjoint and equal in size.

    Args:
        data_dir: directory with ``aclImdb/`` or ``train``/``test`` CSV/Parquet files.
        cache_dir: where tokenised ids are cached (one subdirectory per data + settings).
        tokenizer: ``"word"`` (word level, lower-cased) or ``"bpe"`` (subwords, lower-cased).
        max_size: vocabulary size cap, ``<pad>`` and ``<unk>`` included.
        min_freq: minimum count of a word (or BPE merge) in the training part.
        max_len: reviews are truncated to this many tokens.
        val_size: fraction of the training reviews held out for validation (seeded).
        seed: seed of the validation split, the bucket shuffling and the random vector rows.
        batch_size: training batch size.
        eval_batch_size: validation/test/predict batch size; default ``batch_size``.
        bucket: length-bucketed training batches; ``False`` uses plain shuffled batches.
        num_workers: DataLoader worker processes.
        pin_memory: pin batches in page-locked memory (faster host-to-GPU copies).
        hub_name: Hugging Face dataset tried when ``data_dir`` has no data; ``""`` disables it.
        vectors_path: optional GloVe text file; see :attr:`vectors`.
        reverse: every review read back to front (last token first), for a backward classifier
            on a backward language model (``configs/imdb_finetune_backward.yaml``).
    """

    num_classes = 2
    label_names = ("negative", "positive")
    pad_id = PAD_ID

    def __init__(
        self,
        data_dir: str = "data/imdb",
        cache_dir: str = "data/cache/imdb",
        tokenizer: Literal["word", "bpe"] = "word",
        max_size: int = 30000,
        min_freq: int = 2,
        max_len: int = 400,
        val_size: float = 0.1,
        seed: int = 42,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        bucket: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        hub_name: str = "stanfordnlp/imdb",
        vectors_path: str | None = None,
        reverse: bool = False,
    ) -> None:
        super().__init__()
        if tokenizer not in ("word", "bpe"):
            raise DataError(f"tokenizer must be 'word' or 'bpe', got {tokenizer!r}")
        if not 0.0 <= val_size < 1.0:
            raise DataError(f"val_size must be a fraction in [0, 1), got {val_size}")
        eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        sizes = {"max_size": max_size, "max_len": max_len, "batch_size": batch_size}
        for name, value in {**sizes, "eval_batch_size": eval_batch_size}.items():
            if value < 1:
                raise DataError(f"{name} must be positive, got {value}")
        self.save_hyperparameters()
        self.data_dir, self.cache_dir, self.tokenizer_kind = data_dir, cache_dir, tokenizer
        self.max_size, self.min_freq, self.max_len = max_size, min_freq, max_len
        self.val_size, self.seed, self.batch_size = val_size, seed, batch_size
        self.eval_batch_size = eval_batch_size
        self.bucket, self.num_workers, self.pin_memory = bucket, num_workers, pin_memory
        self.hub_name, self.vectors_path, self.reverse = hub_name, vectors_path, reverse
        self._source: Source | None = None
        self._cache_path: Path | None = None
        self._tokenizer: Tokenizer | None = None
        self._vectors: torch.Tensor | None = None
        self.datasets: dict[str, TokenDataset] = {}

    @property
    def cache_path(self) -> Path:
        """``cache_dir/<key>``, the key hashing the source files and the tokenisation settings."""
        if self._cache_path is None:
            self._source = find_source(self.data_dir, self.hub_name)
            key = cache_key(self._source, **self._settings())
            self._cache_path = Path(self.cache_dir) / key
        return self._cache_path

    def _settings(self) -> dict[str, Any]:
        keys = ("max_size", "min_freq", "max_len", "val_size", "seed")
        return {"tokenizer": self.tokenizer_kind, **{k: getattr(self, k) for k in keys}}

    def _build(self, writer: CacheWriter) -> dict[str, Any]:
        return build_cache(self._source, writer, **self._settings())

    def setup(self, stage: str | None = None) -> None:
        """Load the cached train/val/test ids (building the cache first if it is missing)."""
        if self.datasets:
            return
        cache = self._open_cache()
        for split in SPLITS:
            ids, offsets = (cache.read_npy(f"{split}_{n}.npy") for n in ("ids", "offsets"))
            ids = reverse_each(ids, offsets) if self.reverse else ids  # the cache is shared
            labels = cache.read_npy(f"{split}_labels.npy")
            self.datasets[split] = TokenDataset(ids, offsets, labels=labels)

    @property
    def tokenizer(self) -> Tokenizer:
        """The trained Hugging Face tokenizer (loaded from the cache, built on first need)."""
        if self._tokenizer is None:
            cache = self._open_cache()
            text = cache.read_text("tokenizer.json")
            self._tokenizer = parse_tokenizer(text, self.cache_path / "tokenizer.json")
        return self._tokenizer

    @property
    def vocabulary_fingerprint(self) -> dict[str, Any]:
        """Size, hash and settings of the vocabulary (see :mod:`src.data.vocab_check`)."""
        tokens = tokenizer_tokens(self.tokenizer)  # resolves the source too
        settings = {**self._settings(), "data": short_hash(self._source.fingerprint)}
        return fingerprint({"tokens": tokens}, settings)

    def state_dict(self) -> dict[str, Any]:
        """What checkpoints carry of the data: the vocabulary's fingerprint, and what
        ``encode_texts`` needs without the data (:meth:`restore_state`): the tokenizer's own JSON
        and the label names."""
        state = {"vocabulary": self.vocabulary_fingerprint, "tokenizer": self.tokenizer.to_str()}
        return state | {"label_names": list(self.label_names)}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Take the tokenizer from a checkpoint's state: ``encode_texts`` then reads no file."""
        self._tokenizer = Tokenizer.from_str(state["tokenizer"])

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Refuse a checkpoint whose model was trained with another vocabulary."""
        check_vocabulary(state_dict.get("vocabulary"), self.vocabulary_fingerprint)

    @property
    def vocab_size(self) -> int:
        """Vocabulary size incl. specials; builds the cache when read before ``prepare_data``."""
        return self.tokenizer.get_vocab_size()

    @property
    def vectors(self) -> torch.Tensor | None:
        """Pretrained embedding matrix ``(vocab_size, dim)`` from ``vectors_path``, else None."""
        if self.vectors_path is not None and self._vectors is None:
            self._vectors = load_glove(self.vectors_path, self.tokenizer, seed=self.seed)
        return self._vectors

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw texts -> flat ``ids`` and ``offsets`` (:func:`~src.data.text.encode_ids`), cut to
        ``max_len`` and reversed as the training data."""
        ids, offsets = encode_ids(self.tokenizer, texts, self.max_len)
        return (reverse_each(ids, offsets) if self.reverse else ids), offsets

    def encode_texts(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Raw texts -> ``{"tokens" (N, L), "lengths" (N,)}`` exactly as the training data."""
        return pad_collate(TokenDataset(*self.encode(texts)))

    def _world(self) -> dict[str, int]:
        """World size and rank: the trainer's, else ``torch.distributed``'s, else 1 and 0."""
        if self.trainer is not None:
            return {"num_replicas": self.trainer.world_size, "rank": self.trainer.global_rank}
        if dist.is_available() and dist.is_initialized():
            return {"num_replicas": dist.get_world_size(), "rank": dist.get_rank()}
        return {"num_replicas": 1, "rank": 0}

    def _loader(
        self, split: str, batch_size: int, shuffle: bool, bucket: bool, labels: bool = True
    ) -> DataLoader:
        if not self.datasets:
            self.setup()
        ds = self.datasets[split]  # val is empty when val_size=0: Lightning then skips validation
        if not labels:
            ds = TokenDataset(ds.ids.numpy(), ds.offsets)
        common: dict[str, Any] = {
            "collate_fn": pad_collate,
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.num_workers > 0,
        }
        if bucket:
            # evaluation deals every batch exactly once: DDP metrics equal one process's
            sampler = BucketBatchSampler(
                ds.lengths,
                batch_size,
                shuffle,
                seed=self.seed,
                even=split == "train",
                **self._world(),
            )
            loader = ResumableDataLoader if shuffle else DataLoader  # training: resumable mid-epoch
            return loader(ds, batch_sampler=sampler, **common)
        # Plain batches still go through a DistributedSampler, even on one process: its shuffle
        # is seeded by (seed, epoch), so a resumed run repeats it, and each rank keeps its own
        # shard whatever use_distributed_sampler says. Predict never repeats an example.
        kind = DistributedSampler if labels else UnrepeatedDistributedSampler
        sampler = kind(ds, shuffle=shuffle, seed=self.seed, **self._world())
        loader = ResumableDataLoader if shuffle else DataLoader
        return loader(ds, batch_size=batch_size, sampler=sampler, **common)

    def train_dataloader(self) -> DataLoader:
        """Training batches: length-bucketed and reshuffled every epoch (or plain shuffled)."""
        return self._loader("train", self.batch_size, shuffle=True, bucket=self.bucket)

    def val_dataloader(self) -> DataLoader:
        """Validation batches, sorted by length (longest first)."""
        return self._loader("val", self.eval_batch_size, shuffle=False, bucket=True)

    def test_dataloader(self) -> DataLoader:
        """Test batches, sorted by length (longest first)."""
        return self._loader("test", self.eval_batch_size, shuffle=False, bucket=True)

    def predict_dataloader(self) -> DataLoader:
        """Test reviews without labels in file order: batch ``i`` holds rows ``i * bs ...``.

        Under DDP each rank predicts rows ``rank, rank + world, ...``; Lightning's batch indices
        map them back.
        """
        return self._loader("test", self.eval_batch_size, shuffle=False, bucket=False, labels=False)
