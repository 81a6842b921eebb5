"""The data error: a bad data file or data setting, shown by the CLI as one ``error: ...`` line."""

import gzip
import zlib
from pathlib import Path

from src.errors import SeqLabError


class DataError(SeqLabError, ValueError):
    """A data file that cannot be used as it is, or a data setting that does not fit the data.

    The message names the file (or setting), what is wrong and how to fix it. It is a
    ``ValueError`` too, so code that guards data loading with ``except ValueError`` keeps working.
    """


class DataNotFoundError(DataError, FileNotFoundError):
    """A data file or directory that does not exist (also a ``FileNotFoundError``)."""


def read_error(path: str | Path, error: BaseException) -> DataError:
    """The one-line error for a data file that could not be read or parsed: names the file, what
    went wrong (truncated compression, encoding, I/O, format) and how to fix it."""
    reason = " ".join(str(error).split())[:200] or type(error).__name__
    if isinstance(error, UnicodeDecodeError):
        return DataError(
            f"{path} is not valid UTF-8 ({error.reason} at byte {error.start}); save it as UTF-8"
        )
    if isinstance(error, EOFError | zlib.error | gzip.BadGzipFile):
        return DataError(
            f"{path} is a damaged or truncated compressed file ({reason}); download or "
            "compress it again"
        )
    if isinstance(error, FileNotFoundError):
        return DataNotFoundError(f"{path} not found; check the data path settings")
    if isinstance(error, OSError):
        return DataError(f"cannot read {path} ({error.strerror or reason})")
    return DataError(f"{path} cannot be parsed ({reason}); check its format")
