"""ETT long-horizon runs: fit a config on one (dataset, horizon, seed), test its best checkpoint,
write ``bench/results/ett/<config>-<dataset>-<horizon>-s<seed>.json``; ``--table`` prints the
markdown results table from every JSON there.

python -m bench.ett --config configs/ett_segrnn.yaml --dataset ETTh1 --horizon 96 --seed 1
python -m bench.ett --table   # the comparison with the published figures, then every run

Configs without parameters (the naive baselines) are only tested. The config's top-level
``checkpoint`` (monitor, mode) picks the checkpoint tested; ``early_stopping`` ends the fit.
"""

import argparse
import json
import platform
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from src.cli import main as cli_main

RESULTS = Path(__file__).parent / "results" / "ett"
POINTS = [(d, h) for d in ("ETTh1", "ETTh2") for h in (96, 192, 336, 720)]
BASELINES = ("ett_linear", "ett_seasonal_naive", "ett_naive")
OTHERS = ("ett_lstm", "ett_seq2seq", *BASELINES)  # beside the shipped model, in the comparison
# Published MSE / MAE under this protocol, lookback 96 (SegRNN's repository table; the other
# columns as it quotes them from the iTransformer paper).
PUBLISHED_COLUMNS = ("SegRNN", "iTransformer", "PatchTST", "DLinear", "TimesNet")
# The shipped recurrent config of each point where it is not ``ett_segrnn``
SHIPPED = {
    ("ETTh1", 96): "ett_segrnn_large",
    ("ETTh2", 96): "ett_segrnn_large_etth2",
    ("ETTh2", 192): "ett_segrnn_large_etth2",
    ("ETTh2", 720): "ett_segrnn_mae",
}
PUBLISHED = {
    ("ETTh1", 96): [(0.368, 0.395), (0.386, 0.405), (0.414, 0.419), (0.386, 0.400), (0.384, 0.402)],
    ("ETTh1", 192): [
        (0.408, 0.419),
        (0.441, 0.436),
        (0.460, 0.445),
        (0.437, 0.432),
        (0.436, 0.429),
    ],
    ("ETTh1", 336): [
        (0.444, 0.440),
        (0.487, 0.458),
        (0.501, 0.466),
        (0.481, 0.459),
        (0.491, 0.469),
    ],
    ("ETTh1", 720): [
        (0.446, 0.457),
        (0.503, 0.491),
        (0.500, 0.488),
        (0.519, 0.516),
        (0.521, 0.500),
    ],
    ("ETTh2", 96): [(0.278, 0.335), (0.297, 0.349), (0.302, 0.348), (0.333, 0.387), (0.340, 0.374)],
    ("ETTh2", 192): [
        (0.359, 0.389),
        (0.380, 0.400),
        (0.388, 0.400),
        (0.477, 0.476),
        (0.402, 0.414),
    ],
    ("ETTh2", 336): [
        (0.421, 0.436),
        (0.428, 0.432),
        (0.426, 0.433),
        (0.594, 0.541),
        (0.452, 0.452),
    ],
    ("ETTh2", 720): [
        (0.432, 0.455),
        (0.427, 0.445),
        (0.431, 0.446),
        (0.831, 0.657),
        (0.462, 0.468),
    ],
}


class EpochLine(Callback):
    """Prints one line per validation: epoch, seconds since the fit began, val MSE and MAE."""

    def on_fit_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        m = {k: float(v) for k, v in trainer.callback_metrics.items()}
        mse, mae = m.get("val/mse", float("nan")), m.get("val/mae", float("nan"))
        seconds = time.perf_counter() - self.start
        print(f"  epoch {trainer.current_epoch} {seconds:.0f} s val mse {mse:.4f} mae {mae:.4f}")


def run(
    config: Path, dataset: str, horizon: int, seed: int, extra: list[str], out: Path = RESULTS
) -> dict:
    """Fit ``config`` on one point (unless it has no parameters), test the best checkpoint and
    write the figures to ``out``. ``extra``: more CLI arguments, e.g. ``--trainer.max_epochs 2``.
    Runs go to ``lightning_logs/ett/<dataset>-<horizon>-s<seed>/<config stem>/version_N/``."""
    name = f"{config.stem}-{dataset}-{horizon}-s{seed}"
    root = Path("lightning_logs") / "ett" / f"{dataset}-{horizon}-s{seed}"
    args = ["--config", str(config), "--seed_everything", str(seed)]
    args += ["--data.init_args.dataset", dataset, "--data.init_args.output_len", str(horizon)]
    args += ["--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"]
    cli = cli_main(args + extra, run=False)
    trainer, model = cli.trainer, cli.model
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    start, epochs, best_val, ckpt_path = time.perf_counter(), 0, None, None
    if params:
        trainer.callbacks.append(EpochLine())
        trainer.fit(model, datamodule=cli.datamodule)
        best = trainer.checkpoint_callback  # the config's ``checkpoint`` (monitor, mode)
        epochs, ckpt_path = trainer.current_epoch, best.best_model_path
        best_val = float(best.best_model_score)
    fit_s = time.perf_counter() - start
    test = trainer.test(model, datamodule=cli.datamodule, ckpt_path=ckpt_path)[0]
    result = {
        "config": config.stem,
        "dataset": dataset,
        "horizon": horizon,
        "seed": seed,
        "extra": extra,
        "params": params,
        "epochs": epochs,
        "best_val": best_val,
        "fit_s": round(fit_s, 1),
        "test_windows": len(cli.datamodule.datasets["test"]),
        "test": test,
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads, torch "
        + torch.__version__,
    }
    out.mkdir(parents=True, exist_ok=True)
    suffix = "-" + "-".join(a.split(".")[-1] for a in extra[::2]) if extra else ""
    (out / f"{name}{suffix}.json").write_text(json.dumps(result, indent=1))
    return result


def _runs() -> dict[tuple[str, str, int], list[dict]]:
    """Every result in ``RESULTS``, grouped by (config, dataset, horizon), by seed."""
    rows = defaultdict(list)
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        extra = zip(r["extra"][::2], r["extra"][1::2], strict=False)
        label = " ".join([r["config"], *(f"{k.split('.')[-1]}={v}" for k, v in extra)])
        rows[(label, r["dataset"], r["horizon"])].append(r)
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in sorted(rows.items())}


def table() -> str:
    """Markdown, one row per (config, dataset, horizon): test MSE / MAE of the lowest seed, the
    range of the MSE over every seed run, quantile coverage, parameters, epochs, fit time."""
    lines = ["| config | data | H | seed | MSE | MAE | MSE range (runs) | coverage | params |"]
    lines[0] += " epochs | fit s |"
    lines.append("|---" * 11 + "|")
    for (config, dataset, horizon), runs in _runs().items():
        first, mses = runs[0], [r["test"]["test/mse"] for r in runs]
        spread = f"{min(mses):.3f}-{max(mses):.3f} ({len(mses)})" if len(runs) > 1 else ""
        coverage = first["test"].get("test/coverage")
        coverage = f"{100 * coverage:.1f} %" if coverage is not None else ""
        lines.append(
            f"| {config} | {dataset} | {horizon} | {first['seed']} | "
            f"{first['test']['test/mse']:.3f} | {first['test']['test/mae']:.3f} | {spread} | "
            f"{coverage} | {first['params']:,} | {first['epochs']} | {first['fit_s']:.0f} |"
        )
    return "\n".join(lines)


def comparison(
    shipped: dict[tuple[str, int], str] = SHIPPED, others: tuple[str, ...] = OTHERS
) -> str:
    """Markdown, one row per (dataset, horizon): the shipped recurrent config of that point
    (``shipped``, else ``ett_segrnn``), its test MSE / MAE (seed 1) and MSE range over every
    seed run, the other configs' (``others``: the LSTMs and baselines) and the published
    MSE / MAE."""
    runs = _runs()
    head = ["data, H", "config", "seqlab", "MSE range (runs)", *others, *PUBLISHED_COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for dataset, horizon in POINTS:
        model = shipped.get((dataset, horizon), "ett_segrnn")
        cells = [f"{dataset} {horizon}", model]
        for name in (model, *others):
            found = runs.get((name, dataset, horizon))
            test = found[0]["test"] if found else None
            cells.append(f"{test['test/mse']:.3f} / {test['test/mae']:.3f}" if test else "")
            if name == model:
                mses = [r["test"]["test/mse"] for r in found or []]
                many = len(mses) > 1
                cells.append(f"{min(mses):.3f}-{max(mses):.3f} ({len(mses)})" if many else "")
        cells += [f"{mse:.3f} / {mae:.3f}" for mse, mae in PUBLISHED[(dataset, horizon)]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    cli = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    cli.add_argument("--config", type=Path)
    cli.add_argument("--dataset", choices=("ETTh1", "ETTh2"), action="append")
    cli.add_argument("--horizon", type=int, action="append")
    cli.add_argument("--seed", type=int, default=1)
    cli.add_argument("--table", action="store_true", help="print the table of every result")
    args, extra = cli.parse_known_args()
    if args.table:
        print(comparison() + "\n\n" + table())
        return
    if args.config is None:
        cli.error("--config is required unless --table")
    for dataset, horizon in POINTS:
        if (args.dataset is None or dataset in args.dataset) and (
            args.horizon is None or horizon in args.horizon
        ):
            result = run(args.config, dataset, horizon, args.seed, extra)
            test = result["test"]
            print(
                f"{result['config']} {dataset} {horizon} s{args.seed}: mse {test['test/mse']:.4f}"
                f" mae {test['test/mae']:.4f} ({result['epochs']} epochs, {result['fit_s']} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
