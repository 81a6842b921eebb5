"""The hand-written-BPTT LSTM layer equals autograd through the cell equations and PyTorch."""

import warnings

import pytest
import torch
from torch import nn

from src.models.recurrent import bptt_kernels
from src.models.recurrent.handwritten import HandwrittenRNN
from src.models.recurrent.lstm_bptt import LSTMLayer, lstm_direction

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture
def fresh_compile_state(monkeypatch):
    monkeypatch.setattr(bptt_kernels, "_COMPILED", {})
    monkeypatch.setattr(bptt_kernels, "_COMPILE_FAILED", [])


def _results(layer, x, lengths, hx):
    out, (h, c) = layer(x, lengths, hx)
    loss = (out * torch.linspace(-1, 1, out.size(-1), dtype=out.dtype)).sum()
    loss = loss + h.pow(2).sum() + (c * 0.5).sum()
    inputs = [x, *hx, *layer.parameters()]
    return [out, h, c, *torch.autograd.grad(loss, inputs)]


def _stack_case(dtype, bias=True):
    torch.manual_seed(3)
    layer = HandwrittenRNN(4, 5, "lstm", 2, bias=bias, bidirectional=True, dtype=dtype)
    x = torch.randn(3, 6, 4, dtype=dtype, requires_grad=True)
    hx = tuple(torch.randn(4, 3, 5, dtype=dtype, requires_grad=True) for _ in range(2))
    return layer, x, hx


@pytest.mark.parametrize("lengths", [torch.tensor([6, 1, 4]), None])
def test_compiled_equals_autograd_through_the_cells(fresh_compile_state, lengths):
    layer, x, hx = _stack_case(torch.float64)
    want = _results(layer, x, lengths, hx)  # eager: autograd through src.models.recurrent.cells
    layer.compiled = True
    got = _results(layer, x, lengths, hx)
    assert not bptt_kernels._COMPILE_FAILED, bptt_kernels._COMPILE_FAILED
    assert set(bptt_kernels._COMPILED) == {"lstm_forward_gates", "lstm_backward_gates"}
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("bias", [True, False])
def test_float32_onednn_path_equals_nn_lstm(monkeypatch, bias):
    """Eager gate kernels (no compile) with the float32 GEMMs, against ``nn.LSTM``."""
    monkeypatch.setattr(bptt_kernels, "_COMPILE_FAILED", ["test: run the kernels eagerly"])
    torch.manual_seed(4)
    ref = nn.LSTM(6, 8, bias=bias, batch_first=True)
    x = torch.randn(5, 7, 6, requires_grad=True)
    h0, c0 = torch.randn(5, 8, requires_grad=True), torch.randn(5, 8, requires_grad=True)
    params = [p for name, p in ref.named_parameters()]
    weights = (*params[:2], *(params[2:] if bias else [None, None]))
    out, h_n, c_n = lstm_direction(x, h0, c0, weights, None, False, True)
    want_out, (want_h, want_c) = ref(x, (h0[None], c0[None]))
    for g, w in [(out, want_out), (h_n, want_h[0]), (c_n, want_c[0])]:
        torch.testing.assert_close(g, w, atol=1e-6, rtol=1e-5)
    loss = out.pow(2).sum() + c_n.sum()
    grads = torch.autograd.grad(loss, [x, h0, c0, *params])
    ref_loss = want_out.pow(2).sum() + want_c.sum()
    for g, w in zip(grads, torch.autograd.grad(ref_loss, [x, h0, c0, *params]), strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_gradcheck_and_frozen_weights(monkeypatch):
    monkeypatch.setattr(bptt_kernels, "_COMPILE_FAILED", ["test: run the kernels eagerly"])
    torch.manual_seed(5)
    args = [
        torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True),  # x (N, L, H_in)
        torch.randn(2, 2, dtype=torch.float64, requires_grad=True),  # h0
        torch.randn(2, 2, dtype=torch.float64, requires_grad=True),  # c0
        torch.randn(8, 3, dtype=torch.float64, requires_grad=True),  # w_ih
        torch.randn(8, 2, dtype=torch.float64, requires_grad=True),  # w_hh
        torch.randn(8, dtype=torch.float64, requires_grad=True),  # bias
    ]
    assert torch.autograd.gradcheck(lambda *a: LSTMLayer.apply(*a, False), args)
    frozen = [a.detach() if i >= 3 else a for i, a in enumerate(args)]  # weights need no grad
    h, c = LSTMLayer.apply(*frozen, False)
    grad_x = torch.autograd.grad(h.sum() + c.sum(), frozen[0])[0]
    assert grad_x.shape == args[0].shape and bool(grad_x.abs().sum() > 0)


def test_compile_failure_falls_back_with_a_warning(fresh_compile_state, monkeypatch):
    layer, x, hx = _stack_case(torch.float64, bias=False)
    lengths = torch.tensor([6, 2, 5])
    want = _results(layer, x, lengths, hx)

    def broken(fn, **kwargs):
        raise RuntimeError("no C++ compiler found\ndetails")

    monkeypatch.setattr(torch, "compile", broken)
    layer.compiled = True
    with pytest.warns(RuntimeWarning, match="torch.compile of the recurrent gate kernels failed"):
        got = _results(layer, x, lengths, hx)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: later calls stay quiet
        _results(layer, x, lengths, hx)
