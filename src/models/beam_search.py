"""Batched beam search for :class:`~src.models.seq2seq.Seq2Seq` with the GNMT length penalty
(Wu et al. 2016)."""

import torch
from torch import Tensor

from src.models.seq2seq import Seq2Seq, select


@torch.no_grad()
def beam_search(
    net: Seq2Seq,
    src: Tensor,
    lengths: Tensor,
    beam_size: int = 5,
    max_len: int = 100,
    length_penalty: float = 1.0,
) -> Tensor:
    """Translate a batch with ``beam_size`` live hypotheses per sentence.

    Each step extends the live beams, keeps the ``beam_size`` best continuations that do not
    end in ``<eos>`` and files those that do (when they rank among the best ``beam_size``) as
    finished, scored ``log p / ((5 + len) / 6) ** length_penalty``. A sentence is done once its
    best finished score beats its best live score normalised at the current length; at
    ``max_len`` a sentence without a finished hypothesis takes its best live one. With
    ``beam_size=1`` and ``length_penalty=0`` this is greedy decoding.

    Args:
        net: The trained network (``encode``, ``decode_step``, ``bos_id``/``eos_id``/``pad_id``).
        src: ``(N, S)`` padded source ids. lengths: ``(N,)`` true source lengths.
        beam_size: Live hypotheses per sentence ``K``.
        max_len: Most tokens generated, ``<eos>`` included.
        length_penalty: Exponent ``alpha`` of the length penalty; 0 ranks by raw log-probability.

    Returns:
        ``(N, T)`` best hypothesis per sentence (``<eos>`` kept, ``<pad>`` after it).
    """
    if beam_size < 1 or max_len < 1:
        raise ValueError(f"beam_size and max_len must be positive, got {beam_size}, {max_len}")
    n, k = src.size(0), beam_size
    mem, carry = net.encode(src, lengths)
    rows = torch.arange(n, device=src.device).repeat_interleave(k)  # (N * K,) sentence of a beam
    mem, carry = select(mem, rows), select(carry, rows)
    scores = torch.full((n, k), float("-inf"), device=src.device)
    scores[:, 0] = 0.0  # one live beam at the start, so the K first continuations differ
    scores = scores.view(-1)
    tokens = src.new_full((n * k,), net.bos_id)
    history = src.new_empty(n * k, 0)
    best = torch.full((n,), float("-inf"), device=src.device)
    best_seq = src.new_full((n, max_len), net.pad_id)
    done = torch.zeros(n, dtype=torch.bool, device=src.device)
    ranks = torch.arange(2 * k, device=src.device)
    base = torch.arange(n, device=src.device)[:, None] * k  # (N, 1) first beam row of a sentence
    for t in range(max_len):
        logp, carry, _ = net.decode_step(tokens, carry, mem)  # (N * K, V)
        vocab = logp.size(-1)
        candidates = (scores[:, None] + logp).view(n, k * vocab)
        top, pos = candidates.topk(min(2 * k, k * vocab), dim=1)  # (N, 2K)
        beam, tok = pos // vocab, pos % vocab
        penalty = ((5.0 + t + 1) / 6.0) ** length_penalty
        is_eos = tok == net.eos_id
        finished = is_eos & (ranks[: top.size(1)] < k) & ~done[:, None]
        fin_score, fin_i = torch.where(finished, top / penalty, float("-inf")).max(1)
        better = fin_score > best
        if bool(better.any()):
            src_rows = (base.squeeze(1) + beam.gather(1, fin_i[:, None]).squeeze(1))[better]
            best_seq[better] = net.pad_id
            best_seq[better, :t] = history[src_rows]
            best_seq[better, t] = net.eos_id
            best[better] = fin_score[better]
        live, live_i = top.masked_fill(is_eos, float("-inf")).topk(k, dim=1)  # (N, K)
        keep = (base + beam.gather(1, live_i)).view(-1)  # (N * K,) rows that survive
        tokens = tok.gather(1, live_i).view(-1)
        history = torch.cat([history[keep], tokens[:, None]], 1)
        carry, scores = select(carry, keep), live.view(-1)
        done |= best >= live[:, 0] / penalty
        if bool(done.all()):
            break
    unfinished = best == float("-inf")
    if bool(unfinished.any()):  # max_len reached: the best live hypothesis
        best_seq[unfinished, : history.size(1)] = history.view(n, k, -1)[unfinished, 0]
    longest = int((best_seq != net.pad_id).sum(1).max())
    return best_seq[:, : max(longest, 1)]
