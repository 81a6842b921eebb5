"""Tests for the IMDB pipeline: sources, cache, collate, dataloaders and errors on tiny fixtures."""

import pickle
import shutil
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from src.data.collate import TokenDataset, pad_collate
from src.data.imdb import datamodule as imdb
from src.data.imdb.datamodule import IMDBDataModule
from src.data.text import UNK_ID

FIXTURES = Path(__file__).parent / "fixtures"


def make_dm(tmp_path, data_dir=FIXTURES / "imdb", **kwargs) -> IMDBDataModule:
    kwargs = {"min_freq": 1, "batch_size": 8, "hub_name": "", **kwargs}
    return IMDBDataModule(data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"), **kwargs)


def write_csv(path: Path, rows) -> None:
    lines = ["text,label"] + [f'"{t}",{y}' for t, y in rows]
    path.write_text("\n".join(lines) + "\n")


def test_end_to_end_on_fixtures(tmp_path):
    dm = make_dm(tmp_path)
    dm.prepare_data()
    dm.setup("fit")
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 54, "val": 6, "test": 44}
    assert dm.num_classes == 2 and dm.pad_id == 0 and dm.vectors is None
    assert 30 < dm.vocab_size <= 30000
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"tokens", "lengths", "labels"}
    n, length = batch["tokens"].shape
    assert n == 8 and batch["tokens"].dtype == torch.long and length == batch["lengths"].max()
    assert set(batch["labels"].tolist()) <= {0, 1}
    for row, ln in zip(batch["tokens"], batch["lengths"], strict=True):
        assert (row[:ln] != 0).all() and (row[ln:] == 0).all()
    assert sum(len(b["labels"]) for b in dm.val_dataloader()) == 6
    assert sum(len(b["labels"]) for b in dm.test_dataloader()) == 44
    plain = make_dm(tmp_path, bucket=False, val_size=0.0)
    assert len(plain.val_dataloader()) == 0  # no validation split: Lightning skips validation
    epoch0 = [b["labels"].tolist() for b in plain.train_dataloader()]
    assert sorted(sum(epoch0, [])) == sorted(plain.datasets["train"].labels.tolist())


def test_vocabulary_is_built_on_the_training_part_only(tmp_path):
    dm = make_dm(tmp_path)
    dm.setup()
    assert dm.tokenizer.token_to_id("zeppelin") is None  # only in test.csv
    assert UNK_ID in dm.datasets["test"].ids.tolist()
    rows = [(f"good film word{i}", i % 2) for i in range(40)]  # every row has its own word
    write_csv(tmp_path / "train.csv", rows)
    write_csv(tmp_path / "test.csv", rows[:4])
    dm = make_dm(tmp_path, data_dir=tmp_path, val_size=0.25)
    dm.setup()
    val_rows = np.load(dm.cache_path / "val_rows.npy")
    assert len(val_rows) == 10
    vocab = dm.tokenizer.get_vocab()
    for i in range(40):
        assert (f"word{i}" in vocab) == (i not in val_rows)
    assert dm.datasets["val"].ids.tolist().count(UNK_ID) == 10


def test_truncation_to_max_len(tmp_path):
    dm = make_dm(tmp_path, max_len=5)
    dm.setup()
    lengths = np.concatenate([dm.datasets[s].lengths for s in ("train", "val", "test")])
    assert lengths.max() == 5 and lengths.min() >= 1
    assert dm.encode_texts(["one two three four five six seven"])["lengths"].tolist() == [5]


def test_cache_is_reused_and_keyed_on_settings(tmp_path, monkeypatch):
    dm = make_dm(tmp_path)
    dm.prepare_data()
    token_file = dm.cache_path / "tokenizer.json"
    mtime = token_file.stat().st_mtime_ns

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(imdb, "build_cache", no_rebuild)
    again = make_dm(tmp_path)
    again.prepare_data()
    again.setup("fit")
    assert again.cache_path == dm.cache_path and token_file.stat().st_mtime_ns == mtime
    assert again.vocab_size == dm.vocab_size
    assert make_dm(tmp_path, max_len=7).cache_path != dm.cache_path
    assert make_dm(tmp_path, tokenizer="bpe").cache_path != dm.cache_path
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [dm.cache_path.name]  # no temp


def test_pad_collate_shapes_padding_and_errors():
    examples = [
        {"tokens": torch.tensor([5, 6, 7]), "label": 1},
        {"tokens": np.array([9]), "label": 0},
    ]
    batch = pad_collate(examples)
    assert batch["tokens"].tolist() == [[5, 6, 7], [9, 0, 0]]
    assert batch["lengths"].tolist() == [3, 1] and batch["labels"].tolist() == [1, 0]
    assert "labels" not in pad_collate([{"tokens": [4, 2]}])
    with pytest.raises(ValueError, match="empty review after tokenisation at index 7"):
        pad_collate([examples[0], {"tokens": torch.tensor([], dtype=torch.long), "index": 7}])
    ds = TokenDataset(np.array([3, 4, 5], dtype=np.int32), np.array([0, 2, 2, 3]))
    with pytest.raises(ValueError, match="at index 1"):
        pad_collate([ds[0], ds[1], ds[2]])


def test_acl_imdb_tree(tmp_path):
    root = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            (root / split / label).mkdir(parents=True)
            for i in (10, 2, 0, 1):  # numeric order, not 0, 1, 10, 2
                word = "great" if label == "pos" else "awful"
                text = f"{word}<br /><br />" + " x" * i  # 1 + i tokens
                (root / split / label / f"{i}_{7 if label == 'pos' else 2}.txt").write_text(text)
    for data_dir in (tmp_path, root):  # data_dir holds aclImdb/ or is the tree itself
        dm = make_dm(tmp_path, data_dir=data_dir, val_size=0.25)
        dm.setup()
        test = dm.datasets["test"]
        assert test.labels.tolist() == [0] * 4 + [1] * 4  # neg first, then pos
        assert test.lengths.tolist() == [1, 2, 3, 11] * 2  # by numeric id 0, 1, 2, 10
        assert len(dm.datasets["train"]) == 6 and len(dm.datasets["val"]) == 2
    (root / "test" / "neg" / "3_1.txt").write_bytes(b"caf\xe9 au lait")
    with pytest.raises(ValueError, match=r"3_1.txt is not valid UTF-8"):
        make_dm(tmp_path / "other", data_dir=root).prepare_data()


def test_missing_data_error_names_the_fix(tmp_path, monkeypatch):
    import datasets

    def offline(name, *args, **kwargs):
        raise ConnectionError(f"Couldn't reach {name!r} on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    dm = make_dm(tmp_path, data_dir=tmp_path / "nowhere", hub_name="stanfordnlp/imdb")
    with pytest.raises(FileNotFoundError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "nowhere" in message and "--data.data_dir" in message and "stanfordnlp/imdb" in message
    assert "\n" not in message
    shutil.copy(FIXTURES / "imdb" / "train.csv", tmp_path / "train.csv")
    with pytest.raises(FileNotFoundError, match="no test.csv"):
        make_dm(tmp_path, data_dir=tmp_path).prepare_data()


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([("fine", 1), ("bad", 3)], "label 3 at row 1 is not 0 or 1"),
        (
            [("fine", 1), ("<br /><br />", 0)],
            "empty review after tokenisation at index 1 of the train split",
        ),
    ],
)
def test_bad_input_errors(tmp_path, rows, match):
    write_csv(tmp_path / "train.csv", rows + [("fine", 1), ("poor", 0)] * 4)
    write_csv(tmp_path / "test.csv", [("fine", 1)])
    with pytest.raises(ValueError, match=match):
        make_dm(tmp_path, data_dir=tmp_path).prepare_data()


def test_predict_encode_and_vectors(tmp_path):
    dm = make_dm(tmp_path, vectors_path=str(FIXTURES / "glove.txt"), eval_batch_size=16)
    dm.setup("predict")
    batches = list(dm.predict_dataloader())
    assert all("labels" not in b for b in batches)
    test = dm.datasets["test"]
    first = test.ids[test.offsets[0] : test.offsets[1]].long()
    assert torch.equal(batches[0]["tokens"][0, : len(first)], first)  # file order is kept
    assert sum(len(b["lengths"]) for b in batches) == 44
    texts = ["A wonderful film.<br /><br />I loved this movie.", "Awful!"]
    enc = dm.encode_texts(texts)
    assert enc["tokens"].shape == (2, int(enc["lengths"].max())) and "labels" not in enc
    assert enc["lengths"].tolist() == [9, 2]
    with pytest.raises(ValueError, match="empty review after tokenisation at index 1"):
        dm.encode_texts(["fine", "  "])
    vectors = dm.vectors
    assert vectors.shape == (dm.vocab_size, 4) and not vectors[0].any()
    movie = dm.tokenizer.token_to_id("movie")
    torch.testing.assert_close(vectors[movie], torch.tensor([0.5, -0.1, 0.0, 0.25]))
    assert pickle.loads(pickle.dumps(dm)).vocab_size == dm.vocab_size  # ddp_spawn-safe


class TinyClassifier(pl.LightningModule):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.emb = torch.nn.EmbeddingBag(vocab_size, 4, padding_idx=0)
        self.out = torch.nn.Linear(4, 2)

    def forward(self, batch):
        return self.out(self.emb(batch["tokens"]))

    def training_step(self, batch, batch_idx):
        return torch.nn.functional.cross_entropy(self(batch), batch["labels"])

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", torch.nn.functional.cross_entropy(self(batch), batch["labels"]))

    def predict_step(self, batch, batch_idx):
        return self(batch).argmax(-1)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_fit_and_predict(tmp_path):
    dm = make_dm(tmp_path)
    model = TinyClassifier(dm.vocab_size)  # read before prepare_data, as LightningCLI links it
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    assert trainer.train_dataloader.batch_sampler.epoch == 1  # Lightning advanced the epoch
    predictions = trainer.predict(model, datamodule=dm)
    assert sum(len(p) for p in predictions) == 44
