"""Character-level recurrent language model (char-RNN, Karpathy 2015; dropout on non-recurrent
connections after Zaremba et al. 2014, optional weight tying after Press & Wolf 2017)."""

from typing import Literal

import torch
from torch import Tensor, nn

from src.models.recurrent.encoder import Cell, RecurrentEncoder

State = Tensor | tuple[Tensor, Tensor]


class CharRNN(nn.Module):
    """Character ids ``(N, L)`` -> next-character logits ``(N, L, V)``: embedding -> recurrent
    stack -> dropout -> linear over the vocabulary.

    ``forward`` takes and returns the recurrent state so a task can carry it across contiguous
    chunks (truncated BPTT) and :meth:`sample` can continue a prompt one character at a time.
    :attr:`config` holds the constructor arguments; checkpoints store it so generation can rebuild
    the network without the data (nanoGPT's ``model_args``).

    Args:
        vocab_size: Characters ``V`` (linked from the datamodule).
        embedding_dim: Character embedding size.
        hidden_size: Recurrent units ``H`` per layer.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        num_layers: Stacked recurrent layers.
        dropout: Dropout on the embeddings, between recurrent layers and before the output layer.
        tie_weights: Share the embedding matrix with the output layer (needs
            ``embedding_dim == hidden_size``).
        init: Recurrent weight initialisation, see :class:`~src.models.recurrent.RecurrentEncoder`.
        forget_bias: LSTM forget-gate bias at initialisation (e.g. 1.0).
    """

    def __init__(
        self,
        vocab_size: int = 128,
        embedding_dim: int = 64,
        hidden_size: int = 512,
        cell: Cell = "lstm",
        num_layers: int = 2,
        dropout: float = 0.0,
        tie_weights: bool = False,
        init: Literal["default", "xavier_orthogonal"] = "default",
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        self.config = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        if tie_weights and embedding_dim != hidden_size:
            raise ValueError(
                f"tie_weights needs embedding_dim == hidden_size, got {embedding_dim} and "
                f"{hidden_size}; set embedding_dim: {hidden_size}"
            )
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.encoder = RecurrentEncoder(
            input_size=embedding_dim,
            hidden_size=hidden_size,
            cell=cell,
            num_layers=num_layers,
            dropout=dropout,
            init=init,
            forget_bias=forget_bias,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.head.weight = self.embedding.weight

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Logits for the character after each input character.

        Args:
            x: ``(N, L)`` character ids.
            state: ``h`` ``(num_layers, N, H)`` (LSTM: ``(h, c)``) from the previous chunk;
                ``None`` starts from zeros.

        Returns:
            ``(logits (N, L, V), final state)``.
        """
        emb = self.dropout(self.embedding(x))  # (N, L, E)
        output, state = self.encoder.rnn(emb, state)  # (N, L, H); the plain nn.LSTM/GRU/RNN
        return self.head(self.dropout(output)), state

    @torch.no_grad()
    def sample(
        self,
        prompt: Tensor,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Continue ``prompt`` by ``length`` characters drawn one at a time (call in eval mode).

        Args:
            prompt: ``(N, P)`` character ids, ``P >= 1``, read before sampling starts.
            length: Characters to sample.
            temperature: Logits are divided by it: < 1 sharper, > 1 flatter.
            top_k: Sample among the ``top_k`` most likely characters only (1 = greedy).
            generator: Random generator, for reproducible samples.

        Returns:
            ``(N, length)`` sampled ids (the prompt not included).
        """
        if prompt.dim() != 2 or prompt.size(1) < 1:
            raise ValueError(f"prompt must be (N, P) ids with P >= 1, got {tuple(prompt.shape)}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}; top_k=1 is greedy")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
        logits, state = self(prompt)
        out = []
        for _ in range(length):
            last = logits[:, -1] / temperature  # (N, V)
            if top_k is not None and top_k < last.size(-1):
                kth = last.topk(top_k, dim=-1).values[:, -1:]  # (N, 1) the k-th largest logit
                last = last.masked_fill(last < kth, float("-inf"))
            nxt = torch.multinomial(last.softmax(-1), 1, generator=generator)  # (N, 1)
            out.append(nxt)
            logits, state = self(nxt, state)
        return torch.cat(out, dim=1) if out else prompt.new_zeros(prompt.size(0), 0)
