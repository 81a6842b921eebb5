"""``python -m src.checkpoints verify FILE...`` / ``python -m src.checkpoints sign FILE``."""

import sys
from pathlib import Path

import torch

from src.checkpoints.checksum import CHECKSUM_KEY
from src.checkpoints.files import load_checkpoint, load_error, save_atomic
from src.errors import SeqLabError, exit_on_error


def main(args: list[str]) -> None:
    """``verify``: check each file, print its epoch and step. ``sign``: rewrite a trusted file
    (it must load as tensors and plain values) with fresh checksums."""
    if len(args) < 2 or args[0] not in ("verify", "sign"):
        raise SeqLabError("usage: python -m src.checkpoints {verify FILE... | sign FILE}")
    if args[0] == "verify":
        for path in args[1:]:
            checkpoint = load_checkpoint(path)
            epoch, step = checkpoint.get("epoch"), checkpoint.get("global_step")
            print(f"ok {path}: epoch {epoch}, step {step}")
        return
    path = Path(args[1])
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise SeqLabError(f"{path} cannot be signed: {load_error(error)}") from None
    save_atomic({k: v for k, v in checkpoint.items() if k != CHECKSUM_KEY}, path)
    print(f"signed {path}")


if __name__ == "__main__":
    exit_on_error(lambda: main(sys.argv[1:]))
