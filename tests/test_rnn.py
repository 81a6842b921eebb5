"""RecurrentEncoder equals PyTorch's packed result, forward and backward."""

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from src.models.recurrent.encoder import RecurrentEncoder

CASES = list(itertools.product(["lstm", "gru", "rnn"], [False, True], [1, 2]))


def _reference(enc: RecurrentEncoder, x, lengths):
    ref = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[enc.cell]
    kwargs = {"proj_size": enc.rnn.proj_size} if enc.cell == "lstm" else {}
    module = ref(
        enc.input_size,
        enc.hidden_size,
        enc.num_layers,
        batch_first=True,
        bidirectional=enc.num_directions == 2,
        **kwargs,
    ).double()
    module.load_state_dict(enc.rnn.state_dict())
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, state = module(packed)
    out = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]
    return module, out, state


def _flatten(state):
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize(("cell", "bidirectional", "num_layers"), CASES)
@pytest.mark.parametrize("lengths", [[7, 1, 4, 9, 9, 2], [5, 5, 5, 5, 5, 5]])
def test_equals_packed_forward_and_backward(cell, bidirectional, num_layers, lengths):
    torch.manual_seed(0)
    enc = RecurrentEncoder(5, 6, cell, num_layers, bidirectional=bidirectional).double()
    lengths = torch.tensor(lengths)
    x = torch.randn(len(lengths), 9, 5, dtype=torch.double, requires_grad=True)
    out, state = enc(x, lengths)
    module, ref_out, ref_state = _reference(enc, x, lengths)
    torch.testing.assert_close(out, ref_out, atol=1e-10, rtol=1e-10)
    for got, want in zip(_flatten(state), _flatten(ref_state), strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    # gradients of every output, through every state, w.r.t. input and weights
    weights = [torch.randn_like(t) for t in [out, *_flatten(state)]]
    loss = sum((w * t).sum() for w, t in zip(weights, [out, *_flatten(state)], strict=True))
    ref_loss = sum(
        (w * t).sum() for w, t in zip(weights, [ref_out, *_flatten(ref_state)], strict=True)
    )
    grads = torch.autograd.grad(loss, [x, *enc.rnn.parameters()])
    ref_grads = torch.autograd.grad(ref_loss, [x, *module.parameters()])
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)


def test_float32_random_lengths_within_1e5():
    torch.manual_seed(1)
    enc = RecurrentEncoder(8, 16, "lstm", 2, bidirectional=True)
    lengths = torch.randint(1, 40, (16,))
    x = torch.randn(16, 40, 8)
    out, (h, c) = enc(x, lengths)
    _, ref_out, (rh, rc) = _reference(enc.double(), x.double(), lengths)
    torch.testing.assert_close(out.double(), ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h.double(), rh, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c.double(), rc, atol=1e-5, rtol=1e-5)


def test_projection_and_learned_initial_state():
    torch.manual_seed(2)
    enc = RecurrentEncoder(4, 8, "lstm", 2, bidirectional=True, proj_size=3).double()
    lengths = torch.tensor([6, 2, 4])
    x = torch.randn(3, 6, 4, dtype=torch.double)
    out, (h, c) = enc(x, lengths)
    assert out.shape == (3, 6, 6) and h.shape == (4, 3, 3) and c.shape == (4, 3, 8)
    _, ref_out, (rh, rc) = _reference(enc, x, lengths)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(c, rc)
    learned = RecurrentEncoder(4, 8, "gru", learn_initial_state=True)
    out, h = learned(torch.randn(2, 5, 4), torch.tensor([5, 3]))
    h.sum().backward()
    assert learned.h0.grad is not None and learned.h0.grad.abs().sum() > 0


def test_padding_never_leaks():
    torch.manual_seed(3)
    enc = RecurrentEncoder(3, 4, "lstm", 2, bidirectional=True).eval()
    lengths = torch.tensor([5, 3])
    x = torch.randn(2, 7, 3)
    noisy = x.clone()
    noisy[1, 3:] = 100.0
    noisy[0, 5:] = -100.0
    a, (ha, ca) = enc(x, lengths)
    b, (hb, cb) = enc(noisy, lengths)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ca, cb)
    assert (a[1, 3:] == 0).all()


def test_init_options_and_errors():
    enc = RecurrentEncoder(4, 8, "lstm", init="xavier_orthogonal", forget_bias=1.0)
    w = enc.rnn.weight_hh_l0[:8]
    torch.testing.assert_close(w @ w.T, torch.eye(8), atol=1e-5, rtol=0)
    assert (enc.rnn.bias_ih_l0[8:16] == 1.0).all() and (enc.rnn.bias_hh_l0[8:16] == 0).all()
    with pytest.raises(ValueError, match="lengths must lie in 1"):
        enc(torch.randn(2, 3, 4), torch.tensor([3, 0]))
    with pytest.raises(ValueError, match="expected input"):
        enc(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="cell='lstm' only"):
        RecurrentEncoder(4, 8, "gru", proj_size=2)


def test_length_groups_cover_the_batch_and_pay_only_when_lengths_differ():
    from src.models.recurrent.dense_exact import length_groups

    lengths = torch.tensor([3, 40, 2, 41, 39, 3, 2, 40] * 4)
    groups = length_groups(lengths)
    assert len(groups) == 2 and sorted(torch.cat(groups).tolist()) == list(range(32))
    assert [int(lengths[g].max()) for g in groups] == [3, 41]
    assert len(length_groups(torch.tensor([40, 41, 39, 40] * 8))) == 1  # bucketed: no split


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("grouped", [True, False])
def test_length_groups_keep_packed_results(monkeypatch, cell, grouped):
    """Cut into length groups (CPU) or run as one padded group (what GPUs do): packed results."""
    from src.models.recurrent import dense_exact

    if not grouped:
        monkeypatch.setattr(dense_exact, "LENGTH_GROUP_DEVICES", ())
    torch.manual_seed(5)
    enc = RecurrentEncoder(3, 4, cell, 2, bidirectional=True, learn_initial_state=True).double()
    lengths = torch.tensor([2, 30, 1, 29, 3, 30, 2, 28] * 3)
    assert len(dense_exact.length_groups(lengths)) > 1
    x = torch.randn(24, 30, 3, dtype=torch.double, requires_grad=True)
    out, state = enc(x, lengths)
    module, ref_out, ref_state = _reference(enc, x, lengths)
    torch.testing.assert_close(out, ref_out, atol=1e-10, rtol=1e-10)
    for got, want in zip(_flatten(state), _flatten(ref_state), strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    grads = torch.autograd.grad(out.sum() + _flatten(state)[-1].sum(), [x, *enc.rnn.parameters()])
    ref = torch.autograd.grad(
        ref_out.sum() + _flatten(ref_state)[-1].sum(), [x, *module.parameters()]
    )
    for got, want in zip(grads, ref, strict=True):
        torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("lengths", [[9, 9, 7, 4, 2, 1], [7, 1, 4, 9, 9, 2]])
def test_packed_path_equals_dense_path(monkeypatch, cell, lengths):
    """The cuDNN branch (packed), run on CPU, against the CPU dense-exact branch: same outputs,
    states and gradients, learned initial states included; longest-first batches skip the sort."""
    from src.models.recurrent import encoder as rnn

    torch.manual_seed(6)
    enc = RecurrentEncoder(3, 5, cell, 2, bidirectional=True, learn_initial_state=True).double()
    for p in (enc.h0, enc.c0):
        if p is not None:
            nn.init.normal_(p)  # row order matters: unsorted batches permute the initial states
    lengths = torch.tensor(lengths)
    x = torch.randn(6, 9, 3, dtype=torch.double, requires_grad=True)

    def run():
        out, state = enc(x, lengths)
        tensors = [out, *_flatten(state)]
        grads = torch.autograd.grad(sum(t.sum() for t in tensors), [x, *enc.parameters()])
        return tensors, grads

    dense = run()
    sorted_flags = []

    def pack(*args, enforce_sorted, **kwargs):
        sorted_flags.append(enforce_sorted)
        return pack_padded_sequence(*args, enforce_sorted=enforce_sorted, **kwargs)

    enc.dense_exact_devices = ()  # as a CUDA encoder by default: the packed branch
    monkeypatch.setattr(rnn, "pack_padded_sequence", pack)
    packed = run()
    assert sorted_flags == [bool((lengths[:-1] >= lengths[1:]).all())]
    for got, want in zip([*packed[0], *packed[1]], [*dense[0], *dense[1]], strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


def test_dense_exact_devices_choose_the_branch_and_reach_the_saved_config():
    """The device list is a constructor argument (saved with a run's config): listing no device
    sends a CPU batch down the packed branch, listing "cpu" down the dense one."""
    from src.models.recurrent import encoder as rnn

    x, lengths = torch.randn(3, 5, 2), torch.tensor([5, 2, 4])
    calls = []
    for devices in ([], ["cpu"]):
        enc = RecurrentEncoder(2, 3, dense_exact_devices=devices)
        enc._packed = lambda *a, **k: calls.append("packed") or (None, None)
        enc._dense_exact = lambda *a, **k: calls.append("dense") or (None, None)
        enc(x, lengths)
    assert calls == ["packed", "dense"]
    assert rnn.RecurrentEncoder.__init__.__defaults__[-1] == ("cpu",)


def test_dense_exact_devices_parse_and_reject_unknown_types():
    from src.models.recurrent.encoder import device_types

    assert device_types(" cpu , cuda:0,", "x") == ("cpu", "cuda")
    assert device_types(["cpu", "cuda:1"], "x") == ("cpu", "cuda")
    with pytest.raises(ValueError, match="dense_exact_devices: 'gpu' is not a device type"):
        RecurrentEncoder(2, 3, dense_exact_devices=["cpu", "gpu"])
