"""Word-level recurrent language model with an adaptive softmax (Grave et al. 2017), as pretrained
for text classification by Dai & Le 2015 and Howard & Ruder 2018 (ULMFiT)."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.recurrent.encoder import Cell, RecurrentEncoder

State = Tensor | tuple[Tensor, Tensor]


class WordLM(nn.Module):
    """Token ids ``(N, L)`` -> next-token log-probabilities: embedding -> recurrent stack ->
    dropout -> adaptive softmax.

    The embedding (``padding_idx=0``) and the recurrent stack (``encoder``, a
    :class:`~src.models.recurrent.RecurrentEncoder`) carry the names and shapes of
    :class:`~src.models.classifier.RNNClassifier`'s, so a classifier can start from them
    (:func:`~src.models.pretrained.load_language_model`). The adaptive softmax
    (``nn.AdaptiveLogSoftmaxWithLoss``) scores the ``cutoffs[0]`` most frequent tokens and one
    entry per tail cluster in its head, and rarer tokens in smaller tail projections; training
    only evaluates the clusters of the targets (:meth:`target_nats`). ``cutoffs=[]`` is a full
    softmax. :attr:`config` holds the constructor arguments (stored in checkpoints).

    Args:
        vocab_size: Tokens ``V`` (linked from the datamodule); ids are in frequency order, as the
            ``tokenizers`` vocabularies are, which the cutoffs rely on.
        embedding_dim: Token embedding size ``E``.
        hidden_size: Recurrent units ``H`` per layer.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        num_layers: Stacked recurrent layers.
        dropout: Dropout between recurrent layers and on the top layer's output.
        embedding_dropout: Dropout on the embedded tokens.
        cutoffs: Ids where the adaptive softmax's clusters start, increasing, below
            ``vocab_size``; ``[]`` for a full softmax.
        div_value: Each tail cluster's projection is this many times narrower than the last.
        init: Recurrent weight initialisation, see :class:`~src.models.recurrent.RecurrentEncoder`.
        forget_bias: LSTM forget-gate bias at initialisation (e.g. 1.0).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 256,
        hidden_size: int = 512,
        cell: Cell = "lstm",
        num_layers: int = 1,
        dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        cutoffs: tuple[int, ...] = (2000, 10000),
        div_value: float = 4.0,
        init: Literal["default", "xavier_orthogonal"] = "default",
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        self.config = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.config["cutoffs"] = list(cutoffs)
        cutoffs = [c for c in cutoffs if c < vocab_size]  # a tiny vocabulary has fewer clusters
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
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
        if cutoffs:
            self.head = nn.AdaptiveLogSoftmaxWithLoss(hidden_size, vocab_size, cutoffs, div_value)
        else:
            self.head = nn.Linear(hidden_size, vocab_size)

    def features(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Top-layer outputs ``(N, L, H)`` (after dropout) and the final state.

        Args:
            x: ``(N, L)`` token ids.
            state: ``h`` ``(num_layers, N, H)`` (LSTM: ``(h, c)``) from the previous chunk;
                ``None`` starts from zeros.
        """
        emb = self.embedding_dropout(self.embedding(x))  # (N, L, E)
        output, state = self.encoder.rnn(emb, state)  # the plain nn.LSTM/GRU/RNN: carried state
        return self.dropout(output), state

    def target_nats(self, x: Tensor, y: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Cross-entropy of each target ``y`` ``(N, L)`` in nats, ``(N * L,)``, and the state."""
        output, state = self.features(x, state)
        if isinstance(self.head, nn.Linear):  # full softmax
            return F.cross_entropy(
                self.head(output).flatten(0, 1), y.flatten(), reduction="none"
            ), state
        return -self.head(output.flatten(0, 1), y.flatten()).output, state  # (N * L,)

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Log-probabilities of every next token ``(N, L, V)`` and the final state."""
        output, state = self.features(x, state)
        if isinstance(self.head, nn.Linear):
            return self.head(output).log_softmax(-1), state
        return self.head.log_prob(output.flatten(0, 1)).view(*x.shape, -1), state

    @torch.no_grad()
    def sample(
        self,
        prompt: Tensor,
        length: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample ``length`` tokens ``(N, length)`` after ``prompt`` ``(N, P)`` (in eval mode)."""
        if prompt.dim() != 2 or prompt.size(1) < 1 or temperature <= 0:
            raise ValueError("prompt must be (N, P) ids with P >= 1 and temperature > 0")
        logprobs, state = self(prompt)
        out = []
        for _ in range(length):
            probs = (logprobs[:, -1] / temperature).softmax(-1)  # (N, V)
            out.append(torch.multinomial(probs, 1, generator=generator))  # (N, 1)
            logprobs, state = self(out[-1], state)
        return torch.cat(out, dim=1) if out else prompt.new_zeros(prompt.size(0), 0)
