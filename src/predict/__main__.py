"""Predict on new input from a checkpoint: a file or standard input -> JSON Lines or CSV.

    python -m src.predict --ckpt_path model.ckpt --input reviews.txt --output preds.jsonl
    echo "a wonderful film" | python -m src.predict --ckpt_path model.ckpt

Text tasks read one item per line (or the ``text`` column of a CSV / JSON Lines input); the
forecaster and the anomaly detector read a CSV series. Errors are one line on standard error
and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from src.checkpoints.restore import restore
from src.errors import SeqLabError
from src.predict import predictor_for
from src.predict.io import write_rows
from src.runtime import apply_cpu_settings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m src.predict", description=__doc__.split("\n")[0])
    p.add_argument("--ckpt_path", required=True, help="checkpoint written by fit")
    p.add_argument("--input", default="-", help="input file; - (default) reads standard input")
    p.add_argument("--input_format", choices=["text", "csv", "jsonl"], help="default: by suffix")
    p.add_argument("--output", default="-", help="output file; - (default) is standard output")
    p.add_argument("--format", choices=["jsonl", "csv"], help="default: by suffix, else jsonl")
    p.add_argument("--batch_size", type=int, default=64, help="inputs per forward pass")
    task = p.add_argument_group("task options (each applies to some tasks only)")
    task.add_argument("--beam_size", type=int, help="translation: beams (default: the task's)")
    task.add_argument("--columns", help="series: input columns for the model's, comma-separated")
    task.add_argument("--date_column", help="series: date column (default: found by parsing)")
    task.add_argument("--length", type=int, help="language model: characters to sample")
    task.add_argument("--temperature", type=float, help="language model: softmax temperature")
    task.add_argument("--top_k", type=int, help="language model: sample among the k most likely")
    task.add_argument("--seed", type=int, help="language model: seed of the first prompt")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the number of rows written (exits 2 on bad input)."""
    args = parser().parse_args(argv)
    fmt = args.format or ("csv" if args.output.lower().endswith(".csv") else "jsonl")
    options = {k: getattr(args, k) for k in ("beam_size", "columns", "date_column", "length")}
    options |= {k: getattr(args, k) for k in ("temperature", "top_k", "seed")}
    apply_cpu_settings()
    try:
        predictor = predictor_for(restore(args.ckpt_path), args.batch_size, **options)
        return write_rows(predictor.predict(args.input, args.input_format), args.output, fmt)
    except (
        SeqLabError,
        ValueError,
        FileNotFoundError,
    ) as e:  # bad input or checkpoint: one line, no trace
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
