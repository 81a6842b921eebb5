"""Language-model pretraining on IMDB text and classifier fine-tuning from it, on tiny fixtures."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from lightning import Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.callbacks.classifier_figures import ClassifierFigures
from src.callbacks.finetuning import GradualUnfreezing, SlantedTriangularLR
from src.checkpoints.restore import restore
from src.cli import main as cli_main
from src.data.imdb.datamodule import IMDBDataModule
from src.data.imdb.lm import END_ID, IMDBLMDataModule, read_texts
from src.data.text import encode_ids
from src.ensemble import main as ensemble_main
from src.errors import SeqLabError
from src.models.classifier import RNNClassifier
from src.models.pretrained import load_language_model
from src.models.word_lm import WordLM
from src.predict import predictor_for
from src.tasks.classification import ClassificationTask
from src.tasks.language_model import LanguageModelTask
from src.tasks.optim import configure, discriminative_groups

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SETTINGS = {"data_dir": str(FIXTURES / "imdb"), "min_freq": 1, "hub_name": ""}
NET = {"embedding_dim": 8, "hidden_size": 16}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread beats two, by far on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _trainer(tmp_path, **kwargs) -> Trainer:
    args = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    args.update(enable_model_summary=False, default_root_dir=str(tmp_path))
    return Trainer(**{**args, **kwargs})


def _lm_data(tmp_path, **kwargs) -> IMDBLMDataModule:
    unsup = str(FIXTURES / "text" / "reviews.csv.gz")
    args = {**SETTINGS, "unsup_path": unsup, "batch_size": 4, "bptt": 8}
    return IMDBLMDataModule(cache_dir=str(tmp_path / "cache"), **{**args, **kwargs})


def _classifier_data(tmp_path) -> IMDBDataModule:
    return IMDBDataModule(cache_dir=str(tmp_path / "cache"), batch_size=8, **SETTINGS)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A word LM trained for a few epochs on the fixtures: (checkpoint, val ppl before, after)."""
    tmp_path = tmp_path_factory.mktemp("lm")
    torch.manual_seed(0)
    dm = _lm_data(tmp_path)
    task = LanguageModelTask(WordLM(dm.vocab_size, cutoffs=(8, 40), **NET), unit="token")
    task.optimizer = lambda params: torch.optim.Adam(params, lr=0.02)
    trainer = _trainer(tmp_path, max_epochs=6, gradient_clip_val=1.0, inference_mode=False)
    before = trainer.validate(task, dm, verbose=False)[0]["val/ppl"]
    trainer.fit(task, dm)
    after = trainer.validate(task, dm, verbose=False)[0]["val/ppl"]
    trainer.save_checkpoint(tmp_path / "lm.ckpt")
    return tmp_path / "lm.ckpt", before, after


def test_streams_hold_training_text_and_validation_reviews_only(tmp_path):
    dm = _lm_data(tmp_path)
    dm.setup()
    imdb = _classifier_data(tmp_path)
    imdb.setup()
    assert dm.tokenizer.get_vocab() == imdb.tokenizer.get_vocab()  # the classifier's vocabulary
    unsup = read_texts(FIXTURES / "text" / "reviews.csv.gz")
    n_test = len(unsup) // 2  # the last unlabeled reviews (at most test_reviews) are the test
    n_train = len(unsup) - n_test + len(imdb.datasets["train"])
    assert (dm.ids["train"] == END_ID).sum() == n_train  # every review ends with END_ID
    assert (dm.ids["val"] == END_ID).sum() == len(imdb.datasets["val"])
    assert (dm.ids["test"] == END_ID).sum() == n_test
    val = dm.ids["val"][dm.ids["val"] != END_ID].numpy()
    assert np.array_equal(val, imdb.datasets["val"].ids.numpy())  # untruncated, in order
    test_ids, _ = encode_ids(dm.tokenizer, ["zeppelin"])  # a word of test.csv only
    assert test_ids.tolist() == [1]  # <unk>: the vocabulary never saw the test reviews
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == batch["y"].shape == (4, 8) and dm.stateful
    assert torch.equal(batch["x"][:, 1:], batch["y"][:, :-1])  # next-token targets
    short = _lm_data(tmp_path, max_tokens=100)
    short.setup()
    assert torch.equal(short.ids["train"], dm.ids["train"][:100])


def test_backward_data_reads_every_review_back_to_front(tmp_path):
    forward, backward = _lm_data(tmp_path), _lm_data(tmp_path, reverse=True)
    forward.setup(), backward.setup()
    for split in ("train", "val", "test"):  # the same streams, read right to left
        assert torch.equal(backward.ids[split], forward.ids[split].flip(0))
    imdb, reverse = (
        _classifier_data(tmp_path),
        IMDBDataModule(cache_dir=str(tmp_path / "cache"), batch_size=8, reverse=True, **SETTINGS),
    )
    imdb.setup(), reverse.setup()
    for split in ("train", "val", "test"):
        ds, rev = imdb.datasets[split], reverse.datasets[split]
        assert np.array_equal(ds.labels, rev.labels) and np.array_equal(ds.offsets, rev.offsets)
        for i in range(len(ds)):
            assert torch.equal(rev[i]["tokens"], ds[i]["tokens"].flip(0))
    texts = ["a wonderful film", "not good at all , sadly"]
    fwd, bwd = imdb.encode_texts(texts), reverse.encode_texts(texts)
    assert torch.equal(fwd["lengths"], bwd["lengths"])
    for row, n in enumerate(fwd["lengths"].tolist()):
        assert torch.equal(bwd["tokens"][row, :n], fwd["tokens"][row, :n].flip(0))


@pytest.mark.parametrize("cutoffs", [(8, 40), ()])
def test_target_nats_are_the_cross_entropy_of_the_full_distribution(cutoffs):
    torch.manual_seed(0)
    net = WordLM(60, cutoffs=cutoffs, num_layers=2, **NET).eval()
    x, y = torch.randint(0, 60, (2, 2, 5))
    nats, (h, c) = net.target_nats(x, y)
    logprobs, _ = net(x)
    assert torch.allclose(logprobs.exp().sum(-1), torch.ones(2, 5), atol=1e-5)
    torch.testing.assert_close(nats, -logprobs.gather(-1, y[..., None]).flatten())
    assert h.shape == c.shape == (2, 2, 16) and net.sample(x[:, :2], 3).shape == (2, 3)


def test_language_model_loss_falls(pretrained):
    _, before, after = pretrained
    assert after < 0.5 * before  # held-out perplexity on the validation reviews


@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_loads_the_language_model_weights(pretrained, tmp_path, bidirectional):
    path = pretrained[0]
    lm = torch.load(path, weights_only=True)["state_dict"]
    dm = _classifier_data(tmp_path)
    net = RNNClassifier(dm.vocab_size, bidirectional=bidirectional, pooling="max", **NET)
    reverse = net.encoder.rnn.weight_hh_l0_reverse.clone() if bidirectional else None
    task = ClassificationTask(net, pretrained=str(path))
    _trainer(tmp_path, max_epochs=1, limit_train_batches=0, limit_val_batches=0).fit(task, dm)
    for name, value in net.state_dict().items():
        if name.startswith(("embedding.", "encoder.")) and not name.endswith("_reverse"):
            assert torch.equal(value, lm[f"net.{name}"]), name
    if bidirectional:  # the backward direction has no language model: it keeps its init
        assert torch.equal(net.encoder.rnn.weight_hh_l0_reverse, reverse)
    only = RNNClassifier(dm.vocab_size, **NET)
    encoder = only.encoder.rnn.weight_ih_l0.clone()
    assert load_language_model(only, path, ["embedding"]) == ["embedding.weight"]
    assert torch.equal(only.encoder.rnn.weight_ih_l0, encoder)


def test_mismatched_classifiers_raise_one_line_errors(pretrained, tmp_path):
    path = pretrained[0]
    vocab = _classifier_data(tmp_path).tokenizer.get_vocab()
    wider = RNNClassifier(len(vocab), embedding_dim=8, hidden_size=32)
    with pytest.raises(SeqLabError, match=r"weight_ih_l0 has shape \(64, 8\).*\(128, 8\)"):
        load_language_model(wider, path, vocab=vocab)
    deeper = RNNClassifier(len(vocab), num_layers=2, **NET)
    with pytest.raises(SeqLabError, match="has no 'encoder.rnn.weight_ih_l1'.*'num_layers': 1"):
        load_language_model(deeper, path)
    with pytest.raises(SeqLabError, match="another vocabulary"):
        load_language_model(wider, path, vocab={**vocab, "zeppelin": len(vocab)})
    with pytest.raises(SeqLabError, match="not found"):
        load_language_model(wider, tmp_path / "missing.ckpt")


def test_gradual_unfreezing_freezes_what_it_says():
    net = RNNClassifier(30, num_layers=2, freeze_embeddings=True, **NET)
    groups = net.layer_groups()  # embedding, layer 0, layer 1, head
    assert sum(len(g) for g in groups) == len(list(net.parameters()))
    callback = GradualUnfreezing(every=2)
    schedule = {0: [0, 0, 0, 1], 2: [0, 0, 1, 1], 4: [0, 1, 1, 1], 9: [0, 1, 1, 1]}
    for epoch, trains in schedule.items():  # the embedding stays frozen: frozen at the start
        callback.apply(SimpleNamespace(current_epoch=epoch), SimpleNamespace(net=net))
        assert [all(p.requires_grad for p in g) for g in groups] == list(map(bool, trains))
        assert [any(p.requires_grad for p in g) for g in groups] == list(map(bool, trains))


def test_frozen_layers_stay_unchanged_in_training(tmp_path):
    torch.manual_seed(0)
    dm = _classifier_data(tmp_path)
    net = RNNClassifier(dm.vocab_size, **NET)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    task = ClassificationTask(net, lr_decay=2.6)
    callbacks = [GradualUnfreezing(every=1), SlantedTriangularLR()]
    _trainer(tmp_path, max_epochs=1, callbacks=callbacks).fit(task, dm)
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"head.1.weight", "head.1.bias"}  # epoch 0 trains the top group only


def test_discriminative_and_slanted_triangular_learning_rates():
    net = RNNClassifier(30, num_layers=2, **NET)
    opt = configure(
        net, lambda p: torch.optim.SGD(p, lr=0.1), None, "val/loss", "step",
        discriminative_groups(net.layer_groups(), 2.0),
    )["optimizer"]  # fmt: skip
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs == pytest.approx([0.1 / 8, 0.1 / 4, 0.1 / 2, 0.1])
    stlr = SlantedTriangularLR(cut_frac=0.1, ratio=32)
    stlr.total_steps = 101
    factors = [stlr.factor(s) for s in range(101)]
    assert factors[0] == pytest.approx(1 / 32) and factors[10] == pytest.approx(1.0)
    assert factors[100] == pytest.approx(1 / 32) and max(factors) == factors[10]
    assert all(a < b for a, b in zip(factors[:10], factors[1:11], strict=True))
    assert all(a > b for a, b in zip(factors[10:100], factors[11:], strict=True))


def test_figures_reach_tensorboard(tmp_path):
    torch.manual_seed(0)
    dm = _classifier_data(tmp_path)
    task = ClassificationTask(RNNClassifier(dm.vocab_size, pooling="attention", **NET))
    logger = TensorBoardLogger(str(tmp_path), name="figures")
    trainer = _trainer(tmp_path, logger=logger, callbacks=[ClassifierFigures(num_reviews=2)])
    trainer.validate(task, dm, verbose=False)
    trainer.test(task, dm, verbose=False)
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    tags = set(events.Tags()["images"])
    assert {"val/confusion_matrix", "val/attention", "test/confusion_matrix"} <= tags


def test_two_stage_recipe_through_the_cli_in_both_directions_then_ensemble(
    tmp_path, monkeypatch, capsys
):
    """configs/imdb_lm.yaml, then configs/imdb_finetune.yaml starting from its newest run; the
    same backward; then python -m src.ensemble on the two classifiers."""
    monkeypatch.chdir(tmp_path)
    data = {**SETTINGS, "cache_dir": str(tmp_path / "cache"), "batch_size": 4}
    sizes = {"embedding_dim": 8, "hidden_size": 16}
    logs, runs = tmp_path / "logs", {}
    for direction in ("", "_backward"):
        for stage, extra in [("imdb_lm", {"unsup_path": None, "bptt": 8}), ("imdb_finetune", {})]:
            name = stage + direction
            cfg = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
            cfg["data"]["init_args"].update(data, **extra)
            cfg["model"]["init_args"]["net"]["init_args"].update(sizes)
            cfg["trainer"].update(max_epochs=1, limit_train_batches=2, enable_progress_bar=False)
            cfg["trainer"].update(default_root_dir=str(logs))
            (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
            pretrained = ["--model.init_args.pretrained", str(logs / f"imdb_lm{direction}")]
            args = ["fit", "--config", str(tmp_path / f"{name}.yaml")]
            runs[name] = cli_main(args + (pretrained if stage == "imdb_finetune" else []))
    last = "version_*/checkpoints/last.ckpt"
    lm_ckpt = next((logs / "imdb_lm").glob(last))
    assert "tokenizer" in torch.load(lm_ckpt, weights_only=True)
    assert "val/ppl" in runs["imdb_lm"].trainer.callback_metrics
    assert runs["imdb_lm_backward"].datamodule.reverse
    assert runs["imdb_finetune_backward"].datamodule.reverse
    names = ("imdb_finetune", "imdb_finetune_backward")
    members = [next((logs / n).glob(last)) for n in names]
    folders = [f"--ckpt_path={logs / n}" for n in names]  # each run's best checkpoint
    result = ensemble_main(folders + ["--split", "val"])
    assert [Path(m["ckpt_path"]).name for m in result["members"]] == ["epoch00-step2.ckpt"] * 2
    for member, name in zip(result["members"], names, strict=True):
        # each member as its own validation measured it, the backward one on reversed reviews
        acc = float(runs[name].trainer.callback_metrics["val/acc"])
        assert member["acc"] == pytest.approx(acc, abs=1e-6)
    assert f"ensemble of 2 on {result['reviews']} val reviews" in capsys.readouterr().out
    backward = restore(members[1])  # new text reaches the backward model reversed too
    texts = ["a wonderful film", "not good at all , sadly"]
    (tmp_path / "new.txt").write_text("\n".join(texts) + "\n")
    rows = list(predictor_for(backward, 8).predict(str(tmp_path / "new.txt")))
    ids, offsets = encode_ids(backward.datamodule.tokenizer, texts)
    for text_ids, row in zip(np.split(ids, offsets[1:-1]), rows, strict=True):
        tokens = torch.as_tensor(text_ids[::-1].copy()).long()[None]
        with torch.inference_mode():
            probs = backward.task(tokens, torch.tensor([len(text_ids)])).softmax(-1)[0]
        assert row["prob_positive"] == pytest.approx(float(probs[1]), abs=1e-6)
    other_split = runs["imdb_finetune"].datamodule.hparams.seed + 1
    cfg = yaml.safe_load((tmp_path / "imdb_finetune.yaml").read_text())
    cfg["data"]["init_args"]["seed"] = other_split  # another validation split
    cfg["model"]["init_args"]["pretrained"] = None
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(cfg))
    cli_main(["fit", "--config", str(tmp_path / "other.yaml")])
    other = next((logs / "other").glob(last))
    with pytest.raises(SystemExit) as exit_info:
        ensemble_main(["--ckpt_path", str(members[0]), "--ckpt_path", str(other), "--split", "val"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: ")
        and "another split" in err
        and "seed" in err
        and err.count("\n") == 1
    )
