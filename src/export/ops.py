"""One recurrent layer as a single operator, ``seqlab::recurrent_layer``, for export: PyTorch's
packed kernel when run, ONNX's ``LSTM`` / ``GRU`` / ``RNN`` with ``sequence_lens`` in a graph.

PyTorch's ONNX exporter turns ``nn.LSTM`` into a dense ``LSTM`` node without ``sequence_lens``,
so a batch of unequal lengths would be padding-dependent (the backward direction would start on
the padding). Wrapped in this operator, each layer becomes one ONNX node that reads the lengths:
onnxruntime then runs both directions within each sequence's own length, exactly as packing does.
Weights are held in ONNX's layout (gates ``i o f c`` for LSTM, ``z r h`` for GRU, input and
recurrent biases concatenated), which onnxruntime's dynamic int8 quantizer also reads.
"""

from __future__ import annotations

import torch
from onnxscript import opset18 as op
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# PyTorch gate blocks in ONNX order, per cell (PyTorch: LSTM i f g o, GRU r z n)
ONNX_GATE_ORDER = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn": [0]}
_MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def to_onnx_gates(t: Tensor, cell: str) -> Tensor:
    """Reorder the gate blocks of a PyTorch weight or bias (gates on dim 0) into ONNX order."""
    order = ONNX_GATE_ORDER[cell]
    return torch.cat([t.chunk(len(order), 0)[i] for i in order])


def to_torch_gates(t: Tensor, cell: str) -> Tensor:
    """Inverse of :func:`to_onnx_gates`."""
    order = ONNX_GATE_ORDER[cell]
    blocks = t.chunk(len(order), 0)
    return torch.cat([blocks[order.index(i)] for i in range(len(order))])


@torch.library.custom_op("seqlab::recurrent_layer", mutates_args=())
def recurrent_layer(
    x: Tensor,
    lengths: Tensor,
    w: Tensor,
    r: Tensor,
    b: Tensor,
    h0: Tensor,
    c0: Tensor,
    cell: str,
    hidden_size: int,
    bidirectional: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """One layer, one or two directions, over right-padded ``x`` with packed semantics.

    Args:
        x: ``(N, L, H_in)``; lengths: ``(N,)`` int64 in ``1..L``.
        w: ``(D, G * H, H_in)``, r: ``(D, G * H, H)``, b: ``(D, 2 * G * H)`` in ONNX layout
            (``G`` gates: 4 LSTM, 3 GRU, 1 RNN).
        h0, c0: ``(D, N, H)`` initial states (``c0`` unused but by LSTM).
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``; hidden_size: ``H``; bidirectional: ``D = 2``.

    Returns:
        ``output`` ``(N, L, D * H)`` (zeros at padding), ``h_n`` and ``c_n`` ``(D, N, H)``
        (``c_n`` is ``h_n`` but for LSTM).
    """
    module = _MODULES[cell](x.size(-1), hidden_size, batch_first=True, bidirectional=bidirectional)
    params = {}
    for d in range(w.size(0)):
        suffix = "_l0" + ("_reverse" if d else "")
        bias_ih, bias_hh = b[d].chunk(2)
        params["weight_ih" + suffix] = to_torch_gates(w[d], cell)
        params["weight_hh" + suffix] = to_torch_gates(r[d], cell)
        params["bias_ih" + suffix] = to_torch_gates(bias_ih, cell)
        params["bias_hh" + suffix] = to_torch_gates(bias_hh, cell)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    hx = (h0, c0) if cell == "lstm" else h0
    out, state = torch.func.functional_call(module, params, (packed, hx))
    output = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]
    h_n, c_n = state if cell == "lstm" else (state, state)
    return output.contiguous(), h_n.contiguous(), c_n.clone()


@recurrent_layer.register_fake
def _(x, lengths, w, r, b, h0, c0, cell, hidden_size, bidirectional):
    state = x.new_empty(w.size(0), x.size(0), hidden_size)
    return x.new_empty(x.size(0), x.size(1), w.size(0) * hidden_size), state, state.clone()


def recurrent_layer_onnx(
    x, lengths, w, r, b, h0, c0, cell: str, hidden_size: int, bidirectional: bool
):
    """The ONNX graph of :func:`recurrent_layer`: one LSTM / GRU / RNN node with
    ``sequence_lens`` (time-major inside, as onnxruntime's CPU kernels require)."""
    x_t = op.Transpose(x, perm=[1, 0, 2])  # (L, N, H_in)
    lens = op.Cast(lengths, to=6)  # int32, as ONNX's sequence_lens
    direction = "bidirectional" if bidirectional else "forward"
    common = {"direction": direction, "hidden_size": hidden_size}
    if cell == "lstm":
        y, h_n, c_n = op.LSTM(x_t, w, r, b, lens, h0, c0, **common)
    elif cell == "gru":
        y, h_n = op.GRU(x_t, w, r, b, lens, h0, linear_before_reset=1, **common)
        c_n = op.Identity(h_n)
    else:
        y, h_n = op.RNN(x_t, w, r, b, lens, h0, **common)
        c_n = op.Identity(h_n)
    y = op.Transpose(y, perm=[2, 0, 1, 3])  # (L, D, N, H) -> (N, L, D, H)
    shape = op.Concat(op.Shape(y, start=0, end=2), op.Constant(value_ints=[-1]), axis=0)
    return op.Reshape(y, shape), h_n, c_n


TRANSLATIONS = {torch.ops.seqlab.recurrent_layer.default: recurrent_layer_onnx}
