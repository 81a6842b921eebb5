"""Text baselines: bag-of-embeddings and Transformer classifiers: gradients, padding, masks."""

import pytest
import torch
from torch.testing import assert_close

from src.models.bag_of_embeddings import BagOfEmbeddings
from src.models.transformer import TransformerClassifier

VOCAB, CLASSES = 20, 3


def _boe(**kwargs) -> BagOfEmbeddings:
    return BagOfEmbeddings(VOCAB, CLASSES, embedding_dim=8, hidden_size=6, num_layers=2, **kwargs)


def _transformer(**kwargs) -> TransformerClassifier:
    args = dict(d_model=8, nhead=2, num_layers=2, dim_feedforward=16, max_len=16) | kwargs
    return TransformerClassifier(VOCAB, CLASSES, **args)


MODELS = {
    "boe_mean": lambda: _boe(pooling="mean"),
    "boe_mean_max": lambda: _boe(pooling="mean_max"),
    "transformer_mean": lambda: _transformer(),
    "transformer_cls_learned": lambda: _transformer(pooling="cls", positional="learned"),
}


def _batch(lengths: list[int], width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor(lengths)
    tokens = torch.randint(1, VOCAB, (len(lengths), width or int(lengths.max())))
    tokens[torch.arange(tokens.size(1)) >= lengths[:, None]] = 0  # (N, L) padded with id 0
    return tokens, lengths


@pytest.fixture(params=list(MODELS), ids=list(MODELS))
def net(request):
    torch.manual_seed(0)
    return MODELS[request.param]()


def test_every_parameter_gets_a_gradient(net):
    tokens, lengths = _batch([7, 3, 1, 5])
    logits = net(tokens, lengths)
    assert logits.shape == (4, CLASSES)
    logits.pow(2).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} got a zero gradient"


@pytest.mark.parametrize("grad", [True, False], ids=["autograd", "no_grad"])
def test_padding_and_batch_mates_change_nothing(net, grad):
    net.eval()
    tokens, lengths = _batch([6, 2, 4])
    with torch.set_grad_enabled(grad):  # no_grad takes nn.TransformerEncoder's fused fast path
        logits = net(tokens, lengths)
        # Extra padding columns at the end of the batch.
        wider = torch.cat([tokens, torch.zeros(3, 5, dtype=torch.long)], 1)  # (N, L + 5)
        assert_close(net(wider, lengths), logits)
        # Each sequence alone, without its batch mates or their padding.
        for i, n in enumerate(lengths.tolist()):
            assert_close(net(tokens[i : i + 1, :n], lengths[i : i + 1]), logits[i : i + 1])


def test_padded_token_ids_are_never_read(net):
    net.eval()
    tokens, lengths = _batch([6, 2, 4])
    garbage = tokens.clone()
    pad = torch.arange(tokens.size(1)) >= lengths[:, None]
    garbage[pad] = torch.randint(1, VOCAB, (int(pad.sum()),))  # real ids where padding was
    assert_close(net(garbage, lengths), net(tokens, lengths))


def test_no_lengths_means_no_padding(net):
    net.eval()
    tokens, lengths = _batch([5, 5])
    assert_close(net(tokens), net(tokens, lengths))


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_transformer_rejects_sequences_longer_than_max_len(pooling):
    net = _transformer(pooling=pooling, max_len=8)
    longest = 8 - (pooling == "cls")  # the [CLS] token takes one position
    net(*_batch([longest]))
    with pytest.raises(ValueError, match="max_len") as error:
        net(*_batch([longest + 1]))
    assert "\n" not in str(error.value)


def test_transformer_training_mode_uses_dropout():
    net = _transformer(dropout=0.5, attention_dropout=0.25).train()
    assert [layer.self_attn.dropout for layer in net.encoder.layers] == [0.25, 0.25]
    tokens, lengths = _batch([6, 3])
    assert not torch.equal(net(tokens, lengths), net(tokens, lengths))


def test_boe_load_embeddings():
    net = _boe(freeze_embeddings=True)
    vectors = torch.randn(VOCAB, 8)
    net.load_embeddings(vectors)
    assert_close(net.embedding.weight, vectors)
    assert not net.embedding.weight.requires_grad
    with pytest.raises(ValueError, match="embedding_dim"):
        net.load_embeddings(torch.randn(VOCAB, 9))


def test_boe_mean_pooling_is_the_average_of_valid_embeddings():
    net = BagOfEmbeddings(VOCAB, CLASSES, embedding_dim=4, num_layers=0, dropout=0.0).eval()
    tokens, lengths = _batch([3, 1], width=5)
    linear = net.mlp[-1]
    expected = torch.stack(
        [net.embedding(tokens[i, :n]).mean(0) for i, n in enumerate(lengths.tolist())]
    )
    assert_close(net(tokens, lengths), linear(expected))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: _boe(pooling="sum"), "pooling"),
        (lambda: _transformer(pooling="last"), "pooling"),
        (lambda: _transformer(positional="rotary"), "positional"),
    ],
)
def test_bad_options_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
