"""Runs every benchmark; writes ``bench/results/<name>.json``, ``summary.json``, ``summary.md``.

python -m bench.run [--quick] [--data-dir data/imdb] [--imdb-ckpt <checkpoint>]
    [--only rnn,overhead,data,cells,inference,deploy,gpu]

A full run (every benchmark, full sizes) also rewrites the marked table of docs/performance.md
(``--docs ''`` leaves it alone); quick and partial runs never touch it.

Each benchmark runs in a fresh process, so its ``peak_rss_mb`` is its own; the processes are
forked from a server that has imported the packages once (spawned where fork is unavailable).
"""

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench import (
    bench_cells,
    bench_data,
    bench_deploy,
    bench_gpu,
    bench_inference,
    bench_overhead,
    bench_rnn,
)
from bench.common import machine, peak_rss_mb
from bench.docs_block import DOC, check, rewrite
from bench.report import markdown, summary
from src.runtime import apply_cpu_settings

RESULTS = Path(__file__).parent / "results"
BENCHMARKS = ("rnn", "overhead", "data", "cells", "inference", "deploy", "gpu")


def _run_one(name: str, quick: bool, data_dir: str, ckpt: str | None) -> dict:
    # the benchmarks' batches repeat their shapes: heap reuse on (opt-in for the CLI), and the
    # RNN benchmark times its training loop again without it, in a fresh process
    os.environ.setdefault("SEQLAB_RETAIN_MEMORY", "1")
    apply_cpu_settings()
    runners = {
        "rnn": lambda: bench_rnn.run(quick),
        "overhead": lambda: bench_overhead.run(quick),
        "data": lambda: bench_data.run(data_dir, quick),
        "cells": lambda: bench_cells.run(quick),
        "inference": lambda: bench_inference.run(quick),
        # quick: an untrained small model; else the trained checkpoint when there is one
        "deploy": lambda: bench_deploy.run(quick, None if quick else ckpt, data_dir),
        "gpu": lambda: bench_gpu.run(quick, data_dir),  # "skipped" without CUDA
    }
    result = runners[name]()
    result["peak_rss_mb"] = peak_rss_mb()  # of this process, which ran this benchmark only
    return result


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--quick", action="store_true", help="smoke sizes (under 3 minutes)")
    cli.add_argument("--data-dir", default="data/imdb", help="IMDB copy for the data benchmark")
    cli.add_argument(
        "--imdb-ckpt",
        help="trained IMDB classifier for the deploy benchmark (else an untrained one, same shape)",
    )
    cli.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    cli.add_argument("--out", default=str(RESULTS), help="report directory")
    cli.add_argument("--docs", default=str(DOC), help="doc whose bench block a full run rewrites")
    args = cli.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    full = not args.quick and set(args.only.split(",")) == set(BENCHMARKS)
    if full and args.docs:
        try:
            check(Path(args.docs))  # before the benchmarks, not after them
        except ValueError as err:
            cli.error(str(err))
    results = {}
    fork = "forkserver" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if fork else "spawn")
    if fork:  # no torch op has run in the server: each child starts without threads
        # the benchmarks' modules, not this one: a child runs this module afresh as its main
        # (as ``__mp_main__``), and finding it imported already would make runpy warn
        context.set_forkserver_preload([f"bench.bench_{name}" for name in BENCHMARKS])
    for name in args.only.split(","):
        if name not in BENCHMARKS:
            cli.error(f"unknown benchmark {name!r}; pick from {','.join(BENCHMARKS)}")
        start = time.perf_counter()
        if name == "data" and not Path(args.data_dir).exists():
            results[name] = {"skipped": f"no IMDB copy at {args.data_dir} (--data-dir)"}
        else:
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                job = pool.submit(_run_one, name, args.quick, args.data_dir, args.imdb_ckpt)
                results[name] = job.result()
        results[name]["bench_wall_s"] = time.perf_counter() - start
        (out / f"{name}{suffix}.json").write_text(json.dumps(results[name], indent=2))
        print(f"{name}: {results[name]['bench_wall_s']:.1f} s", flush=True)
    head = summary(results, machine())
    (out / f"summary{suffix}.json").write_text(json.dumps(head, indent=2))
    (out / f"summary{suffix}.md").write_text(markdown(head, results))
    print((out / f"summary{suffix}.md").read_text())
    if full and args.docs:
        rewrite(head, results, Path(args.docs))
        print(f"rewrote the bench block of {args.docs}")


if __name__ == "__main__":
    main()
