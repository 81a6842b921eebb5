"""Stateful recurrent forecaster for truncated backpropagation through time across contiguous
chunks (Williams & Peng 1990; the state carried across batches, detached): a direct multi-step
head on every step's hidden state."""

from typing import Literal

from torch import Tensor, nn

from src.models.recurrent.encoder import Cell, RecurrentEncoder

State = Tensor | tuple[Tensor, Tensor]


class StatefulForecaster(nn.Module):
    """Inputs ``(N, L, H_in)`` -> forecasts ``(N, output_len, output_size)`` from the last step.

    :meth:`forward_steps` forecasts at every step from a given initial state and returns the final
    state, so training can carry it across consecutive chunks of a stream (the task detaches it).
    At step ``t`` the head maps the hidden state, which has read ``x[:, : t + 1]`` and whatever
    the carried state summarises, to the next ``output_len`` target values. :meth:`forward` starts
    from zeros, so evaluation windows are forecast exactly like :class:`RNNForecaster`'s.

    Args:
        input_size: Features per step (linked from the datamodule).
        output_len: Future steps predicted at every step (linked from the datamodule).
        output_size: Target channels per step (linked from the datamodule).
        hidden_size: Recurrent units.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        num_layers: Stacked recurrent layers.
        dropout: Dropout between recurrent layers.
        layer_norm: LayerNorm on each step's hidden state before the head.
        init: Recurrent weight initialisation, see :class:`RecurrentEncoder`.
        forget_bias: LSTM forget-gate bias at initialisation.
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
        layer_norm: bool = False,
        init: Literal["default", "xavier_orthogonal"] = "default",
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        self.output_len, self.output_size = output_len, output_size
        self.encoder = RecurrentEncoder(
            input_size=input_size,
            hidden_size=hidden_size,
            cell=cell,
            num_layers=num_layers,
            dropout=dropout,
            init=init,
            forget_bias=forget_bias,
        )
        self.norm = nn.LayerNorm(hidden_size) if layer_norm else nn.Identity()
        self.head = nn.Linear(hidden_size, output_len * output_size)

    def forward_steps(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Forecast at every step of ``x`` ``(N, L, H_in)`` starting from ``state``.

        Args:
            x: ``(N, L, H_in)`` inputs.
            state: ``h`` ``(num_layers, N, H)`` (LSTM: ``(h, c)``) from the previous chunk;
                ``None`` starts from zeros.

        Returns:
            ``(forecasts (N, L, output_len, output_size), final state)``.
        """
        output, state = self.encoder.rnn(x, state)  # (N, L, H); the plain nn.LSTM/GRU/RNN
        out = self.head(self.norm(output))  # (N, L, output_len * output_size)
        return out.unflatten(-1, (self.output_len, self.output_size)), state

    def forward(self, x: Tensor) -> Tensor:
        """Forecast from ``x`` ``(N, L, H_in)`` and zero state: ``(N, output_len, output_size)``."""
        return self.forward_steps(x)[0][:, -1]
