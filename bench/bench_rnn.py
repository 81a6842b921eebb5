"""Variable-length recurrent training speed: RecurrentEncoder vs PyTorch packed vs padding.

    python -m bench.bench_rnn [--quick]

IMDB-like lengths (log-normal, median ~230, clamped 16..512), batch 64, BiLSTM 2 x 256 on
128-wide inputs: forward + backward times (the variants run in turn, round by round, and the
speed-up is the median of the rounds' ratios), exactness against the packed result, and GFLOP/s
on real tokens next to a large fp32 matmul measured in the same run (for the bucketed training
loop, around each of its timed epochs). That loop runs twice: in this process (with
:func:`src.runtime.retain_freed_memory`, as ``bench.run`` and the CLI set it) and in a fresh
process with glibc's default allocator.
"""

import argparse
import json
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bench.common import (
    lstm_flops_per_token,
    machine,
    matmul_gflops,
    ratios,
    spread,
    timed_rounds,
)
from src.data.sampler import BucketBatchSampler
from src.models.recurrent.encoder import RecurrentEncoder
from src.runtime import flush_denormals


def imdb_like_lengths(n: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.exp(torch.randn(n, generator=g) * 0.7 + 5.44) * scale
    return lengths.round().clamp(16 * scale, 512 * scale).long()


def _batch(lengths: torch.Tensor, input_size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), int(lengths.max()), input_size, generator=g)
    return x * (torch.arange(x.size(1)) < lengths[:, None]).unsqueeze(-1)  # zero padding


def _fwd_bwd(run) -> None:
    out = run()
    out.pow(2).mean().backward()


def compare_one_batch(cell: str, bidirectional: bool, lengths, args, with_packed: bool) -> dict:
    """Packed vs RecurrentEncoder vs dense padding on one batch, forward + backward."""
    enc = RecurrentEncoder(
        args.input_size, args.hidden_size, cell, args.num_layers, 0.0, bidirectional
    )
    x = _batch(lengths, args.input_size)
    rnn: nn.Module = enc.rnn
    results: dict = {"cell": cell, "bidirectional": bidirectional, "batch": len(lengths)}

    def packed():
        p = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(rnn(p)[0], batch_first=True, total_length=x.size(1))[0]

    def with_c_n():  # exact final cell state too: outputs and c_n both feed the loss
        out, (_, c_n) = enc(x, lengths)
        return torch.cat([out.flatten(), c_n.flatten()])

    variants = {
        "encoder": lambda: enc(x, lengths, need_cell_state=False)[0],
        "dense_padded": lambda: rnn(x)[0],
    }
    if cell == "lstm":
        variants["encoder_with_c_n"] = with_c_n
    if with_packed:
        variants["packed"] = packed
    times = timed_rounds(
        {name: lambda run=run: _fwd_bwd(run) for name, run in variants.items()}, args.repeats
    )
    results.update({name: spread(t) for name, t in times.items()})
    if with_packed:
        with torch.no_grad():
            out, state = enc(x, lengths)
            ref, ref_state = rnn(
                pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            )
            ref = pad_packed_sequence(ref, batch_first=True, total_length=x.size(1))[0]
            got = [out, *(state if isinstance(state, tuple) else (state,))]
            want = [ref, *(ref_state if isinstance(ref_state, tuple) else (ref_state,))]
            results["max_abs_diff"] = max(
                float((a - b).abs().max()) for a, b in zip(got, want, strict=True)
            )
        speedup = ratios(times["packed"], times["encoder"])  # round by round
        results["speedup_vs_packed"] = speedup["median"]
        results["speedup_vs_packed_range"] = speedup["range"]
    dirs = 2 if bidirectional else 1
    flops = 3 * lstm_flops_per_token(args.input_size, args.hidden_size, args.num_layers, dirs)
    flops = flops * (3 / 4 if cell == "gru" else 1.0) * int(lengths.sum())
    results["real_tokens"] = int(lengths.sum())
    results["encoder_gflops"] = flops / results["encoder"]["median_s"] / 1e9
    return results


def bucketed_training(args, lengths_pool: torch.Tensor, n_batches: int) -> dict:
    """BiLSTM forward + backward + Adam step over length-bucketed batches (the training loop).

    A shared machine's speed drifts within minutes, so the matmul peak is measured
    around every timed epoch (before and after, averaged) and each epoch's share of it is its
    own ratio; the report gives their median and range.
    """
    enc = RecurrentEncoder(args.input_size, args.hidden_size, "lstm", args.num_layers, 0.0, True)
    opt = torch.optim.Adam(enc.parameters(), lr=1e-3)
    sampler = BucketBatchSampler(lengths_pool.tolist(), batch_size=64, shuffle=True, seed=0)
    batches = [lengths_pool[b] for b, _ in zip(sampler, range(n_batches), strict=False)]
    xs = [_batch(lengths, args.input_size, i) for i, lengths in enumerate(batches)]

    def epoch(exact: bool) -> float:
        start = time.perf_counter()
        for x, lengths in zip(xs, batches, strict=True):
            opt.zero_grad()
            out = enc(x, lengths, need_cell_state=False)[0] if exact else enc.rnn(x)[0]
            out.pow(2).mean().backward()
            opt.step()
        return time.perf_counter() - start

    tokens = int(sum(int(b.sum()) for b in batches))
    padded = int(sum(len(b) * int(b.max()) for b in batches))
    flops = 3 * lstm_flops_per_token(args.input_size, args.hidden_size, args.num_layers, 2) * tokens
    epoch(True), epoch(False)  # warm-up
    peaks, exact, dense = [matmul_gflops(args.peak_size, 3)["peak"]], [], []
    for _ in range(args.repeats):
        exact.append(epoch(True))
        dense.append(epoch(False))
        peaks.append(matmul_gflops(args.peak_size, 3)["peak"])
    # each exact epoch against the mean of the peaks measured just before and after its pair
    around = [(a + b) / 2 for a, b in zip(peaks, peaks[1:], strict=False)]
    shares = [flops / t / 1e9 / p for t, p in zip(exact, around, strict=True)]
    exact_s = statistics.median(exact)
    return {
        "batches": n_batches,
        "real_token_share": tokens / padded,
        "encoder": spread(exact),
        "dense_padded": spread(dense),
        "encoder_gflops": flops / exact_s / 1e9,
        "real_tokens_per_s": tokens / exact_s,
        "samples_per_s": 64 * n_batches / exact_s,
        "peaks_gflops": peaks,
        "peak_fraction": statistics.median(shares),
        "peak_fraction_range": [min(shares), max(shares)],
    }


def run(quick: bool = False) -> dict:
    parser = argparse.Namespace(  # quick: a smoke run, a tenth of the work per step
        input_size=128,
        hidden_size=128 if quick else 256,
        num_layers=2,
        repeats=2 if quick else 3,
        peak_size=2048 if quick else 4096,
    )
    scale = 0.1 if quick else 1.0
    matmul = matmul_gflops(parser.peak_size)  # on CPU, where this benchmark runs
    peak = matmul["peak"]
    lengths = imdb_like_lengths(64, scale=scale)
    report = {"machine": machine(), "matmul_gflops": matmul, "quick": quick}
    report["lengths"] = {"median": int(lengths.median()), "max": int(lengths.max()), "scale": scale}
    cases = [("lstm", True)] if quick else [("lstm", True), ("lstm", False), ("gru", True)]
    report["one_batch"] = [
        compare_one_batch(cell, bi, lengths, parser, with_packed=(cell, bi) == ("lstm", True))
        for cell, bi in cases
    ]
    pool = imdb_like_lengths(2048 if quick else 25000, seed=1, scale=scale)
    n_batches = 2 if quick else 8
    report["bucketed"] = bucketed_training(parser, pool, n_batches)
    # the same loop in a fresh process with glibc's default allocator (no retain_freed_memory;
    # subnormals flushed as here)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, initializer=flush_denormals) as child:
        default = child.submit(bucketed_training, parser, pool, n_batches).result()
    report["bucketed_default_malloc"] = default
    for row in report["one_batch"]:
        row["peak_fraction"] = row["encoder_gflops"] / peak
    return report


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--quick", action="store_true")
    print(json.dumps(run(cli.parse_args().quick), indent=2))
