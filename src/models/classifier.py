"""Recurrent text classifier: embedding -> RecurrentEncoder -> pooling -> dropout -> linear
(as in Dai & Le 2015's supervised LSTM baseline)."""

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from src.models.pooling import Pooling, SequencePooling
from src.models.recurrent.encoder import Cell, RecurrentEncoder


class RNNClassifier(nn.Module):
    """Token ids ``(N, L)`` plus lengths ``(N,)`` -> class logits ``(N, C)``.

    Args:
        vocab_size: Embedding rows (linked from the datamodule); id 0 is padding.
        num_classes: Output classes ``C`` (linked from the datamodule).
        embedding_dim: Embedding width ``H_in``.
        hidden_size: Recurrent units per direction.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        num_layers: Stacked recurrent layers.
        dropout: Dropout between recurrent layers.
        bidirectional: Use a bidirectional encoder.
        proj_size: LSTM projection size (0 = none).
        pooling: ``"last"``, ``"mean"``, ``"max"`` or ``"attention"``.
        attention_size: Scoring width of attention pooling.
        layer_norm: LayerNorm on the pooled vector.
        embedding_dropout: Dropout on the embeddings.
        output_dropout: Dropout on the pooled vector before the linear head.
        init: Recurrent weight initialisation, see :class:`RecurrentEncoder`.
        forget_bias: LSTM forget-gate bias at initialisation.
        learn_initial_state: Learn the initial recurrent state.
        freeze_embeddings: Keep the embedding fixed (with pretrained vectors).
        implementation: Recurrent kernels, ``"torch"`` or ``"handwritten"``, see
            :class:`RecurrentEncoder`.
        dense_exact_devices: Device types where variable lengths run the dense exact path, see
            :class:`~src.models.recurrent.RecurrentEncoder`.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 2,
        embedding_dim: int = 128,
        hidden_size: int = 256,
        cell: Cell = "lstm",
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        pooling: Pooling = "last",
        attention_size: int = 128,
        layer_norm: bool = False,
        embedding_dropout: float = 0.0,
        output_dropout: float = 0.5,
        init: Literal["default", "xavier_orthogonal"] = "default",
        forget_bias: float | None = None,
        learn_initial_state: bool = False,
        freeze_embeddings: bool = False,
        implementation: Literal["torch", "handwritten"] = "torch",
        dense_exact_devices: Sequence[str] = ("cpu",),
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.embedding.weight.requires_grad_(not freeze_embeddings)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.encoder = RecurrentEncoder(
            input_size=embedding_dim,
            hidden_size=hidden_size,
            cell=cell,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            proj_size=proj_size,
            init=init,
            forget_bias=forget_bias,
            learn_initial_state=learn_initial_state,
            implementation=implementation,
            dense_exact_devices=dense_exact_devices,
        )
        width = self.encoder.output_size
        self.norm = nn.LayerNorm(width) if layer_norm else nn.Identity()
        self.pool = SequencePooling(pooling, width, self.encoder.num_directions, attention_size)
        self.head = nn.Sequential(nn.Dropout(output_dropout), nn.Linear(width, num_classes))

    def load_embeddings(self, vectors: Tensor) -> None:
        """Copy pretrained vectors ``(vocab_size, embedding_dim)`` into the embedding."""
        copy_vectors(self.embedding, vectors)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters from the bottom up: the embedding, each recurrent layer (both directions,
        a learned initial state with the first), then pooling, norm and head together. For
        discriminative learning rates and gradual unfreezing (Howard & Ruder 2018)."""
        layers: list[list[nn.Parameter]] = [[] for _ in range(self.encoder.num_layers)]
        for name, p in self.encoder.named_parameters():
            suffix = name.rsplit("_l", 1)[-1].removesuffix("_reverse")
            layers[int(suffix) if name.startswith("rnn.") else 0].append(p)
        top = [*self.pool.parameters(), *self.norm.parameters(), *self.head.parameters()]
        return [list(self.embedding.parameters()), *layers, top]

    def encoder_inputs(self, batch: dict) -> tuple[Tensor, Tensor | None]:
        """What the encoder reads for ``batch``: embedded tokens ``(N, L, H_in)`` and lengths."""
        return self.embedding_dropout(self.embedding(batch["tokens"])), batch.get("lengths")

    def forward(
        self, tokens: Tensor, lengths: Tensor | None = None, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        """Classify ``tokens`` ``(N, L)`` with ``lengths`` ``(N,)``.

        Returns:
            Logits ``(N, C)``; with ``return_attention`` also the pooling weights ``(N, L)``.
        """
        x = self.embedding_dropout(self.embedding(tokens))  # (N, L, H_in)
        output, state = self.encoder(x, lengths, need_cell_state=False)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM returns (h_n, c_n)
        pooled, weights = self.pool(output, h_n, lengths)
        logits = self.head(self.norm(pooled))
        return (logits, weights) if return_attention else logits


def copy_vectors(embedding: nn.Embedding, vectors: Tensor) -> None:
    """Copy pretrained vectors ``(vocab_size, embedding_dim)`` into ``embedding``'s weight."""
    if vectors.shape != embedding.weight.shape:
        raise ValueError(
            f"pretrained vectors have shape {tuple(vectors.shape)}, the embedding "
            f"{tuple(embedding.weight.shape)}: match vocab_size and embedding_dim"
        )
    with torch.no_grad():
        embedding.weight.copy_(vectors)
