"""Segment-recurrent forecaster (SegRNN, Lin et al. 2023): each channel's window is cut into
segments, embedded, read by one GRU/LSTM, and every horizon segment is decoded in parallel from
the final state with a position (and channel) query."""

import math

import torch
import torch.nn.functional as F
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
        self.revin = RevIN(input_size, instance_norm)
        self.embed = nn.Sequential(nn.Linear(seg_len, hidden_size), nn.ReLU())
        self.encoder = RecurrentEncoder(input_size=hidden_size, hidden_size=hidden_size, cell=cell)
        width = hidden_size // 2 if channel_embedding else hidden_size
        self.position = nn.Parameter(torch.randn(self.n_out_segments, width))
        self.channel = nn.Parameter(torch.randn(input_size, width)) if channel_embedding else None
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden_size, seg_len * num_quantiles)
        )

    def _queries(self, c: int) -> Tensor:
        """Decoder inputs ``(C, M, d)``: position embedding [+ channel embedding]."""
        query = self.position.unsqueeze(0).expand(c, -1, -1)  # (C, M, d or d/2)
        if self.channel is None:
            return query
        channel = self.channel.unsqueeze(1).expand(-1, self.n_out_segments, -1)  # (C, M, d/2)
        return torch.cat([query, channel], -1)

    def decode(self, state: Tensor | tuple[Tensor, Tensor], c: int) -> Tensor:
        """One step of the recurrent cell from the encoder's final ``state`` (``(1, N*C, d)``;
        LSTM: ``(h, c)``) for every horizon segment's query: outputs ``(N, C, M, d)``.

        The same as running ``self.encoder.rnn`` for one step on ``N * C * M`` rows (each
        window's state repeated per segment), but the input projection is computed once per
        (channel, segment) and the recurrent projection once per window, then broadcast.
        """
        rnn, cell = self.encoder.rnn, self.encoder.cell
        h, cell_state = state if isinstance(state, tuple) else (state, None)
        h = h[0].view(-1, c, 1, h.size(-1))  # (N, C, 1, d)
        xw = F.linear(self._queries(c), rnn.weight_ih_l0, rnn.bias_ih_l0)  # (C, M, G * d)
        hw = F.linear(h, rnn.weight_hh_l0, rnn.bias_hh_l0)  # (N, C, 1, G * d)
        if cell == "gru":  # PyTorch's GRU: the reset gate scales W_hn h + b_hn
            xr, xz, xn = xw.chunk(3, -1)
            hr, hz, hn = hw.chunk(3, -1)
            r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
            return (1 - z) * (xn + r * hn).tanh() + z * h
        if cell == "lstm":
            i, f, g, o = (xw + hw).chunk(4, -1)
            cell_state = cell_state[0].view(h.shape)  # (N, C, 1, d)
            cell_state = f.sigmoid() * cell_state + i.sigmoid() * g.tanh()
            return o.sigmoid() * cell_state.tanh()
        return (xw + hw).tanh()

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
        x = self.revin.normalize(x).transpose(1, 2)  # (N, C, L)
        segments = self.embed(x.reshape(n * c, length // w, w))  # (N*C, S, d)
        _, state = self.encoder(segments)  # h_n (1, N*C, d) [, c_n]
        out = self.decode(state, c)  # (N, C, M, d)
        y = self.head(out).view(n, c, m * w, q)[:, :, : self.output_len]  # (N, C, H, Q)
        y = y.permute(0, 2, 1, 3)  # (N, H, C, Q)
        return self.revin.denormalize(y if q > 1 else y.squeeze(-1))
