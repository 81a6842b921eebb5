"""Forecasts after the end of a new series: the next ``output_len`` steps in the series' units,
with future timestamps when the input has a date column."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from src.predict.base import Predictor
from src.predict.series import read_series


class Forecaster(Predictor):
    """A CSV series (targets and covariates, optionally dates) -> one row per future step.

    The last ``input_len`` rows are scaled with the training scaler, forecast, and scaled back;
    rows are ``{"step": 1.., "<date column>": ..., "<target>": value ...}``.
    """

    options = ("columns", "date_column")

    def predict(self, path: str, fmt: str | None = None) -> Iterator[dict[str, Any]]:
        dm, task = self.datamodule, self.task
        window = dm.input_len
        series = read_series(path, dm, window, self.columns, self.date_column)
        x = torch.from_numpy(series.scaled[-window:]).unsqueeze(0)  # (1, L, C)
        targets = dm.column_names[: dm.n_targets]
        dates = series.future_dates(dm.output_len)

        def rows() -> Iterator[dict[str, Any]]:
            with torch.inference_mode():
                forecast = task.inverse_transform(task(x))[0]  # (H, T) in the series' units
            for h, values in enumerate(forecast.tolist()):
                row: dict[str, Any] = {"step": h + 1}
                if dates is not None:
                    row[series.date_column] = dates[h]
                yield row | {name: v for name, v in zip(targets, values, strict=True)}

        return rows()
