"""`make bench-quick` smoke run: every benchmark runs and the report has its fixed keys."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
KEYS = {
    "machine",
    "matmul_gflops",
    "lightning_overhead_pct",
    "bilstm_train_peak_fraction",
    "bilstm_speedup_vs_packed",
    "bucket_real_token_share",
    "imdb_tokenize_first_s",
    "imdb_tokenize_cached_s",
    "bilstm_train_peak_fraction_default_malloc",
    "inference_p50_ms",
    "cells_gru_compiled_vs_nn_gru",
    "lightning_overhead_outside_compute_pct",
    "deploy_int8_size_ratio",
    "deploy_int8_p50_speedup_vs_torch",
    "deploy_onnx_max_abs_diff_vs_torch",
}


def test_bench_quick_writes_json_and_markdown(tmp_path):
    doc = (ROOT / "docs" / "performance.md").read_text()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--out",
            str(tmp_path),
            "--data-dir",
            str(ROOT / "tests" / "fixtures" / "imdb"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "found in sys.modules" not in run.stderr  # children import bench.run once, cleanly
    summary = json.loads((tmp_path / "summary-quick.json").read_text())
    assert summary.keys() >= KEYS
    assert (
        summary["matmul_gflops"] > 0 and summary["bilstm_speedup_vs_packed"] > 0
    )  # a figure, not a timing assertion
    assert summary["bilstm_max_abs_diff_vs_packed"] < 1e-5
    assert summary["cells_gru_compiled_vs_nn_gru"] > 0  # the GRU comparison ran
    low, high = summary["bilstm_train_peak_fraction_range"]  # one share per epoch, paired peaks
    assert 0 < low <= summary["bilstm_train_peak_fraction"] <= high
    overhead = json.loads((tmp_path / "overhead-quick.json").read_text())["imdb_bilstm_step"]
    assert 0 < overhead["compute_share_plain"] <= 1  # the arithmetic clocks ran inside the steps
    assert summary["deploy_onnx_max_abs_diff_vs_torch"] < 1e-5  # the exported graph is exact
    assert summary["deploy_int8_size_ratio"] > 1 and summary["deploy_int8_label_agreement"] > 0.8
    for name in ("rnn", "overhead", "data", "cells", "inference", "deploy"):
        report = json.loads((tmp_path / f"{name}-quick.json").read_text())
        assert report["peak_rss_mb"] > 0  # measured in the benchmark's own process
    assert "| figure | value |" in (tmp_path / "summary-quick.md").read_text()
    assert (ROOT / "docs" / "performance.md").read_text() == doc  # only full runs rewrite it


def test_gpu_bench_code_runs_on_cpu(tmp_path, monkeypatch):
    """The GPU benchmark's code at tiny sizes on CPU, so a lent GPU runs it without surprises."""
    from bench import bench_gpu

    monkeypatch.chdir(tmp_path)
    if not torch.cuda.is_available():
        assert bench_gpu.run(quick=True)["skipped"] == "no CUDA device"
    data = str(ROOT / "tests" / "fixtures" / "imdb")
    extra = ["--model.init_args.net.init_args.hidden_size", "8"]
    report = bench_gpu.run(quick=True, data_dir=data, device="cpu", extra=extra)
    for recipe in ("tutorial", "project"):
        assert len(report[recipe]["epoch_s"]) == report["epochs"] == 1
        assert report[recipe]["reviews_per_s"] > 0
        assert 0 <= report[recipe]["test_acc"] <= 1
    assert report["project"]["args"] == extra
    steps = report["cudnn_steps"]
    assert [r for r in steps if "error" in r or "exact_dense_error" in r] == []
    assert {(r["lengths"], r["dtype"], r["layout"]) for r in steps} == {
        (k, d, lay)
        for k in ("random", "bucketed")
        for d in ("fp32", "bf16")
        for lay in ("packed", "padded", "exact_packed", "exact_dense")
    }
    for row in steps:  # the encoder's two exact paths agree; bucketed batches are mostly real
        assert row["exact_dense_vs_packed_max_abs_diff"] < 1e-5
        assert row["real_token_share"] > (0.8 if row["lengths"] == "bucketed" else 0)
    assert all(r["real_tokens_per_s"] > 0 for r in steps)
    assert report["matmul_tflops"]["bf16"] > 0 and report["epoch_speedup_vs_tutorial"] > 0
    # as if it had run on a GPU: the gpu_* summary keys and the table's GPU rows
    from bench.report import markdown, summary

    as_gpu = {**report, "device": "cuda", "machine": {**report["machine"], "gpu": "Test GPU"}}
    head = summary({"gpu": as_gpu}, as_gpu["machine"])
    assert head["gpu_imdb_epoch_s"] == report["project"]["epoch_s"][-1]
    assert head["gpu_tutorial_test_acc"] == report["tutorial"]["test_acc"]
    table = markdown(head, {"gpu": as_gpu})
    assert "| GPU IMDB BiLSTM epoch" in table
    assert "| 16, bucketed, bf16 | " in table and "failed" not in table  # the step table
    assert "gpu_imdb_epoch_s" not in summary({"gpu": report}, report["machine"])  # ran on CPU


def test_timed_rounds_runs_the_variants_in_turn_and_ratios_pair_them():
    from bench.common import ratios, timed_rounds

    calls = []
    times = timed_rounds({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed rounds in turn
    assert [len(t) for t in times.values()] == [3, 3] and all(v >= 0 for v in times["a"])
    # pairs round by round: a drift that slows both variants alike leaves each ratio at 2
    assert ratios([2.0, 4.0, 8.0], [1.0, 2.0, 4.0]) == {"median": 2.0, "range": [2.0, 2.0]}
    assert ratios([3.0, 2.0, 1.0], [1.0, 1.0, 1.0]) == {"median": 2.0, "range": [1.0, 3.0]}
    from bench.report import markdown, summary

    head = summary({}, {"cpu": "test", "cores": 2})  # every figure n/a
    head |= {"bilstm_speedup_vs_packed": 12.0, "bilstm_speedup_vs_packed_range": [10.04, 14.0]}
    assert "| 12.0x (10.0-14.0x) |" in markdown(head, {})


def test_full_run_rewrites_the_docs_block_from_the_summary(tmp_path):
    from bench.docs_block import BEGIN, DOC, END, check, commit, rewrite
    from bench.report import summary

    doc = tmp_path / "performance.md"
    doc.write_text(f"# Performance\n\nMethod.\n\n{BEGIN}\n| old | 1.0x |\n{END}\n\nAfter.\n")
    head = summary({}, {"cpu": "Test CPU", "cores": 2, "torch": "2.13.0"})
    head |= {"bilstm_speedup_vs_packed": 12.0, "bilstm_speedup_vs_packed_range": [10.04, 14.0]}
    rewrite(head, {}, doc, date="2026-12-03", sha="abc1234")
    rewrite(head, {}, doc, date="2026-12-04", sha="def5678")  # again: the block is replaced
    text = doc.read_text()
    assert text.startswith("# Performance\n\nMethod.\n\n") and text.endswith("\n\nAfter.\n")
    assert text.count(BEGIN) == text.count(END) == 1 and "| old |" not in text
    assert "`python -m bench.run` on 2026-12-04, commit `def5678`." in text
    assert "2026-12-03" not in text and "Machine: Test CPU, 2 cores, torch 2.13.0" in text
    assert "| 12.0x (10.0-14.0x) |" in text and "| fp32 torch.matmul alone | n/a GFLOP/s |" in text
    check(DOC)  # the shipped doc has its block
    assert re.fullmatch(r"[0-9a-f]{7,}( \+ local changes)?|unknown", commit())
    doc.write_text("# Performance\n")
    with pytest.raises(ValueError, match="has no <!-- bench:begin --> ... <!-- bench:end -->"):
        rewrite(head, {}, doc)
    assert doc.read_text() == "# Performance\n"


def test_full_run_without_the_docs_block_stops_before_benchmarking(tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n")
    args = ["--out", str(tmp_path), "--docs", str(doc)]
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 2 and "has no <!-- bench:begin -->" in run.stderr
    assert list(tmp_path.iterdir()) == [doc]  # no benchmark ran
