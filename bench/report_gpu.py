"""The GPU benchmark's part of the report: ``gpu_*`` summary keys, table rows, step table."""


def gpu_summary(gpu: dict) -> dict:
    """``gpu_*`` keys, only when the GPU benchmark ran (on a GPU)."""
    if "project" not in gpu or gpu.get("device", "").startswith("cpu"):
        return {}

    def step_s(batch: int, lengths: str, dtype: str, layout: str) -> float | None:
        """Median seconds of that step; ``None`` where it failed or was not run (quick sizes)."""
        key = (batch, lengths, dtype, layout)
        rows = gpu["cudnn_steps"]
        row = next(
            (r for r in rows if (r["batch"], r["lengths"], r["dtype"], r["layout"]) == key), {}
        )
        return row.get("median_s")

    batch = gpu["project"]["batch_size"]
    exact = [
        step_s(batch, "bucketed", "bf16", layout) for layout in ("exact_packed", "exact_dense")
    ]
    return {
        "gpu_model": gpu["machine"].get("gpu"),
        "gpu_matmul_bf16_tflops": gpu["matmul_tflops"]["bf16"],
        "gpu_matmul_tf32_tflops": gpu["matmul_tflops"]["tf32"],
        "gpu_imdb_epoch_s": gpu["project"]["epoch_s"][-1],
        "gpu_imdb_test_acc": gpu["project"]["test_acc"],
        "gpu_tutorial_epoch_s": gpu["tutorial"]["epoch_s"][-1],
        "gpu_tutorial_test_acc": gpu["tutorial"]["test_acc"],
        "gpu_epoch_speedup_vs_tutorial": gpu["epoch_speedup_vs_tutorial"],
        "gpu_bilstm_packed_b64_step_s": step_s(64, "random", "fp32", "packed"),
        # the project's case (its batch size, bucketed, bf16): cuDNN packed time / dense exact time
        "gpu_exact_dense_speedup_vs_packed": exact[0] / exact[1] if all(exact) else None,
        "gpu_dense_exact_devices": gpu["project"].get("dense_exact_devices"),
        "gpu_max_memory_allocated_mb": gpu["project"]["max_memory_allocated_mb"],
    }


def gpu_rows(h: dict) -> list[tuple[str, str]]:
    """The summary table's GPU rows (none unless the GPU benchmark ran on a GPU)."""
    if "gpu_imdb_epoch_s" not in h:
        return []
    return [
        (
            f"GPU ({h['gpu_model']}): bf16 / tf32 matmul",
            f"{h['gpu_matmul_bf16_tflops']:.0f} / {h['gpu_matmul_tf32_tflops']:.0f} TFLOP/s",
        ),
        (
            "GPU IMDB BiLSTM epoch: this project / the tutorial recipe (test acc, same epochs)",
            f"{h['gpu_imdb_epoch_s']:.1f} s ({h['gpu_imdb_test_acc']:.2%}) / "
            f"{h['gpu_tutorial_epoch_s']:.1f} s ({h['gpu_tutorial_test_acc']:.2%}):"
            f" {h['gpu_epoch_speedup_vs_tutorial']:.1f}x",
        ),
    ]


def gpu_steps_table(rows: list[dict]) -> str:
    """The GPU's BiLSTM step times: one line per batch, lengths and dtype, one column a layout."""
    layouts = list(dict.fromkeys(r["layout"] for r in rows))
    lines = [
        "| GPU BiLSTM 2 x 256 fwd+bwd (batch, lengths, dtype) | " + " | ".join(layouts) + " |",
        "|---|" + "---|" * len(layouts),
    ]
    for key in dict.fromkeys((r["batch"], r["lengths"], r["dtype"]) for r in rows):
        cells = {r["layout"]: r for r in rows if (r["batch"], r["lengths"], r["dtype"]) == key}
        values = [
            f"{cells[k]['median_s'] * 1e3:.1f} ms" if "median_s" in cells[k] else "failed"
            for k in layouts
        ]
        lines.append(f"| {key[0]}, {key[1]}, {key[2]} | " + " | ".join(values) + " |")
    return "\n".join(lines)
