"""Anomaly scores of a new series: the reconstruction error of every step, averaged over the
windows covering it and smoothed as in evaluation, flagged above the checkpoint's threshold."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from src.predict.base import Predictor
from src.predict.series import read_series
from src.tasks.anomaly_eval import aggregate_windows, smooth


class AnomalyScorer(Predictor):
    """A CSV series -> one row per step: ``{"step", "<date column>", "score", "anomaly"}``.

    Windows of the training ``window`` every ``stride`` steps (the last one ending at the last
    step), scaled with the training scaler, as :class:`~src.tasks.anomaly.AnomalyTask` scores its
    test segment.
    """

    options = ("columns", "date_column")

    def predict(self, path: str, fmt: str | None = None) -> Iterator[dict[str, Any]]:
        dm, task = self.datamodule, self.task
        threshold = float(task.threshold)
        if math.isnan(threshold):
            raise ValueError("the checkpoint has no threshold: use one written by fit (validation)")
        series = read_series(path, dm, dm.window, self.columns, self.date_column)
        total = len(series.scaled)
        starts = np.arange(0, total - dm.window + 1, dm.stride)
        if starts[-1] != total - dm.window:  # cover the tail too
            starts = np.append(starts, total - dm.window)
        data = torch.from_numpy(series.scaled)
        dates = None if series.dates is None else series.formatted_dates(series.dates)

        def rows() -> Iterator[dict[str, Any]]:
            errors = []
            with torch.inference_mode():
                for i in range(0, len(starts), self.batch_size):
                    chunk = starts[i : i + self.batch_size]
                    x = torch.stack([data[s : s + dm.window] for s in chunk])  # (N, W, C)
                    errors.append(task(x))  # (N, W)
            _, scores, _ = aggregate_windows(torch.cat(errors), torch.from_numpy(starts))
            scores = smooth(scores.numpy(), task.hparams.smoothing)
            for step, score in enumerate(scores.tolist()):
                row: dict[str, Any] = {"step": step}
                if dates is not None:
                    row[series.date_column] = dates[step]
                yield row | {"score": score, "anomaly": score > threshold}

        return rows()
