"""Direct multi-step recurrent forecaster: features -> RecurrentEncoder -> linear head emitting
all ``output_len`` future steps at once."""

from typing import Literal

from torch import Tensor, nn

from src.models.pooling import Pooling, SequencePooling
from src.models.recurrent.encoder import Cell, RecurrentEncoder
from src.models.revin import InstanceNorm, RevIN


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
        layer_norm: LayerNorm on the pooled vector before the head.
        pooling: Sequence summary fed to the head: ``"last"`` (final hidden state), ``"mean"``,
            ``"max"`` or ``"attention"`` (additive, Bahdanau et al. 2015) over all steps.
        attention_size: Scoring width of attention pooling.
        head_dropout: Dropout before the linear head.
        init: Recurrent weight initialisation, see :class:`RecurrentEncoder`.
        forget_bias: LSTM forget-gate bias at initialisation.
        learn_initial_state: Learn the initial recurrent state.
        implementation: Recurrent kernels, ``"torch"`` or ``"handwritten"``, see
            :class:`RecurrentEncoder`.
        instance_norm: ``"none"``, ``"revin"`` or ``"last"`` (see :class:`~src.models.revin.RevIN`);
            the targets must be the first ``output_size`` input channels.
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
        pooling: Pooling = "last",
        attention_size: int = 64,
        head_dropout: float = 0.0,
        init: Literal["default", "xavier_orthogonal"] = "default",
        forget_bias: float | None = None,
        learn_initial_state: bool = False,
        implementation: Literal["torch", "handwritten"] = "torch",
        instance_norm: InstanceNorm = "none",
    ) -> None:
        super().__init__()
        self.revin = RevIN(input_size, instance_norm)
        self.output_len, self.output_size = output_len, output_size
        self.encoder = RecurrentEncoder(
            input_size=input_size,
            hidden_size=hidden_size,
            cell=cell,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            init=init,
            forget_bias=forget_bias,
            learn_initial_state=learn_initial_state,
            implementation=implementation,
        )
        width = self.encoder.output_size
        self.norm = nn.LayerNorm(width) if layer_norm else nn.Identity()
        self.pool = SequencePooling(pooling, width, self.encoder.num_directions, attention_size)
        self.head = nn.Sequential(
            nn.Dropout(head_dropout), nn.Linear(width, output_len * output_size)
        )

    def encoder_inputs(self, batch: dict) -> tuple[Tensor, Tensor | None]:
        """What the encoder reads for ``batch``: ``batch["x"]`` ``(N, L, H_in)``, no lengths."""
        return batch["x"], None

    def forward(
        self, x: Tensor, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        """Forecast from ``x`` ``(N, L, H_in)``.

        Returns:
            ``(N, output_len, output_size)``; with ``return_attention`` also the attention
            pooling weights ``(N, L)`` (``None`` for other pooling).
        """
        output, state = self.encoder(self.revin.normalize(x))  # output: (N, L, D * H_out)
        h_n = state[0] if isinstance(state, tuple) else state
        pooled, weights = self.pool(output, h_n, None)  # (N, D * H_out)
        out = self.head(self.norm(pooled)).view(-1, self.output_len, self.output_size)
        out = self.revin.denormalize(out)
        return (out, weights) if return_attention else out
