"""Word-level language-model DataModule on IMDB text (as in Dai & Le 2015 and Howard & Ruder 2018):
the unlabeled and training reviews as contiguous token streams for truncated BPTT, tokenised
with the classifier's own vocabulary."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from lightning.pytorch import LightningDataModule
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from src.data.chars.source import CharStreamDataset
from src.data.imdb.datamodule import IMDBDataModule
from src.data.imdb.source import find_source
from src.data.text import PAD_ID, encode_ids

CACHE_VERSION = 1  # bump when the stream layout or the text reading changes
END_ID = PAD_ID  # ends every review in the streams; the LM predicts it, its embedding stays zero


def read_texts(path: str | Path) -> list[str]:
    """The ``text`` column of a ``.csv``/``.csv.gz``/``.parquet`` table (e.g. ``unsup.csv.gz``),
    blank rows left out."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; set unsup_path to the unlabeled reviews or null"
        )
    if path.name.endswith(".parquet"):
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, encoding="utf-8", keep_default_na=False, dtype={"text": str})
    if "text" not in df.columns:
        raise ValueError(f"{path}: no 'text' column (columns: {list(df.columns)})")
    return [t for t in df["text"].tolist() if isinstance(t, str) and t.strip()]


def join_reviews(ids: np.ndarray, offsets: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The reviews ``order`` of a flat ``ids``/``offsets`` array, each followed by ``END_ID``."""
    parts = []
    for i in order:
        parts += [ids[offsets[i] : offsets[i + 1]], np.array([END_ID], dtype=np.int32)]
    return np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, dtype=np.int32)


class IMDBLMDataModule(LightningDataModule):
    """IMDB text as contiguous ``{"x", "y"}`` batches of ``(N, bptt)`` token ids (truncated BPTT).

    The vocabulary is the classifier's: an :class:`~src.data.imdb.datamodule.IMDBDataModule`
    with the same data and tokenisation settings builds (or finds) its cache, and its
    ``tokenizer.json`` encodes the text here, untruncated. Training text: the unlabeled reviews
    (``unsup_path``) and the classifier's training part, shuffled once by ``seed``; validation
    text: the classifier's validation reviews. Test reviews are never read into a stream. Every
    review ends with :data:`END_ID` (``<pad>``, id 0). The last ``test_reviews`` unlabeled
    reviews are held out as the test text. Streams are cached as ``.npy`` under
    ``cache_dir/lm-<key>`` and cut into ``N`` parallel rows read ``bptt`` steps at a time
    (:class:`~src.data.chars.source.CharStreamDataset`), so the task carries its state across
    batches (``stateful``). One process only (no DDP sharding).

    Args:
        data_dir: IMDB ``aclImdb/`` tree or ``train``/``test`` tables, as for the classifier.
        cache_dir: The classifier's cache directory (shared: same tokenizer); streams go to
            ``lm-<key>`` in it.
        unsup_path: Table with a ``text`` column of unlabeled reviews; ``None`` uses only the
            training reviews.
        tokenizer: ``"word"`` or ``"bpe"``, as the classifier's.
        max_size: Vocabulary size cap, as the classifier's.
        min_freq: Minimum count, as the classifier's.
        max_len: The classifier's ``max_len``; it only selects the shared cache, the streams
            keep every review whole.
        val_size: The classifier's validation fraction (its reviews are the LM's validation).
        seed: The classifier's seed; also shuffles the training reviews.
        batch_size: Parallel training rows ``N``.
        bptt: Steps per batch, the truncated-BPTT length ``L``.
        eval_batch_size: Parallel validation rows; default ``batch_size``.
        max_tokens: Keep only the first ``max_tokens`` of the training stream; ``None`` keeps all.
        test_reviews: Unlabeled reviews (the last ones) held out as the test stream.
        num_workers: DataLoader worker processes.
        hub_name: Hugging Face dataset tried when ``data_dir`` has no data; ``""`` disables it.
        reverse: Read every stream back to front: a backward language model (Howard & Ruder
            2018) for a classifier that reads reviews reversed.
    """

    stateful = True  # contiguous streams: the task carries its state across batches

    def __init__(
        self,
        data_dir: str = "data/imdb",
        cache_dir: str = "data/cache/imdb",
        unsup_path: str | None = "data/imdb/unsup.csv.gz",
        tokenizer: Literal["word", "bpe"] = "word",
        max_size: int = 30000,
        min_freq: int = 2,
        max_len: int = 400,
        val_size: float = 0.1,
        seed: int = 42,
        batch_size: int = 64,
        bptt: int = 70,
        eval_batch_size: int | None = None,
        max_tokens: int | None = None,
        test_reviews: int = 1000,
        num_workers: int = 0,
        hub_name: str = "stanfordnlp/imdb",
        reverse: bool = False,
    ) -> None:
        super().__init__()
        eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        sizes = {"batch_size": batch_size, "bptt": bptt, "eval_batch_size": eval_batch_size}
        for name, value in {**sizes, "max_tokens": max_tokens or 1}.items():
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        if not 0.0 < val_size < 1.0:
            raise ValueError(
                f"val_size must be in (0, 1): the LM validates on those reviews, got {val_size}"
            )
        self.save_hyperparameters()
        self.imdb = IMDBDataModule(
            data_dir=data_dir,
            cache_dir=cache_dir,
            tokenizer=tokenizer,
            max_size=max_size,
            min_freq=min_freq,
            max_len=max_len,
            val_size=val_size,
            seed=seed,
            hub_name=hub_name,
        )
        self.unsup_path, self.seed, self.batch_size, self.bptt = unsup_path, seed, batch_size, bptt
        self.eval_batch_size, self.max_tokens = eval_batch_size, max_tokens
        self.num_workers, self.test_reviews = num_workers, test_reviews
        self.reverse = reverse
        self.ids: dict[str, torch.Tensor] = {}

    @property
    def cache_path(self) -> Path:
        """``cache_dir/lm-<key>``: the key hashes the classifier's cache key and ``unsup_path``."""
        unsup = Path(self.unsup_path) if self.unsup_path else None
        stat = unsup.stat() if unsup is not None and unsup.is_file() else None
        src = [str(unsup.resolve()), stat.st_size, stat.st_mtime_ns] if stat else str(unsup)
        blob = {"v": CACHE_VERSION, "imdb": self.imdb.cache_path.name, "unsup": src}
        blob["test_reviews"] = self.test_reviews
        key = hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]
        return self.imdb.cache_path.parent / f"lm-{key}"

    @property
    def tokenizer(self) -> Tokenizer:
        """The classifier's tokenizer (from its cache, which is built on first need)."""
        return self.imdb.tokenizer

    @property
    def vocab_size(self) -> int:
        return self.imdb.vocab_size

    def prepare_data(self) -> None:
        """Encode the training and validation streams unless they are cached."""
        out = self.cache_path
        if (out / "meta.json").is_file():
            return
        self.imdb.prepare_data()
        tok = Tokenizer.from_str(self.tokenizer.to_str())
        tok.no_truncation()  # the classifier's cache truncates; the LM reads whole reviews
        source = find_source(self.imdb.data_dir, self.imdb.hub_name)
        train_texts = source.load(splits=("train",))["train"][0]  # never the test reviews
        val_rows = np.load(self.imdb.cache_path / "val_rows.npy")
        held_out = np.zeros(len(train_texts), dtype=bool)
        held_out[val_rows] = True
        unsup = read_texts(self.unsup_path) if self.unsup_path else []
        n_test = min(self.test_reviews, len(unsup) // 2)
        texts = {
            "train": unsup[: len(unsup) - n_test]
            + [t for t, h in zip(train_texts, held_out, strict=True) if not h],
            "val": [train_texts[i] for i in val_rows],
            "test": unsup[len(unsup) - n_test :],
        }
        tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.mkdir(parents=True)
        meta: dict[str, dict[str, float]] = {}
        for split, split_texts in texts.items():
            ids, offsets = encode_ids(tok, split_texts)
            order = np.arange(len(split_texts))
            if split == "train":
                order = np.random.default_rng(self.seed).permutation(len(split_texts))
            stream = join_reviews(ids, offsets, order)
            np.save(tmp / f"{split}.npy", stream)
            unk = float((ids == tok.token_to_id("<unk>")).mean()) if len(ids) else 0.0
            meta[split] = {"reviews": len(split_texts), "tokens": len(stream), "unk_rate": unk}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))  # last: marks a full cache
        try:
            os.replace(tmp, out)
        except OSError:  # another process published the same cache first
            shutil.rmtree(tmp, ignore_errors=True)

    def setup(self, stage: str | None = None) -> None:
        if not self.ids:
            self.prepare_data()
            for split in ("train", "val", "test"):
                ids = np.load(self.cache_path / f"{split}.npy")
                if split == "train" and self.max_tokens is not None:
                    ids = ids[: self.max_tokens]
                if self.reverse:  # each review reversed, each now after its END_ID
                    ids = np.ascontiguousarray(ids[::-1])
                self.ids[split] = torch.from_numpy(ids)

    def _loader(self, split: str, rows: int, drop_last: bool) -> DataLoader:
        if self.trainer is not None and self.trainer.world_size > 1:
            raise ValueError("IMDBLMDataModule streams run on one process; set trainer.devices=1")
        self.setup()
        dataset = CharStreamDataset(self.ids[split], rows, self.bptt, drop_last)
        return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, drop_last=False)
