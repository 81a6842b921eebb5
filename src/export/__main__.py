"""Export a trained classifier or forecaster for use outside Lightning.

    python -m src.export --ckpt_path model.ckpt --format onnx   # model.onnx
    python -m src.export --ckpt_path model.ckpt --format int8   # model.int8.onnx
    python -m src.export --ckpt_path model.ckpt --format pt2    # model.pt2 (torch.export)

ONNX graphs take raw inputs (token ids and lengths; or series values) and give final outputs
(class probabilities; forecasts in the series' units); their metadata carry the tokenizer JSON,
label names or the series' columns. Each export is checked against PyTorch on a batch of mixed
lengths before the command reports success. Errors are one line and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from src.checkpoints.restore import restore
from src.errors import SeqLabError
from src.export import export_program, graph_for, metadata
from src.export.onnx import export_onnx, quantize_int8
from src.runtime import apply_cpu_settings

SUFFIXES = {"onnx": ".onnx", "int8": ".int8.onnx", "pt2": ".pt2"}


def _check(graph, path: Path, fmt: str) -> float:
    """Max abs difference between the exported file and PyTorch on the example batch."""
    inputs = graph.example_inputs()
    with torch.no_grad():
        expected = graph(*inputs).numpy()
    if fmt == "pt2":
        got = torch.export.load(path).module()(*inputs).detach().numpy()
    else:
        import onnxruntime as ort

        runtime = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {name: x.numpy() for name, x in zip(graph.input_names, inputs, strict=True)}
        got = runtime.run(None, feeds)[0]
    return float(np.abs(got - expected).max())


def export(ckpt_path: str, fmt: str, output: str | None = None) -> tuple[Path, float]:
    """Export ``ckpt_path`` as ``fmt``; returns the file and its check's max abs difference."""
    loaded = restore(ckpt_path)
    graph = graph_for(loaded)
    path = Path(output) if output else loaded.path.with_suffix(SUFFIXES[fmt])
    extra = metadata(loaded)
    if fmt == "pt2":
        export_program(graph, path, extra)
    elif fmt == "onnx":
        export_onnx(graph, path, extra)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            export_onnx(graph, Path(tmp) / "float.onnx", extra)
            quantize_int8(Path(tmp) / "float.onnx", path)
    return path, _check(graph, path, fmt)


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(prog="python -m src.export", description=__doc__.split("\n")[0])
    p.add_argument("--ckpt_path", required=True, help="checkpoint written by fit")
    p.add_argument("--format", choices=list(SUFFIXES), default="onnx", help="default: onnx")
    p.add_argument("--output", help="output file (default: the checkpoint's name, new suffix)")
    args = p.parse_args(argv)
    apply_cpu_settings()
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's advice to pre-process
    try:
        path, diff = export(args.ckpt_path, args.format, args.output)
    except (SeqLabError, ValueError, FileNotFoundError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
    size = path.stat().st_size / 2**20
    print(f"{path} ({size:.2f} MiB); max |difference| from PyTorch, mixed-length batch: {diff:.1e}")
    return path


if __name__ == "__main__":
    main()
