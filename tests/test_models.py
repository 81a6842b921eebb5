"""Networks: shapes, every parameter gets a gradient, pooling ignores padding."""

import pytest
import torch

from src.models.classifier import RNNClassifier
from src.models.forecaster import RNNForecaster
from src.models.pooling import SequencePooling


def _all_params_get_grad(module: torch.nn.Module, loss: torch.Tensor) -> None:
    loss.backward()
    for name, p in module.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
            assert p.grad.abs().sum() > 0, f"{name} got a zero gradient"


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize(("cell", "bidirectional"), [("lstm", True), ("gru", False), ("rnn", True)])
def test_classifier_gradients(pooling, cell, bidirectional):
    torch.manual_seed(0)
    net = RNNClassifier(
        vocab_size=20,
        num_classes=3,
        embedding_dim=8,
        hidden_size=6,
        cell=cell,
        num_layers=2,
        bidirectional=bidirectional,
        pooling=pooling,
        layer_norm=True,
        learn_initial_state=True,
    )
    tokens = torch.randint(1, 20, (4, 7))
    lengths = torch.tensor([7, 3, 1, 5])
    tokens[torch.arange(7) >= lengths[:, None]] = 0
    logits = net(tokens, lengths)
    assert logits.shape == (4, 3)
    _all_params_get_grad(net, logits.pow(2).sum())
    assert net.embedding.weight.grad[0].abs().sum() == 0  # padding row never trained


def test_classifier_attention_weights_and_padding_invariance():
    torch.manual_seed(1)
    net = RNNClassifier(30, embedding_dim=8, hidden_size=5, bidirectional=True, pooling="attention")
    net.eval()
    tokens = torch.randint(1, 30, (2, 6))
    lengths = torch.tensor([6, 4])
    logits, weights = net(tokens, lengths, return_attention=True)
    assert (weights[1, 4:] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    longer = torch.cat([tokens, torch.randint(1, 30, (2, 3))], 1)  # extra junk after the end
    torch.testing.assert_close(net(longer, lengths), logits)


def test_pooling_modes_ignore_padding():
    output = torch.tensor([[[1.0], [3.0], [100.0]], [[-2.0], [-4.0], [-6.0]]])
    lengths = torch.tensor([2, 3])
    h_n = torch.zeros(1, 2, 1)
    mean, _ = SequencePooling("mean", 1, 1)(output, h_n, lengths)
    peak, _ = SequencePooling("max", 1, 1)(output, h_n, lengths)
    torch.testing.assert_close(mean, torch.tensor([[2.0], [-4.0]]))
    torch.testing.assert_close(peak, torch.tensor([[3.0], [-2.0]]))
    with pytest.raises(ValueError, match="pooling must be"):
        SequencePooling("sum", 1, 1)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_forecaster_gradients(cell):
    torch.manual_seed(0)
    net = RNNForecaster(
        input_size=3,
        output_len=5,
        output_size=2,
        hidden_size=8,
        cell=cell,
        num_layers=2,
        bidirectional=True,
        layer_norm=True,
    )
    out = net(torch.randn(4, 12, 3))
    assert out.shape == (4, 5, 2)
    _all_params_get_grad(net, out.pow(2).sum())


def test_load_embeddings_checks_shape():
    net = RNNClassifier(10, embedding_dim=4, hidden_size=3, freeze_embeddings=True)
    net.load_embeddings(torch.ones(10, 4))
    assert not net.embedding.weight.requires_grad and net.embedding.weight.sum() == 40
    with pytest.raises(ValueError, match="match vocab_size"):
        net.load_embeddings(torch.ones(9, 4))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_classifier_last_pooling_at_each_true_end(cell):
    """Expected value: PyTorch's module on each sequence cut to its own length, one at a time."""
    torch.manual_seed(0)
    net = RNNClassifier(
        20, embedding_dim=3, hidden_size=4, cell=cell, num_layers=2, bidirectional=True
    ).eval()
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    reference = rnn(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    reference.load_state_dict(net.encoder.rnn.state_dict())
    lengths = torch.tensor([6, 2, 4, 1])
    tokens = torch.randint(1, 20, (4, 6)) * (torch.arange(6) < lengths[:, None])
    pooled = []
    for row, n in zip(tokens, lengths.tolist(), strict=True):
        output = reference(net.embedding(row[None, :n]))[0][0]  # (n, 2 * H)
        pooled.append(torch.cat([output[-1, :4], output[0, 4:]]))
    expected = net.head(net.norm(torch.stack(pooled)))
    torch.testing.assert_close(net(tokens, lengths), expected)
