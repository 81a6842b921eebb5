"""Checkpoint files a user can trust: written atomically with checksums of their contents and of
the file, and read only as tensors and plain values after both are checked.

``python -m src.checkpoints verify FILE...`` checks files; ``python -m src.checkpoints sign FILE``
(re)writes a trusted checkpoint with fresh checksums (one written by plain Lightning, say).
"""

from src.checkpoints.checksum import CHECKSUM_KEY, checksum
from src.checkpoints.files import load_checkpoint, save_atomic
from src.checkpoints.io import VerifiedCheckpointIO
from src.checkpoints.model import check_model, check_task

__all__ = [
    "CHECKSUM_KEY",
    "VerifiedCheckpointIO",
    "check_model",
    "check_task",
    "checksum",
    "load_checkpoint",
    "save_atomic",
]
