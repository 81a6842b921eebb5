"""Oracle forecasts of the noisy sine ``sin(t) + 0.1 ε``, which know its frequency, amplitude and
noise: the noise floor, phase-only least squares and the Bayes posterior mean, the bounds of any
forecaster.

    python -m src.analysis.sine_oracle [--seed 1] [--predictions <run>/predictions.jsonl]

The series is ``sin(t) + noise_std * eps`` with the window's phase unknown. Under a uniform prior
on the phase, the posterior-mean forecast is the lowest expected MSE any function of the input
window can reach; its MSE on a split is the fair floor for a model, while the noise floor is not
reachable. ``--predictions`` scores a ``predict`` run on the test windows (``PredictionWriter``
JSON Lines) against the targets and against the Bayes forecast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from src.data.series.datamodule import TimeSeriesDataModule


def phase_forecasts(
    windows: np.ndarray, dt: float, horizon: int, noise_std: float, n_phases: int = 3600
) -> tuple[np.ndarray, np.ndarray]:
    """Bayes posterior-mean and phase-only least-squares forecasts of ``sin`` continuations.

    Args:
        windows: ``(N, L)`` observed values in the series' units.
        dt: Time step of the grid.
        horizon: Steps to forecast ``H``.
        noise_std: Std of the observation noise.
        n_phases: Grid points over ``[0, 2 pi)`` for the phase.

    Returns:
        ``(bayes, least_squares)``, each ``(N, H)``.
    """
    length = windows.shape[1]
    phases = np.linspace(0, 2 * np.pi, n_phases, endpoint=False)
    curves = np.sin(phases[:, None] + dt * np.arange(length + horizon))  # (P, L + H)
    past, future = curves[:, :length], curves[:, length:]
    # ||x - s||^2 = ||x||^2 - 2 x.s + ||s||^2; the first term is the same for every phase
    sq_err = (past**2).sum(1)[None, :] - 2 * windows @ past.T  # (N, P)
    log_lik = -sq_err / (2 * noise_std**2)
    weights = np.exp(log_lik - log_lik.max(1, keepdims=True))
    bayes = (weights @ future) / weights.sum(1, keepdims=True)
    return bayes, future[sq_err.argmin(1)]


def split_windows(dm: TimeSeriesDataModule, split: str) -> dict[str, np.ndarray]:
    """Inputs ``(N, L)``, targets ``(N, H)`` and the noiseless targets of a split, in units."""
    series = dm.inverse_transform_target(dm.data[:, :1]).numpy()[:, 0].astype(np.float64)
    clean = np.sin(np.linspace(0, dm.t_max, dm.n_points))
    starts = dm.window_starts[split]
    inputs = starts[:, None] + np.arange(dm.input_len)
    targets = starts[:, None] + dm.input_len + np.arange(dm.output_len)
    return {"x": series[inputs], "y": series[targets], "clean": clean[targets]}


def report(dm: TimeSeriesDataModule, predictions: str | None = None) -> dict[str, dict]:
    """MSE of the oracles (and of ``predictions`` on test) per split, in the series' units."""
    if dm.series != "sine":
        raise ValueError(f"the oracle knows the sine only, got series={dm.series!r}")
    dt = dm.t_max / (dm.n_points - 1)
    rows = {}
    for split in ("val", "test"):
        w = split_windows(dm, split)
        bayes, lsq = phase_forecasts(w["x"], dt, dm.output_len, dm.noise_std)
        naive = np.repeat(w["x"][:, -1:], dm.output_len, 1)
        rows[split] = {
            "noise_floor": float(((w["y"] - w["clean"]) ** 2).mean()),
            "bayes": float(((w["y"] - bayes) ** 2).mean()),
            "phase_least_squares": float(((w["y"] - lsq) ** 2).mean()),
            "naive": float(((w["y"] - naive) ** 2).mean()),
        }
        if split == "test" and predictions is not None:
            forecast = read_forecasts(predictions, len(w["y"]))
            rows[split]["model"] = float(((w["y"] - forecast) ** 2).mean())
            rows[split]["model_vs_bayes"] = float(((forecast - bayes) ** 2).mean())
    return rows


def read_forecasts(path: str, n: int) -> np.ndarray:
    """``(n, H)`` forecasts of target channel 0 from a ``PredictionWriter`` JSON Lines file."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if len(rows) != n:
        raise ValueError(f"{path} holds {len(rows)} forecasts, the test split has {n} windows")
    rows.sort(key=lambda r: r.get("index", 0))
    return np.array([[step[0] for step in r["forecast"]] for r in rows])


def main() -> None:
    cli = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    cli.add_argument("--seed", type=int, default=1, help="noise seed (the configs use 1)")
    cli.add_argument("--input_len", type=int, default=60)
    cli.add_argument("--output_len", type=int, default=10)
    cli.add_argument("--predictions", help="PredictionWriter JSON Lines of a test-set predict run")
    args = cli.parse_args()
    dm = TimeSeriesDataModule(
        "sine", input_len=args.input_len, output_len=args.output_len, seed=args.seed
    )
    rows = report(dm, args.predictions)
    names = list(rows["test"])
    print("| MSE | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for split, row in rows.items():
        print(
            f"| {split} | " + " | ".join(f"{row[k]:.6f}" if k in row else "" for k in names) + " |"
        )


if __name__ == "__main__":
    main()
