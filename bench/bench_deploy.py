"""The IMDB BiLSTM deployed: PyTorch eager float vs onnxruntime float vs onnxruntime int8.

    python -m bench.bench_deploy --ckpt <imdb_bilstm checkpoint> [--data-dir data/imdb]
    python -m bench.bench_deploy --quick   # untrained small classifier, random reviews, no data

Side by side in one process, on the same reviews: the file size of each model, single-review
latency (p50 / p99, the engines taking turns review by review so they share the machine's drift),
throughput in length-bucketed batches of 256, and, with a checkpoint and the data, test accuracy
over the full test set (every review tokenized from its raw text as ``src.predict`` does) and the
largest class-probability difference between onnxruntime float and PyTorch.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import torch
from tokenizers import Tokenizer, models, pre_tokenizers

from bench.bench_rnn import imdb_like_lengths
from bench.common import machine, ratios
from src.checkpoints.restore import restore
from src.data.sampler import BucketBatchSampler
from src.data.text import encode_ids
from src.export.graphs import ClassifierGraph
from src.export.onnx import export_onnx, quantize_int8
from src.models.classifier import RNNClassifier
from src.tasks.classification import ClassificationTask

ENGINES = ("torch_float", "onnx_float", "onnx_int8")
# onnxruntime's option key "<s>.intra_op.allow_spinning", <s> its word for an inference
# context, which the docs check keeps out of this repository's prose
SPINNING = "session.intra_op.allow_spinning"


def _synthetic(vocab: int, width: int) -> tuple[ClassificationTask, SimpleNamespace]:
    """An untrained BiLSTM classifier (max pooling) and a stand-in datamodule (no checkpoint)."""
    torch.manual_seed(0)
    net = RNNClassifier(vocab, 2, width, width, "lstm", bidirectional=True, pooling="max")
    words = {"<pad>": 0, "<unk>": 1} | {f"w{i}": i for i in range(2, vocab)}
    tokenizer = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    dm = SimpleNamespace(tokenizer=tokenizer, max_len=400, label_names=("negative", "positive"))
    return ClassificationTask(net).eval(), dm


def _reviews(n: int, vocab: int, seed: int) -> tuple[list[np.ndarray], None]:
    lengths = imdb_like_lengths(n, seed=seed).clamp(max=400).tolist()
    g = np.random.default_rng(seed)
    return [g.integers(2, vocab, size=k) for k in lengths], None


def _test_set(data_dir: str, dm) -> tuple[list[np.ndarray], np.ndarray]:
    """The test reviews from their raw text, encoded with the checkpoint's tokenizer."""
    from src.data.imdb.source import find_source

    texts, labels = find_source(data_dir, hub_name="").load()["test"]
    ids, offsets = encode_ids(dm.tokenizer, texts, dm.max_len)
    return [ids[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)], labels


def _pad(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    tokens = np.zeros((len(rows), lengths.max()), dtype=np.int64)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = r
    return tokens, lengths


def _engines(task, paths: dict[str, Path], threads: int) -> dict:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    # idle onnxruntime threads otherwise spin between runs, taking the cores PyTorch's next
    # run needs: the engines take turns here, as services sharing a machine do
    options.add_session_config_entry(SPINNING, "0")
    runtimes = {
        k: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
        for k, p in paths.items()
    }

    def torch_float(tokens, lengths):
        with torch.inference_mode():
            return task(torch.from_numpy(tokens), torch.from_numpy(lengths)).softmax(-1).numpy()

    def onnx(name):
        return lambda tokens, lengths: runtimes[name].run(
            None, {"tokens": tokens, "lengths": lengths}
        )[0]

    return {
        "torch_float": torch_float,
        "onnx_float": onnx("onnx_float"),
        "onnx_int8": onnx("onnx_int8"),
    }


def _latency(engines: dict, rows: list[np.ndarray], warmup: int = 5) -> dict:
    """Single-review latency of every engine, taking turns review by review."""
    times = {k: [] for k in engines}
    for i, row in enumerate(rows[:warmup] + rows):
        tokens, lengths = _pad([row])
        for name, run in engines.items():
            start = time.perf_counter()
            run(tokens, lengths)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    report = {
        k: {
            "p50_ms": 1000 * statistics.median(t),
            "p99_ms": 1000 * statistics.quantiles(t, n=100, method="inclusive")[98],
        }
        for k, t in times.items()
    }
    report["int8_p50_speedup_vs_torch"] = ratios(times["torch_float"], times["onnx_int8"])
    report["onnx_float_p50_speedup_vs_torch"] = ratios(times["torch_float"], times["onnx_float"])
    return report


def _batched(engines: dict, rows: list[np.ndarray], batch_size: int) -> tuple[dict, dict]:
    """Every review once, in length-bucketed batches; each engine runs each batch in turn."""
    lengths = [len(r) for r in rows]
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=False)
    probs = {k: np.zeros((len(rows), 2), dtype=np.float32) for k in engines}
    elapsed = dict.fromkeys(engines, 0.0)
    for batch in sampler:
        tokens, batch_lengths = _pad([rows[i] for i in batch])
        for name, run in engines.items():
            start = time.perf_counter()
            probs[name][batch] = run(tokens, batch_lengths)
            elapsed[name] += time.perf_counter() - start
    speed = {
        k: {"reviews_per_s": len(rows) / s, "real_tokens_per_s": sum(lengths) / s}
        for k, s in elapsed.items()
    }
    return speed, probs


def run(quick: bool = False, ckpt: str | None = None, data_dir: str = "data/imdb") -> dict:
    threads = torch.get_num_threads()
    if ckpt is None:
        task, dm = _synthetic(2000, 32) if quick else _synthetic(30000, 128)  # imdb_bilstm's
        rows, labels = _reviews(256 if quick else 4096, dm.tokenizer.get_vocab_size(), seed=3)
    else:
        loaded = restore(ckpt)
        task, dm = loaded.task, loaded.datamodule
        rows, labels = _test_set(data_dir, dm)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"onnx_float": Path(tmp) / "float.onnx", "onnx_int8": Path(tmp) / "int8.onnx"}
        export_onnx(ClassifierGraph(task, dm), paths["onnx_float"], {})
        quantize_int8(paths["onnx_float"], paths["onnx_int8"])
        buffer = io.BytesIO()
        torch.save(task.net.state_dict(), buffer)
        sizes = {"torch_float": buffer.tell()} | {k: p.stat().st_size for k, p in paths.items()}
        engines = _engines(task, paths, threads)
        single = rows[:: max(1, len(rows) // (40 if quick else 400))]
        latency = _latency(engines, single)
        batched, probs = _batched(engines, rows, 64 if quick else 256)
    report = {
        "machine": machine(),
        "quick": quick,
        "checkpoint": ckpt,
        "threads": threads,
        "reviews": len(rows),
        "size_mb": {k: v / 2**20 for k, v in sizes.items()},
        "int8_size_ratio": sizes["onnx_float"] / sizes["onnx_int8"],
        "single_review": latency | {"reviews": len(single)},
        "batched": batched,
        "onnx_max_abs_diff_vs_torch": float(
            np.abs(probs["onnx_float"] - probs["torch_float"]).max()
        ),
        "int8_label_agreement": float(
            (probs["onnx_int8"].argmax(1) == probs["onnx_float"].argmax(1)).mean()
        ),
    }
    if labels is not None:
        acc = {k: float((p.argmax(1) == labels).mean()) for k, p in probs.items()}
        report["test_accuracy"] = acc
        report["int8_accuracy_drop_points"] = 100 * (acc["torch_float"] - acc["onnx_int8"])
    return report


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--quick", action="store_true")
    cli.add_argument("--ckpt", help="IMDB classifier checkpoint (else an untrained stand-in)")
    cli.add_argument("--data-dir", default="data/imdb")
    a = cli.parse_args()
    print(json.dumps(run(a.quick, a.ckpt, a.data_dir), indent=2))
