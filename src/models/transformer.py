"""Transformer encoder text classifier (Vaswani et al. 2017), pre-norm (Xiong et al. 2020), pooled
over valid tokens or read from a prepended [CLS] token (Devlin et al. 2019)."""

import math
from typing import Literal

import torch
from torch import Tensor, nn

from src.models.pooling import SequencePooling


def sinusoidal_encoding(max_len: int, d_model: int) -> Tensor:
    """Fixed positional encoding ``(max_len, d_model)``: sin on even, cos on odd features."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
    inv_freq = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2] = torch.sin(position * inv_freq)
    pe[:, 1::2] = torch.cos(position * inv_freq[: d_model // 2])
    return pe


class TransformerClassifier(nn.Module):
    """Token ids ``(N, L)`` plus lengths ``(N,)`` -> class logits ``(N, C)``.

    Embeddings scaled by ``sqrt(d_model)`` plus positional encodings feed an
    ``nn.TransformerEncoder`` (pre-norm, GELU) whose attention never reads padded positions
    (key padding mask from ``lengths``); the outputs are mean-pooled over valid tokens or the
    [CLS] position is read, then dropout and a linear layer give the logits.

    Args:
        vocab_size: Embedding rows (linked from the datamodule); id 0 is padding.
        num_classes: Output classes ``C`` (linked from the datamodule).
        d_model: Embedding and model width.
        nhead: Attention heads (must divide ``d_model``).
        num_layers: Encoder layers.
        dim_feedforward: Width of each layer's feed-forward block.
        dropout: Dropout on the embeddings, on every residual branch and before the output layer.
        attention_dropout: Dropout on the attention weights; 0 lets CPUs and GPUs use the fused
            ``scaled_dot_product_attention`` kernels instead of materialising ``(N, nhead, L, L)``.
        max_len: Longest sequence the positional encoding covers ([CLS] included).
        positional: ``"sinusoidal"`` (fixed) or ``"learned"`` position embeddings.
        pooling: ``"mean"`` over valid outputs or ``"cls"`` (a learned token prepended).
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 2,
        d_model: int = 128,
        nhead: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 512,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        max_len: int = 512,
        positional: Literal["sinusoidal", "learned"] = "sinusoidal",
        pooling: Literal["mean", "cls"] = "mean",
    ) -> None:
        super().__init__()
        if positional not in ("sinusoidal", "learned"):
            raise ValueError(f"positional must be sinusoidal or learned, got {positional!r}")
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be mean or cls, got {pooling!r}")
        self.d_model, self.max_len = d_model, max_len
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)  # scaled back up in forward
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        if positional == "learned":
            self.position = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        else:
            self.register_buffer("position", sinusoidal_encoding(max_len, d_model), False)
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02) if pooling == "cls" else None
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward, dropout, "gelu", batch_first=True, norm_first=True
        )
        layer.self_attn.dropout = attention_dropout  # the float nn.MultiheadAttention reads
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.pool = SequencePooling("mean", d_model, 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_model, num_classes))

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Classify ``tokens`` ``(N, L)`` with ``lengths`` ``(N,)`` (None: no padding).

        Returns:
            Logits ``(N, C)``.
        """
        n, length = tokens.shape
        if lengths is None:
            lengths = torch.full((n,), length, dtype=torch.long, device=tokens.device)
        lengths = lengths.to(tokens.device)
        x = self.embedding(tokens) * math.sqrt(self.d_model)  # (N, L, E)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(n, -1, -1), x], 1)  # (N, 1 + L, E)
            lengths = lengths + 1
        if x.size(1) > self.max_len:
            raise ValueError(
                f"sequence length {x.size(1)} exceeds the positional encoding's max_len "
                f"{self.max_len}: raise the model's max_len or truncate the data (data max_len)"
            )
        x = self.dropout(x + self.position[: x.size(1)])
        padding = torch.arange(x.size(1), device=x.device) >= lengths[:, None]  # (N, L'), True=pad
        output = self.encoder(x, src_key_padding_mask=padding)  # (N, L', E)
        pooled = output[:, 0] if self.cls is not None else self.pool(output, None, lengths)[0]
        return self.head(pooled)
