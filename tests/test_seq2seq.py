"""Seq2seq with attention: decoding, teacher forcing, masking, gradients, data, a solved task."""

import gzip
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning import Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.data.parallel.datamodule import ParallelTextDataModule
from src.data.parallel.pairs import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from src.data.parallel.synthetic import SyntheticSeqDataModule
from src.models.beam_search import beam_search
from src.models.seq2seq import Seq2Seq
from src.tasks.translation import Seq2SeqTask

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "multi30k"
VARIANTS = {
    "luong": {"attention": "luong", "input_feeding": False},
    "luong_feed": {"attention": "luong", "input_feeding": True},
    "bahdanau": {"attention": "bahdanau", "input_feeding": False},
}


def _net(variant: str = "luong_feed", cell: str = "lstm", **kw) -> Seq2Seq:
    torch.manual_seed(0)
    args = {"embedding_dim": 12, "hidden_size": 16, "dropout": 0.0, "cell": cell, **kw}
    return Seq2Seq(20, 15, **VARIANTS[variant], **args).eval()


def _batch(n: int = 4, s: int = 7, t: int = 6, seed: int = 1) -> tuple:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, s + 1, (n,), generator=g)
    lengths[0] = s
    src = torch.randint(4, 20, (n, s), generator=g)
    src[torch.arange(s) >= lengths[:, None]] = PAD_ID
    tgt = torch.randint(4, 15, (n, t), generator=g)
    tgt[:, 0] = BOS_ID
    return src, lengths, tgt


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_teacher_forcing_equals_stepwise_decoding(variant, cell):
    net = _net(variant, cell)
    src, lengths, tgt = _batch()
    logits, weights = net(src, lengths, tgt, teacher_forcing_ratio=1.0)
    logits[..., [PAD_ID, BOS_ID]] = float("-inf")  # decode_step never proposes these
    mem, carry = net.encode(src, lengths)
    for t in range(tgt.size(1)):
        logp, carry, w = net.decode_step(tgt[:, t], carry, mem)
        torch.testing.assert_close(logp, logits[:, t].log_softmax(-1))
        torch.testing.assert_close(w, weights[:, t])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_ratio_zero_feeds_back_the_argmax_as_greedy_does(variant):
    net = _net(variant)
    src, lengths, _ = _batch()
    tokens, _ = net.greedy(src, lengths, max_len=6)
    tgt_in = torch.cat([torch.full_like(tokens[:, :1], BOS_ID), tokens[:, :-1]], 1)
    logits, _ = net(src, lengths, tgt_in[:, :1].expand(-1, tokens.size(1)), 0.0)
    logits[..., [PAD_ID, BOS_ID]] = float("-inf")
    before_eos = torch.cumsum(tokens == EOS_ID, 1) - (tokens == EOS_ID).long() == 0
    assert torch.equal(logits.argmax(-1)[before_eos], tokens[before_eos])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_beam_of_one_is_greedy(variant):
    net = _net(variant)
    src, lengths, _ = _batch(n=6, seed=3)
    greedy, _ = net.greedy(src, lengths, max_len=9)
    beam = beam_search(net, src, lengths, beam_size=1, max_len=9, length_penalty=0.0)
    width = max(greedy.size(1), beam.size(1))
    assert torch.equal(
        F.pad(beam, (0, width - beam.size(1))), F.pad(greedy, (0, width - greedy.size(1)))
    )


def test_beam_search_scores_at_least_greedy_and_ends_with_eos():
    net = _net("luong_feed")
    with torch.no_grad():
        net.output.bias[EOS_ID] += 2.5  # an untrained net that ends its sentences
    src, lengths, _ = _batch(n=6, seed=4)
    beam = beam_search(net, src, lengths, beam_size=4, max_len=30, length_penalty=0.0)
    greedy, _ = net.greedy(src, lengths, max_len=30)

    def score(tokens):  # log-probability of each sequence up to its <eos>
        tgt = torch.cat([torch.full_like(tokens[:, :1], BOS_ID), tokens[:, :-1]], 1)
        logits, _ = net(src, lengths, tgt)
        logits[..., [PAD_ID, BOS_ID]] = float("-inf")
        logp = logits.log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)
        return logp.masked_fill(tokens == PAD_ID, 0.0).sum(1)

    assert ((beam == EOS_ID).sum(1) == 1).all()
    assert (score(beam) >= score(greedy) - 1e-5).all()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_padding_never_changes_the_result(variant):
    net = _net(variant)
    src, lengths, tgt = _batch()
    short = int(lengths[1])
    alone, w_alone = net(src[1:2, :short], lengths[1:2], tgt[1:2])
    batched, w_batched = net(src, lengths, tgt)
    torch.testing.assert_close(batched[1:2], alone)
    torch.testing.assert_close(w_batched[1:2, :, :short], w_alone)
    assert (w_batched[1, :, short:] == 0).all()  # no attention on padding
    torch.testing.assert_close(w_batched.sum(-1), torch.ones(w_batched.shape[:2]))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_parameter_gets_a_gradient(variant):
    net = _net(variant, dropout=0.1, num_layers=2).train()
    src, lengths, tgt = _batch()
    logits, _ = net(src, lengths, tgt, teacher_forcing_ratio=0.5)
    F.cross_entropy(logits.flatten(0, 1), tgt.roll(-1, 1).flatten(), ignore_index=0).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_input_errors():
    with pytest.raises(ValueError, match="attention must be"):
        Seq2Seq(10, 10, attention="dot", input_feeding=False)
    with pytest.raises(ValueError, match="input_feeding"):
        Seq2Seq(10, 10, attention="bahdanau", input_feeding=True)
    with pytest.raises(ValueError, match="even"):
        Seq2Seq(10, 10, hidden_size=15)
    with pytest.raises(ValueError, match="teacher_forcing_ratio"):
        Seq2SeqTask(_net(), teacher_forcing_ratio=1.5)
    src, lengths, tgt = _batch()
    with pytest.raises(ValueError, match="lengths"):
        _net()(src, lengths.clamp(max=0), tgt)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(_net(), src, lengths, beam_size=0)
    with pytest.raises(ValueError, match="task must be"):
        SyntheticSeqDataModule(task="shuffle")


def _copy_fixtures(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(FIXTURES, data)
    return data


def test_parallel_data_vocab_from_train_only(tmp_path):
    data = _copy_fixtures(tmp_path)
    with open(data / "val.en", "a", encoding="utf-8") as f:
        f.write("Жжжж quokkaquokka.\n")  # unseen letters and word
    with open(data / "val.de", "a", encoding="utf-8") as f:
        f.write("Ein Quokka.\n")
    dm = ParallelTextDataModule(str(data), cache_dir=str(tmp_path / "cache"), hub_name="")
    dm.setup()
    vocab = dm.tokenizers[1].get_vocab()
    assert not any("Ж" in tok or "quokka" in tok for tok in vocab)
    assert [vocab[s] for s in ("<pad>", "<unk>", "<bos>", "<eos>")] == [0, 1, 2, 3]
    val = dm.datasets["val"]
    assert UNK_ID in val[len(val) - 1]["tgt"].tolist()
    batch = next(iter(dm.train_dataloader()))
    assert (batch["tgt"][:, 0] == BOS_ID).all()
    ends = batch["tgt"].gather(1, (batch["tgt"] != PAD_ID).sum(1, keepdim=True) - 1)
    assert (ends == EOS_ID).all()
    assert (batch["src_lengths"] == (batch["src"] != PAD_ID).sum(1)).all()
    assert dm.decode_target(batch["tgt"][:, 1:]) == dm.references("train", batch["index"])
    again = ParallelTextDataModule(str(data), cache_dir=str(tmp_path / "cache"), hub_name="")
    assert again.cache_path == dm.cache_path and again.tgt_vocab_size == dm.tgt_vocab_size


def test_parallel_data_errors(tmp_path):
    data = _copy_fixtures(tmp_path)
    with pytest.raises(ValueError, match="hub fallback is off"):
        ParallelTextDataModule(str(tmp_path / "nowhere"), hub_name="").prepare_data()
    (data / "val.en").write_text("one line\n")
    with pytest.raises(ValueError, match="has 5 lines but"):
        ParallelTextDataModule(str(data), cache_dir=str(tmp_path / "c"), hub_name="").setup()
    (data / "val.en").write_text("a\n\nb\nc\nd\n")
    with pytest.raises(ValueError, match="blank line"):
        ParallelTextDataModule(str(data), cache_dir=str(tmp_path / "c"), hub_name="").setup()
    with gzip.open(data / "train.en.gz", "wb") as f:
        f.write(b"\xff\xfe bad bytes\n")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        ParallelTextDataModule(str(data), cache_dir=str(tmp_path / "c"), hub_name="").setup()
    with pytest.raises(ValueError, match="special tokens"):
        ParallelTextDataModule(src_max_size=4)


def test_reverse_task_is_solved(tmp_path):
    torch.manual_seed(0)
    dm = SyntheticSeqDataModule(
        "reverse", num_symbols=8, min_len=2, max_len=6, num_train=5120, num_test=1000, batch_size=32
    )
    net = Seq2Seq(
        dm.src_vocab_size,
        dm.tgt_vocab_size,
        32,
        96,
        dropout=0.0,
        attention="luong",
        input_feeding=False,
    )
    steps = 4 * 5120 // 32
    task = Seq2SeqTask(
        net,
        optimizer=lambda params: torch.optim.Adam(params, lr=0.01),
        scheduler=lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, 0.01, total_steps=steps),
        scheduler_interval="step",
        beam_size=2,
        attention_plots=0,
    )
    trainer = Trainer(
        max_epochs=4,
        limit_val_batches=0,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(task, dm)
    result = trainer.test(task, dm, verbose=False)[0]
    assert result["test/exact"] > 0.99
    assert result["test/bleu"] > 99.0
    first = trainer.predict(task, dm)[0]  # predict: file order, decoded strings
    assert first["translation"][:50] == dm.references("test", first["index"][:50])


def test_attention_heatmaps_reach_tensorboard(tmp_path):
    dm = SyntheticSeqDataModule(num_train=32, num_val=8, num_test=8, batch_size=16)
    net = Seq2Seq(
        dm.src_vocab_size, dm.tgt_vocab_size, 8, 8, attention="bahdanau", input_feeding=False
    )
    task = Seq2SeqTask(net, attention_plots=2)
    trainer = Trainer(
        max_epochs=1,
        logger=TensorBoardLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, dm)
    events = EventAccumulator(str(next(tmp_path.rglob("events.out.tfevents.*"))))
    events.Reload()
    assert events.Tags()["images"] == ["attention/val_0", "attention/val_1"]
    assert {"val/bleu", "val/exact", "val/loss"} <= set(events.Tags()["scalars"])
