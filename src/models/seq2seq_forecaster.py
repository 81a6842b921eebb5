"""Encoder-decoder recurrent forecaster (Sutskever et al. 2014; Cho et al. 2014): an encoder reads
the input window, a decoder unrolls ``output_len`` steps, each fed its previous prediction or, with
teacher forcing (Williams & Zipser 1989) at a ratio (Bengio et al. 2015), the true value."""

from typing import Literal

import torch
from torch import Tensor, nn

from src.models.recurrent.encoder import Cell, RecurrentEncoder
from src.models.revin import InstanceNorm, RevIN

_DECODERS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class Seq2SeqForecaster(nn.Module):
    """Inputs ``(N, L, H_in)`` -> forecasts ``(N, output_len, output_size)``, one step at a time.

    The decoder (same cell and depth as the encoder) starts from the encoder's final state
    ``(num_layers, N, H)`` (LSTM: and cell state); its first input is the last observed target
    ``x[:, -1, :output_size]`` (targets are the first input channels, as the datamodule lays them
    out) and every later input is its own previous prediction. In training, when ``target`` is
    given, each row's previous input is replaced by the true value with probability
    ``teacher_forcing_ratio`` at every step; in eval mode ``target`` is ignored.

    Args:
        input_size: Features per input step (linked from the datamodule).
        output_len: Steps decoded (linked from the datamodule).
        output_size: Target channels per step (linked from the datamodule).
        hidden_size: Recurrent units of encoder and decoder.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``, for encoder and decoder.
        num_layers: Stacked recurrent layers in each.
        dropout: Dropout between recurrent layers.
        teacher_forcing_ratio: Probability of feeding the truth instead of the prediction.
        init: Encoder weight initialisation, see :class:`RecurrentEncoder`.
        forget_bias: Encoder LSTM forget-gate bias at initialisation.
        instance_norm: ``"none"``, ``"revin"`` or ``"last"`` (see :class:`~src.models.revin.RevIN`):
            inputs and teacher-forcing targets normalised per window, forecasts restored.
    """

    def __init__(
        self,
        input_size: int = 1,
        output_len: int = 10,
        output_size: int = 1,
        hidden_size: int = 64,
        cell: Cell = "lstm",
        num_layers: int = 1,
        dropout: float = 0.0,
        teacher_forcing_ratio: float = 0.0,
        init: Literal["default", "xavier_orthogonal"] = "default",
        forget_bias: float | None = None,
        instance_norm: InstanceNorm = "none",
    ) -> None:
        super().__init__()
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(
                f"teacher_forcing_ratio must lie in [0, 1], got {teacher_forcing_ratio}"
            )
        if output_size > input_size:
            raise ValueError(
                f"output_size={output_size} exceeds input_size={input_size}: the targets must be "
                "the first input channels"
            )
        self.output_len, self.output_size = output_len, output_size
        self.teacher_forcing_ratio = teacher_forcing_ratio
        self.encoder = RecurrentEncoder(
            input_size=input_size,
            hidden_size=hidden_size,
            cell=cell,
            num_layers=num_layers,
            dropout=dropout,
            init=init,
            forget_bias=forget_bias,
        )
        self.decoder = _DECODERS[cell](
            output_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden_size, output_size)
        self.revin = RevIN(input_size, instance_norm)

    def forward(self, x: Tensor, target: Tensor | None = None) -> Tensor:
        """Forecast from ``x`` ``(N, L, H_in)``.

        Args:
            x: Input window ``(N, L, H_in)``.
            target: Scaled truth ``(N, output_len, output_size)`` for teacher forcing (training
                only; the task passes it because this signature names it).

        Returns:
            ``(N, output_len, output_size)``.
        """
        x = self.revin.normalize(x)
        if target is not None:
            target = self.revin.normalize_target(target)
        _, state = self.encoder(x)  # h_n (num_layers, N, H) [, c_n]
        inp = x[:, -1:, : self.output_size]  # (N, 1, T): the last observation
        forcing = target is not None and self.training and self.teacher_forcing_ratio > 0
        steps = []
        for t in range(self.output_len):
            out, state = self.decoder(inp, state)  # (N, 1, H)
            step = self.head(out)  # (N, 1, T)
            steps.append(step)
            inp = step
            if forcing:  # per row: feed the truth with probability teacher_forcing_ratio
                draw = torch.rand(x.size(0), 1, 1, device=x.device)
                inp = torch.where(draw < self.teacher_forcing_ratio, target[:, t : t + 1], step)
        return self.revin.denormalize(torch.cat(steps, 1))
