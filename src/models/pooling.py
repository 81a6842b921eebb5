"""Pooling of a recurrent sequence into one vector: last, mean, max over valid steps, and additive
attention (Bahdanau et al. 2015)."""

from typing import Literal

import torch
from torch import Tensor, nn

Pooling = Literal["last", "mean", "max", "attention"]


def last_hidden(h_n: Tensor, num_directions: int) -> Tensor:
    """Top layer's final state: ``(N, D * H_out)`` from ``h_n`` ``(num_layers * D, N, H_out)``.

    For a bidirectional stack this is the forward direction's last step concatenated with the
    backward direction's first step (``h_n[-2]``, ``h_n[-1]``).
    """
    return torch.cat(list(h_n[-num_directions:]), dim=-1)


class AdditiveAttention(nn.Module):
    """Additive attention pooling: ``score_t = v^T tanh(W h_t)``, softmax over valid steps.

    Args:
        input_size: Features per step of the sequence being pooled.
        attention_size: Width of the hidden scoring layer.
    """

    def __init__(self, input_size: int, attention_size: int = 128) -> None:
        super().__init__()
        self.proj = nn.Linear(input_size, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def forward(self, output: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Pool ``output`` ``(N, L, H)`` with boolean ``mask`` ``(N, L)`` (True = valid step).

        Returns:
            ``(context (N, H), weights (N, L))``; weights are 0 at padded steps and sum to 1.
        """
        scores = self.score(torch.tanh(self.proj(output))).squeeze(-1)  # (N, L)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        return torch.bmm(weights.unsqueeze(1), output).squeeze(1), weights


class SequencePooling(nn.Module):
    """Reduce encoder outputs to one vector per sequence, never reading padded steps.

    Args:
        mode: ``"last"`` (final state, see :func:`last_hidden`), ``"mean"`` or ``"max"`` over valid
            steps, or ``"attention"`` (:class:`AdditiveAttention`).
        input_size: Features per step (``D * H_out``).
        num_directions: ``D`` of the encoder, for ``"last"``.
        attention_size: Scoring width for ``"attention"``.
    """

    def __init__(
        self, mode: Pooling, input_size: int, num_directions: int, attention_size: int = 128
    ) -> None:
        super().__init__()
        if mode not in ("last", "mean", "max", "attention"):
            raise ValueError(f"pooling must be last, mean, max or attention, got {mode!r}")
        self.mode, self.num_directions = mode, num_directions
        self.attention = (
            AdditiveAttention(input_size, attention_size) if mode == "attention" else None
        )

    def forward(
        self, output: Tensor, h_n: Tensor, lengths: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """Pool ``output`` ``(N, L, H)`` given ``h_n`` and ``lengths`` ``(N,)`` (None: all valid).

        Returns:
            ``(pooled (N, H), attention weights (N, L) or None)``.
        """
        if self.mode == "last":
            return last_hidden(h_n, self.num_directions), None
        steps = torch.arange(output.size(1), device=output.device)
        if lengths is None:
            mask = torch.ones(output.shape[:2], dtype=torch.bool, device=output.device)
        else:
            mask = steps < lengths.to(output.device)[:, None]  # (N, L)
        if self.attention is not None:
            return self.attention(output, mask)
        if self.mode == "mean":
            total = (output * mask.unsqueeze(-1)).sum(1)
            return total / mask.sum(1, keepdim=True).to(output.dtype), None
        return output.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1), None
