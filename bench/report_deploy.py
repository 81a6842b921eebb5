"""The deployment part of the report: ``deploy_*`` summary keys and table rows for
:mod:`bench.bench_deploy` (PyTorch eager float, onnxruntime float, onnxruntime int8)."""

from bench.bench_deploy import ENGINES

NAMES = {"torch_float": "PyTorch float", "onnx_float": "ONNX float", "onnx_int8": "ONNX int8"}


def deploy_summary(deploy: dict) -> dict:
    """Fixed keys (``None`` where the benchmark did not run or had no test data)."""
    single, batched = deploy.get("single_review", {}), deploy.get("batched", {})
    accuracy, size = deploy.get("test_accuracy", {}), deploy.get("size_mb", {})
    head = {
        "deploy_checkpoint": deploy.get("checkpoint"),
        "deploy_int8_size_ratio": deploy.get("int8_size_ratio"),
        "deploy_int8_p50_speedup_vs_torch": single.get("int8_p50_speedup_vs_torch", {}).get(
            "median"
        ),
        "deploy_int8_p50_speedup_vs_torch_range": single.get("int8_p50_speedup_vs_torch", {}).get(
            "range"
        ),
        "deploy_int8_accuracy_drop_points": deploy.get("int8_accuracy_drop_points"),
        "deploy_onnx_max_abs_diff_vs_torch": deploy.get("onnx_max_abs_diff_vs_torch"),
        "deploy_int8_label_agreement": deploy.get("int8_label_agreement"),
    }
    for engine in ENGINES:
        head[f"deploy_{engine}_size_mb"] = size.get(engine)
        head[f"deploy_{engine}_p50_ms"] = single.get(engine, {}).get("p50_ms")
        head[f"deploy_{engine}_p99_ms"] = single.get(engine, {}).get("p99_ms")
        head[f"deploy_{engine}_reviews_per_s"] = batched.get(engine, {}).get("reviews_per_s")
        head[f"deploy_{engine}_test_acc"] = accuracy.get(engine)
    return head


def _each(head: dict, key: str, spec: str, unit: str = "") -> str:
    values = [head.get(f"deploy_{engine}_{key}") for engine in ENGINES]
    return " / ".join("n/a" if v is None else format(v, spec) + unit for v in values)


def deploy_rows(head: dict) -> list[tuple[str, str]]:
    """Table rows: each figure for PyTorch float / ONNX float / ONNX int8."""
    if head.get("deploy_int8_size_ratio") is None:
        return []
    which = " / ".join(NAMES[e] for e in ENGINES)
    model = "trained checkpoint" if head.get("deploy_checkpoint") else "untrained, same shape"
    speedup = head["deploy_int8_p50_speedup_vs_torch"]
    low, high = head["deploy_int8_p50_speedup_vs_torch_range"]
    rows = [
        (
            f"IMDB BiLSTM deployed ({model}), {which}: model file",
            _each(head, "size_mb", ".2f", " MiB")
            + f" (int8 {head['deploy_int8_size_ratio']:.1f}x smaller than ONNX float)",
        ),
        (
            "... one review p50 (p99)",
            " / ".join(
                f"{head[f'deploy_{e}_p50_ms']:.2f} ms ({head[f'deploy_{e}_p99_ms']:.2f})"
                for e in ENGINES
            )
            + f"; int8 p50 {speedup:.2f}x faster than PyTorch (per review: {low:.2f}-{high:.2f}x)",
        ),
        ("... length-bucketed batches of 256, reviews/s", _each(head, "reviews_per_s", ".0f")),
    ]
    if head.get("deploy_torch_float_test_acc") is not None:
        rows.append(
            (
                "... test accuracy (every test review, from its raw text)",
                _each(head, "test_acc", ".2%")
                + f"; int8 {head['deploy_int8_accuracy_drop_points']:+.2f} points below float"
                f", ONNX float max |p - p_torch| {head['deploy_onnx_max_abs_diff_vs_torch']:.1e}",
            )
        )
    return rows
