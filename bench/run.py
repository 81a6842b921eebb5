"""Runs every benchmark; writes ``bench/results/<name>.json``, ``summary.json``, ``summary.md``.

python -m bench.run [--quick] [--data-dir data/imdb] [--only rnn,overhead,data,cells,inference]
"""

import argparse
import json
import time
from pathlib import Path

from bench import bench_cells, bench_data, bench_inference, bench_overhead, bench_rnn
from bench.common import machine, peak_rss_mb
from bench.report import markdown, summary

RESULTS = Path(__file__).parent / "results"
BENCHMARKS = ("rnn", "overhead", "data", "cells", "inference")


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--quick", action="store_true", help="smoke sizes (under 3 minutes)")
    cli.add_argument("--data-dir", default="data/imdb", help="IMDB copy for the data benchmark")
    cli.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    cli.add_argument("--out", default=str(RESULTS), help="report directory")
    args = cli.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    runners = {
        "rnn": lambda: bench_rnn.run(args.quick),
        "overhead": lambda: bench_overhead.run(args.quick),
        "data": lambda: bench_data.run(args.data_dir, args.quick),
        "cells": lambda: bench_cells.run(args.quick),
        "inference": lambda: bench_inference.run(args.quick),
    }
    results = {}
    for name in args.only.split(","):
        start = time.perf_counter()
        if name == "data" and not Path(args.data_dir).exists():
            results[name] = {"skipped": f"no IMDB copy at {args.data_dir} (--data-dir)"}
        else:
            results[name] = runners[name]()
        results[name]["bench_wall_s"] = time.perf_counter() - start
        results[name]["process_peak_rss_mb"] = peak_rss_mb()  # cumulative over the run
        (out / f"{name}{suffix}.json").write_text(json.dumps(results[name], indent=2))
        print(f"{name}: {results[name]['bench_wall_s']:.1f} s", flush=True)
    head = summary(results, machine())
    (out / f"summary{suffix}.json").write_text(json.dumps(head, indent=2))
    (out / f"summary{suffix}.md").write_text(markdown(head, results))
    print((out / f"summary{suffix}.md").read_text())


if __name__ == "__main__":
    main()
