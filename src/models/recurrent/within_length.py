"""Sequences reversed within their own lengths, and one recurrent direction with packed-sequence
semantics from a layer that runs every step densely (as ``pack_padded_sequence`` would give)."""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def check_lengths(lengths, n: int, length: int) -> Tensor:
    """``lengths`` as a long tensor; a one-line error unless it is ``(n,)`` in ``1..length``."""
    lengths = torch.as_tensor(lengths)
    if lengths.shape != (n,):
        raise ValueError(f"lengths must have shape ({n},), got {tuple(lengths.shape)}")
    if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > length):
        raise ValueError(
            f"lengths must lie in 1..{length} (the padded length); got min {int(lengths.min())},"
            f" max {int(lengths.max())}: drop empty sequences before the encoder"
        )
    return lengths.long()


def pad_steps(t: Tensor, total: int) -> Tensor:
    """``t`` ``(N, L', H)`` zero-padded to ``(N, total, H)``; ``t`` itself when ``L' == total``
    (``F.pad`` would copy it)."""
    return t if t.size(1) == total else F.pad(t, (0, 0, 0, total - t.size(1)))


def reversal(lengths: Tensor, steps: int) -> Tensor:
    """Step ``t`` <-> ``lengths - 1 - t`` inside each sequence, padding fixed, as a permutation of
    the rows of a flattened ``(N * steps, H)`` batch-first tensor; it is its own inverse.

    Args:
        lengths: ``(N,)`` true lengths in ``1..steps``.
        steps: ``L``, the padded length.

    Returns:
        ``(N * steps,)`` row indices, for :class:`Reverse`.
    """
    t = torch.arange(steps, device=lengths.device)
    rows = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (N, L)
    return (rows + steps * torch.arange(len(lengths), device=lengths.device)[:, None]).flatten()


class Reverse(torch.autograd.Function):
    """Row permutation of ``(N, L, H)`` by an involution ``perm`` of the ``N * L`` steps: the
    backward is the same permutation (a copy), not the scatter-add a gather would need."""

    @staticmethod
    def forward(ctx, x: Tensor, perm: Tensor) -> Tensor:
        ctx.save_for_backward(perm)
        return x.flatten(0, 1).index_select(0, perm).view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (perm,) = ctx.saved_tensors
        return grad.flatten(0, 1).index_select(0, perm).view_as(grad), None


def packed_direction(
    layer: Callable[[Tensor], tuple[Tensor, ...]], x: Tensor, lengths: Tensor | None, reverse: bool
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One direction of one layer with packed-sequence semantics, from a dense ``layer``.

    Args:
        layer: ``seq (N, L, H_in) -> (h, ...)``: state sequences ``(N, L, H)`` (hidden states
            first), run over every step from each row's first.
        x: ``(N, L, H_in)`` right-padded inputs.
        lengths: ``(N,)`` true lengths in ``1..L``, ``None`` when nothing is padded.
        reverse: The backward direction: each sequence reversed within its own length.

    Returns:
        ``(output (N, L, H), finals)``: the hidden states, zeros at padding, and each of
        ``layer``'s states at every sequence's true end, ``(N, H)`` each.
    """
    n, steps = x.shape[:2]
    if lengths is None:
        states = layer(x.flip(1) if reverse else x)
        return (states[0].flip(1) if reverse else states[0]), tuple(s[:, -1] for s in states)
    rev = reversal(lengths, steps) if reverse else None
    # padded steps come after each sequence's last one: they never reach a valid step
    states = layer(Reverse.apply(x, rev) if reverse else x)
    last = (lengths - 1).view(n, 1, 1).expand(-1, 1, states[0].size(-1))
    finals = tuple(s.gather(1, last).squeeze(1) for s in states)
    out = Reverse.apply(states[0], rev) if reverse else states[0]
    valid = torch.arange(steps, device=x.device) < lengths[:, None]  # (N, L)
    return out * valid.unsqueeze(-1), finals
