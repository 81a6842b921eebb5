"""Runs hand-written LSTM (Hochreiter & Schmidhuber 1997) / GRU (Cho et al. 2014) steps in time."""

from collections.abc import Callable, Mapping
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from src.models.recurrent.bptt_kernels import run_kernel
from src.models.recurrent.cells import GRU_GATES, LSTM_GATES, gru_step, lstm_step
from src.models.recurrent.gru_bptt import gru_direction
from src.models.recurrent.lstm_bptt import lstm_direction
from src.models.recurrent.within_length import check_lengths, pad_steps

GATES = {"lstm": LSTM_GATES, "gru": GRU_GATES, "rnn": ()}
CHUNKS = {"lstm": 4, "gru": 3, "rnn": 1}
State = Tensor | tuple[Tensor, Tensor]


def _lstm(xw, h, c, w_hh, b_hh, m: Tensor | None, record: bool):
    h1, c1, i, f, g, o = lstm_step(xw, h, c, w_hh, b_hh)
    if m is None:
        return h1, c1, h1, (i, f, g, o, c1) if record else ()
    # padded steps keep the state and emit zeros (packed semantics)
    gates = tuple(v * m for v in (i, f, g, o, c1)) if record else ()
    return torch.where(m, h1, h), torch.where(m, c1, c), h1 * m, gates


def _gru(xw, h, c, w_hh, b_hh, m: Tensor | None, record: bool):
    h1, r, z, n = gru_step(xw, h, w_hh, b_hh)
    if m is None:
        return h1, c, h1, (r, z, n) if record else ()
    gates = tuple(v * m for v in (r, z, n)) if record else ()
    return torch.where(m, h1, h), c, h1 * m, gates


def tanh_rnn_step(xw, h, c, w_hh, b_hh, m: Tensor | None, record: bool):
    h1 = (xw + F.linear(h, w_hh, b_hh)).tanh()  # Elman RNN, tanh
    if m is None:
        return h1, c, h1, ()
    return torch.where(m, h1, h), c, h1 * m, ()


_EAGER: dict[str, Callable] = {"lstm": _lstm, "gru": _gru, "rnn": tanh_rnn_step}


def _lstm_bptt(x, h0, c0, params, lengths, reverse):
    return lstm_direction(x, h0, c0, params, lengths, reverse, True)


def _gru_bptt(x, h0, c0, params, lengths, reverse):
    return (*gru_direction(x, h0, params, lengths, reverse, True), c0)  # no cell state


_BPTT = {"lstm": _lstm_bptt, "gru": _gru_bptt}  # compiled: hand-written backprop through time


def scan(
    cell: str,
    xw: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    valid: Tensor | None,
    reverse: bool,
    record: bool,
    step: Callable,
) -> tuple[Tensor, Tensor, Tensor, list[Tensor]]:
    """One direction of one layer over time.

    Args:
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        xw: ``(N, L, G*H)`` input projections ``W_ih x_t + b_ih`` for all steps.
        h: ``(N, H)`` initial hidden state; c: ``(N, H)`` initial cell state (ignored unless LSTM).
        w_hh: ``(G*H, H)``; b_hh: ``(G*H,)`` or ``None``.
        valid: ``(N, L, 1)`` bool, ``False`` at right padding; ``None`` when nothing is padded.
        reverse: Run from the last step to the first (the backward direction: with right
            padding this starts every sequence at its own last step, from the initial state).
        record: Also return the gate activations.
        step: The per-step update: ``_EAGER[cell]``, or its compiled form for the tanh RNN.

    Returns:
        ``(output (N, L, H), h_n (N, H), c_n (N, H), gates)``, ``gates`` a list of
        ``(N, L, H)`` tensors in the order of ``GATES[cell]``, zero at padding.
    """
    xs = xw.unbind(1)  # unbind once: slicing per step would make the backward quadratic in L
    masks = valid.unbind(1) if valid is not None else [None] * len(xs)
    outs, rec = [None] * len(xs), [()] * len(xs)
    for t in range(len(xs) - 1, -1, -1) if reverse else range(len(xs)):
        h, c, outs[t], rec[t] = step(xs[t], h, c, w_hh, b_hh, masks[t], record)
    gates = [torch.stack(g, 1) for g in zip(*rec, strict=True)] if record else []
    return torch.stack(outs, 1), h, c, gates


def run_stack(
    cell: str,
    params: Mapping[str, Tensor],
    x: Tensor,
    lengths: Tensor | None = None,
    hx: State | None = None,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    training: bool = False,
    record_gates: bool = False,
    compiled: bool = False,
) -> tuple[Tensor, State, dict[str, Tensor] | None]:
    """A stacked, optionally bidirectional recurrent network with packed-sequence semantics.

    Args:
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"`` (tanh).
        params: ``nn.LSTM``/``nn.GRU``/``nn.RNN`` names -> tensors (``weight_ih_l0``,
            ``weight_hh_l0_reverse``, ...; biases optional), e.g. ``dict(rnn.named_parameters())``.
        x: ``(N, L, H_in)`` right-padded inputs (``batch_first``).
        lengths: ``(N,)`` true lengths in ``1..L``; ``None`` means all ``L``.
        hx: ``h_0`` ``(num_layers * D, N, H)``, for LSTM ``(h_0, c_0)``; zeros when ``None``.
        num_layers: Stacked layers.
        bidirectional: Add a time-reversed direction (``D = 2``), reversed within each length.
        dropout: Dropout on every layer's output but the last's, when ``training``.
        training: Apply ``dropout``.
        record_gates: Also return the gate activations.
        compiled: Use the ``torch.compile``d step (not when recording gates); for LSTM and GRU
            the hand-written backward of :mod:`src.models.recurrent.lstm_bptt` / ``gru_bptt``. The
            first call compiles (seconds); if compiling fails it warns once and runs eagerly.

    Returns:
        ``(output, h_n, gates)``: ``output`` ``(N, L, D * H)``, zeros at padding; ``h_n``
        ``(num_layers * D, N, H)`` at each sequence's true end (LSTM: ``(h_n, c_n)``); ``gates``
        ``None``, or a dict of ``(num_layers * D, N, L, H)`` tensors (LSTM: ``input``, ``forget``,
        ``candidate``, ``output``, ``cell``; GRU: ``reset``, ``update``, ``candidate``; all:
        ``hidden``, each layer-direction's hidden states), zeros at padding.
    """
    if cell not in _EAGER:
        raise ValueError(f"cell must be one of {sorted(_EAGER)}, got {cell!r}")
    args = (cell, params, x, lengths, hx, num_layers, bidirectional, dropout, training)
    if compiled and not record_gates:
        if cell in _BPTT:
            return _stack(*args, False, None)  # hand-written BPTT, compiled gate kernels
        return _stack(*args, False, partial(run_kernel, _EAGER[cell], True))  # compiled step
    return _stack(*args, record_gates, _EAGER[cell])


def _stack(
    cell, params, x, lengths, hx, num_layers, bidirectional, dropout, training, record, step
):
    """:func:`run_stack` with the step function chosen; ``None``: hand-written BPTT (``_BPTT``)."""
    if x.dim() != 3:
        raise ValueError(f"expected input (N, L, H_in) (batch_first), got {tuple(x.shape)}")
    n, total = x.shape[:2]
    dirs = 2 if bidirectional else 1
    hidden = params["weight_hh_l0"].size(-1)
    h0, c0 = (hx if isinstance(hx, tuple) else (hx, None)) if hx is not None else (None, None)
    h0 = x.new_zeros(num_layers * dirs, n, hidden) if h0 is None else h0
    c0 = x.new_zeros(num_layers * dirs, n, hidden) if c0 is None else c0
    valid, steps, padded = None, total, None
    if lengths is not None:
        lengths = check_lengths(lengths, n, total).to(x.device)
    if lengths is not None and bool((lengths != total).any()):
        steps, padded = int(lengths.max()), lengths
        x = x[:, :steps]  # steps past the longest sequence cannot matter
        valid = (torch.arange(steps, device=x.device) < lengths[:, None]).unsqueeze(-1)
    elif step not in (_EAGER[cell], None):  # compiled: one graph for padded and unpadded batches
        valid = x.new_ones(n, steps, 1, dtype=torch.bool)
    h_n, c_n, gates, inp = [], [], [], x
    for layer in range(num_layers):
        outs = []
        for d in range(dirs):
            k, sfx = layer * dirs + d, f"_l{layer}" + ("_reverse" if d else "")
            w_ih, b_ih = params["weight_ih" + sfx], params.get("bias_ih" + sfx)
            w_hh, b_hh = params["weight_hh" + sfx], params.get("bias_hh" + sfx)
            if step is None:
                weights = (w_ih, w_hh, b_ih, b_hh)
                out, h, c = _BPTT[cell](inp, h0[k], c0[k], weights, padded, bool(d))
                g = []
            else:
                xw = F.linear(inp, w_ih, b_ih)
                state = (h0[k], c0[k])
                out, h, c, g = scan(cell, xw, *state, w_hh, b_hh, valid, bool(d), record, step)
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
            gates.append([*g, out])
        inp = torch.cat(outs, -1) if dirs > 1 else outs[0]  # (N, L', D * H), zeros at padding
        if training and dropout > 0 and layer < num_layers - 1:
            inp = F.dropout(inp, dropout, training=True)
    output = pad_steps(inp, total)  # back to (N, L, D * H)
    state = (torch.stack(h_n), torch.stack(c_n)) if cell == "lstm" else torch.stack(h_n)
    if not record:
        return output, state, None
    names = (*GATES[cell], "hidden")
    stacked = [F.pad(torch.stack(g), (0, 0, 0, total - steps)) for g in zip(*gates, strict=True)]
    return output, state, dict(zip(names, stacked, strict=True))
