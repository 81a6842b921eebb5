"""Hand-written LSTM / GRU (eager / compiled) vs ``nn.LSTM`` / ``nn.GRU``, forward + backward.

    python -m bench.bench_cells [--quick]

Full size: batch 64, 100 steps, 128 input features, 256 hidden units, one layer, float32 on the
default device and torch's default threads. ``quick`` uses 16 x 30 x 32 -> 64 on one thread (a
smoke test, seconds: with two threads on a busy 2-core machine every tiny matmul waits for the
second OpenMP thread). The compiled variant's first call (the compilation) is reported apart
from its timed runs.
"""

import argparse
import json
import time

import torch
from torch import nn

from bench.common import lstm_flops_per_token, machine, ratios, spread, timed_rounds
from src.models.recurrent.handwritten import HandwrittenRNN


def run(quick: bool = False, threads: int | None = None) -> dict:
    """Times the three implementations on one batch; returns medians, ratios and max diffs.

    Args:
        quick: Small shapes, 3 repeats.
        threads: Intra-op threads for the run; ``None``: 1 when ``quick``, else torch's default.
    """
    previous = torch.get_num_threads()
    threads = threads or (1 if quick else previous)
    torch.set_num_threads(threads)
    try:
        return _run(quick)
    finally:
        torch.set_num_threads(previous)


def _run(quick: bool) -> dict:
    n, length, input_size, hidden = (16, 30, 32, 64) if quick else (64, 100, 128, 256)
    report = {"machine": machine(), "quick": quick}
    report["shape"] = {"N": n, "L": length, "H_in": input_size, "H": hidden}
    report.update(_compare("lstm", n, length, input_size, hidden, 3 if quick else 5))
    report["gru"] = _compare("gru", n, length, input_size, hidden, 3 if quick else 5)
    return report


def _compare(cell: str, n: int, length: int, input_size: int, hidden: int, repeats: int) -> dict:
    """``HandwrittenRNN(cell)`` eager and compiled against ``nn.LSTM`` / ``nn.GRU``."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    ref = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](input_size, hidden, batch_first=True).to(device)
    hand = HandwrittenRNN(input_size, hidden, cell).to(device)
    hand.load_state_dict(ref.state_dict())
    x = torch.randn(n, length, input_size, device=device)

    def step(module: nn.Module) -> torch.Tensor:
        out = module(x)[0]
        out.pow(2).mean().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        return out.detach()

    outputs, report, base_name = {}, {}, f"nn_{cell}"
    start = time.perf_counter()
    hand.compiled = True
    outputs["compiled"] = step(hand)  # compiles (or warns and falls back to eager)
    report["compile_s"] = time.perf_counter() - start
    variants = {
        base_name: (ref, False),
        "handwritten_eager": (hand, False),
        "handwritten_compiled": (hand, True),
    }

    def run(module: nn.Module, compiled: bool) -> torch.Tensor:
        hand.compiled = compiled
        return step(module)

    for name, (module, compiled) in variants.items():
        outputs.setdefault(name, run(module, compiled))
    times = timed_rounds(  # in turn, round by round: the ratios cancel the machine's drift
        {name: lambda v=v: run(*v) for name, v in variants.items()}, repeats, warmup=0
    )
    flops = 3 * lstm_flops_per_token(input_size, hidden, 1, 1) * n * length
    flops *= 3 / 4 if cell == "gru" else 1
    for name in variants:
        report[name] = spread(times[name])
        report[name]["gflops"] = flops / report[name]["median_s"] / 1e9
        report[name][f"time_vs_{base_name}"] = ratios(times[name], times[base_name])["median"]
    report[f"max_abs_diff_vs_{base_name}"] = {
        name: float((outputs[name] - outputs[base_name]).abs().max())
        for name in ("handwritten_eager", "compiled")
    }
    return report


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--quick", action="store_true")
    print(json.dumps(run(cli.parse_args().quick), indent=2))
