"""Character language model: contiguous streams, held-out slices, truncated BPTT, BPC, sampling."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning import Trainer
from torch import nn

from src.checkpoints import save_atomic
from src.cli import main as cli_main
from src.data.chars.datamodule import CharLMDataModule, split_corpus
from src.data.chars.source import UNK_ID, CharStreamDataset, CharVocab, read_corpus
from src.errors import SeqLabError
from src.generate import main as generate_main
from src.models.char_rnn import CharRNN
from src.tasks.language_model import LanguageModelTask

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT / "tests" / "fixtures" / "text"


def _datamodule(tmp_path, path=TEXT / "reviews.csv.gz", **kwargs) -> CharLMDataModule:
    args = dict(max_chars=None, val_chars=200, test_chars=200, min_count=1, batch_size=4, bptt=16)
    return CharLMDataModule(str(path), str(tmp_path / "cache"), **{**args, **kwargs})


def _trainer(**kwargs) -> Trainer:
    args = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    return Trainer(**{**args, "enable_model_summary": False, **kwargs})


def test_streams_are_contiguous_and_cover_every_step_once():
    ids = torch.arange(1000)
    ds = CharStreamDataset(ids, n_rows=3, bptt=7, drop_last=True)
    batches = [ds[k] for k in range(len(ds))]
    for prev, nxt in zip(batches[:-1], batches[1:], strict=True):  # row r of k + 1 continues k
        assert torch.equal(nxt["x"][:, 0], prev["x"][:, -1] + 1)
    seen = torch.cat([b["x"].flatten() for b in batches])
    assert all(torch.equal(b["y"], b["x"] + 1) for b in batches)  # next-character targets
    assert len(seen.unique()) == len(seen) == 3 * 7 * len(ds)  # no step twice
    assert 999 - len(seen) < 3 * 7 + 3  # only the tail of each row (< bptt) and (T - 1) mod N

    full = CharStreamDataset(ids, n_rows=3, bptt=7)  # evaluation keeps the short last batch
    assert full[len(full) - 1]["x"].shape == (3, 333 % 7)
    assert sum(full[k]["x"].numel() for k in range(len(full))) == 999


def test_datamodule_batches_reproduce_the_training_text(tmp_path):
    dm = _datamodule(tmp_path)
    dm.setup()
    vocab = CharVocab(dm.vocab)
    batches = list(dm.train_dataloader())
    rows = [vocab.decode(torch.cat([b["x"][r] for b in batches])) for r in range(4)]
    train = vocab.decode(dm.ids["train"])
    steps = (len(train) - 1) // 4
    assert rows == [train[r * steps : r * steps + len(rows[0])] for r in range(4)]
    assert "<br" not in train and train.count("\n") >= 5  # cleaned reviews, one per line
    assert dm.stateful and dm.vocab_size == len(vocab)


def test_heldout_slices_are_disjoint_line_aligned_and_independent_of_max_chars():
    text = "".join(f"review number {i}\n" for i in range(200))
    full = split_corpus(text, None, val_chars=300, test_chars=300)
    assert full["train"] + full["val"] + full["test"] == text  # disjoint, in order, complete
    assert full["val"].startswith("review") and full["test"].startswith("review")
    assert 280 <= len(full["test"]) <= 300
    small = split_corpus(text, 100, val_chars=300, test_chars=300)
    assert small["train"] == text[:100] and small["val"] == full["val"]
    with pytest.raises(ValueError, match="leave training text"):
        split_corpus(text, None, val_chars=len(text), test_chars=1)


def test_vocabulary_comes_from_the_training_slice_only(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text((TEXT / "corpus.txt").read_text() + "\nthe end §\n", encoding="utf-8")
    dm = _datamodule(tmp_path, corpus, val_chars=60, test_chars=20, bptt=4)
    dm.setup()
    assert "§" not in dm.vocab and dm.vocab[UNK_ID] == "<unk>"
    assert (dm.ids["test"] == UNK_ID).sum() == 1
    assert CharVocab(dm.vocab).unknown("§ the") == ["§"]


def test_bad_corpora_raise_clear_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        read_corpus(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_corpus(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="too few"):
        CharStreamDataset(torch.arange(10), n_rows=4, bptt=8, drop_last=True)
    with pytest.raises(ValueError, match="tie_weights"):
        CharRNN(10, embedding_dim=8, hidden_size=16, tie_weights=True)


@pytest.mark.parametrize("tie_weights", [False, True])
def test_every_parameter_gets_a_gradient(tie_weights):
    torch.manual_seed(0)
    dim = 8 if tie_weights else 6
    net = CharRNN(12, dim, hidden_size=8, num_layers=2, dropout=0.1, tie_weights=tie_weights)
    logits, (h, c) = net(torch.randint(0, 12, (3, 5)))
    assert logits.shape == (3, 5, 12) and h.shape == c.shape == (2, 3, 8)
    F.cross_entropy(logits.flatten(0, 1), torch.randint(0, 12, (15,))).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_state_is_carried_across_batches_but_detached():
    torch.manual_seed(0)
    task = LanguageModelTask(CharRNN(4, embedding_dim=4, hidden_size=8))
    first = {"x": torch.full((2, 5), 1), "y": torch.full((2, 5), 2)}  # only character 1
    second = {"x": torch.full((2, 5), 2), "y": torch.full((2, 5), 3)}  # only character 2
    task.training_step(first, 0)  # its graph is never backpropagated on its own
    carried = task.states["train"]
    assert all(s.grad_fn is None and not s.requires_grad for s in carried)
    task.training_step(second, 1).backward()
    emb = task.net.embedding.weight.grad
    assert emb[2].abs().sum() > 0 and emb[1].abs().sum() == 0  # the graph is cut at the boundary
    with torch.no_grad():  # and the carried state does change the second batch's predictions
        assert not torch.allclose(task(second["x"], carried)[0], task(second["x"])[0])

    net = task.net  # control: without the detach, gradient would reach the first batch
    net.zero_grad()
    _, state = net(first["x"])
    F.cross_entropy(net(second["x"], state)[0].flatten(0, 1), second["y"].flatten()).backward()
    assert net.embedding.weight.grad[1].abs().sum() > 0


class _Recorder(nn.Module):
    """Wraps a net and records, per call, the mode and whether it got a carried state."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, []

    def forward(self, x, state=None):
        self.calls.append(("train" if self.training else "eval", state is not None))
        return self.net(x, state)


def test_state_resets_at_every_epoch_start(tmp_path):
    dm = _datamodule(tmp_path)
    net = _Recorder(CharRNN(dm.vocab_size, 4, 8, num_layers=1))
    task = LanguageModelTask(net)
    trainer = _trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=2)
    trainer.fit(task, datamodule=dm)
    carried = {"train": [], "eval": []}
    for mode, has_state in net.calls:
        carried[mode].append(has_state)
    assert carried["train"] == [False, True, True] * 2  # zeros at each epoch start, then carried
    assert carried["eval"] == [False, True] * 3  # sanity check, then after each epoch


class _Bigram(nn.Module):
    """Fixed next-character logits given the current character; uniform when ``table`` is 0."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table)

    def forward(self, x, state=None):
        return self.table[x], x.new_zeros(1)  # (N, L, V)


def test_bpc_is_averaged_over_every_held_out_character(tmp_path):
    dm = _datamodule(tmp_path, bptt=7, eval_batch_size=3)  # last val batch shorter than bptt
    dm.setup()
    V = dm.vocab_size
    uniform = _trainer().validate(LanguageModelTask(_Bigram(torch.zeros(V, V))), datamodule=dm)
    assert uniform[0]["val/bpc"] == pytest.approx(math.log2(V), rel=1e-5)
    assert uniform[0]["val/ppl"] == pytest.approx(V, rel=1e-4)

    table = torch.randn(V, V, generator=torch.Generator().manual_seed(0)) * 3
    ids = dm.ids["val"].long()
    scored = (len(ids) - 1) // 3 * 3  # steps kept by 3 rows of equal length
    expected = F.cross_entropy(table[ids[:scored]], ids[1 : scored + 1]) / math.log(2)
    metrics = _trainer().validate(LanguageModelTask(_Bigram(table)), datamodule=dm)[0]
    assert metrics["val/bpc"] == pytest.approx(expected.item(), rel=1e-5)
    assert metrics["val/loss"] == pytest.approx(expected.item() * math.log(2), rel=1e-5)


def _sampling_task() -> LanguageModelTask:
    torch.manual_seed(0)
    vocab = ["<unk>", "\n", " ", *"abcdefgh"]
    return LanguageModelTask(CharRNN(len(vocab), 8, 16), vocab=vocab).eval()


def test_sampling_is_reproducible_and_top_k_1_is_greedy():
    task = _sampling_task()
    a, b = (task.generate("abc", 60, temperature=1.5, seed=0) for _ in range(2))
    assert a == b and a.startswith("abc") and len(a) == 63
    assert task.generate("abc", 60, temperature=1.5, seed=1) != a

    prompt = torch.tensor([[1, 3, 4, 5]])  # "\nabc", as generate() reads it
    sampled = task.net.sample(prompt, 20, top_k=1, generator=torch.Generator().manual_seed(3))
    logits, state = task.net(prompt)
    greedy = []
    for _ in range(20):
        greedy.append(logits[:, -1].argmax(-1, keepdim=True))
        logits, state = task.net(greedy[-1], state)
    assert torch.equal(sampled, torch.cat(greedy, 1))
    assert task.generate("abc", 20, top_k=1) == "abc" + CharVocab(task.hparams.vocab).decode(
        sampled[0]
    )
    with pytest.raises(ValueError, match=r"\['Z'\] are not in"):
        task.generate("Zabc", 5)
    with pytest.raises(ValueError, match="temperature"):
        task.generate("abc", 5, temperature=0.0)


def test_generate_entry_point_runs_on_a_checkpoint_from_a_tiny_fit(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    net = "--model.init_args.net.init_args."
    data = "--data.init_args."
    overrides = {
        f"{data}path": str(TEXT / "reviews.csv.gz"),
        f"{data}cache_dir": str(tmp_path / "cache"),
        f"{data}max_chars": "null",
        f"{data}val_chars": "200",
        f"{data}test_chars": "200",
        f"{data}min_count": "1",
        f"{data}batch_size": "4",
        f"{data}bptt": "16",
        f"{net}hidden_size": "8",
        f"{net}embedding_dim": "8",
        "--trainer.max_epochs": "1",
        "--trainer.enable_progress_bar": "false",
    }
    args = [str(a) for kv in overrides.items() for a in kv]
    cli = cli_main(["fit", "--config", str(ROOT / "configs" / "charlm_imdb.yaml"), *args])
    assert cli.model.hparams.vocab == cli.datamodule.vocab  # linked, so stored in checkpoints
    assert math.isfinite(cli.trainer.callback_metrics["val/bpc"])
    ckpt = tmp_path / "lightning_logs" / "charlm_imdb" / "version_0" / "checkpoints" / "last.ckpt"

    argv = ["--ckpt_path", str(ckpt), "--prompt", "This movie", "--length", "40", "--seed", "0"]
    text = generate_main(argv)
    assert text.startswith("This movie") and len(text) == 50
    assert capsys.readouterr().out.strip() == text.strip()
    assert generate_main(argv) == text

    other = tmp_path / "other.ckpt"
    save_atomic({"hyper_parameters": {"num_classes": 2}, "state_dict": {}}, other)
    with pytest.raises(SeqLabError, match="not a character language-model checkpoint"):
        generate_main(["--ckpt_path", str(other)])
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(ckpt.read_bytes()[:-100])  # truncated: refused before anything runs
    run = subprocess.run(
        [sys.executable, "-m", "src.generate", "--ckpt_path", str(damaged)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2 and "damaged.ckpt is truncated" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
