"""On-disk data caches: keyed by a hash of their sources' content and settings, written
atomically, and checked file by file against a checksummed manifest whenever they are read."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from src.data.errors import DataError

log = logging.getLogger(__name__)

FORMAT = 2  # layout of a cache directory and its manifest; part of every key
MANIFEST = "manifest.json"


class CacheDamagedError(Exception):
    """A cache file that is missing, truncated or altered; the message names it."""


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def content_digest(paths: Iterable[Path]) -> list[list[str]]:
    """``[[file name, SHA-256 of its bytes], ...]``: what a key hashes instead of sizes and times,
    so an edited source changes the key even when its size and modification time do not."""
    try:
        return [[p.name, file_sha256(p)] for p in paths]
    except OSError as e:
        raise DataError(f"cannot read {e.filename} ({e.strerror}); check the data files") from None


def cache_key(sources: Any, settings: dict[str, Any]) -> str:
    """16 hex digits hashing the sources' digest (see :func:`content_digest`) and every setting
    that changes what is cached, with the cache format."""
    blob = json.dumps({"format": FORMAT, "sources": sources, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _manifest_bytes(body: dict[str, Any]) -> bytes:
    core = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    checksum = hashlib.sha256(core.encode()).hexdigest()
    text = json.dumps({**body, "checksum": checksum}, sort_keys=True, indent=1, ensure_ascii=True)
    return text.encode() + b"\n"


def _parse_manifest(raw: bytes, where: Path) -> dict[str, Any]:
    """The manifest's body; any changed byte either breaks the JSON or its canonical form, or
    changes a value and so no longer matches the checksum."""
    try:
        body = json.loads(raw)
        body.pop("checksum")
        ok = _manifest_bytes(body) == raw and body["format"] == FORMAT
        ok = ok and all("/" not in name and name != MANIFEST for name in body["files"])
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise CacheDamagedError(f"{where} is corrupt (not the manifest this code writes)")
    return body


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CacheWriter:
    """Builds a cache in a temporary sibling of ``path``; :meth:`commit` publishes it by rename,
    so a reader (or a concurrent process) sees a complete cache or none, whatever ``$TMPDIR`` is.

    Args:
        path: The cache directory to publish.
    """

    def __init__(self, path: Path) -> None:
        self.path, self.files = path, {}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as e:
            raise _write_error(path, e) from None
        self.tmp = Path(tmp)
        os.chmod(self.tmp, 0o755)  # mkdtemp makes it private; the published cache is readable

    def write(self, name: str, data: bytes | memoryview) -> None:
        """Write one file (flushed to disk) and record its checksum."""
        try:
            with open(self.tmp / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise _write_error(self.path, e) from None
        self.files[name] = hashlib.sha256(data).hexdigest()

    def save_npy(self, name: str, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        self.write(name, buffer.getbuffer())

    def save_json(self, name: str, obj: Any) -> None:
        self.write(name, json.dumps(obj, ensure_ascii=False).encode("utf-8"))

    def commit(self, info: dict[str, Any]) -> None:
        """Write the manifest (file checksums + ``info``) last, then rename into place."""
        manifest = _manifest_bytes({"format": FORMAT, "files": dict(self.files), "info": info})
        self.write(MANIFEST, manifest)
        try:
            _fsync_dir(self.tmp)
            os.rename(self.tmp, self.path)
        except OSError as e:
            if not (self.path / MANIFEST).is_file():
                raise _write_error(self.path, e) from None
            return  # another process published the same cache first: keep that one
        _fsync_dir(self.path.parent)

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class CacheReader:
    """A published cache, every file read once and matched against the manifest's checksums.

    Args:
        path: The cache directory.

    Raises:
        CacheDamagedError: the manifest or a file it lists is missing, unreadable or altered.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        body = _parse_manifest(self._read(path / MANIFEST), path / MANIFEST)
        self.info: dict[str, Any] = body["info"]
        self._data: dict[str, bytearray] = {}
        for name, digest in body["files"].items():
            data = self._read(path / name)
            if hashlib.sha256(data).hexdigest() != digest:
                raise CacheDamagedError(f"{path / name} does not match its checksum")
            self._data[name] = data

    @staticmethod
    def _read(file: Path) -> bytearray:
        try:
            with open(file, "rb") as f:
                data = bytearray(os.fstat(f.fileno()).st_size)
                size = f.readinto(data)
        except FileNotFoundError:
            raise CacheDamagedError(f"{file} is missing") from None
        except OSError as e:
            raise CacheDamagedError(f"{file} cannot be read ({e.strerror})") from None
        return data[:size] if size != len(data) else data

    def read_bytes(self, name: str) -> bytearray:
        return self._data[name]

    def read_text(self, name: str) -> str:
        return self._data[name].decode("utf-8")

    def read_json(self, name: str) -> Any:
        return json.loads(self._data[name])

    def read_npy(self, name: str) -> np.ndarray:
        """The array, sharing the verified bytes (no second read, no copy)."""
        data = self._data[name]
        header = io.BytesIO(bytes(memoryview(data)[: 1 << 16]))  # headers are far shorter
        major, _ = np.lib.format.read_magic(header)
        read = np.lib.format.read_array_header_1_0
        shape, fortran, dtype = (read if major == 1 else np.lib.format.read_array_header_2_0)(
            header
        )
        if dtype.hasobject:
            raise CacheDamagedError(f"{self.path / name} holds Python objects")
        count = int(np.prod(shape))
        array = np.frombuffer(data, dtype=dtype, count=count, offset=header.tell())
        return array.reshape(shape, order="F" if fortran else "C")


def _write_error(path: Path, e: OSError) -> DataError:
    return DataError(
        f"cannot write the cache {path} ({e.strerror}); free disk space or set cache_dir to a "
        "writable directory"
    )


def _remove(path: Path, damage: CacheDamagedError) -> None:
    aside = path.with_name(f".{path.name}.damaged.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)  # first, so no other reader picks up a half-deleted cache
    except FileNotFoundError:
        return  # another process removed it already
    except OSError as e:
        raise DataError(
            f"damaged cache: {damage}, and it cannot be removed ({e.strerror}); "
            f"delete {path} and run again"
        ) from None
    shutil.rmtree(aside, ignore_errors=True)


def open_cache(path: Path, build: Callable[[CacheWriter], dict[str, Any]]) -> CacheReader:
    """The verified cache at ``path``: built when missing, rebuilt (one warning) when damaged.

    ``build`` writes the cache's files into the :class:`CacheWriter` it gets and returns the
    ``info`` stored in the manifest. Damage that cannot be repaired is a :class:`DataError`.
    """
    if path.exists():
        try:
            return CacheReader(path)
        except CacheDamagedError as damage:
            log.warning("damaged cache: %s; rebuilding %s", damage, path)
            _remove(path, damage)
    writer = CacheWriter(path)
    try:
        writer.commit(build(writer))
    finally:
        writer.discard()
    try:
        return CacheReader(path)
    except CacheDamagedError as damage:
        raise DataError(f"the cache just written is damaged: {damage}; check the disk") from None


class CachedDataModule:
    """Mixin for a datamodule whose splits are built once into a verified cache: the class gives
    ``cache_path`` (keyed by its sources and settings) and ``_build(writer)``; ``prepare_data``
    builds the cache unless a verified one exists, and ``_open_cache`` reads it once per
    process (rebuilding it when damaged). Put it before ``LightningDataModule`` in the bases."""

    _cache: CacheReader | None = None
    cache_path: Path

    def _build(self, writer: CacheWriter) -> dict[str, Any]:
        """Write every cached file into ``writer``; return the manifest's ``info``."""
        raise NotImplementedError

    def _open_cache(self) -> CacheReader:
        """The verified cache (built, or rebuilt when damaged), read once per process."""
        if self._cache is None:
            self._cache = open_cache(self.cache_path, self._build)
        return self._cache

    def prepare_data(self) -> None:
        """Build the cache unless a verified cache for these sources and settings exists."""
        self._open_cache()
