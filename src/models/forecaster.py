"""Direct multi-step recurrent forecaster: features -> RecurrentEncoder -> linear head emitting
all ``output_len`` future steps at once (the seeds' LSTMForecaster, generalised)."""

from typing import Literal

from torch import Tensor, nn

from src.models.pooling import last_hidden
from src.models.rnn import Cell, RecurrentEncoder


class RNNForecaster(nn.Module):
    """Inputs ``(N, L, H_in)`` -> forecasts ``(N, output_len, output_size)``.

    Args:
        input_size: Features per step (linked from the datamodule).
        output_len: Future steps predicted at once (linked from the datamodule).
        output_size: Target channels per step (linked from the datamodule).
        hidden_size: Recurrent units per direction.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        num_layers: Stacked recurrent layers.
        dropout: Dropout between recurrent layers.
        bidirectional: Use a bidirectional encoder.
        layer_norm: LayerNorm on the final hidden state before the head.
        head_dropout: Dropout before the linear head.
        init: Recurrent weight initialisation, see :class:`RecurrentEncoder`.
        forget_bias: LSTM forget-gate bias at initialisation.
        learn_initial_state: Learn the initial recurrent state.
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
        bidirectional: bool = False,
        layer_norm: bool = False,
        head_dropout: float = 0.0,
        init: Literal["default", "xavier_orthogonal"] = "default",
        forget_bias: float | None = None,
        learn_initial_state: bool = False,
    ) -> None:
        super().__init__()
        self.output_len, self.output_size = output_len, output_size
        self.encoder = RecurrentEncoder(
            input_size,
            hidden_size,
            cell,
            num_layers,
            dropout,
            bidirectional,
            init=init,
            forget_bias=forget_bias,
            learn_initial_state=learn_initial_state,
        )
        width = self.encoder.output_size
        self.norm = nn.LayerNorm(width) if layer_norm else nn.Identity()
        self.head = nn.Sequential(
            nn.Dropout(head_dropout), nn.Linear(width, output_len * output_size)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Forecast from ``x`` ``(N, L, H_in)``; returns ``(N, output_len, output_size)``."""
        _, state = self.encoder(x)
        h_n = state[0] if isinstance(state, tuple) else state
        last = self.norm(last_hidden(h_n, self.encoder.num_directions))  # (N, D * H_out)
        return self.head(last).view(-1, self.output_len, self.output_size)
