"""Exact packed-sequence semantics for recurrent stacks on CPU, from dense (oneDNN) kernels.

PyTorch's CPU packed backward grows with the square of the length, so :func:`dense_exact` runs
each layer and direction of an ``nn.LSTM``/``nn.RNN`` on the dense (oneDNN) kernel instead, and
of an ``nn.GRU`` on the hand-written BPTT layer of :mod:`src.models.recurrent.gru_bptt`:
right padding never reaches earlier steps, and the backward direction runs on each sequence
reversed within its own length. A batch of very unequal lengths is first cut, in length order,
into groups that each pad only to their own longest sequence (:func:`length_groups`).
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from src.models.recurrent.gru_bptt import GRULayer
from src.models.recurrent.within_length import Reverse, pad_steps, reversal


def _dense(kernel: Callable) -> Callable:
    """One layer-direction on PyTorch's dense kernel: ``(x, hx, params, training) -> output``."""

    def run(x: Tensor, hx, params: list[Tensor], training: bool) -> Tensor:
        return kernel(x, hx, params, True, 1, 0.0, training, False, True)[0]  # batch_first

    return run


# From this hidden size up the hand-written GRU layer (fused gate kernels, the weight gradients
# of all steps as one GEMM) trains faster than PyTorch's CPU GRU; below it the fixed cost of its
# Python step loop dominates and PyTorch's C++ loop wins (measured: docs/performance.md).
HANDWRITTEN_GRU_MIN_HIDDEN = 128


_TORCH_GRU = _dense(torch.gru)


def _gru(x: Tensor, h0: Tensor, params: list[Tensor], training: bool) -> Tensor:
    if h0.size(-1) < HANDWRITTEN_GRU_MIN_HIDDEN or h0.device.type != "cpu":  # GPU: cuDNN's
        return _TORCH_GRU(x, h0, params, training)
    return GRULayer.apply(x, h0[0], *params, False)  # same results, its own backward


KERNELS = {"lstm": _dense(torch.lstm), "gru": _gru, "rnn": _dense(torch.rnn_tanh)}
# A recurrent step over a group costs about as much as this many more rows: the price of an
# extra group (one more pass over its steps) against the padding it saves; chosen on the
# IMDB-like batch of bench/bench_rnn.py (docs/performance.md).
STEP_OVERHEAD_ROWS = 8
# Devices whose batches are cut into length groups. That cost model is the CPU's: on a GPU a step
# costs about the same for any number of rows, so another pass over a group's steps never pays.
LENGTH_GROUP_DEVICES = ("cpu",)


def length_groups(lengths: Tensor, overhead_rows: int = STEP_OVERHEAD_ROWS) -> list[Tensor]:
    """Split a batch into groups of similar length, minimising padded work.

    The sequences are sorted by length and cut into contiguous runs that minimise
    ``sum_g (n_g + overhead_rows) * max_length_g`` (exact dynamic programme, ``O(N^2)``).

    Args:
        lengths: ``(N,)`` true lengths (host copy).
        overhead_rows: The cost of an extra group, in rows of padded work per step.

    Returns:
        Index tensors into the batch, one per group, shortest group first; a single group
        holding every index in order when grouping does not pay.
    """
    order = lengths.argsort(stable=True)
    sorted_lengths = lengths[order].tolist()
    n = len(sorted_lengths)
    best, cut = [0.0] + [float("inf")] * n, [0] * (n + 1)
    for end in range(1, n + 1):  # best[end]: cheapest split of the ``end`` shortest
        longest = sorted_lengths[end - 1]
        for start in range(end):
            cost = best[start] + (end - start + overhead_rows) * longest
            if cost < best[end]:
                best[end], cut[end] = cost, start
    if cut[n] == 0:
        return [torch.arange(n, device=lengths.device)]
    bounds, end = [], n
    while end > 0:
        bounds.append((cut[end], end))
        end = cut[end]
    return [order[start:end] for start, end in reversed(bounds)]


def dense_exact(
    cell: str,
    params: list[list[Tensor]],
    num_directions: int,
    x: Tensor,
    lengths: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    dropout: float,
    training: bool,
    need_cell_state: bool,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run a stack as ``pack_padded_sequence`` would, in length groups.

    Args:
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        params: Weights per layer-direction ``k = layer * D + direction``, as the kernels take
            them (``weight_ih, weight_hh, bias_ih, bias_hh[, weight_hr]``).
        num_directions: ``D``, 1 or 2.
        x: ``(N, L, H_in)`` right-padded inputs; lengths: ``(N,)`` in ``1..L``, a host (CPU)
            tensor whatever ``x``'s device (they choose the groups and the steps to run).
        h0: ``(num_layers * D, N, H_out)``; c0: ``(num_layers * D, N, H_cell)`` (LSTM).
        dropout: Dropout between layers (applied when ``training``).
        need_cell_state: LSTM only: rebuild the exact ``c_n`` (costs a projection and a scan).

    Returns:
        ``output`` ``(N, L, D * H_out)`` (zeros at padding), ``h_n``, and ``c_n`` or ``None``.
    """
    args = (dropout, training, need_cell_state)
    groups = length_groups(lengths) if x.device.type in LENGTH_GROUP_DEVICES else []
    if len(groups) <= 1:  # one group, or a device that runs the whole batch as one
        return _stack(cell, params, num_directions, x, lengths, h0, c0, *args)
    runs = []
    for g in groups:
        c0_g = None if c0 is None else c0[:, g]
        runs.append(_stack(cell, params, num_directions, x[g], lengths[g], h0[:, g], c0_g, *args))
    order = torch.cat(groups)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=order.device)  # back to batch order

    def merged(i: int, batch_dim: int) -> Tensor | None:  # the groups' i-th results, batch order
        if runs[0][i] is None:
            return None
        return torch.cat([r[i] for r in runs], batch_dim).index_select(batch_dim, inverse)

    return merged(0, 0), merged(1, 1), merged(2, 1)


def _stack(cell, params, num_directions, x, lengths, h0, c0, dropout, training, need_cell_state):
    """:func:`dense_exact` on one group, whose padding is kept."""
    n, total = x.shape[:2]
    num_layers = len(params) // num_directions
    steps = int(lengths.max())  # read on the host: no device sync
    lengths = lengths.to(x.device, non_blocking=True)
    x = x[:, :steps]  # steps past the longest sequence cannot matter
    valid = (torch.arange(steps, device=x.device) < lengths[:, None]).unsqueeze(-1)  # (N, L', 1)
    rev = reversal(lengths, steps)
    last = (lengths - 1).view(n, 1, 1)
    h_n, c_n, inp = [], [], x
    for layer in range(num_layers):
        outs = []
        for direction in range(num_directions):
            k = layer * num_directions + direction
            seq = Reverse.apply(inp, rev) if direction else inp
            hx = (h0[k : k + 1], c0[k : k + 1]) if c0 is not None else h0[k : k + 1]
            out = KERNELS[cell](seq, hx, params[k], training)  # (N, L', H_out)
            h_n.append(out.gather(1, last.expand(-1, -1, out.size(-1))).squeeze(1))
            if c0 is not None and need_cell_state:
                c_n.append(_lstm_cell_at_end(seq, out, params[k], h0[k], c0[k], lengths))
            outs.append(Reverse.apply(out, rev) if direction else out)
        # (N, L', D * H_out); the next layer may read garbage at padded steps: they come
        # after every valid step in both directions' time order, so they cannot reach one
        inp = torch.cat(outs, -1)
        if training and dropout > 0 and layer < num_layers - 1:
            inp = F.dropout(inp, dropout, training=True)
    output = pad_steps(inp * valid, total)  # (N, L, D * H_out), zero padding
    return output, torch.stack(h_n), torch.stack(c_n) if c_n else None


def _lstm_cell_at_end(
    seq: Tensor, out: Tensor, params: list[Tensor], h0: Tensor, c0: Tensor, lengths: Tensor
) -> Tensor:
    """Exact LSTM cell state at each sequence's last step, from the exact hidden states.

    Args:
        seq: ``(N, L, H_in)`` the direction's input; out: ``(N, L, H_out)`` its hidden states;
        params: that layer-direction's weights; h0: ``(N, H_out)``; c0: ``(N, H_cell)``;
        lengths: ``(N,)``.

    Returns:
        ``(N, H_cell)``.
    """
    w_ih, w_hh, b_ih, b_hh = params[:4]
    h_prev = torch.cat([h0.unsqueeze(1), out[:, :-1]], 1)  # h_{t-1}, (N, L, H_out)
    gates = F.linear(seq, w_ih, b_ih) + F.linear(h_prev, w_hh, b_hh)  # (N, L, 4 H_cell)
    i, f, g, _ = gates.chunk(4, -1)
    written = (i.sigmoid() * g.tanh()).unbind(1)  # unbind once: per-step slicing of a
    kept = f.sigmoid().unbind(1)  # (N, L, H) tensor would make the backward quadratic in L
    c, cells = c0, []
    for f_t, w_t in zip(kept, written, strict=True):
        c = f_t * c + w_t
        cells.append(c)
    cells = torch.stack(cells, 1)  # (N, L, H_cell)
    last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, cells.size(-1))
    return cells.gather(1, last).squeeze(1)
