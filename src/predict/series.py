"""A new series read from CSV for the forecaster and the anomaly detector: the model's channels
(by name, or renamed with ``--columns``), scaled as in training, and its optional date column."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from src.data.series.source import frame_values
from src.predict.io import read_table


@dataclass
class Series:
    """``values`` ``(T, C)`` in the model's channel order, ``scaled`` with the training scaler,
    and the parsed ``dates`` of ``date_column`` (None without one)."""

    values: np.ndarray
    scaled: np.ndarray
    dates: pd.DatetimeIndex | None
    date_column: str | None

    def formatted_dates(self, dates: pd.DatetimeIndex) -> list[str]:
        """Dates as text: ``YYYY-MM-DD`` when the input has no times of day, else with them."""
        midnight = bool((self.dates == self.dates.normalize()).all())
        return [d.strftime("%Y-%m-%d") if midnight else str(d) for d in dates]

    def future_dates(self, steps: int) -> list[str] | None:
        """The ``steps`` timestamps after the last one, at the input's frequency (its inferred
        calendar frequency, else its median step); None without dates."""
        if self.dates is None:
            return None
        freq = pd.infer_freq(self.dates) if len(self.dates) >= 3 else None
        if freq is not None:
            future = pd.date_range(self.dates[-1], periods=steps + 1, freq=freq)[1:]
        else:
            step = pd.Series(self.dates).diff().median()
            future = pd.DatetimeIndex([self.dates[-1] + step * k for k in range(1, steps + 1)])
        return self.formatted_dates(future)


def _parse_dates(frame: pd.DataFrame, column: str, source: str) -> pd.DatetimeIndex | None:
    try:
        dates = pd.DatetimeIndex(pd.to_datetime(frame[column], format="mixed"))
    except (ValueError, TypeError):
        return None
    if dates.isna().any():
        return None
    if not dates.is_monotonic_increasing or dates.has_duplicates:
        raise ValueError(f"{source}: the dates in column {column!r} are not strictly increasing")
    return dates


def read_series(
    path: str, datamodule, min_len: int, columns: str | None = None, date_column: str | None = None
) -> Series:
    """Read, check and scale a CSV series for ``datamodule``'s model (see the module doc).

    Args:
        path: CSV file, ``-`` for standard input.
        datamodule: Restored datamodule with ``column_names``, ``mean`` and ``std``.
        min_len: Fewest rows the model can use (its input window).
        columns: Comma-separated input column names standing for the model's channels, in order.
        date_column: The date column; by default the first other column that parses as dates.
    """
    source = "standard input" if path == "-" else path
    frame = read_table(path)
    names = list(datamodule.column_names)
    wanted = [c.strip() for c in columns.split(",")] if columns else names
    if len(wanted) != len(names):
        raise ValueError(f"--columns names {len(wanted)} columns; the model reads {len(names)}")
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source} lacks column(s) {missing}; the model reads {names} (targets first): "
            "name your columns so, or map them in that order with --columns a,b,..."
        )
    values = frame_values(frame, wanted, source)
    if len(values) < min_len:
        raise ValueError(
            f"{source} has {len(values)} rows, fewer than the model's input window of {min_len} "
            "steps; give a longer series"
        )
    dates = None
    if date_column is not None:
        if date_column not in frame.columns:
            raise ValueError(f"{source} has no date column {date_column!r}")
        dates = _parse_dates(frame, date_column, source)
        if dates is None:
            raise ValueError(f"{source}: column {date_column!r} does not parse as dates")
    else:
        others = [c for c in frame.columns if c not in wanted]
        others = [c for c in others if not pd.api.types.is_numeric_dtype(frame[c])]
        for column in others:
            dates = _parse_dates(frame, column, source)
            if dates is not None:
                date_column = column
                break
    scaled = ((values - datamodule.mean) / datamodule.std).astype(np.float32)
    return Series(values, scaled, dates, date_column if dates is not None else None)
