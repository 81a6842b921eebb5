"""The checksum a checkpoint carries: sha256 over its entries in a canonical form."""

import hashlib
from typing import Any

import torch

CHECKSUM_KEY = "seqlab_sha256"  # sha256 of every other entry of the checkpoint
_PLAIN = (str, int, float, bool, bytes, type(None), torch.dtype, torch.device)


def _feed(hasher: Any, value: Any, where: str) -> None:
    """Hash ``value`` canonically: type tags, lengths, sorted dict keys, tensor bytes."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        hasher.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        hasher.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    elif isinstance(value, dict):
        hasher.update(f"D{len(value)}".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, repr(k))):
            _feed(hasher, key, where)
            _feed(hasher, value[key], f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        hasher.update(f"{type(value).__name__}{len(items)}".encode())
        for i, item in enumerate(items):
            _feed(hasher, item, f"{where}[{i}]")
    elif isinstance(value, _PLAIN):
        hasher.update(f"{type(value).__name__}:{value!r};".encode())
    else:
        raise TypeError(
            f"checkpoint entry {where} is a {type(value).__qualname__}; checkpoints hold only "
            "tensors and plain values (str, int, float, bool, None, lists, tuples, dicts), so "
            "that they load with torch.load(weights_only=True): store it as one of those"
        )


def checksum(checkpoint: dict) -> str:
    """sha256 of every entry of ``checkpoint`` except the stored checksum itself.

    Raises:
        TypeError: an entry is neither a tensor nor a plain value (naming where it is).
    """
    hasher = hashlib.sha256()
    _feed(hasher, {k: v for k, v in checkpoint.items() if k != CHECKSUM_KEY}, "")
    return hasher.hexdigest()


def compact(value: Any) -> Any:
    """``value`` with every tensor that views part of a larger storage copied to its own.

    ``torch.save`` writes a tensor's whole storage; bytes outside the tensor would be stored,
    loaded and never read, so their damage would change nothing the checksum covers.
    """
    if isinstance(value, torch.Tensor):
        if value.untyped_storage().nbytes() > value.numel() * value.element_size():
            return value.clone(memory_format=torch.contiguous_format)
        return value
    if isinstance(value, dict):
        items = [(k, compact(v)) for k, v in value.items()]
        try:
            return type(value)(items)  # OrderedDict, AttributeDict, ...
        except TypeError:
            return dict(items)
    if type(value) in (list, tuple):
        return type(value)(compact(v) for v in value)
    return value
