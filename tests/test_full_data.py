"""Slow checks on the full IMDB copy at data/imdb (`make test-slow`; not part of `make test`)."""

from pathlib import Path

import pytest

from src.data.imdb.datamodule import IMDBDataModule

DATA = Path(__file__).resolve().parents[1] / "data" / "imdb"


@pytest.mark.slow
def test_full_imdb_prepares_with_the_documented_splits(tmp_path):
    assert DATA.exists(), f"put the IMDB copy at {DATA} (see README, Data)"
    dm = IMDBDataModule(str(DATA), cache_dir=str(tmp_path / "cache"))
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    sizes = {split: len(ds) for split, ds in dm.datasets.items()}
    assert sizes == {"train": 22500, "val": 2500, "test": 25000}
    assert dm.vocab_size == 30000
    batch = next(iter(dm.train_dataloader()))
    assert batch["tokens"].shape[0] == 64 and int(batch["lengths"].max()) <= 400
