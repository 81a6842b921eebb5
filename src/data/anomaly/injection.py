"""Labelled anomaly injection into time series: spikes, level shifts and noise bursts (the kinds of
synthetic anomaly used to evaluate EncDec-AD, Malhotra et al. 2016)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from src.data.errors import DataError

AnomalyKind = Literal["spike", "level_shift", "noise_burst"]
KINDS: tuple[str, ...] = ("spike", "level_shift", "noise_burst")


@dataclass(frozen=True)
class Anomaly:
    """One injected event: steps ``[start, start + length)`` of ``channel``; ``size`` in units of
    the channel's std (spike / shift offset, signed; std of the burst's added noise)."""

    kind: str
    start: int
    length: int
    channel: int
    size: float


def check_settings(kinds, rate, spike, shift, burst, min_len, max_len, gap) -> None:
    """Raise a one-line ``DataError`` for unknown kinds, a bad rate, lengths or sizes."""
    bad = sorted(set(kinds) - set(KINDS))
    if bad or not kinds:
        raise DataError(f"unknown anomaly kinds {bad or '(none)'}; pick from {list(KINDS)}")
    if not 0 <= rate <= 0.1:
        raise DataError(f"anomaly rate must lie in [0, 0.1] events per step, got {rate}")
    if not 1 <= min_len <= max_len:
        raise DataError(f"need 1 <= min_len <= max_len, got {min_len} and {max_len}")
    if min(spike, shift, burst) <= 0 or gap < 0:
        raise DataError("spike_scale, shift_scale and burst_scale must be > 0 and gap >= 0")


def sample_anomalies(
    length: int,
    channels: int,
    rng: np.random.Generator,
    rate: float = 0.004,
    kinds: Sequence[str] = KINDS,
    spike_scale: float = 4.0,
    shift_scale: float = 1.5,
    burst_scale: float = 2.5,
    min_len: int = 10,
    max_len: int = 40,
    gap: int = 20,
) -> list[Anomaly]:
    """Draw ``max(1, round(rate * length))`` non-overlapping events (none if ``rate == 0``).

    Kinds alternate in the order given (so every kind appears once there are enough events);
    positions are uniform, at least ``gap`` steps apart; spikes last one step, the others
    ``min_len..max_len`` steps. Offsets get a random sign.
    """
    check_settings(kinds, rate, spike_scale, shift_scale, burst_scale, min_len, max_len, gap)
    count = max(1, round(rate * length)) if rate > 0 else 0
    events, taken = [], np.zeros(length + 2 * gap, dtype=bool)  # padded by gap on both sides
    for i in range(count):
        kind = kinds[i % len(kinds)]
        size = 1 if kind == "spike" else int(rng.integers(min_len, max_len + 1))
        for _ in range(100):  # rejection sampling of a free slot
            start = int(rng.integers(0, length - size + 1)) if length >= size else -1
            if start >= 0 and not taken[start : start + size + 2 * gap].any():
                break
        else:
            raise DataError(
                f"cannot place {count} anomalies {gap} steps apart in {length} steps; "
                "lower anomaly_rate, max_len or gap, or raise n_points"
            )
        taken[start + gap : start + gap + size] = True
        scale = {"spike": spike_scale, "level_shift": shift_scale, "noise_burst": burst_scale}
        sign = 1.0 if kind == "noise_burst" else float(rng.choice([-1.0, 1.0]))
        channel = int(rng.integers(0, channels))
        events.append(Anomaly(kind, start, size, channel, sign * scale[kind]))
    return sorted(events, key=lambda e: e.start)


def apply_anomalies(
    values: np.ndarray, events: Sequence[Anomaly], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Perturb a copy of ``values`` ``(T, C)``; sizes scale with each channel's std.

    Returns:
        ``(values (T, C) float32, labels (T,) bool)``: labels are True on every perturbed step.
    """
    out = np.array(values, dtype=np.float64)
    labels = np.zeros(len(out), dtype=bool)
    std = out.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    for e in events:
        steps = slice(e.start, e.start + e.length)
        if e.kind == "noise_burst":
            out[steps, e.channel] += e.size * std[e.channel] * rng.standard_normal(e.length)
        else:  # spike (one step) or level shift: a constant offset
            out[steps, e.channel] += e.size * std[e.channel]
        labels[steps] = True
    return out.astype(np.float32), labels


def inject_anomalies(
    values: np.ndarray, rng: np.random.Generator, **settings
) -> tuple[np.ndarray, np.ndarray]:
    """Inject anomalies into ``values`` ``(T, C)``: :func:`sample_anomalies` then
    :func:`apply_anomalies`; ``settings`` are :func:`sample_anomalies`'s keyword arguments.

    Returns:
        ``(values (T, C) float32, labels (T,) bool)``.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise DataError(f"values must have shape (T, C), got {values.shape}")
    if not np.isfinite(values).all():
        raise DataError("values contain NaN or infinite entries; clean the series first")
    events = sample_anomalies(len(values), values.shape[1], rng, **settings)
    return apply_anomalies(values, events, rng)
