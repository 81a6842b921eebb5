"""Shared benchmark helpers: timing with spread, the machine's matmul reference, memory."""

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable

import torch
import torch.utils.mkldnn


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> dict:
    """Median / min / max seconds of ``fn`` over ``repeats`` runs after ``warmup`` runs."""
    return spread(timed_rounds({"fn": fn}, repeats, warmup)["fn"])


def timed_rounds(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds of every function in ``fns`` over ``repeats`` rounds, each round running them once
    in turn, after ``warmup`` such rounds.

    A shared machine's speed drifts within minutes; run in turn, every variant sees the same
    drift, and the ratio of two variants taken round by round (:func:`ratios`) cancels it.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def ratios(numerator: list[float], denominator: list[float]) -> dict:
    """Median and range of the round-by-round ratios of two :func:`timed_rounds` series."""
    values = [a / b for a, b in zip(numerator, denominator, strict=True)]
    return {"median": statistics.median(values), "range": [min(values), max(values)]}


def spread(times: list[float]) -> dict:
    """Median / min / max seconds and the count of ``times``."""
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "n": len(times),
    }


def matmul_gflops(size: int = 4096, repeats: int = 5, device: str = "cpu") -> dict[str, float]:
    """fp32 GFLOP/s of a large square matmul on ``device``: its practical peak.

    On CPU two kernels are measured, ``torch.matmul`` (MKL/OpenBLAS) and oneDNN's linear (the
    library behind PyTorch's CPU LSTM); on AMD CPUs MKL may not use AVX-512 and oneDNN can be
    much the faster. ``peak`` is the faster of the two, the conservative reference for ratios.
    """
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)

    def step() -> None:
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()

    flops = 2 * size**3
    result = {"torch_matmul": flops / timed(step, repeats)["median_s"] / 1e9}
    if device == "cpu" and torch.backends.mkldnn.is_available():
        linear = torch.nn.Linear(size, size, bias=False)
        onednn = torch.utils.mkldnn.to_mkldnn(linear)
        x = a.to_mkldnn()
        result["onednn_linear"] = flops / timed(lambda: onednn(x), repeats)["median_s"] / 1e9
    result["peak"] = max(result.values())
    return result


def lstm_flops_per_token(
    input_size: int, hidden_size: int, num_layers: int, directions: int
) -> int:
    """Forward FLOPs per token of a stacked LSTM (gate matmuls only; GRU is 3/4 of it)."""
    total, width = 0, input_size
    for _ in range(num_layers):
        total += directions * 2 * 4 * hidden_size * (width + hidden_size)
        width = directions * hidden_size
    return total


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict:
    """CPU model, core count and library versions for the report."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info
