"""Hand-written cells and layer equal PyTorch's, forward and backward, float32 and float64."""

import itertools
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from src.models.recurrent import bptt_kernels
from src.models.recurrent.cells import GRUCell, LSTMCell
from src.models.recurrent.encoder import RecurrentEncoder
from src.models.recurrent.handwritten import HandwrittenRNN

TOL = {torch.float32: 1e-6, torch.float64: 1e-10}
MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _close(got, want, tol):
    torch.testing.assert_close(got, want, atol=tol, rtol=tol)


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize(("ours", "theirs"), [(LSTMCell, nn.LSTMCell), (GRUCell, nn.GRUCell)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("batched", "bias"), [(True, True), (False, True), (True, False)])
def test_cell_equals_pytorch(ours, theirs, dtype, batched, bias):
    torch.manual_seed(0)
    ref = theirs(5, 7, bias=bias, dtype=dtype)
    torch.manual_seed(0)
    cell = ours(5, 7, bias=bias, dtype=dtype)
    for (name, p), (ref_name, q) in zip(
        cell.named_parameters(), ref.named_parameters(), strict=True
    ):
        assert name == ref_name and p.shape == q.shape
        torch.testing.assert_close(p, q, atol=0, rtol=0)  # same init from the same seed
    with torch.no_grad():  # then a state_dict with larger values, to exercise saturation
        ref.weight_hh.mul_(3)
    cell.load_state_dict(ref.state_dict())
    shape = (4, 5) if batched else (5,)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    n_states = 2 if ours is LSTMCell else 1
    hx = [torch.randn(*shape[:-1], 7, dtype=dtype, requires_grad=True) for _ in range(n_states)]
    hx_arg = tuple(hx) if n_states == 2 else hx[0]
    got, want = _flat(cell(x, hx_arg)), _flat(ref(x, hx_arg))
    weights = [torch.randn_like(t) for t in want]
    tol = TOL[dtype]
    for g, w in zip(got, want, strict=True):
        _close(g, w, tol)
    inputs = [x, *hx, *ref.parameters()]
    grads = torch.autograd.grad(
        sum((w * g).sum() for w, g in zip(weights, got, strict=True)), [x, *hx, *cell.parameters()]
    )
    ref_grads = torch.autograd.grad(
        sum((w * g).sum() for w, g in zip(weights, want, strict=True)), inputs
    )
    for g, w in zip(grads, ref_grads, strict=True):
        _close(g, w, tol)
    _close(_flat(cell(x))[0], _flat(ref(x))[0], tol)  # hx=None means zeros


def test_cell_gates():
    torch.manual_seed(1)
    x, h, c = torch.randn(3, 4), torch.randn(3, 6), torch.randn(3, 6)
    (h1, c1), gates = LSTMCell(4, 6)(x, (h, c), return_gates=True)
    assert list(gates) == ["input", "forget", "candidate", "output", "cell"]
    _close(c1, gates["forget"] * c + gates["input"] * gates["candidate"], 1e-6)
    _close(h1, gates["output"] * c1.tanh(), 1e-6)
    h1, gates = GRUCell(4, 6)(x[0], h[0], return_gates=True)
    assert list(gates) == ["reset", "update", "candidate"] and gates["reset"].shape == (6,)
    _close(h1, (1 - gates["update"]) * gates["candidate"] + gates["update"] * h[0], 1e-6)
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D"):
        LSTMCell(4, 6)(torch.randn(2, 3, 4))


def _packed(module, x, lengths, hx):
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, state = module(packed, hx)
    return pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0], state


LAYER_CASES = list(itertools.product(["lstm", "gru", "rnn"], [False, True], [1, 2]))


@pytest.mark.parametrize(("cell", "bidirectional", "num_layers"), LAYER_CASES)
def test_layer_equals_packed_pytorch(cell, bidirectional, num_layers):
    torch.manual_seed(2)
    kw = {"num_layers": num_layers, "bidirectional": bidirectional, "dtype": torch.float64}
    ref = MODULES[cell](5, 6, batch_first=True, **kw)
    layer = HandwrittenRNN(5, 6, cell, **kw)
    layer.load_state_dict(ref.state_dict())
    lengths = torch.cat([torch.tensor([1, 9]), torch.randint(1, 10, (5,))])
    x = torch.randn(7, 9, 5, dtype=torch.float64, requires_grad=True)
    states = num_layers * (2 if bidirectional else 1)
    h0 = [torch.randn(states, 7, 6, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    hx = (h0[0], h0[1]) if cell == "lstm" else h0[0]
    got = [*_flat(layer(x, lengths, hx)[1]), layer(x, lengths, hx)[0]]
    ref_out, ref_state = _packed(ref, x, lengths, hx)
    want = [*_flat(ref_state), ref_out]
    for g, w in zip(got, want, strict=True):
        _close(g, w, 1e-10)
    weights = [torch.randn_like(t) for t in want]
    inputs = [x, h0[0], *(h0[1:] if cell == "lstm" else [])]
    loss = sum((w * g).sum() for w, g in zip(weights, got, strict=True))
    ref_loss = sum((w * g).sum() for w, g in zip(weights, want, strict=True))
    grads = torch.autograd.grad(loss, [*inputs, *layer.parameters()])
    ref_grads = torch.autograd.grad(ref_loss, [*inputs, *ref.parameters()])
    for g, w in zip(grads, ref_grads, strict=True):
        _close(g, w, 1e-10)
    full_out, _ = layer(x)  # no lengths: the plain (unpacked) module
    _close(full_out, ref(x)[0], 1e-10)


def _fresh_compile_state(monkeypatch):
    monkeypatch.setattr(bptt_kernels, "_COMPILED", {})
    monkeypatch.setattr(bptt_kernels, "_COMPILE_FAILED", [])


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_compiled_equals_eager(monkeypatch, cell):
    """GRU: hand-written BPTT, compiled gate kernels; RNN: a compiled step under autograd (the
    LSTM's compiled path is tests/test_lstm_bptt.py's)."""
    _fresh_compile_state(monkeypatch)
    torch.manual_seed(3)
    layer = HandwrittenRNN(4, 5, cell, 2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(3, 6, 4, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 1, 4])
    results = []
    for compiled in (False, True):
        layer.compiled = compiled
        out, h = layer(x, lengths)
        grads = torch.autograd.grad(out.sum() + h.pow(2).sum(), [x, *layer.parameters()])
        results.append([out, h, *grads])
    assert not bptt_kernels._COMPILE_FAILED, bptt_kernels._COMPILE_FAILED
    assert set(bptt_kernels._COMPILED) == (
        {"gru_forward_gates", "gru_backward_gates"} if cell == "gru" else {"tanh_rnn_step"}
    )
    for g, w in zip(*results, strict=True):
        _close(g, w, 1e-10)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_compile_failure_falls_back_with_a_warning(monkeypatch, cell):
    _fresh_compile_state(monkeypatch)

    def broken(fn, **kwargs):
        raise RuntimeError("no C++ compiler found\ndetails")

    monkeypatch.setattr(torch, "compile", broken)
    layer = HandwrittenRNN(3, 4, cell, compiled=True)
    x = torch.randn(2, 5, 3)
    with pytest.warns(RuntimeWarning, match="torch.compile of the recurrent gate kernels failed"):
        out, _ = layer(x)
    layer.compiled = False
    torch.testing.assert_close(out, layer(x)[0], atol=1e-6, rtol=1e-5)  # GRU: oneDNN GEMMs
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: later calls stay quiet
        layer.compiled = True
        layer(x)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_encoder_handwritten_equals_torch(cell):
    torch.manual_seed(4)
    kw = {"cell": cell, "num_layers": 2, "bidirectional": True, "learn_initial_state": True}
    enc = RecurrentEncoder(5, 6, **kw).double()
    hand = RecurrentEncoder(5, 6, **kw, implementation="handwritten").double()
    with torch.no_grad():
        enc.h0.normal_()  # a non-zero learned initial state must reach both
    hand.load_state_dict(enc.state_dict())
    x = torch.randn(4, 8, 5, dtype=torch.float64)
    for lengths in (torch.tensor([8, 1, 5, 3]), None):
        got, want = hand(x, lengths), enc(x, lengths)
        for g, w in zip([got[0], *_flat(got[1])], [want[0], *_flat(want[1])], strict=True):
            _close(g, w, 1e-10)
    drop = RecurrentEncoder(5, 6, cell, 2, 0.5, implementation="handwritten").double().train()
    assert not torch.equal(drop(x)[0], drop(x)[0])  # inter-layer dropout in training only
    drop.eval()
    assert torch.equal(drop(x)[0], drop(x)[0])
    with pytest.raises(ValueError, match="proj_size is not supported"):
        RecurrentEncoder(5, 6, proj_size=3, implementation="handwritten")
    with pytest.raises(ValueError, match="implementation must be"):
        RecurrentEncoder(5, 6, implementation="cudnn")
    with pytest.raises(ValueError, match="lengths must lie in 1"):
        hand(x, torch.tensor([8, 0, 5, 3]))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gates_shapes_ranges_and_padding(cell):
    torch.manual_seed(5)
    enc = RecurrentEncoder(3, 4, cell, num_layers=2, bidirectional=True).eval()
    lengths = torch.tensor([6, 2, 4])
    x = torch.randn(3, 7, 3)
    gates = enc.gates(x, lengths)
    names = (
        ["input", "forget", "candidate", "output", "cell"]
        if cell == "lstm"
        else ["reset", "update", "candidate"]
    )
    assert list(gates) == [*names, "hidden"]
    valid = torch.arange(7) < lengths[:, None]  # (N, L)
    for name, value in gates.items():
        assert value.shape == (4, 3, 7, 4), name
        assert (value[:, ~valid] == 0).all(), f"{name} is not zero at padding"
        if name not in ("candidate", "cell", "hidden"):
            inside = value[:, valid]
            assert ((inside > 0) & (inside < 1)).all(), name
    output, _ = enc(x, lengths)
    top = gates["hidden"][2:]  # last layer, both directions: the encoder's output
    torch.testing.assert_close(torch.cat([top[0], top[1]], -1), output, atol=1e-6, rtol=1e-6)
    noisy = x.clone()
    noisy[~valid] = 50.0
    for name, value in enc.gates(noisy, lengths).items():
        torch.testing.assert_close(value, gates[name], msg=f"padding leaked into {name}")
