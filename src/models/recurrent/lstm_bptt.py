"""LSTM layer (Hochreiter & Schmidhuber 1997) with hand-written backprop through time (Werbos 1990).

Autograd through the step equations pays, at every step, for a weight-gradient GEMM, its
accumulation and a dozen small elementwise kernels. :class:`LSTMLayer` does what cuDNN and oneDNN
do instead: one recurrent GEMM per step forward and one backward, the gate arithmetic fused into
one kernel each way (``torch.compile``d), and the weight gradients of all steps as single large
GEMMs at the end (on oneDNN in float32 on CPU).
"""

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from src.models.recurrent.bptt_kernels import (
    input_and_weight_grads,
    linear,
    packed_weight,
    run_kernel,
)
from src.models.recurrent.within_length import packed_direction


def lstm_forward_gates(
    rec: Tensor, xw: Tensor, c: Tensor, acts: Tensor, c_out: Tensor, tc_out: Tensor, h_out: Tensor
) -> None:
    """One step's gates from ``rec = W_hh h`` and ``xw = W_ih x + b`` (all ``(N, 4H)``, gates
    i, f, g, o); writes the activated gates to ``acts``, ``c'`` to ``c_out``, ``tanh(c')`` to
    ``tc_out`` and ``h' = o * tanh(c')`` to ``h_out`` (each ``(N, H)``)."""
    i, f, g, o = (rec + xw).chunk(4, 1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c1 = f * c + i * g
    tc = c1.tanh()
    acts.copy_(torch.cat([i, f, g, o], 1))
    c_out.copy_(c1)
    tc_out.copy_(tc)
    h_out.copy_(o * tc)


def lstm_backward_gates(
    dh: Tensor, dh_out: Tensor, dc_out: Tensor | None, dc: Tensor, acts: Tensor, c_prev: Tensor,
    tc: Tensor, dgates: Tensor,
) -> Tensor:  # fmt: skip
    """One step back: ``dh`` (from step t+1) + ``dh_out`` (the output's gradient) and ``dc``
    (+ ``dc_out``) give the pre-activation gate gradients, written to ``dgates`` ``(N, 4H)``.

    Returns:
        ``dL/dc_{t-1}`` ``(N, H)``.
    """
    i, f, g, o = acts.chunk(4, 1)
    dh = dh + dh_out
    dc = dc + dh * o * (1 - tc * tc) + (0 if dc_out is None else dc_out)
    di, df, dg = dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g)
    dgates.copy_(torch.cat([di, df, dg, dh * tc * o * (1 - o)], 1))
    return dc * f


class LSTMLayer(torch.autograd.Function):
    """One direction of one LSTM layer over every step, ``(N, L, H_in)`` -> ``(N, L, H)``.

    ``LSTMLayer.apply(x, h0, c0, w_ih, w_hh, bias, compiled)`` with ``x`` ``(N, L, H_in)``,
    ``h0``/``c0`` ``(N, H)``, ``w_ih`` ``(4H, H_in)``, ``w_hh`` ``(4H, H)``, ``bias`` ``(4H,)``
    (``b_ih + b_hh``) returns ``(h, c)``, each ``(N, L, H)``: the hidden and cell states of every
    step. No padding logic: callers read each sequence's states at its own last step.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, bias, compiled):
        n, steps, width = x.shape
        gates = w_hh.size(0)
        xt = x.transpose(0, 1).reshape(steps * n, width)  # time-major rows (L * N, H_in), a copy
        xw = linear(xt, w_ih, bias).view(steps, n, gates).unbind(0)
        acts = x.new_empty(steps, n, gates)  # activated gates i, f, g, o
        h, c, tc = (x.new_empty(steps, n, gates // 4) for _ in range(3))  # (L, N, H) each
        w_packed = packed_weight(w_hh, n)
        h_prev, c_prev = h0.contiguous(), c0
        for t in range(steps):
            rec = linear(h_prev, w_packed)
            run_kernel(lstm_forward_gates, compiled, rec, xw[t], c_prev, acts[t], c[t], tc[t], h[t])
            h_prev, c_prev = h[t], c[t]
        ctx.save_for_backward(xt, h0, c0, w_ih, w_hh, acts, h, c, tc)
        ctx.compiled = compiled
        ctx.set_materialize_grads(False)
        return h.transpose(0, 1), c.transpose(0, 1)  # batch-first views (N, L, H)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h, grad_c):
        xt, h0, c0, w_ih, w_hh, acts, h, c, tc = ctx.saved_tensors
        steps, n, gates = acts.shape
        grad_h = h.new_zeros(steps, n, h.size(-1)) if grad_h is None else grad_h.transpose(0, 1)
        grad_c = None if grad_c is None else grad_c.transpose(0, 1)  # (L, N, H) views
        dgates = acts.new_empty(steps, n, gates)
        w_packed = packed_weight(w_hh.t().contiguous(), n)
        dh, dc = h0.new_zeros(h0.shape), c0.new_zeros(c0.shape)
        for t in range(steps - 1, -1, -1):
            dc_out = None if grad_c is None else grad_c[t]
            c_prev = c[t - 1] if t else c0
            args = (dh, grad_h[t], dc_out, dc, acts[t], c_prev, tc[t], dgates[t])
            dc = run_kernel(lstm_backward_gates, ctx.compiled, *args)
            dh = linear(dgates[t], w_packed)
        need = ctx.needs_input_grad
        grads = input_and_weight_grads(dgates, dgates, xt, h0, h, w_ih, (need[0], need[3], need[4]))
        grad_x, grad_w_ih, grad_w_hh = grads
        grad_bias = dgates.sum((0, 1)) if need[5] else None
        return grad_x, dh, dc, grad_w_ih, grad_w_hh, grad_bias, None


def lstm_direction(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    params: tuple[Tensor, Tensor, Tensor | None, Tensor | None],
    lengths: Tensor | None,
    reverse: bool,
    compiled: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """One direction of one layer with packed-sequence semantics, on :class:`LSTMLayer`.

    Args:
        x: ``(N, L, H_in)`` right-padded inputs; h0, c0: ``(N, H)``.
        params: ``(weight_ih, weight_hh, bias_ih, bias_hh)``, biases may be ``None``.
        lengths: ``(N,)`` true lengths in ``1..L``, ``None`` when nothing is padded.
        reverse: The backward direction: each sequence reversed within its own length.
        compiled: ``torch.compile`` the gate kernels (falls back to eager with a warning).

    Returns:
        ``(output (N, L, H), h_n (N, H), c_n (N, H))``, zeros at padding.
    """
    w_ih, w_hh, b_ih, b_hh = params
    bias = b_hh if b_ih is None else (b_ih if b_hh is None else b_ih + b_hh)

    def layer(seq: Tensor) -> tuple[Tensor, Tensor]:
        return LSTMLayer.apply(seq, h0, c0, w_ih, w_hh, bias, compiled)

    out, (h_n, c_n) = packed_direction(layer, x, lengths, reverse)
    return out, h_n, c_n
