"""Checkpoint files: atomic writes, and reads that refuse damage and pickled code in one line.

A file carries two checksums. The checkpoint's entries hold :func:`checksum` of all the others
(what ``torch.load`` returns: weights, optimizer, hyperparameters, ...); the zip archive's
comment holds the sha256 of the file's bytes before it, which also covers the bytes a reader
skips (zip headers, alignment padding).
"""

import hashlib
import io
import os
import re
import struct
import uuid
import warnings
from pathlib import Path
from typing import Any

import torch

from src.checkpoints.checksum import CHECKSUM_KEY, checksum, compact
from src.errors import SeqLabError

_END = b"PK\x05\x06"  # zip end-of-central-directory record, 22 bytes + comment, ends the file
_TAG = b"seqlab-sha256:"
_COMMENT = len(_TAG) + 64


def _digest_comment(data: memoryview) -> bytes | None:
    """The archive comment to append to ``data`` (a zip without comment), else ``None``."""
    if bytes(data[-22:-18]) != _END or bytes(data[-2:]) != b"\0\0":
        return None
    tag = _TAG + hashlib.sha256(data[:-2]).hexdigest().encode()
    return struct.pack("<H", len(tag)) + tag


def file_intact(raw: bytes) -> bool | None:
    """Whether the file's bytes match the sha256 in its archive comment (``None``: no comment)."""
    end = len(raw) - _COMMENT - 22  # where the end record starts when our comment follows it
    if end < 0 or raw[end : end + 4] != _END:
        return None
    length, comment = raw[end + 20 : end + 22], raw[end + 22 :]
    digest = hashlib.sha256(raw[: end + 20]).hexdigest().encode()
    return length == struct.pack("<H", _COMMENT) and comment == _TAG + digest


def save_atomic(checkpoint: dict, path: str | Path) -> None:
    """Write ``checkpoint`` with its checksums to a temporary file next to ``path``, flush it to
    disk and rename it over ``path``: a kill at any moment leaves the old file or the new one,
    whatever ``$TMPDIR`` is."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = compact(checkpoint)
    buffer = io.BytesIO()
    torch.save({**checkpoint, CHECKSUM_KEY: checksum(checkpoint)}, buffer)
    data = buffer.getbuffer()
    comment = _digest_comment(data)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed write
        stale.unlink(missing_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "xb") as f:
            f.write(data if comment is None else data[:-2])
            f.write(comment or b"")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself reaches the disk
    finally:
        os.close(folder)


def load_error(error: Exception) -> str:
    """The useful part of a loading error, without torch's advice to unpickle arbitrary code."""
    text = str(error)
    found = re.search(r"WeightsUnpickler error: ([^\n]+)", text)
    text = found.group(1).strip() if found else (text.strip().splitlines() or [""])[0]
    text = text if len(text) > 12 else f"{type(error).__name__} {text}".strip()
    return text if len(text) <= 120 else text[:117] + "..."


def _fix(path: Path) -> str:
    others = sorted(p.name for p in path.parent.glob("*.ckpt") if p.name != path.name)
    there = f" ({', '.join(others[:3])} next to it)" if others else ""
    return f"resume from another checkpoint of the run{there} or train again"


def _read(raw: bytes, path: Path, map_location: Any) -> dict:
    try:
        with warnings.catch_warnings():  # a damaged pickle may warn before it fails
            warnings.simplefilter("ignore")
            checkpoint = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    except Exception as error:
        reason = load_error(error)
        if reason.startswith("Unsupported global"):
            raise SeqLabError(
                f"checkpoint {path} holds pickled Python code ({reason}), refused without running"
                " it; load only checkpoints that seqlab wrote"
            ) from None
        raise SeqLabError(
            f"{path} is truncated, damaged or not a checkpoint ({reason}); {_fix(path)}"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise SeqLabError(f"{path} is not a model checkpoint (no state_dict); {_fix(path)}")
    return checkpoint


def _contents_intact(checkpoint: dict, path: Path) -> bool:
    try:
        return checkpoint.get(CHECKSUM_KEY) == checksum(checkpoint)
    except TypeError as error:
        raise SeqLabError(f"{path}: {error}") from None


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """Load a checkpoint as tensors and plain values only, after checking both checksums.

    Raises:
        SeqLabError: the file is missing, empty, truncated, not a checkpoint, holds pickled
            code (refused without running it), carries no checksum or does not match one.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise SeqLabError(f"checkpoint {path} {what}; give the path of a .ckpt file")
    raw = path.read_bytes()
    if not raw:
        raise SeqLabError(f"checkpoint {path} is empty (0 bytes); {_fix(path)}")
    file_ok = file_intact(raw)
    try:
        checkpoint = _read(raw, path, map_location)
    except SeqLabError:
        if file_ok is False:  # the bytes seqlab wrote changed: damage, whatever they now read as
            raise SeqLabError(
                f"checkpoint {path} is damaged: its file fails its checksum; {_fix(path)}"
            ) from None
        raise
    if CHECKSUM_KEY not in checkpoint:
        raise SeqLabError(
            f"checkpoint {path} carries no checksum (not written by seqlab); if you trust it,"
            f" add one with: python -m src.checkpoints sign {path}"
        )
    if not _contents_intact(checkpoint, path):
        raise SeqLabError(
            f"checkpoint {path} is damaged: its contents fail their checksum; {_fix(path)}"
        )
    if file_ok is False:
        raise SeqLabError(
            f"checkpoint {path} is damaged: its file fails its checksum, though the tensors and "
            f"values in it pass theirs; rewrite it with: python -m src.checkpoints sign {path}"
        )
    return checkpoint
