"""BiLSTM sequence tagger with a character-level word encoder (Lample et al. 2016; Plank et al.
2016): [word embedding; char BiLSTM] -> BiLSTM -> per-token linear."""

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from src.models.recurrent.encoder import Cell, RecurrentEncoder


class CharEncoder(nn.Module):
    """Each word's characters -> one vector: the final states of a char BiLSTM, concatenated.

    Only real words are encoded (padded word positions get zeros), so the result at a word never
    depends on the batch it is in.

    Args:
        char_vocab_size: Character embedding rows; id 0 is padding.
        embedding_dim: Character embedding width.
        hidden_size: Char BiLSTM units per direction; the output has ``2 * hidden_size``.
    """

    def __init__(self, char_vocab_size: int, embedding_dim: int = 32, hidden_size: int = 50):
        super().__init__()
        self.embedding = nn.Embedding(char_vocab_size, embedding_dim, padding_idx=0)
        self.encoder = RecurrentEncoder(
            input_size=embedding_dim, hidden_size=hidden_size, bidirectional=True
        )
        self.output_size = 2 * hidden_size

    def forward(self, chars: Tensor, mask: Tensor) -> Tensor:
        """Args: ``chars`` ``(N, L, W)`` ids, ``mask`` ``(N, L)`` true at real words.

        Returns: ``(N, L, 2 * hidden_size)``, zeros at padded words.
        """
        words = chars[mask]  # (T, W): the T real words of the batch
        lengths = (words != 0).sum(-1).clamp(min=1)  # an empty form still runs one step
        _, (h_n, _) = self.encoder(self.embedding(words), lengths, need_cell_state=False)
        vectors = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (T, 2H): forward-last, backward-first
        out = vectors.new_zeros(*mask.shape, self.output_size)
        out[mask] = vectors
        return out


class BiLSTMTagger(nn.Module):
    """Word ids ``(N, L)``, char ids ``(N, L, W)`` and lengths ``(N,)`` -> tag logits ``(N, L, T)``.

    Args:
        vocab_size: Word embedding rows (linked from the datamodule); id 0 padding, 1 unknown.
        char_vocab_size: Character embedding rows (linked); 0 disables the char encoder.
        num_tags: Output tags ``T`` (linked from the datamodule).
        embedding_dim: Word embedding width.
        char_embedding_dim: Character embedding width.
        char_hidden_size: Char BiLSTM units per direction.
        hidden_size: Sentence encoder units per direction.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"`` for the sentence encoder.
        num_layers: Stacked sentence encoder layers.
        dropout: Dropout on the word representations, between layers and before the head.
        word_dropout: Training only: probability of replacing a word id by ``<unk>`` (id 1), so
            the ``<unk>`` row and the char encoder learn to stand in for rare words.
        init: Recurrent weight initialisation, see :class:`RecurrentEncoder`.
        forget_bias: LSTM forget-gate bias at initialisation.
        dense_exact_devices: Device types where variable lengths run the dense exact path, see
            :class:`~src.models.recurrent.RecurrentEncoder`.
    """

    def __init__(
        self,
        vocab_size: int,
        char_vocab_size: int,
        num_tags: int,
        embedding_dim: int = 100,
        char_embedding_dim: int = 32,
        char_hidden_size: int = 50,
        hidden_size: int = 200,
        cell: Cell = "lstm",
        num_layers: int = 1,
        dropout: float = 0.33,
        word_dropout: float = 0.0,
        init: Literal["default", "xavier_orthogonal"] = "default",
        forget_bias: float | None = None,
        dense_exact_devices: Sequence[str] = ("cpu",),
    ) -> None:
        super().__init__()
        if not 0.0 <= word_dropout < 1.0:
            raise ValueError(f"word_dropout must be in [0, 1), got {word_dropout}")
        self.word_dropout = word_dropout
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.chars = (
            CharEncoder(char_vocab_size, char_embedding_dim, char_hidden_size)
            if char_vocab_size > 0
            else None
        )
        input_size = embedding_dim + (self.chars.output_size if self.chars else 0)
        self.dropout = nn.Dropout(dropout)
        self.encoder = RecurrentEncoder(
            input_size=input_size,
            hidden_size=hidden_size,
            cell=cell,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=True,
            init=init,
            forget_bias=forget_bias,
            dense_exact_devices=dense_exact_devices,
        )
        self.head = nn.Linear(self.encoder.output_size, num_tags)

    def forward(self, words: Tensor, chars: Tensor | None, lengths: Tensor) -> Tensor:
        """Args: ``words`` ``(N, L)``, ``chars`` ``(N, L, W)`` (ignored without a char
        encoder), ``lengths`` ``(N,)`` in ``1..L``. Returns logits ``(N, L, num_tags)``; rows at
        padded positions are meaningless and must be masked by the caller.
        """
        steps = torch.arange(words.size(1), device=words.device)
        mask = steps[None, :] < lengths.to(words.device)[:, None]  # (N, L) real words
        if self.training and self.word_dropout > 0:
            drop = torch.rand(words.shape, device=words.device) < self.word_dropout
            words = words.masked_fill(drop & mask, 1)  # 1 = <unk>
        x = self.embedding(words)  # (N, L, E)
        if self.chars is not None:
            if chars is None:
                raise ValueError("this tagger has a char encoder: pass chars (N, L, W)")
            x = torch.cat([x, self.chars(chars, mask)], dim=-1)  # (N, L, E + 2 * H_char)
        out, _ = self.encoder(self.dropout(x), lengths, need_cell_state=False)
        return self.head(self.dropout(out))  # (N, L, num_tags)
