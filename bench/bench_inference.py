"""Inference speed of the IMDB BiLSTM classifier: single-review latency and batch throughput.

    python -m bench.bench_inference [--quick]

The network of ``configs/imdb_bilstm.yaml`` (embedding 128, BiLSTM 1 x 128, max pooling, 30k
vocabulary) in eval mode under ``torch.inference_mode``, on IMDB-like review lengths: one review
at a time (p50 / p99 latency) and length-bucketed batches of 256 (reviews/s, real tokens/s).
"""

import argparse
import json
import statistics
import time

import torch

from bench.bench_rnn import imdb_like_lengths
from bench.common import machine
from src.data.sampler import BucketBatchSampler
from src.models.classifier import RNNClassifier


def _tokens(lengths: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(2, 30000, (len(lengths), int(lengths.max())), generator=g)
    return tokens.masked_fill(torch.arange(tokens.size(1)) >= lengths[:, None], 0)  # padding 0


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run(quick: bool = False) -> dict:
    torch.manual_seed(0)
    net = RNNClassifier(30000, 2, 128, 128, "lstm", bidirectional=True, pooling="max").eval()
    n_single, n_pool = (50, 1024) if quick else (300, 4096)
    lengths = imdb_like_lengths(n_single, seed=2).clamp(max=400)  # the config's max_len
    latencies = []
    with torch.inference_mode():
        for i, length in enumerate([int(n) for n in lengths[:5]] + lengths.tolist()):
            tokens = _tokens(torch.tensor([length]), i)
            start = time.perf_counter()
            net(tokens, torch.tensor([length]))
            if i >= 5:  # the first five warm the kernels up
                latencies.append(time.perf_counter() - start)
        pool = imdb_like_lengths(n_pool, seed=3).clamp(max=400)
        sampler = BucketBatchSampler(pool.tolist(), batch_size=256, shuffle=True, seed=0)
        batches = [(pool[b], _tokens(pool[b], i)) for i, b in enumerate(sampler)]
        net(batches[0][1], batches[0][0])  # warm-up
        start = time.perf_counter()
        for batch_lengths, tokens in batches:
            net(tokens, batch_lengths)
        elapsed = time.perf_counter() - start
    return {
        "machine": machine(),
        "single_review": {
            "reviews": len(latencies),
            "median_length": int(lengths.median()),
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * _percentile(latencies, 99),
        },
        "batched": {
            "batch_size": 256,
            "reviews": int(len(pool)),
            "reviews_per_s": len(pool) / elapsed,
            "real_tokens_per_s": int(pool.sum()) / elapsed,
        },
    }


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--quick", action="store_true")
    print(json.dumps(run(cli.parse_args().quick), indent=2))
