"""Segment-recurrent forecaster (SegRNN, Lin et al. 2023): each channel's window is cut into
segments, embedded, read by one GRU/LSTM, and every horizon segment is decoded in parallel from
the final state with a position (and channel) query."""

import math

import torch
from torch import Tensor, nn

from src.models.recurrent.encoder import Cell, RecurrentEncoder
from src.models.revin import InstanceNorm, RevIN


class SegRNN(nn.Module):
    """Inputs ``(N, L, C)`` -> forecasts ``(N, output_len, C)`` (or ``(N, output_len, C, Q)``).

    Channel-independent: the ``N * C`` univariate windows share every weight. Per window (after
    ``instance_norm``): ``L / seg_len`` segments of ``seg_len`` steps -> ``Linear + ReLU`` to
    ``hidden_size`` -> the recurrent network -> final state ``h``. Decoding runs the same
    recurrent cell for one step from ``h`` once per horizon segment, all ``M = ceil(output_len /
    seg_len)`` at once, the input being a learned query: the segment's position embedding
    concatenated with the channel's embedding (half the width each), or the position embedding
    alone. ``Dropout + Linear`` turns each step's output into the segment's ``seg_len`` values
    (times ``num_quantiles``); steps past ``output_len`` are cut off.

    Args:
        input_size: Channels ``C`` (linked from the datamodule).
        output_len: Horizon ``H`` (linked from the datamodule).
        output_size: Forecast channels; must equal ``input_size`` (linked from the datamodule).
        seg_len: Steps per segment ``W``; the lookback ``L`` must be a multiple of it.
        hidden_size: Embedding and recurrent width ``d``.
        cell: ``"gru"``, ``"lstm"`` or ``"rnn"``.
        dropout: Dropout before the output projection.
        channel_embedding: Add a learned per-channel half to every query.
        instance_norm: ``"last"`` (subtract the last value), ``"revin"`` or ``"none"``; see
            :class:`~src.models.revin.RevIN`.
        num_quantiles: Values per forecast step; above 1 the output gains a last axis ``Q``.
    """

    def __init__(
        self,
        input_size: int = 7,
        output_len: int = 96,
        output_size: int = 7,
        seg_len: int = 24,
        hidden_size: int = 512,
        cell: Cell = "gru",
        dropout: float = 0.5,
        channel_embedding: bool = True,
        instance_norm: InstanceNorm = "last",
        num_quantiles: int = 1,
    ) -> None:
        super().__init__()
        if output_size != input_size:
            raise ValueError(
                f"SegRNN forecasts every input channel: output_size={output_size} must equal "
                f"input_size={input_size}"
            )
        if channel_embedding and hidden_size % 2:
            raise ValueError(f"channel_embedding needs an even hidden_size, got {hidden_size}")
        if seg_len < 1 or num_quantiles < 1:
            raise ValueError(f"seg_len and num_quantiles must be >= 1: {seg_len}, {num_quantiles}")
        self.output_len, self.seg_len, self.num_quantiles = output_len, seg_len, num_quantiles
        self.n_out_segments = math.ceil(output_len / seg_len)  # M
        self.norm = RevIN(input_size, instance_norm)
        self.embed = nn.Sequential(nn.Linear(seg_len, hidden_size), nn.ReLU())
        self.encoder = RecurrentEncoder(hidden_size, hidden_size, cell)
        width = hidden_size // 2 if channel_embedding else hidden_size
        self.position = nn.Parameter(torch.randn(self.n_out_segments, width))
        self.channel = nn.Parameter(torch.randn(input_size, width)) if channel_embedding else None
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden_size, seg_len * num_quantiles)
        )

    def _queries(self, n: int, c: int) -> Tensor:
        """Decoder inputs ``(n * c * M, 1, d)``, rows ordered (window, channel, segment)."""
        m = self.n_out_segments
        query = self.position.unsqueeze(0).expand(c, -1, -1)  # (C, M, d or d/2)
        if self.channel is not None:
            channel = self.channel.unsqueeze(1).expand(-1, m, -1)  # (C, M, d/2)
            query = torch.cat([query, channel], -1)  # (C, M, d)
        return query.unsqueeze(0).expand(n, -1, -1, -1).reshape(n * c * m, 1, -1)

    def forward(self, x: Tensor) -> Tensor:
        """Forecast from ``x`` ``(N, L, C)``.

        Returns:
            ``(N, output_len, C)``, or ``(N, output_len, C, Q)`` when ``num_quantiles > 1``.
        """
        n, length, c = x.shape
        if length % self.seg_len:
            raise ValueError(
                f"the lookback {length} is not a multiple of seg_len={self.seg_len}; change one"
            )
        m, w, q = self.n_out_segments, self.seg_len, self.num_quantiles
        x = self.norm.normalize(x).transpose(1, 2)  # (N, C, L)
        segments = self.embed(x.reshape(n * c, length // w, w))  # (N*C, S, d)
        _, state = self.encoder(segments)  # h_n (1, N*C, d) [, c_n]

        def repeat(s: Tensor) -> Tensor:  # (1, N*C, d) -> (1, N*C*M, d), one per segment
            return s.unsqueeze(2).expand(-1, -1, m, -1).reshape(1, n * c * m, -1)

        state = tuple(map(repeat, state)) if isinstance(state, tuple) else repeat(state)
        out, _ = self.encoder.rnn(self._queries(n, c), state)  # (N*C*M, 1, d)
        y = self.head(out).view(n, c, m * w, q)[:, :, : self.output_len]  # (N, C, H, Q)
        y = y.permute(0, 2, 1, 3)  # (N, H, C, Q)
        return self.norm.denormalize(y if q > 1 else y.squeeze(-1))
