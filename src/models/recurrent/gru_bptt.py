"""GRU layer (Cho et al. 2014) with hand-written backprop through time (Werbos 1990).

PyTorch's CPU GRU runs every step as separate GEMM and elementwise kernels and differentiates
them one by one, far below its LSTM's speed (which runs on oneDNN's fused RNN).
:class:`GRULayer` is built like :class:`~src.models.recurrent.lstm_bptt.LSTMLayer`: the input
projections of all steps as one GEMM, one recurrent GEMM per step each way (on oneDNN in float32 on
CPU), the gate arithmetic in one kernel each way, and the weight gradients of all steps as single
large GEMMs.
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

_TANH_BACKWARD = torch.ops.aten.tanh_backward.grad_input
_SIGMOID_BACKWARD = torch.ops.aten.sigmoid_backward.grad_input


def gru_forward_gates(rec: Tensor, xw: Tensor, h: Tensor, acts: Tensor, h_out: Tensor) -> None:
    """One step from ``rec = W_hh h + b_hh`` and ``xw = W_ih x + b_ih`` (``(N, 3H)``, gates r, z,
    n); writes ``r, z, n`` and ``(W_hh h + b_hh)_n`` to ``acts`` ``(N, 4H)`` and
    ``h' = (1 - z) * n + z * h`` to ``h_out`` ``(N, H)``."""
    H = h.size(1)
    rz = (xw[:, : 2 * H] + rec[:, : 2 * H]).sigmoid_()  # r and z in one kernel
    hn = rec[:, 2 * H :]
    n = torch.addcmul(xw[:, 2 * H :], rz[:, :H], hn).tanh_()
    torch.cat([rz, n, hn], 1, out=acts)
    torch.lerp(n, h, rz[:, H:], out=h_out)


def gru_backward_gates(
    dh: Tensor, dh_out: Tensor, acts: Tensor, h_prev: Tensor, dxw: Tensor, drec: Tensor
) -> Tensor:
    """One step back: ``dh`` (from step t+1) + ``dh_out`` (the output's gradient) give the
    gradients of ``xw`` and ``rec``, written to ``dxw`` and ``drec`` ``(N, 3H)``.

    Returns:
        The part of ``dL/dh_{t-1}`` that bypasses ``W_hh`` (``dh' * z``), ``(N, H)``.
    """
    H = h_prev.size(1)
    r, z, n, hn = acts.chunk(4, 1)
    dh = dh + dh_out
    dh_z = dh * z
    # the fused derivative kernels: grad * (1 - y^2) for tanh, grad * y * (1 - y) for sigmoid
    dn = _TANH_BACKWARD(dh - dh_z, n, grad_input=dxw[:, 2 * H :])
    _SIGMOID_BACKWARD(dh * (h_prev - n), z, grad_input=dxw[:, H : 2 * H])
    _SIGMOID_BACKWARD(dn * hn, r, grad_input=dxw[:, :H])
    drec[:, : 2 * H].copy_(dxw[:, : 2 * H])
    torch.mul(dn, r, out=drec[:, 2 * H :])
    return dh_z


class GRULayer(torch.autograd.Function):
    """One direction of one GRU layer over every step, ``(N, L, H_in)`` -> ``(N, L, H)``.

    ``GRULayer.apply(x, h0, w_ih, w_hh, b_ih, b_hh, compiled)`` with ``x`` ``(N, L, H_in)``,
    ``h0`` ``(N, H)``, ``w_ih`` ``(3H, H_in)``, ``w_hh`` ``(3H, H)``, ``b_ih``/``b_hh`` ``(3H,)`` or
    ``None`` returns the hidden states of every step ``(N, L, H)``, as ``nn.GRU`` computes them.
    No padding logic: callers read each sequence's state at its own last step.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, compiled):
        n, steps, width = x.shape
        gates = w_hh.size(0)
        xt = x.transpose(0, 1).reshape(steps * n, width)  # time-major rows (L * N, H_in), a copy
        xw = linear(xt, w_ih, b_ih).view(steps, n, gates).unbind(0)
        acts = x.new_empty(steps, n, gates // 3 * 4)  # r, z, n and the recurrent n-projection
        h = x.new_empty(steps, n, gates // 3)  # (L, N, H)
        w_packed = packed_weight(w_hh, n)
        h_prev = h0.contiguous()
        for t in range(steps):
            rec = linear(h_prev, w_packed, b_hh)
            run_kernel(gru_forward_gates, compiled, rec, xw[t], h_prev, acts[t], h[t])
            h_prev = h[t]
        ctx.save_for_backward(xt, h0, w_ih, w_hh, acts, h)
        ctx.compiled = compiled
        return h.transpose(0, 1)  # batch-first view (N, L, H)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h):
        xt, h0, w_ih, w_hh, acts, h = ctx.saved_tensors
        steps, n, hidden = h.shape
        grad_h = grad_h.transpose(0, 1)  # (L, N, H) view
        dxw, drec = (h.new_empty(steps, n, 3 * hidden) for _ in range(2))
        w_packed = packed_weight(w_hh.t().contiguous(), n)
        dh = h0.new_zeros(h0.shape)
        for t in range(steps - 1, -1, -1):
            h_prev = h[t - 1] if t else h0
            args = (dh, grad_h[t], acts[t], h_prev, dxw[t], drec[t])
            dh = run_kernel(gru_backward_gates, ctx.compiled, *args) + linear(drec[t], w_packed)
        need = ctx.needs_input_grad
        grads = input_and_weight_grads(dxw, drec, xt, h0, h, w_ih, (need[0], need[2], need[3]))
        grad_x, grad_w_ih, grad_w_hh = grads
        grad_b_ih = dxw.sum((0, 1)) if need[4] else None
        grad_b_hh = drec.sum((0, 1)) if need[5] else None
        return grad_x, dh, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, None


def gru_direction(
    x: Tensor,
    h0: Tensor,
    params: tuple[Tensor, Tensor, Tensor | None, Tensor | None],
    lengths: Tensor | None,
    reverse: bool,
    compiled: bool,
) -> tuple[Tensor, Tensor]:
    """One direction of one layer with packed-sequence semantics, on :class:`GRULayer`.

    Args:
        x: ``(N, L, H_in)`` right-padded inputs; h0: ``(N, H)``.
        params: ``(weight_ih, weight_hh, bias_ih, bias_hh)``, biases may be ``None``.
        lengths: ``(N,)`` true lengths in ``1..L``, ``None`` when nothing is padded.
        reverse: The backward direction: each sequence reversed within its own length.
        compiled: ``torch.compile`` the gate kernels (falls back to eager with a warning).

    Returns:
        ``(output (N, L, H), h_n (N, H))``, zeros at padding.
    """
    out, (h_n,) = packed_direction(
        lambda seq: (GRULayer.apply(seq, h0, *params, compiled),), x, lengths, reverse
    )
    return out, h_n
