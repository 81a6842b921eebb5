"""Part-of-speech tagging: CoNLL-U parsing, train-only vocabularies, padding masks, gradients."""

import gzip
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch

from src.data.conllu.datamodule import UDPOSDataModule
from src.data.conllu.source import IGNORE_INDEX, read_conllu, tag_collate
from src.models.tagger import BiLSTMTagger
from src.tasks.tagging import TaggingTask

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ud_ewt"
TRAIN = FIXTURES / "en_ewt-ud-train.conllu.gz"


@pytest.fixture
def datamodule(tmp_path):
    dm = UDPOSDataModule(FIXTURES, cache_dir=str(tmp_path / "cache"), min_freq=1, batch_size=3)
    dm.setup()
    return dm


def _tagger(dm, **kwargs):
    torch.manual_seed(0)
    sizes = {"embedding_dim": 6, "char_embedding_dim": 4, "char_hidden_size": 3}
    return BiLSTMTagger(
        dm.vocab_size, dm.char_vocab_size, dm.num_tags, hidden_size=5, **sizes, **kwargs
    )


def test_parsing_skips_multiword_tokens_and_empty_nodes():
    sentences = read_conllu(TRAIN)
    assert len(sentences) == 6
    words, tags = sentences[1]  # "I don't like Paris !" with the range line 2-3 "don't"
    assert words == ["I", "do", "n't", "like", "Paris", "!"]
    assert tags == ["PRON", "AUX", "PART", "VERB", "PROPN", "PUNCT"]
    words, tags = sentences[2]  # has the empty node 3.1
    assert len(words) == len(tags) == 7 and words[3] == "and" and tags[3] == "CCONJ"


def test_vocabularies_come_from_train_only(datamodule):
    vocab = datamodule.vocabularies
    assert vocab["words"][:2] == ["<pad>", "<unk>"]
    assert "the" in vocab["words"] and "The" not in vocab["words"]  # words lower-cased
    assert "T" in vocab["chars"]  # characters keep their case
    assert "zebra" not in vocab["words"] and "rome" not in vocab["words"]  # dev/test only
    assert "z" not in vocab["chars"]
    assert datamodule.num_tags == 17 and datamodule.tag_names == sorted(vocab["tags"])
    test = datamodule.datasets["test"][0]  # "The zebra barked !"
    assert test["words"].tolist()[1] == 1  # <unk>
    assert test["words"].tolist()[0] == vocab["words"].index("the")
    assert test["chars"][1].tolist()[0] == 1  # 'z' unseen in train
    tags = [vocab["tags"][t] for t in test["tags"].tolist()]
    assert tags == ["DET", "NOUN", "VERB", "PUNCT"]


def test_cache_is_reused(datamodule, tmp_path):
    again = UDPOSDataModule(FIXTURES, cache_dir=str(tmp_path / "cache"), min_freq=1)
    assert again.cache_path == datamodule.cache_path
    assert again.vocabularies == datamodule.vocabularies


def test_batches_pad_words_chars_and_tags(datamodule):
    batch = next(iter(datamodule.val_dataloader()))  # two sentences, lengths 5 and 3
    assert batch["lengths"].tolist() == [5, 3]
    assert batch["words"].shape == (2, 5) and batch["chars"].shape[:2] == (2, 5)
    assert batch["tags"][1, 3:].tolist() == [IGNORE_INDEX] * 2
    assert batch["words"][1, 3:].tolist() == [0, 0] and int(batch["chars"][1, 3:].sum()) == 0


class _Fixed(torch.nn.Module):
    """Stands in for the network: returns the given logits."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, words, chars, lengths):
        return self.logits


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")
def test_padding_is_ignored_by_loss_and_metrics(datamodule):
    batch = next(iter(datamodule.train_dataloader()))
    pad = batch["tags"] == IGNORE_INDEX
    assert pad.any()
    logits = _tagger(datamodule)(batch["words"], batch["chars"], batch["lengths"]).detach()
    noisy_logits = logits.clone()
    noisy_logits[pad] = torch.randn_like(noisy_logits[pad]) * 100
    noisy_tags = batch["tags"].masked_fill(pad, 3)  # a real tag id at padded steps
    results = []
    for scores, tags in [(logits, batch["tags"]), (noisy_logits, noisy_tags)]:
        task = TaggingTask(_Fixed(scores), datamodule.num_tags)
        loss = task._shared_step({**batch, "tags": tags}, "val")
        metrics = task.val_metrics.compute()
        results.append((loss, metrics["val/acc"], metrics["val/f1"]))
    torch.testing.assert_close(results[0], results[1])


def test_per_tag_f1_by_hand(tmp_path):
    # sentence 1 true A B C A, predicted A B B C; sentence 2 true B C, predicted B C, then two
    # padded steps whose label (A) and prediction (C) must count nowhere
    lengths = torch.tensor([4, 2])
    predicted = torch.tensor([[0, 1, 1, 2], [1, 2, 2, 2]])
    batch = {
        "words": torch.ones(2, 4, dtype=torch.long),
        "chars": torch.ones(2, 4, 1, dtype=torch.long),
        "lengths": lengths,
        "tags": torch.tensor([[0, 1, 2, 0], [1, 2, 0, 0]]),
    }
    logits = torch.nn.functional.one_hot(predicted, 3).float()
    task = TaggingTask(_Fixed(logits), num_tags=3, tag_names=["A", "B", "C"])
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path,
    )  # fmt: skip
    out = trainer.test(task, torch.utils.data.DataLoader([batch], batch_size=None))[0]
    # A: 1 hit, 1 missed -> 2/3; B: 2 hits, 1 false alarm -> 4/5; C: 1 hit, 1 missed, 1 false -> 1/2
    assert out["test/f1_A"] == pytest.approx(2 / 3)
    assert out["test/f1_B"] == pytest.approx(4 / 5)
    assert out["test/f1_C"] == pytest.approx(1 / 2)
    assert out["test/f1"] == pytest.approx((2 / 3 + 4 / 5 + 1 / 2) / 3)
    assert out["test/acc"] == pytest.approx(4 / 6)


def test_every_parameter_gets_a_gradient(datamodule):
    net = _tagger(datamodule, word_dropout=0.2)
    batch = next(iter(datamodule.train_dataloader()))
    logits = net(batch["words"], batch["chars"], batch["lengths"])
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["tags"].flatten()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_outputs_do_not_depend_on_padding(datamodule):
    net = _tagger(datamodule).eval()
    examples = [datamodule.datasets["train"][i] for i in range(3)]
    alone = [tag_collate([ex]) for ex in examples]
    together = tag_collate(examples)
    longer = dict(together)  # two extra padded steps and wider char padding
    longer["words"] = torch.nn.functional.pad(together["words"], (0, 2))
    longer["chars"] = torch.nn.functional.pad(together["chars"], (0, 3, 0, 2))
    with torch.no_grad():
        out = net(together["words"], together["chars"], together["lengths"])
        out_longer = net(longer["words"], longer["chars"], longer["lengths"])
        for i, b in enumerate(alone):
            n = int(b["lengths"][0])
            single = net(b["words"], b["chars"], b["lengths"])[0]
            torch.testing.assert_close(out[i, :n], single)
            torch.testing.assert_close(out_longer[i, :n], single)


def test_predict_returns_a_tag_per_word(datamodule):
    task = TaggingTask(_tagger(datamodule), datamodule.num_tags, datamodule.tag_names).eval()
    batch = next(iter(datamodule.predict_dataloader()))
    out = task.predict_step(batch, 0)
    for row, n in zip(out["tags"].tolist(), batch["lengths"].tolist(), strict=True):
        assert all(0 <= t < datamodule.num_tags for t in row[:n])
        assert row[n:] == [IGNORE_INDEX] * (len(row) - n)


def test_missing_file_is_a_one_line_error(tmp_path):
    dm = UDPOSDataModule(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="train file .* not found; set data_dir") as e:
        dm.prepare_data()
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("x1\tfoo\tfoo\tNOUN\t_\t_\t0\tdep\t_\t_", "not a valid ID"),
        ("1\tfoo\tfoo", "no UPOS tag"),
    ],
)
def test_malformed_line_is_a_one_line_error(tmp_path, line, problem):
    path = tmp_path / "bad.conllu"
    path.write_text(f"# text = foo\n{line}\n\n")
    with pytest.raises(ValueError, match=problem) as e:
        read_conllu(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_tag_unseen_in_train_is_an_error(tmp_path):
    for name in ("train", "dev", "test"):
        shutil.copy(FIXTURES / f"en_ewt-ud-{name}.conllu.gz", tmp_path)
    with gzip.open(tmp_path / "en_ewt-ud-dev.conllu.gz", "wt") as f:
        f.write("1\tfoo\tfoo\tNEWTAG\t_\t_\t0\tdep\t_\t_\n\n")
    dm = UDPOSDataModule(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="'NEWTAG' .* absent from the training data"):
        dm.prepare_data()
