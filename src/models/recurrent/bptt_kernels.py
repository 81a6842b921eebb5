"""oneDNN GEMMs and compiled gate kernels shared by the hand-written BPTT layers (LSTM, GRU)."""

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
_COMPILED: dict[str, Callable] = {}
_COMPILE_FAILED: list[str] = []  # the first failure's message, once


def _onednn(t: Tensor) -> bool:
    return (
        _ONEDNN_LINEAR is not None
        and t.device.type == "cpu"
        and t.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
    )


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` for ``x`` ``(M, K)``, ``weight`` ``(N, K)`` (or
    :func:`packed_weight`): on oneDNN for float32 on CPU (MKL may not use AVX-512 on AMD CPUs)."""
    if _onednn(x):
        return _ONEDNN_LINEAR(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


def packed_weight(weight: Tensor, rows: int) -> Tensor:
    """``weight`` reordered once for many oneDNN GEMMs of ``rows`` rows (itself elsewhere)."""
    return torch.ops.mkldnn._reorder_linear_weight(weight, rows) if _onednn(weight) else weight


def run_kernel(kernel: Callable, compiled: bool, *args):
    """``kernel(*args)``, ``torch.compile``d when ``compiled``; if compiling fails, warns once
    and runs every kernel eagerly from then on."""
    if not compiled or _COMPILE_FAILED:
        return kernel(*args)
    try:
        if kernel.__name__ not in _COMPILED:
            _COMPILED[kernel.__name__] = torch.compile(kernel, dynamic=None)
        return _COMPILED[kernel.__name__](*args)
    except Exception as error:  # no C++ toolchain, unsupported platform, ...
        result = kernel(*args)  # bad inputs raise their own error here
        _COMPILE_FAILED.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")
        warnings.warn(
            f"torch.compile of the recurrent gate kernels failed ({_COMPILE_FAILED[0]}); "
            "running them eagerly instead",
            RuntimeWarning,
            stacklevel=2,
        )
        return result


def input_and_weight_grads(
    d_in: Tensor, d_rec: Tensor, xt: Tensor, h0: Tensor, h: Tensor, w_ih: Tensor, need: tuple
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """After the backward scan: ``dL/dx`` and the weight gradients of all steps as single GEMMs.

    Args:
        d_in: ``(L, N, G*H)`` gradients of the input projections ``W_ih x_t``.
        d_rec: ``(L, N, G*H)`` gradients of the recurrent projections ``W_hh h_{t-1}``.
        xt: ``(L * N, H_in)`` time-major inputs; h0: ``(N, H)``; h: ``(L, N, H)`` hidden states.
        w_ih: ``(G*H, H_in)``.
        need: Whether ``x``, ``w_ih``, ``w_hh`` need gradients.

    Returns:
        ``(grad_x (N, L, H_in), grad_w_ih, grad_w_hh)``, ``None`` where not needed.
    """
    steps, n = h.shape[:2]
    d_in, d_rec = d_in.flatten(0, 1), d_rec.flatten(0, 1)  # (L * N, G*H)
    grad_x = grad_w_ih = grad_w_hh = None
    if need[0]:
        grad_x = linear(d_in, w_ih.t().contiguous()).view(steps, n, -1).transpose(0, 1)
    # (H_in, G*H) and (H, G*H), transposed back
    if need[1]:
        grad_w_ih = linear(xt.t(), d_in.t()).t().contiguous()
    if need[2]:
        h_prev = torch.cat([h0.unsqueeze(0), h[:-1]]).flatten(0, 1)  # (L * N, H)
        grad_w_hh = linear(h_prev.t(), d_rec.t()).t().contiguous()
    return grad_x, grad_w_ih, grad_w_hh
