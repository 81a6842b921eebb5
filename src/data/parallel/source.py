"""Parallel corpus sources (local ``{split}.{lang}[.gz]`` files, else the hub) and BPE helpers."""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from src.data.cache import CacheWriter
from src.data.errors import DataError, DataNotFoundError, read_error
from src.data.hub import load_hub_dataset
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
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as e:
        raise read_error(path, e) from None
    if not lines:
        raise DataError(f"{path} is empty: an empty split")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            raise DataError(f"{path}:{i} is a blank line; every line must hold a sentence")
    return lines


def find_files(data_dir: str, splits: dict[str, str], langs: tuple[str, str]) -> dict | None:
    """Every split's ``(source file, target file)``, or None when any of them is missing."""
    files = {s: [local_file(data_dir, stem, lang) for lang in langs] for s, stem in splits.items()}
    return files if all(p is not None for pair in files.values() for p in pair) else None


def read_local(files: dict[str, list[Path]]) -> dict[str, tuple[list[str], list[str]]]:
    """Every split's (source lines, target lines) from :func:`find_files`' files."""
    data = {}
    for split, (src_path, tgt_path) in files.items():
        src, tgt = read_lines(src_path), read_lines(tgt_path)
        if len(src) != len(tgt):
            raise DataError(
                f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}; "
                "line i of one must translate line i of the other"
            )
        data[split] = (src, tgt)
    return data


def read_hub(
    data_dir: str, splits: dict[str, str], langs: tuple[str, str], hub_name: str
) -> dict[str, tuple[list[str], list[str]]]:
    """Every split from the hub dataset ``hub_name`` (splits ``train``, ``validation``,
    ``test``; one column per language), for when ``data_dir`` lacks the files."""
    missing = [f"{stem}.{lang}[.gz]" for s, stem in splits.items() for lang in langs]
    where = f"{data_dir} lacks some of {missing}"
    if not hub_name:
        raise DataNotFoundError(
            f"{where} and the hub fallback is off (hub_name=''); put the files there or set "
            "data_dir"
        )
    try:
        hub = load_hub_dataset(hub_name)
        names = {"train": "train", "val": "validation", "test": "test"}
        return {s: tuple(list(hub[names[s]][lang]) for lang in langs) for s in splits}
    except Exception as e:  # offline, unknown name, missing column: one clear line
        raise DataNotFoundError(
            f"{where}, and the hub dataset {hub_name!r} could not be loaded "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            f"put the files in data_dir or fix hub_name"
        ) from None


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


def load_bpe(text: str, where: Path) -> Tokenizer:
    """A tokenizer from its JSON ``text`` (read from ``where``), special ids checked."""
    try:
        tok = Tokenizer.from_str(text)
    except Exception as e:  # the Rust side raises its own exception type
        raise DataError(f"{where} is not a tokenizer ({' '.join(str(e).split())})") from None
    if tok.token_to_id(SPECIALS[PAD_ID]) != PAD_ID:
        raise DataError(f"{where}: expected <pad>=0; delete the cache directory to rebuild it")
    return tok


def write_cache(
    writer: CacheWriter,
    data: dict[str, tuple[list[str], list[str]]],
    src_max_size: int,
    tgt_max_size: int,
    min_freq: int,
) -> dict[str, int]:
    """Train one BPE per side on ``data["train"]`` only and write tokenizers (JSON), every
    split's ids and offsets (``.npy``) and target lines (JSON). Returns the split sizes."""
    train_src, train_tgt = data["train"]
    toks = (
        build_bpe(train_src, src_max_size, min_freq),
        build_bpe(train_tgt, tgt_max_size, min_freq),
    )
    for side, tok in zip(("src", "tgt"), toks, strict=True):
        writer.write(f"{side}_tokenizer.json", tok.to_str().encode("utf-8"))
    sizes = {}
    for split, texts in data.items():
        for side, tok, lines in zip(("src", "tgt"), toks, texts, strict=True):
            ids, offsets = encode(tok, lines)
            writer.save_npy(f"{split}_{side}_ids.npy", ids)
            writer.save_npy(f"{split}_{side}_offsets.npy", offsets)
        writer.save_json(f"{split}_refs.json", texts[1])
        sizes[split] = len(texts[0])
    return sizes
