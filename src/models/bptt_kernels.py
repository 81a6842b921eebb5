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
    :func:`packed_weight`): on oneDNN for float32 on CPU (on AMD CPUs MKL can be half as fast)."""
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
