"""Lightning's checkpoint IO, writing and reading through :mod:`src.checkpoints.files`."""

from typing import Any

from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from src.checkpoints.checksum import CHECKSUM_KEY, checksum
from src.checkpoints.files import load_checkpoint, save_atomic


class VerifiedCheckpointIO(TorchCheckpointIO):
    """Atomic writes with checksums (:func:`save_atomic`), verified reads as tensors and plain
    values only (:func:`load_checkpoint`); installed by the CLI on the trainer's strategy.
    Remote paths (``s3://``...) keep Lightning's writer and reader, with the entries' checksum
    and ``weights_only=True``."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Any = None) -> None:
        if storage_options is None and isinstance(get_filesystem(path), LocalFileSystem):
            return save_atomic(checkpoint, path)
        checkpoint = {**checkpoint, CHECKSUM_KEY: checksum(checkpoint)}
        super().save_checkpoint(checkpoint, path, storage_options)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: Any = None) -> Any:
        if isinstance(get_filesystem(path), LocalFileSystem):
            return load_checkpoint(path)
        return super().load_checkpoint(path, weights_only=True)
