"""IMDB data preparation: tokenise + cache time, cached load time, bucketing real-token share.

    python -m bench.bench_data [--data-dir data/imdb] [--quick]

First run = read the 50k labeled reviews, carve validation, train the tokenizer, encode and
write the ``.npy`` cache into a fresh temporary ``cache_dir``; cached = a new datamodule's
``prepare_data`` + ``setup`` + ``vocab_size`` on that cache. The real-token share is real tokens
over padded ``N x L`` cells across one shuffled training epoch at batch 64, next to random
batches. ``--quick`` uses the first 2,000 reviews of each split.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import machine
from src.data.imdb.datamodule import IMDBDataModule
from src.data.imdb.source import find_source
from src.data.sampler import BucketBatchSampler


def _share(batches: list[np.ndarray], lengths: np.ndarray) -> float:
    real = sum(int(lengths[b].sum()) for b in batches)
    return real / sum(len(b) * int(lengths[b].max()) for b in batches)


def _subset(data_dir: str, out: Path, n: int) -> str:
    for split, (texts, labels) in find_source(data_dir, hub_name="").load().items():
        keep = np.random.default_rng(0).permutation(len(texts))[:n]  # both labels
        frame = pd.DataFrame({"text": [texts[i] for i in keep], "label": labels[keep]})
        frame.to_parquet(out / f"{split}.parquet")
    return str(out)


def run(data_dir: str = "data/imdb", quick: bool = False, batch_size: int = 64) -> dict:
    """Time the first (uncached) and the cached data preparation and measure bucketing."""
    with tempfile.TemporaryDirectory() as tmp:
        if quick:
            data_dir = _subset(data_dir, Path(tmp), 2000)
        cache = str(Path(tmp) / "cache")
        start = time.perf_counter()
        dm = IMDBDataModule(data_dir, cache_dir=cache, batch_size=batch_size)
        dm.prepare_data()
        dm.setup("fit")
        first = time.perf_counter() - start
        cached = []
        for _ in range(3):
            start = time.perf_counter()
            again = IMDBDataModule(data_dir, cache_dir=cache, batch_size=batch_size)
            again.prepare_data()
            again.setup("fit")
            vocab_size = again.vocab_size
            cached.append(time.perf_counter() - start)
        sizes = {split: len(ds) for split, ds in again.datasets.items()}
        train = again.datasets["train"].lengths
        val = again.datasets["val"].lengths
    bucketed = [np.array(b) for b in BucketBatchSampler(train, batch_size, seed=0)]
    val_sorted = [np.array(b) for b in BucketBatchSampler(val, batch_size, shuffle=False)]
    perm = np.random.default_rng(0).permutation(len(train))
    random_batches = [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
    return {
        "reviews": sizes,
        "vocab_size": vocab_size,
        "first_run_s": round(first, 2),
        "cached_load_s": round(statistics.median(cached), 3),
        "batch_size": batch_size,
        "real_token_share_bucketed": round(_share(bucketed, train), 4),
        "real_token_share_val_sorted": round(_share(val_sorted, val), 4),
        "real_token_share_random": round(_share(random_batches, train), 4),
        "mean_length": round(float(train.mean()), 1),
        "machine": machine(),
    }


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--data-dir", default="data/imdb")
    cli.add_argument("--quick", action="store_true")
    args = cli.parse_args()
    print(json.dumps(run(args.data_dir, args.quick), indent=2))
