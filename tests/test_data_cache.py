"""Data caches: keyed by content, written atomically, every damage detected and either repaired
or refused, never used silently; a checkpoint's vocabulary never drifts from the data's."""

import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from src.cli import main
from src.data import cache as cache_module
from src.data.cache import CacheDamagedError, CacheReader, CacheWriter, open_cache
from src.data.chars.datamodule import CharLMDataModule
from src.data.conllu.datamodule import UDPOSDataModule
from src.data.errors import DataError, DataNotFoundError
from src.data.hub import HubUnreachableError, load_hub_dataset
from src.data.imdb.datamodule import IMDBDataModule
from src.data.parallel.datamodule import ParallelTextDataModule
from src.data.vocab_check import check_checkpoint_vocabulary, check_vocabulary
from tests.test_cli import _tiny_config

FIXTURES = Path(__file__).parent / "fixtures"


def imdb(tmp: Path, data_dir: Path = FIXTURES / "imdb", **kwargs) -> IMDBDataModule:
    kwargs = {"min_freq": 1, "batch_size": 8, "hub_name": "", **kwargs}
    return IMDBDataModule(data_dir=str(data_dir), cache_dir=str(tmp / "cache"), **kwargs)


def parallel(tmp: Path) -> ParallelTextDataModule:
    return ParallelTextDataModule(
        str(FIXTURES / "multi30k"), cache_dir=str(tmp / "cache"), hub_name=""
    )


def chars(tmp: Path) -> CharLMDataModule:
    path = str(FIXTURES / "text" / "reviews.csv.gz")
    return CharLMDataModule(path, str(tmp / "cache"), None, 200, 200, 1, batch_size=4, bptt=16)


def conllu(tmp: Path) -> UDPOSDataModule:
    return UDPOSDataModule(str(FIXTURES / "ud_ewt"), cache_dir=str(tmp / "cache"), min_freq=1)


MAKERS = {"imdb": imdb, "parallel": parallel, "chars": chars, "conllu": conllu}


def files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_writer_publishes_complete_caches_only(tmp_path):
    path = tmp_path / "c" / "key"
    writer = CacheWriter(path)
    writer.save_npy("a.npy", np.arange(5))
    assert not path.exists()  # nothing visible before the commit
    writer.commit({"n": 5})
    reader = CacheReader(path)
    assert reader.read_npy("a.npy").tolist() == [0, 1, 2, 3, 4] and reader.info == {"n": 5}
    assert reader.read_npy("a.npy").flags.writeable
    assert [p.name for p in path.parent.iterdir()] == ["key"]  # no temporary left

    def failing(writer):
        writer.save_npy("b.npy", np.zeros(3))
        raise DataError("bad source")

    with pytest.raises(DataError, match="bad source"):
        open_cache(tmp_path / "c" / "other", failing)
    assert [p.name for p in path.parent.iterdir()] == ["key"]  # a failed build leaves nothing
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="cannot write the cache .*set cache_dir"):
        open_cache(tmp_path / "file" / "key", failing)


def _flip_labels(path: Path) -> None:
    labels = np.load(path / "train_labels.npy")
    np.save(path / "train_labels.npy", 1 - labels)  # a valid file with other content


DAMAGE = {
    "truncated ids": (
        "train_ids.npy",
        lambda p: (p / "train_ids.npy").write_bytes((p / "train_ids.npy").read_bytes()[:99]),
    ),
    "deleted test labels": ("test_labels.npy", lambda p: (p / "test_labels.npy").unlink()),
    "flipped labels": ("train_labels.npy", _flip_labels),
    "deleted manifest": ("manifest.json", lambda p: (p / "manifest.json").unlink()),
    "edited manifest": (
        "manifest.json",
        lambda p: (p / "manifest.json").write_text(
            (p / "manifest.json").read_text().replace('"test": 44', '"test": 45')
        ),
    ),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_cache_is_rebuilt_with_one_warning(tmp_path, caplog, case):
    name, damage = DAMAGE[case]
    dm = imdb(tmp_path)
    dm.setup()
    pristine, labels = files(dm.cache_path), dm.datasets["train"].labels.copy()
    damage(dm.cache_path)
    with pytest.raises(CacheDamagedError, match=name):
        CacheReader(dm.cache_path)
    again = imdb(tmp_path)
    with caplog.at_level(logging.WARNING, logger="src.data.cache"):
        again.setup()
    [record] = caplog.records
    assert str(dm.cache_path / name) in record.getMessage() and "\n" not in record.getMessage()
    assert files(again.cache_path) == pristine
    assert np.array_equal(again.datasets["train"].labels, labels)


def test_damage_that_cannot_be_removed_is_refused(tmp_path, monkeypatch):
    dm = imdb(tmp_path)
    dm.prepare_data()
    (dm.cache_path / "val_ids.npy").write_bytes(b"")
    rename = os.rename

    def read_only(src, dst):
        if ".damaged." in str(dst):
            raise PermissionError(13, "Permission denied")
        rename(src, dst)

    monkeypatch.setattr(cache_module.os, "rename", read_only)
    with pytest.raises(DataError, match=r"val_ids.npy does not match .* delete .* and run again"):
        imdb(tmp_path).setup()


def test_edited_source_with_same_size_and_mtime_gets_a_new_cache(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "imdb", data)
    dm = imdb(tmp_path, data_dir=data)
    dm.setup()
    train = data / "train.csv"
    stat, text = train.stat(), train.read_text()
    first = text.index(",1\n")
    train.write_text(text[:first] + ",0\n" + text[first + 3 :])  # one label, same size
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert train.stat().st_size == stat.st_size and train.stat().st_mtime_ns == stat.st_mtime_ns
    again = imdb(tmp_path, data_dir=data)
    again.setup()
    assert again.cache_path != dm.cache_path
    old = np.concatenate([dm.datasets[s].labels for s in ("train", "val")])
    new = np.concatenate([again.datasets[s].labels for s in ("train", "val")])
    assert (old != new).sum() == 1


def byte_flips(tmp_path: Path, n: int, seed: int = 0) -> int:
    """Flip one random byte of one random cache file ``n`` times (each on a pristine copy, over
    the four cached datamodules); count the flips detected and repaired to the pristine bytes."""
    rng = np.random.default_rng(seed)
    pristine = {}
    for kind, make in MAKERS.items():
        dm = make(tmp_path / kind)
        dm.prepare_data()
        pristine[kind] = (dm.cache_path, files(dm.cache_path))
    repaired = 0
    for _ in range(n):
        kind = list(MAKERS)[rng.integers(len(MAKERS))]
        path, original = pristine[kind]
        for name, data in original.items():
            (path / name).write_bytes(data)
        name = sorted(original)[rng.integers(len(original))]
        data = bytearray(original[name])
        data[rng.integers(len(data))] ^= int(rng.integers(1, 256))
        (path / name).write_bytes(bytes(data))
        try:
            CacheReader(path)
            continue  # used as it is: undetected
        except CacheDamagedError as damage:
            assert name in str(damage)
        MAKERS[kind](tmp_path / kind).prepare_data()  # rebuilds
        repaired += files(path) == original
    return repaired


def test_fifty_random_byte_flips_are_all_detected_and_repaired(tmp_path):
    assert byte_flips(tmp_path, 50) == 50


@pytest.mark.slow
def test_a_thousand_random_byte_flips(tmp_path):
    assert byte_flips(tmp_path, 1000, seed=1) == 1000


def test_vocabulary_of_another_data_seed_is_refused(tmp_path):
    trained, other = imdb(tmp_path, max_size=40, seed=1), imdb(tmp_path, max_size=40, seed=2)
    assert trained.vocab_size == other.vocab_size == 40  # same size, other tokens
    state = trained.state_dict()
    check_vocabulary(
        state["vocabulary"], imdb(tmp_path, max_size=40, seed=1).state_dict()["vocabulary"]
    )
    with pytest.raises(DataError, match="seed=1 in training, 2 now") as err:
        other.load_state_dict(state)
    assert "\n" not in str(err.value)
    checkpoint = {"IMDBDataModule": state}
    with pytest.raises(DataError, match="another vocabulary"):
        check_checkpoint_vocabulary(checkpoint, other)
    other.load_state_dict({})  # a checkpoint without a fingerprint is not checked


@pytest.mark.parametrize("kind", ["parallel", "chars", "conllu"])
def test_every_text_datamodule_fingerprints_its_vocabulary(tmp_path, kind):
    dm = MAKERS[kind](tmp_path)
    state = dm.state_dict()
    assert state["vocabulary"]["sizes"] and len(state["vocabulary"]["sha256"]) == 16
    MAKERS[kind](tmp_path).load_state_dict(state)
    state["vocabulary"]["sha256"] = "0" * 16
    with pytest.raises(DataError, match="another vocabulary"):
        MAKERS[kind](tmp_path).load_state_dict(state)


def test_unreachable_hub_fails_fast_with_the_fix(tmp_path, monkeypatch):
    import datasets

    def never(*args, **kwargs):
        raise AssertionError("datasets.load_dataset was called although the hub is unreachable")

    monkeypatch.setattr(datasets, "load_dataset", never)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE=1"):
        load_hub_dataset("stanfordnlp/imdb")
    with pytest.raises(DataNotFoundError, match="HF_HUB_OFFLINE=1.*--data.data_dir"):
        imdb(tmp_path, data_dir=tmp_path / "nowhere", hub_name="stanfordnlp/imdb").prepare_data()
    assert time.perf_counter() - start < 5
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline mode: the local HF cache, no probe
    monkeypatch.setattr(datasets, "load_dataset", lambda name: f"cached {name}")
    assert load_hub_dataset("stanfordnlp/imdb") == "cached stanfordnlp/imdb"


def test_testing_with_another_data_seed_is_refused_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["python -m src.cli"])  # the arguments are ``args`` only
    root = Path(__file__).resolve().parents[1]
    config = _tiny_config(
        root / "configs" / "imdb_lstm.yaml", tmp_path, max_epochs=1, limit_train_batches=1
    )
    data = ["--data.init_args.max_size", "40", "--data.init_args.seed", "1"]
    main(["fit", "--config", str(config), *data])
    [last] = (tmp_path / "logs").glob("imdb_lstm/version_*/checkpoints/last.ckpt")
    main(["test", "--config", str(config), *data, "--ckpt_path", str(last)])
    other_seed = [*data[:3], "2"]
    with pytest.raises(DataError, match="seed=1 in training, 2 now"):
        main(["test", "--config", str(config), *other_seed, "--ckpt_path", str(last)])
