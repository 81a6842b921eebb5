"""The hand-written-BPTT GRU layer equals nn.GRU, forward and backward (compiled: test_cells)."""

import pytest
import torch
from torch import nn

from src.models.recurrent import bptt_kernels, dense_exact
from src.models.recurrent.gru_bptt import GRULayer
from tests.test_rnn import test_equals_packed_forward_and_backward as packed_check

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _case(dtype, bias=True, seed=0):
    torch.manual_seed(seed)
    ref = nn.GRU(6, 8, bias=bias, batch_first=True, dtype=dtype)
    x = torch.randn(5, 7, 6, dtype=dtype, requires_grad=True)
    h0 = torch.randn(5, 8, dtype=dtype, requires_grad=True)
    params = list(ref.parameters())
    weights = (*params[:2], *(params[2:] if bias else [None, None]))
    return ref, x, h0, params, weights


def _grads(out, inputs):
    loss = (out * torch.linspace(-1, 1, out.size(-1), dtype=out.dtype)).sum() + out.pow(2).sum()
    return [out, *torch.autograd.grad(loss, inputs)]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_nn_gru(monkeypatch, dtype, bias):
    """float32 runs the oneDNN GEMMs, float64 the ``F.linear`` fallback; eager gate kernels."""
    monkeypatch.setattr(bptt_kernels, "_COMPILE_FAILED", ["test: run the kernels eagerly"])
    ref, x, h0, params, weights = _case(dtype, bias)
    got = _grads(GRULayer.apply(x, h0, *weights, True), [x, h0, *params])
    want = _grads(ref(x, h0[None])[0], [x, h0, *params])
    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 0}
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, **tol)


def test_gradcheck_and_frozen_weights():
    torch.manual_seed(1)
    args = [
        torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True),  # x (N, L, H_in)
        torch.randn(2, 2, dtype=torch.float64, requires_grad=True),  # h0
        torch.randn(6, 3, dtype=torch.float64, requires_grad=True),  # w_ih
        torch.randn(6, 2, dtype=torch.float64, requires_grad=True),  # w_hh
        torch.randn(6, dtype=torch.float64, requires_grad=True),  # b_ih
        torch.randn(6, dtype=torch.float64, requires_grad=True),  # b_hh
    ]
    assert torch.autograd.gradcheck(lambda *a: GRULayer.apply(*a, False), args)
    frozen = [a.detach() if i >= 2 else a for i, a in enumerate(args)]  # weights need no grad
    grad_x = torch.autograd.grad(GRULayer.apply(*frozen, False).sum(), frozen[0])[0]
    assert grad_x.shape == args[0].shape and bool(grad_x.abs().sum() > 0)


@pytest.mark.parametrize(("bidirectional", "num_layers"), [(False, 1), (True, 2)])
def test_encoder_on_the_handwritten_gru_equals_packed(monkeypatch, bidirectional, num_layers):
    """RecurrentEncoder's CPU variable-length GRU path (hidden >= 128 there; 1 here) vs packed."""
    calls = []
    real = GRULayer.apply
    monkeypatch.setattr(dense_exact, "HANDWRITTEN_GRU_MIN_HIDDEN", 1)
    monkeypatch.setattr(GRULayer, "apply", lambda *args: calls.append(1) or real(*args))
    packed_check("gru", bidirectional, num_layers, [7, 1, 4, 9, 9, 2])
    assert len(calls) == num_layers * (1 + bidirectional)
