"""Time-series generators (noisy sine, sums of sines, trend + season, covariates, random walk)
and a CSV loader.

Every generator returns a float32 array of shape ``(T, C)`` whose channel 0 is the target; any
further channels are covariates.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from src.data.errors import DataError, DataNotFoundError, read_error


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def _grid(n_points: int, t_max: float) -> np.ndarray:
    return np.linspace(0, t_max, n_points)


def sine(
    n_points: int = 10000,
    t_max: float = 200.0,
    noise_std: float = 0.1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Noisy sine: ``sin(t) + noise_std * randn`` on ``linspace(0, t_max, n_points)``.

    Returns:
        ``(n_points, 1)`` float32 array.
    """
    t = _grid(n_points, t_max)
    y = np.sin(t) + noise_std * _rng(rng).standard_normal(n_points)
    return y[:, None].astype(np.float32)


def multi_sine(
    n_points: int = 10000,
    t_max: float = 200.0,
    noise_std: float = 0.1,
    frequencies: Sequence[float] = (1.0, 0.31, 2.3),
    amplitudes: Sequence[float] = (1.0, 0.6, 0.3),
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Sum of sines ``sum_k a_k sin(f_k t) + noise_std * randn`` on the same grid as :func:`sine`.

    Returns:
        ``(n_points, 1)`` float32 array.
    """
    if len(frequencies) != len(amplitudes):
        raise DataError(
            f"frequencies ({len(frequencies)}) and amplitudes ({len(amplitudes)}) differ in length"
        )
    t = _grid(n_points, t_max)
    y = sum(a * np.sin(f * t) for f, a in zip(frequencies, amplitudes, strict=True))
    y = y + noise_std * _rng(rng).standard_normal(n_points)
    return np.asarray(y)[:, None].astype(np.float32)


def trend_seasonal(
    n_points: int = 10000,
    t_max: float = 200.0,
    noise_std: float = 0.1,
    slope: float = 0.02,
    period: float = 2 * np.pi,
    amplitude: float = 1.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Linear trend plus seasonality: ``slope * t + amplitude * sin(2 pi t / period) + noise``.

    Returns:
        ``(n_points, 1)`` float32 array.
    """
    t = _grid(n_points, t_max)
    y = slope * t + amplitude * np.sin(2 * np.pi * t / period)
    y = y + noise_std * _rng(rng).standard_normal(n_points)
    return y[:, None].astype(np.float32)


def multivariate(
    n_points: int = 10000,
    t_max: float = 200.0,
    noise_std: float = 0.1,
    lag: int = 5,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Target driven by two covariates, one of them lagged.

    Channels ``[y, c1, c2]`` on ``t = linspace(0, t_max, n_points)`` with step index ``i``:

    - ``c1[i] = sin(0.25 t[i])``: a slow deterministic cycle (a calendar-like known input);
    - ``c2[i] = 0.95 c2[i-1] + 0.3 e[i]``: an AR(1) exogenous driver, ``e ~ N(0, 1)``;
    - ``y[i] = sin(t[i]) + 0.5 c1[i] + 0.8 c2[i - lag] + noise_std * n[i]``, ``n ~ N(0, 1)``.

    ``c2`` is simulated for ``lag`` extra warm-up steps, so ``c2[i - lag]`` exists for every ``i``.

    Returns:
        ``(n_points, 3)`` float32 array.
    """
    if lag < 0:
        raise DataError(f"lag must be >= 0, got {lag}")
    gen = _rng(rng)
    t = _grid(n_points, t_max)
    c1 = np.sin(0.25 * t)
    shocks = 0.3 * gen.standard_normal(n_points + lag)
    ar = np.empty(n_points + lag)
    ar[0] = shocks[0]
    for i in range(1, n_points + lag):
        ar[i] = 0.95 * ar[i - 1] + shocks[i]
    c2 = ar[lag:]  # c2[i] = ar[i + lag], so ar[i] = c2[i - lag]
    y = np.sin(t) + 0.5 * c1 + 0.8 * ar[:n_points] + noise_std * gen.standard_normal(n_points)
    return np.stack([y, c1, c2], axis=1).astype(np.float32)


def random_walk(
    n_points: int = 10000,
    step_std: float = 0.1,
    drift: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Gaussian random walk from 0: ``y[i] = y[i-1] + drift + step_std * randn``.

    Returns:
        ``(n_points, 1)`` float32 array.
    """
    steps = drift + step_std * _rng(rng).standard_normal(n_points)
    steps[0] = 0.0
    return np.cumsum(steps)[:, None].astype(np.float32)


def _rows(mask: np.ndarray, limit: int = 5) -> str:
    rows = np.flatnonzero(mask).tolist()
    return ", ".join(map(str, rows[:limit])) + (", ..." if len(rows) > limit else "")


def load_csv(
    path: str | Path,
    target_columns: Sequence[str],
    feature_columns: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Load a real series from a CSV file, targets first, then features.

    Args:
        path: CSV file with a header row; one row per time step, in chronological order.
        target_columns: columns to forecast (channels ``0 .. len(target_columns) - 1``).
        feature_columns: extra input columns (covariates); none by default.

    Returns:
        A ``(T, C)`` float32 array and its column names.

    Raises:
        DataNotFoundError: the file does not exist.
        DataError: missing columns, empty or unreadable file, non-numeric or NaN/infinite values
            (row numbers are 0-based data rows, the header excluded).
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"CSV file {str(path)!r} not found; check csv_path")
    targets, features = list(target_columns or []), list(feature_columns or [])
    if not targets:
        raise DataError("target_columns is empty; name at least one column to forecast")
    both = sorted(set(targets) & set(features))
    if both:
        raise DataError(f"columns {both} are both targets and features; targets are inputs too")
    try:
        frame = pd.read_csv(path, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise DataError(f"CSV file {str(path)!r} is empty") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path} is not a readable CSV: {' '.join(str(e).split())}") from None
    except (ValueError, OSError, EOFError, zlib.error) as e:
        raise read_error(path, e) from None
    names = targets + features
    found = [str(c) for c in frame.columns]
    missing = [c for c in names if c not in found]
    if missing:
        lower = {c.strip().lower(): c for c in found}
        near = [lower[c.lower()] for c in missing if c.lower() in lower]
        hint = f"; column names are case-sensitive (found {near})" if near else ""
        raise DataError(
            f"columns {missing} not in {path.name}; available: {found[:20]}{hint}; "
            "fix target_columns/feature_columns"
        )
    if len(frame) == 0:
        raise DataError(f"CSV file {str(path)!r} has a header but no rows")
    return frame_values(frame, names, path.name), names


def frame_values(frame: pd.DataFrame, names: Sequence[str], source: str) -> np.ndarray:
    """The columns ``names`` of ``frame`` as a ``(T, C)`` float32 array, checked as for training.

    Raises:
        DataError: missing columns, no rows, non-numeric or NaN/infinite values (row numbers are
            0-based data rows, the header excluded).
    """
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise DataError(f"columns {missing} not in {source}; available: {list(frame.columns)}")
    if len(frame) == 0:
        raise DataError(f"{source} has a header but no rows")
    columns = []
    for name in names:
        raw = frame[name]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna().to_numpy() & raw.notna().to_numpy()
        if bad.any():
            example = raw[bad].iloc[0]
            raise DataError(
                f"column {name} has {bad.sum()} non-numeric values at rows {_rows(bad)} "
                f"(e.g. {example!r}); clean them first"
            )
        values = values.to_numpy(dtype=np.float64)
        for kind, mask in (("NaN", np.isnan(values)), ("infinite", np.isinf(values))):
            if mask.any():
                raise DataError(
                    f"column {name} has {mask.sum()} {kind} values at rows {_rows(mask)}; "
                    "fill or drop them first"
                )
        columns.append(values)
    return np.stack(columns, axis=1).astype(np.float32)
