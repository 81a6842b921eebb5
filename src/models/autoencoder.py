"""LSTM encoder-decoder autoencoder for windows of a series (Srivastava et al. 2015; EncDec-AD,
Malhotra et al. 2016): the per-step reconstruction error is the anomaly score."""

from typing import Literal

from torch import Tensor, nn

from src.models.pooling import last_hidden
from src.models.recurrent.encoder import Cell, RecurrentEncoder


class LSTMAutoencoder(nn.Module):
    """Windows ``(N, W, C)`` -> reconstructions ``(N, W, C)`` through a ``latent_size`` bottleneck.

    The encoder's last hidden state ``(N, H)`` is projected to a latent code ``(N, latent_size)``;
    the decoder, a second recurrent stack, reads that code repeated at every one of the ``W``
    steps (Srivastava et al.'s unconditioned decoder) and a linear head maps its outputs back to
    ``C`` channels, in the window's own time order. Malhotra et al. instead feed the decoder the
    true previous value (teacher forcing) and reconstruct in reverse; at test time their decoder
    consumes its own predictions step by step. The repeated code is chosen here because every
    step of the window is then reconstructed from the code alone, in one batched recurrent call:
    an anomalous value cannot be copied through the decoder's input, and evaluation runs at the
    dense kernel's speed.

    Args:
        input_size: Channels per step ``C`` (linked from the datamodule).
        hidden_size: Recurrent units of the encoder and the decoder ``H``.
        num_layers: Stacked recurrent layers in each of the encoder and the decoder.
        latent_size: Width of the bottleneck code.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``, for both stacks.
        dropout: Dropout between stacked recurrent layers.
        init: Recurrent weight initialisation, see :class:`RecurrentEncoder`.
    """

    def __init__(
        self,
        input_size: int = 1,
        hidden_size: int = 64,
        num_layers: int = 1,
        latent_size: int = 16,
        cell: Cell = "lstm",
        dropout: float = 0.0,
        init: Literal["default", "xavier_orthogonal"] = "default",
    ) -> None:
        super().__init__()
        if min(input_size, hidden_size, num_layers, latent_size) < 1:
            raise ValueError("input_size, hidden_size, num_layers and latent_size must be >= 1")
        self.input_size, self.latent_size = input_size, latent_size
        stack = dict(cell=cell, num_layers=num_layers, dropout=dropout, init=init)
        self.encoder = RecurrentEncoder(input_size=input_size, hidden_size=hidden_size, **stack)
        self.to_latent = nn.Linear(hidden_size, latent_size)
        self.decoder = RecurrentEncoder(input_size=latent_size, hidden_size=hidden_size, **stack)
        self.head = nn.Linear(hidden_size, input_size)

    def encode(self, x: Tensor) -> Tensor:
        """Latent codes ``(N, latent_size)`` of windows ``x`` ``(N, W, C)``."""
        _, state = self.encoder(x)
        h_n = state[0] if isinstance(state, tuple) else state  # (num_layers, N, H)
        return self.to_latent(last_hidden(h_n, 1))  # top layer's final state -> (N, latent)

    def decode(self, z: Tensor, steps: int) -> Tensor:
        """Reconstruct ``steps`` steps ``(N, steps, C)`` from codes ``z`` ``(N, latent_size)``."""
        repeated = z.unsqueeze(1).expand(-1, steps, -1)  # (N, W, latent), the code at every step
        output, _ = self.decoder(repeated.contiguous())  # (N, W, H)
        return self.head(output)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruct windows ``x`` ``(N, W, C)``; returns ``(N, W, C)``."""
        if x.dim() != 3 or x.size(-1) != self.input_size:
            raise ValueError(f"expected windows (N, W, {self.input_size}), got {tuple(x.shape)}")
        return self.decode(self.encode(x), x.size(1))
