"""Recurrent encoder-decoder with attention for token sequences (Sutskever et al. 2014; attention:
Bahdanau et al. 2015, Luong et al. 2015, with Luong's input feeding)."""

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from src.models.attention import Attention
from src.models.recurrent.encoder import RecurrentEncoder

_DECODERS = {"lstm": nn.LSTM, "gru": nn.GRU}
Carry = dict[str, Tensor]  # decoder state, batch first: "h" (N, layers, H), "c", "feed" (N, 1, E)
Memory = dict[str, Tensor]  # "keys" (N, S, A), "memory" (N, S, H), "mask" (N, S)


class Seq2Seq(nn.Module):
    """Embedding -> (bi)LSTM/GRU encoder -> attentional LSTM/GRU decoder -> target logits.

    The encoder (:class:`~src.models.recurrent.RecurrentEncoder`, exact variable-length semantics)
    has ``hidden_size // D`` units per direction, so its outputs (the attention memory) have
    ``hidden_size`` features. The decoder starts from ``tanh(W [h_fwd; h_bwd])`` of the last
    encoder layer. At step ``t`` with ``attention="luong"`` the decoder state ``h_t`` queries the
    memory; with ``"bahdanau"`` the previous state ``h_{t-1}`` does and the context enters the
    recurrence. Either way ``a_t = tanh(W_c [h_t; c_t])`` (size ``embedding_dim``) gives the
    logits through the output layer (tied to the target embedding with ``tie_embeddings``), and
    with ``input_feeding`` (Luong) ``a_{t-1}`` is part of the next input. Luong attention without
    input feeding runs the teacher-forced decoder as one dense recurrent call.

    Args:
        src_vocab_size: Source vocabulary ``V_s`` (linked from the datamodule).
        tgt_vocab_size: Target vocabulary ``V_t`` (linked from the datamodule).
        embedding_dim: Embedding size ``E`` (also the attentional vector's size).
        hidden_size: Decoder units ``H`` and encoder output features.
        cell: ``"lstm"`` or ``"gru"`` for encoder and decoder.
        num_layers: Layers of the encoder and of the decoder.
        dropout: Dropout on embeddings, between layers and on the attentional vector.
        bidirectional: Bidirectional encoder.
        attention: ``"bahdanau"`` (additive) or ``"luong"`` (general).
        input_feeding: Feed ``a_{t-1}`` into the decoder input (``"luong"`` only).
        tie_embeddings: Share the target embedding and the output layer's weight.
        pad_id: Padding id (0). bos_id: Start-of-sentence id. eos_id: End-of-sentence id.
        dense_exact_devices: Device types where variable lengths run the dense exact path, see
            :class:`~src.models.recurrent.RecurrentEncoder`.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        embedding_dim: int = 256,
        hidden_size: int = 512,
        cell: Literal["lstm", "gru"] = "lstm",
        num_layers: int = 1,
        dropout: float = 0.3,
        bidirectional: bool = True,
        attention: Literal["bahdanau", "luong"] = "luong",
        input_feeding: bool = True,
        tie_embeddings: bool = True,
        pad_id: int = 0,
        bos_id: int = 2,
        eos_id: int = 3,
        dense_exact_devices: Sequence[str] = ("cpu",),
    ) -> None:
        super().__init__()
        if cell not in _DECODERS:
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        if attention not in ("bahdanau", "luong"):
            raise ValueError(f"attention must be 'bahdanau' or 'luong', got {attention!r}")
        if input_feeding and attention != "luong":
            raise ValueError(
                "input_feeding applies to attention='luong'; set it false for bahdanau"
            )
        directions = 2 if bidirectional else 1
        if hidden_size % directions:
            raise ValueError(f"hidden_size {hidden_size} must be even for a bidirectional encoder")
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.attention_kind, self.input_feeding, self.cell = attention, input_feeding, cell
        self.num_layers, self.hidden_size, self.directions = num_layers, hidden_size, directions
        self.src_embedding = nn.Embedding(src_vocab_size, embedding_dim, padding_idx=pad_id)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, embedding_dim, padding_idx=pad_id)
        self.encoder = RecurrentEncoder(
            input_size=embedding_dim,
            hidden_size=hidden_size // directions,
            cell=cell,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            dense_exact_devices=dense_exact_devices,
        )
        self.bridge = nn.Linear(hidden_size, num_layers * hidden_size)
        extra = {"bahdanau": hidden_size, "luong": embedding_dim if input_feeding else 0}
        self.decoder = _DECODERS[cell](
            embedding_dim + extra[attention],
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.attention = Attention(hidden_size, hidden_size, attention)
        self.combine = nn.Linear(2 * hidden_size, embedding_dim)
        self.output = nn.Linear(embedding_dim, tgt_vocab_size)
        if tie_embeddings:
            self.output.weight = self.tgt_embedding.weight
        self.drop = nn.Dropout(dropout)

    def encode(self, src: Tensor, lengths: Tensor) -> tuple[Memory, Carry]:
        """Encode ``src`` ``(N, S)`` with true ``lengths`` ``(N,)``: memory and initial carry."""
        if src.dim() != 2 or lengths.shape != src.shape[:1]:
            raise ValueError(
                f"expected src (N, S) and lengths (N,), got {tuple(src.shape)} and "
                f"{tuple(lengths.shape)}"
            )
        memory, h_n = self.encoder(self.drop(self.src_embedding(src)), lengths, False)
        h_n = h_n[0] if self.cell == "lstm" else h_n  # (layers * D, N, H / D)
        last = h_n[-self.directions :].transpose(0, 1).flatten(1)  # (N, H): [fwd; bwd]
        h0 = torch.tanh(self.bridge(last)).view(-1, self.num_layers, self.hidden_size)
        carry = {"h": h0}  # (N, layers, H)
        if self.cell == "lstm":
            carry["c"] = torch.zeros_like(h0)
        if self.input_feeding:
            carry["feed"] = h0.new_zeros(h0.size(0), 1, self.combine.out_features)
        mask = torch.arange(src.size(1), device=src.device) < lengths.to(src.device)[:, None]
        return {"keys": self.attention.keys(memory), "memory": memory, "mask": mask}, carry

    def _attend(self, query: Tensor, mem: Memory) -> tuple[Tensor, Tensor]:
        return self.attention(query, mem["keys"], mem["memory"], mem["mask"])

    def _run(self, emb: Tensor, carry: Carry, mem: Memory) -> tuple[Tensor, Carry, Tensor]:
        """Decoder on embedded inputs ``(N, T, E)`` (``T > 1`` only if no step feeds the next)."""
        state = carry["h"].transpose(0, 1).contiguous()  # (layers, N, H) as nn.LSTM wants
        if self.cell == "lstm":
            state = (state, carry["c"].transpose(0, 1).contiguous())
        if self.attention_kind == "bahdanau":  # query: the previous top-layer state
            context, weights = self._attend(carry["h"][:, -1:], mem)
            out, state = self.decoder(torch.cat([emb, context], -1), state)
        else:
            inputs = torch.cat([emb, carry["feed"]], -1) if self.input_feeding else emb
            out, state = self.decoder(inputs, state)
            context, weights = self._attend(out, mem)
        attentional = self.drop(torch.tanh(self.combine(torch.cat([out, context], -1))))
        h, c = state if self.cell == "lstm" else (state, None)
        new = {"h": h.transpose(0, 1)} | ({"c": c.transpose(0, 1)} if c is not None else {})
        if self.input_feeding:
            new["feed"] = attentional[:, -1:]
        return self.output(attentional), new, weights

    def forward(
        self, src: Tensor, lengths: Tensor, tgt_in: Tensor, teacher_forcing_ratio: float = 1.0
    ) -> tuple[Tensor, Tensor]:
        """Teacher-forced decoding of ``tgt_in`` ``(N, T)`` (``<bos> y_1 ... y_{T-1}``).

        With ``teacher_forcing_ratio < 1`` each input after the first is, per sequence, the
        gold token with that probability and else the model's previous argmax.

        Returns:
            ``logits`` ``(N, T, V_t)`` and attention ``weights`` ``(N, T, S)``.
        """
        mem, carry = self.encode(src, lengths)
        emb = self.drop(self.tgt_embedding(tgt_in))  # (N, T, E)
        parallel = self.attention_kind == "luong" and not self.input_feeding
        if parallel and teacher_forcing_ratio >= 1.0:
            logits, _, weights = self._run(emb, carry, mem)  # one recurrent call over T
            return logits, weights
        logits, weights = [], []
        for t in range(tgt_in.size(1)):
            step = emb[:, t : t + 1]
            if t > 0 and teacher_forcing_ratio < 1.0:
                gold = torch.rand(step.size(0), 1, 1, device=step.device) < teacher_forcing_ratio
                guess = self.drop(self.tgt_embedding(logits[-1].argmax(-1)))  # (N, 1, E)
                step = torch.where(gold, step, guess)
            out, carry, w = self._run(step, carry, mem)
            logits.append(out)
            weights.append(w)
        return torch.cat(logits, 1), torch.cat(weights, 1)

    def decode_step(
        self, tokens: Tensor, carry: Carry, mem: Memory
    ) -> tuple[Tensor, Carry, Tensor]:
        """One decoding step from ``tokens`` ``(N,)``: log-probabilities ``(N, V_t)`` (``<pad>``
        and ``<bos>`` excluded), the new carry and attention weights ``(N, S)``."""
        logits, carry, weights = self._run(self.tgt_embedding(tokens[:, None]), carry, mem)
        logits = logits.squeeze(1)
        logits[:, [self.pad_id, self.bos_id]] = float("-inf")
        return logits.log_softmax(-1), carry, weights.squeeze(1)

    @torch.no_grad()
    def greedy(self, src: Tensor, lengths: Tensor, max_len: int = 100) -> tuple[Tensor, Tensor]:
        """Greedy decoding until every sequence has produced ``<eos>`` or ``max_len`` tokens.

        Returns:
            ``tokens`` ``(N, T)`` (``<eos>`` kept, ``<pad>`` after it) and attention ``weights``
            ``(N, T, S)``.
        """
        mem, carry = self.encode(src, lengths)
        y = src.new_full((src.size(0),), self.bos_id)
        done = torch.zeros_like(y, dtype=torch.bool)
        tokens, weights = [], []
        for _ in range(max_len):
            logp, carry, w = self.decode_step(y, carry, mem)
            y = logp.argmax(-1).masked_fill(done, self.pad_id)
            tokens.append(y)
            weights.append(w)
            done |= y == self.eos_id
            if bool(done.all()):
                break
        return torch.stack(tokens, 1), torch.stack(weights, 1)


def select(state: dict[str, Tensor], index: Tensor) -> dict[str, Tensor]:
    """Rows ``index`` of every batch-first tensor of a carry or memory (beam reordering)."""
    return {k: v.index_select(0, index) for k, v in state.items()}
