"""Encoder-decoder attention: additive (Bahdanau et al. 2015) and multiplicative "general"
(Luong et al. 2015), with padded source steps masked out."""

from typing import Literal

import torch
from torch import Tensor, nn


class Attention(nn.Module):
    """Scores queries against a padded memory and returns contexts and weights.

    ``kind="bahdanau"``: ``score(q, m) = v^T tanh(W_q q + W_m m)``; ``kind="luong"``:
    ``score(q, m) = q^T W m`` (Luong's "general"). The memory projection is done once per source
    with :meth:`keys` and reused at every decoding step.

    Args:
        query_size: Features of a query ``H_q`` (the decoder state).
        memory_size: Features of a memory step ``H_m`` (the encoder output).
        kind: ``"bahdanau"`` (additive) or ``"luong"`` (general, bilinear).
        attention_size: Hidden size of the additive scorer (``"bahdanau"`` only); default
            ``query_size``.
    """

    def __init__(
        self,
        query_size: int,
        memory_size: int,
        kind: Literal["bahdanau", "luong"] = "bahdanau",
        attention_size: int | None = None,
    ) -> None:
        super().__init__()
        if kind not in ("bahdanau", "luong"):
            raise ValueError(f"attention must be 'bahdanau' or 'luong', got {kind!r}")
        self.kind = kind
        if kind == "bahdanau":
            attention_size = attention_size or query_size
            self.memory_proj = nn.Linear(memory_size, attention_size, bias=False)
            self.query_proj = nn.Linear(query_size, attention_size)
            self.v = nn.Linear(attention_size, 1, bias=False)
        else:
            self.memory_proj = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """Project the memory once: ``(N, S, H_m)`` -> ``(N, S, A)`` (``A = H_q`` for Luong)."""
        return self.memory_proj(memory)

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Attend.

        Args:
            query: ``(N, T, H_q)`` decoder states (``T = 1`` when stepping).
            keys: ``(N, S, A)`` from :meth:`keys`.
            memory: ``(N, S, H_m)`` encoder outputs.
            mask: ``(N, S)`` bool, ``True`` at real (non-padded) source steps.

        Returns:
            ``context`` ``(N, T, H_m)`` and ``weights`` ``(N, T, S)`` (zero at padding, rows sum
            to 1).
        """
        if self.kind == "bahdanau":
            q = self.query_proj(query).unsqueeze(2)  # (N, T, 1, A)
            scores = self.v(torch.tanh(q + keys.unsqueeze(1))).squeeze(-1)  # (N, T, S)
        else:
            scores = query @ keys.transpose(1, 2)  # (N, T, H_q) @ (N, H_q, S) -> (N, T, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = scores.softmax(-1)
        return weights @ memory, weights  # (N, T, S) @ (N, S, H_m) -> (N, T, H_m)
