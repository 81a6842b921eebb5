"""Parallel corpus sources (local ``{split}.{lang}[.gz]`` files, else the hub) and BPE helpers."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from src.data.parallel.pairs import PAD_ID, SPECIALS, UNK_ID

log = logging.getLogger(__name__)


def local_file(data_dir: str | Path, split: str, lang: str) -> Path | None:
    """``data_dir/{split}.{lang}.gz`` or ``data_dir/{split}.{lang}``, whichever exists."""
    for name in (f"{split}.{lang}.gz", f"{split}.{lang}"):
        if (Path(data_dir) / name).is_file():
            return Path(data_dir) / name
    return None


def read_lines(path: Path) -> list[str]:
    """One sentence per line (gzip or plain UTF-8); blank lines are an error."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            lines = [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not valid UTF-8 ({e.reason} at byte {e.start})") from None
    if not lines:
        raise ValueError(f"{path} is empty: an empty split")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            raise ValueError(f"{path}:{i} is a blank line; every line must hold a sentence")
    return lines


def read_pairs(
    data_dir: str, splits: dict[str, str], langs: tuple[str, str], hub_name: str
) -> tuple[dict[str, tuple[list[str], list[str]]], list]:
    """Read every split's (source lines, target lines) and a fingerprint of where they came from.

    ``splits`` maps ``train``/``val``/``test`` to file stems (``{stem}.{lang}[.gz]`` under
    ``data_dir``). Without local files the hub dataset ``hub_name`` (splits ``train``,
    ``validation``, ``test``; one column per language) is tried.
    """
    files = {s: [local_file(data_dir, stem, lang) for lang in langs] for s, stem in splits.items()}
    if all(p is not None for pair in files.values() for p in pair):
        data, fingerprint = {}, []
        for split, (src_path, tgt_path) in files.items():
            src, tgt = read_lines(src_path), read_lines(tgt_path)
            if len(src) != len(tgt):
                raise ValueError(f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}")
            data[split] = (src, tgt)
            for p in (src_path, tgt_path):
                st = p.stat()
                fingerprint.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
        return data, fingerprint
    missing = [f"{stem}.{lang}[.gz]" for s, stem in splits.items() for lang in langs]
    where = f"{data_dir} lacks some of {missing}"
    if not hub_name:
        raise ValueError(f"{where} and the hub fallback is off (hub_name='')")
    try:
        import datasets

        hub = datasets.load_dataset(hub_name)
        names = {"train": "train", "val": "validation", "test": "test"}
        data = {s: tuple(list(hub[names[s]][lang]) for lang in langs) for s in splits}
    except Exception as e:  # offline, unknown name, missing column: one clear line
        raise ValueError(
            f"{where}, and the hub dataset {hub_name!r} could not be loaded "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            f"put the files in data_dir or fix hub_name"
        ) from None
    return data, [hub_name]


def build_bpe(texts: Sequence[str], vocab_size: int, min_freq: int) -> Tokenizer:
    """Cased BPE (Sennrich et al. 2016) trained on ``texts``, losslessly detokenisable.

    Whitespace is kept as ``▁`` (Metaspace, as SentencePiece) and punctuation is split off, so
    ``decode`` gives back the normalised text (NFKC, whitespace runs collapsed). Specials:
    ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3.
    """
    tok = Tokenizer(models.BPE(unk_token=SPECIALS[UNK_ID]))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()]
    )
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_freq, special_tokens=SPECIALS, show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    assert [tok.token_to_id(s) for s in SPECIALS] == [0, 1, 2, 3], "special token ids"
    return tok


def encode(tok: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Encode ``texts`` into flat int32 ids and int64 offsets (``len(texts) + 1``)."""
    parts = [np.asarray(e.ids, dtype=np.int32) for e in tok.encode_batch(list(texts))]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    return (np.concatenate(parts) if parts else np.zeros(0, np.int32)), offsets


def cache_key(fingerprint: list, settings: dict) -> str:
    """Short hash of the source files and every setting that changes the cached arrays."""
    blob = json.dumps([fingerprint, settings, 1], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def load_bpe(path: Path) -> Tokenizer:
    """Load a tokenizer JSON and check its special ids."""
    tok = Tokenizer.from_file(str(path))
    if tok.token_to_id(SPECIALS[PAD_ID]) != PAD_ID:
        raise ValueError(f"{path}: expected <pad>=0; delete the cache directory to rebuild it")
    return tok


def write_cache(
    path: Path,
    data: dict[str, tuple[list[str], list[str]]],
    src_max_size: int,
    tgt_max_size: int,
    min_freq: int,
) -> None:
    """Train one BPE per side on ``data["train"]`` only and write tokenizers (JSON), every
    split's ids and offsets (``.npy``) and target lines (JSON); ``meta.json`` comes last."""
    path.mkdir(parents=True, exist_ok=True)
    train_src, train_tgt = data["train"]
    toks = (
        build_bpe(train_src, src_max_size, min_freq),
        build_bpe(train_tgt, tgt_max_size, min_freq),
    )
    for side, tok in zip(("src", "tgt"), toks, strict=True):
        tok.save(str(path / f"{side}_tokenizer.json"))
    meta = {}
    for split, texts in data.items():
        for side, tok, lines in zip(("src", "tgt"), toks, texts, strict=True):
            ids, offsets = encode(tok, lines)
            np.save(path / f"{split}_{side}_ids.npy", ids)
            np.save(path / f"{split}_{side}_offsets.npy", offsets)
        (path / f"{split}_refs.json").write_text(json.dumps(texts[1]), encoding="utf-8")
        meta[split] = len(texts[0])
    tmp = path / f".meta.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, path / "meta.json")  # written last: marks the cache complete
