"""IMDB review sources (aclImdb tree, train/test tables, the hub) and the on-disk token-id cache."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tokenizers

from src.data import cache
from src.data.errors import DataError, DataNotFoundError
from src.data.hub import load_hub_dataset
from src.data.text import TABLE_SUFFIXES, build_tokenizer, encode_ids, read_labeled_table

CACHE_VERSION = 2  # bump when the cache layout or the tokenisation code changes
Splits = dict[str, tuple[list[str], np.ndarray]]  # "train"/"test" -> (texts, labels)


def _review_id(entry: os.DirEntry) -> tuple[int, str]:
    head = entry.name.split("_")[0]  # {id}_{rating}.txt
    return (int(head) if head.isdigit() else -1, entry.name)


def _acl_source(root: Path) -> Source:
    """The ``aclImdb/{train,test}/{neg,pos}/{id}_{rating}.txt`` tree: neg then pos, by id."""
    files: dict[str, list[tuple[Path, int]]] = {"train": [], "test": []}
    digest = hashlib.sha256()  # names and contents of every review, in reading order
    for split, split_files in files.items():
        for label, sub in enumerate(("neg", "pos")):
            with os.scandir(root / split / sub) as it:
                entries = sorted((e for e in it if e.name.endswith(".txt")), key=_review_id)
            for e in entries:
                split_files.append((Path(e.path), label))
                data = _read_bytes(Path(e.path))
                digest.update(f"{split}/{sub}/{e.name}:{len(data)}:".encode() + data)
        if not split_files:
            raise DataError(f"{root / split} has no neg/pos *.txt reviews: an empty split")
    return Source("acl", str(root), files, [digest.hexdigest()])


def _read_bytes(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {p} ({e.strerror})") from None


def _read_utf8(p: Path) -> str:
    try:
        return _read_bytes(p).decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{p} is not valid UTF-8 ({e.reason} at byte {e.start})") from None


def _missing_data(data_dir: Path, hub: str, why: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"IMDB data not found: {data_dir} has no aclImdb/ tree and no train/test "
        f".csv/.csv.gz/.parquet files (columns text,label), and the hub dataset {hub!r} {why}. "
        f"Put the files in {data_dir} or set --data.data_dir to the directory that holds them."
    )


@dataclass
class Source:
    """Where the reviews are (picklable); ``fingerprint`` hashes their content, so it changes
    whenever the data does, even when sizes and modification times stay.

    ``kind`` is ``"acl"`` (``files`` maps each split to its ``(path, label)`` review files),
    ``"tables"`` (``files`` maps each split to one ``[(path, -1)]`` table) or ``"hub"``
    (``location`` is the dataset name).
    """

    kind: Literal["acl", "tables", "hub"]
    location: str
    files: dict[str, list[tuple[Path, int]]]
    fingerprint: list[Any]

    @property
    def description(self) -> str:
        return f"{self.kind} source {self.location}"

    def load(self, splits: tuple[str, ...] = ("train", "test")) -> Splits:
        """Read ``splits``: ``{"train": (texts, labels), "test": (texts, labels)}`` by default."""
        if self.kind == "tables":
            return {s: read_labeled_table(self.files[s][0][0]) for s in splits}
        if self.kind == "acl":
            return {
                s: (
                    [_read_utf8(p) for p, _ in self.files[s]],
                    np.array([y for _, y in self.files[s]], dtype=np.int64),
                )
                for s in splits
            }
        ds = _load_hub(self.location, Path(self.location))
        return {s: (list(ds[s]["text"]), np.asarray(ds[s]["label"])) for s in splits}


def _load_hub(name: str, data_dir: Path) -> Any:
    try:
        ds = load_hub_dataset(name)
    except Exception as e:
        reason = " ".join(str(e).split())[:200]
        raise _missing_data(
            data_dir, name, f"could not be loaded ({type(e).__name__}: {reason})"
        ) from None
    for split in ("train", "test"):
        if split not in ds or not {"text", "label"} <= set(ds[split].column_names):
            raise DataError(f"hub dataset {name!r} needs train and test splits with text,label")
    return ds


def find_source(data_dir: str | Path, hub_name: str = "stanfordnlp/imdb") -> Source:
    """Resolve the reviews: an ``aclImdb/`` tree, else train/test tables, else the hub.

    ``data_dir`` may contain ``aclImdb/`` or be that tree itself; tables are ``train`` and
    ``test`` with suffix ``.csv``, ``.csv.gz`` or ``.parquet``. An empty ``hub_name`` disables
    the hub. The hub is tried through ``datasets.load_dataset(hub_name)``.
    """
    data_dir = Path(data_dir)
    for root in (data_dir / "aclImdb", data_dir):
        if all((root / s / y).is_dir() for s in ("train", "test") for y in ("neg", "pos")):
            return _acl_source(root.resolve())
    tables = {}
    for split in ("train", "test"):
        found = [data_dir / f"{split}{x}" for x in TABLE_SUFFIXES]
        tables[split] = next((p for p in found if p.is_file()), None)
    if tables["train"] and tables["test"]:
        files = {s: [(p, -1)] for s, p in tables.items() if p is not None}
        digest = cache.content_digest(fs[0][0] for fs in files.values())
        return Source("tables", str(data_dir), files, digest)
    if tables["train"] or tables["test"]:
        lack = "test" if tables["train"] else "train"
        raise DataNotFoundError(
            f"{data_dir} has a split file but no {lack}.csv/.csv.gz/.parquet; add it"
        )
    if not hub_name:
        raise _missing_data(data_dir, hub_name, "is disabled (hub_name is empty)")
    ds = _load_hub(hub_name, data_dir)
    fingerprint = [hub_name, ds["train"]._fingerprint, ds["test"]._fingerprint]
    return Source("hub", hub_name, {}, fingerprint)


def _check_labels(where: str, labels: np.ndarray) -> None:
    bad = ~np.isin(labels, (0, 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: label {labels[i].item()!r} at row {i} is not 0 or 1")


def cache_key(source: Source, **settings: Any) -> str:
    """Hash of the source's content, every tokenisation setting and the code versions."""
    versions = {"v": CACHE_VERSION, "tokenizers": tokenizers.__version__}
    return cache.cache_key(source.fingerprint, {**versions, **settings})


def build_cache(
    source: Source,
    writer: cache.CacheWriter,
    *,
    tokenizer: Literal["word", "bpe"],
    max_size: int,
    min_freq: int,
    max_len: int,
    val_size: float,
    seed: int,
) -> dict[str, Any]:
    """Tokenise ``source`` into ``writer``: ``tokenizer.json``, per split ``{split}_ids.npy``
    (int32, flat), ``{split}_offsets.npy`` (int64), ``{split}_labels.npy`` (int64) and
    ``val_rows.npy`` (rows of the source train split held out). Returns the manifest's info.
    """
    data = source.load()
    for split, (texts, labels) in data.items():
        if len(texts) == 0:
            raise DataError(f"{source.description}: the {split} split is empty")
        _check_labels(f"{source.description} ({split})", labels)
    texts, labels = data["train"]
    n_val = int(round(val_size * len(texts)))
    perm = np.random.default_rng(seed).permutation(len(texts))
    rows = {"val": np.sort(perm[:n_val]), "train": np.sort(perm[n_val:])}
    if len(rows["train"]) == 0:
        raise DataError(f"val_size={val_size} leaves no training reviews; lower val_size")
    parts = {s: ([texts[i] for i in r], labels[r]) for s, r in rows.items()}
    parts["test"] = data["test"]
    # the vocabulary sees the training part only: never validation or test reviews
    tok = build_tokenizer(parts["train"][0], tokenizer, max_size, min_freq, max_len)
    source_rows = {**rows, "test": np.arange(len(data["test"][0]))}
    writer.write("tokenizer.json", tok.to_str().encode("utf-8"))
    writer.save_npy("val_rows.npy", rows["val"])
    sizes = {}
    for split, (split_texts, split_labels) in parts.items():
        ids, offsets = encode_ids(tok, split_texts, max_len)
        empty = np.flatnonzero(np.diff(offsets) == 0)
        if len(empty):
            row = source_rows[split][empty[0]]
            src = "test" if split == "test" else "train"
            raise DataError(
                f"empty review after tokenisation at index {row} of the {src} split of "
                f"{source.description}; remove empty texts from the data"
            )
        for name, arr in (("ids", ids), ("offsets", offsets), ("labels", split_labels)):
            writer.save_npy(f"{split}_{name}.npy", arr)
        sizes[split] = len(split_texts)
    return {"source": source.description, "sizes": sizes, "vocab_size": tok.get_vocab_size()}
