"""Headline figures under fixed keys (``summary.json``) and the Markdown table of the report."""

from bench.report_deploy import deploy_rows, deploy_summary
from bench.report_gpu import gpu_rows, gpu_steps_table, gpu_summary


def _get(results: dict, *path, default=None):
    node = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def summary(results: dict, machine: dict) -> dict:
    """Fixed keys, comparable across commits; ``None`` where a benchmark did not run."""
    rnn = results.get("rnn", {})
    bilstm = next(
        (r for r in rnn.get("one_batch", []) if r["cell"] == "lstm" and r["bidirectional"]), {}
    )
    return {
        "machine": machine,
        "quick": bool(rnn.get("quick", False)),
        "matmul_gflops": _get(rnn, "matmul_gflops", "peak"),
        "torch_matmul_gflops": _get(rnn, "matmul_gflops", "torch_matmul"),
        "lightning_overhead_pct": _get(results, "overhead", "imdb_bilstm_step", "overhead_pct"),
        "lightning_overhead_tiny_ms": _get(
            results, "overhead", "tiny_forecaster_step", "overhead_ms_per_step"
        ),
        "lightning_overhead_outside_compute_pct": _get(
            results, "overhead", "imdb_bilstm_step", "outside_compute_pct"
        ),
        "lightning_overhead_outside_compute_ms": _get(
            results, "overhead", "imdb_bilstm_step", "outside_compute_ms_per_step"
        ),
        "bilstm_train_peak_fraction": _get(rnn, "bucketed", "peak_fraction"),
        "bilstm_train_peak_fraction_range": _get(rnn, "bucketed", "peak_fraction_range"),
        "bilstm_train_peak_fraction_default_malloc": _get(
            rnn, "bucketed_default_malloc", "peak_fraction"
        ),
        "bilstm_one_batch_peak_fraction": bilstm.get("peak_fraction"),
        "bilstm_speedup_vs_packed": bilstm.get("speedup_vs_packed"),
        "bilstm_speedup_vs_packed_range": bilstm.get("speedup_vs_packed_range"),
        "bilstm_max_abs_diff_vs_packed": bilstm.get("max_abs_diff"),
        "bucket_real_token_share": _get(results, "data", "real_token_share_bucketed"),
        "imdb_tokenize_first_s": _get(results, "data", "first_run_s"),
        "imdb_tokenize_cached_s": _get(results, "data", "cached_load_s"),
        "cells_compiled_vs_nn_lstm": _get(
            results, "cells", "handwritten_compiled", "time_vs_nn_lstm"
        ),
        "cells_eager_vs_nn_lstm": _get(results, "cells", "handwritten_eager", "time_vs_nn_lstm"),
        "cells_gru_compiled_vs_nn_gru": _get(
            results, "cells", "gru", "handwritten_compiled", "time_vs_nn_gru"
        ),
        "cells_gru_eager_vs_nn_gru": _get(
            results, "cells", "gru", "handwritten_eager", "time_vs_nn_gru"
        ),
        "inference_p50_ms": _get(results, "inference", "single_review", "p50_ms"),
        "inference_p99_ms": _get(results, "inference", "single_review", "p99_ms"),
        "inference_reviews_per_s": _get(results, "inference", "batched", "reviews_per_s"),
        **gpu_summary(results.get("gpu", {})),
        **deploy_summary(results.get("deploy", {})),
    }


def _fmt(value, spec: str = ".3g") -> str:
    return "n/a" if value is None else format(value, spec)


def _range(head: dict, key: str, spec: str = ".1%", unit: str = "") -> str:
    low_high = head.get(f"{key}_range")
    if low_high is None:
        return ""
    return f" ({format(low_high[0], spec)}-{format(low_high[1], spec)}{unit})"


def _spread(t: dict) -> str:
    return f"{t['median_s']:.3f} s ({t['min_s']:.3f}-{t['max_s']:.3f}, n={t['n']})"


def markdown(head: dict, results: dict) -> str:
    """Summary table plus the per-variant timings of the recurrent benchmark."""
    m = head["machine"]
    h = head
    rows = [
        (
            "fp32 matmul reference (peak: best of torch.matmul / oneDNN)",
            f"{_fmt(h['matmul_gflops'], '.1f')} GFLOP/s",
        ),
        ("fp32 torch.matmul alone", f"{_fmt(h['torch_matmul_gflops'], '.1f')} GFLOP/s"),
        (
            "BiLSTM training, bucketed batches: share of matmul peak (per epoch: median, range)",
            _fmt(h["bilstm_train_peak_fraction"], ".1%") + _range(h, "bilstm_train_peak_fraction"),
        ),
        (
            "... the same loop with glibc's default allocator (no retain_freed_memory)",
            _fmt(h["bilstm_train_peak_fraction_default_malloc"], ".1%"),
        ),
        (
            "BiLSTM fwd+bwd, one IMDB-like batch: speed-up vs PyTorch packed (per round: median,"
            " range)",
            f"{_fmt(h['bilstm_speedup_vs_packed'], '.1f')}x"
            + _range(h, "bilstm_speedup_vs_packed", ".1f", "x"),
        ),
        (
            "... max abs difference vs packed (output, h_n, c_n)",
            _fmt(h["bilstm_max_abs_diff_vs_packed"], ".1e"),
        ),
        ("Lightning overhead, IMDB BiLSTM step", f"{_fmt(h['lightning_overhead_pct'], '+.2f')} %"),
        (
            "... its time outside the model's arithmetic, less the plain loop's",
            f"{_fmt(h['lightning_overhead_outside_compute_ms'], '+.2f')} ms"
            f" ({_fmt(h['lightning_overhead_outside_compute_pct'], '+.2f')} %)",
        ),
        (
            "Lightning overhead, tiny forecaster step",
            f"{_fmt(h['lightning_overhead_tiny_ms'], '+.2f')} ms",
        ),
        (
            "Real tokens in bucketed IMDB batches (batch 64)",
            _fmt(h["bucket_real_token_share"], ".1%"),
        ),
        (
            "IMDB tokenise + cache: first run / cached",
            f"{_fmt(h['imdb_tokenize_first_s'], '.1f')} s"
            f" / {_fmt(h['imdb_tokenize_cached_s'], '.2f')} s",
        ),
    ]
    rows.append(
        (
            "Hand-written LSTM fwd+bwd time vs nn.LSTM: eager / compiled",
            f"{_fmt(h['cells_eager_vs_nn_lstm'], '.2f')}x"
            f" / {_fmt(h['cells_compiled_vs_nn_lstm'], '.2f')}x",
        )
    )
    rows.append(
        (
            "Hand-written GRU fwd+bwd time vs nn.GRU: eager / compiled",
            f"{_fmt(h['cells_gru_eager_vs_nn_gru'], '.2f')}x"
            f" / {_fmt(h['cells_gru_compiled_vs_nn_gru'], '.2f')}x",
        )
    )
    rows.append(
        (
            "IMDB BiLSTM inference: one review p50 / p99; batches of 256",
            f"{_fmt(h['inference_p50_ms'], '.1f')} ms / {_fmt(h['inference_p99_ms'], '.1f')} ms;"
            f" {_fmt(h['inference_reviews_per_s'], '.0f')} reviews/s",
        )
    )
    memory = ", ".join(
        f"{name} {r['peak_rss_mb']:.0f} MiB"
        for name, r in results.items()
        if "peak_rss_mb" in r and "skipped" not in r
    )
    rows += deploy_rows(h)
    rows.append(("Peak memory (RSS) of each benchmark's process", memory or "n/a"))
    rows += gpu_rows(h)
    m = h["machine"]
    title = f"Machine: {m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')}"
    title += (f", GPU {m['gpu']}" if "gpu" in m else "") + (" (quick sizes)" if h["quick"] else "")
    lines = [title, "", "| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    if "gpu_imdb_epoch_s" in h:
        lines += ["", gpu_steps_table(results["gpu"]["cudnn_steps"])]
    rnn = results.get("rnn", {})
    if rnn.get("one_batch"):
        lines += [
            "",
            "| one batch, fwd+bwd | "
            + " | ".join(["encoder", "encoder + exact c_n", "dense padded", "packed"])
            + " |",
            "|---|---|---|---|---|",
        ]
        for row in rnn["one_batch"]:
            name = f"{row['cell']} {'bi' if row['bidirectional'] else 'uni'}"
            cells = [
                _spread(row[k]) if k in row else "-"
                for k in ("encoder", "encoder_with_c_n", "dense_padded", "packed")
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
