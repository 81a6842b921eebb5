"""Bag-of-embeddings text classifier: a deep averaging network (Iyyer et al. 2015) in the spirit
of fastText (Joulin et al. 2017): order-free pooled word vectors -> MLP."""

from typing import Literal

import torch
from torch import Tensor, nn

from src.models.classifier import copy_vectors
from src.models.pooling import SequencePooling


class BagOfEmbeddings(nn.Module):
    """Token ids ``(N, L)`` plus lengths ``(N,)`` -> class logits ``(N, C)``, ignoring word order.

    The embeddings of the valid tokens are averaged (``pooling="mean"``), max-pooled (``"max"``)
    or both, concatenated (``"mean_max"``), then pass through ``num_layers`` hidden ReLU layers
    of ``hidden_size`` units with dropout and a linear output layer.

    Args:
        vocab_size: Embedding rows (linked from the datamodule); id 0 is padding.
        num_classes: Output classes ``C`` (linked from the datamodule).
        embedding_dim: Embedding width ``H_in``.
        hidden_size: Units of each hidden layer of the MLP.
        num_layers: Hidden layers of the MLP (0: a linear classifier on the pooled vector).
        pooling: ``"mean"``, ``"max"`` or ``"mean_max"`` over valid tokens.
        embedding_dropout: Dropout on the embeddings before pooling.
        dropout: Dropout before every linear layer of the MLP.
        freeze_embeddings: Keep the embedding fixed (with pretrained vectors).
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 2,
        embedding_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        pooling: Literal["mean", "max", "mean_max"] = "mean",
        embedding_dropout: float = 0.0,
        dropout: float = 0.5,
        freeze_embeddings: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "max", "mean_max"):
            raise ValueError(f"pooling must be mean, max or mean_max, got {pooling!r}")
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.embedding.weight.requires_grad_(not freeze_embeddings)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        modes = pooling.split("_")  # "mean_max" -> ["mean", "max"]
        self.pools = nn.ModuleList(SequencePooling(mode, embedding_dim, 1) for mode in modes)
        layers, width = [], embedding_dim * len(modes)
        for _ in range(num_layers):
            layers += [nn.Dropout(dropout), nn.Linear(width, hidden_size), nn.ReLU()]
            width = hidden_size
        self.mlp = nn.Sequential(*layers, nn.Dropout(dropout), nn.Linear(width, num_classes))

    def load_embeddings(self, vectors: Tensor) -> None:
        """Copy pretrained vectors ``(vocab_size, embedding_dim)`` into the embedding."""
        copy_vectors(self.embedding, vectors)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Classify ``tokens`` ``(N, L)`` with ``lengths`` ``(N,)`` (None: no padding).

        Returns:
            Logits ``(N, C)``.
        """
        x = self.embedding_dropout(self.embedding(tokens))  # (N, L, H_in)
        pooled = torch.cat([pool(x, None, lengths)[0] for pool in self.pools], -1)  # (N, P*H_in)
        return self.mlp(pooled)
