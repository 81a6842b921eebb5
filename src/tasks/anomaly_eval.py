"""Evaluation of per-step anomaly scores (EncDec-AD, Malhotra et al. 2016): window-to-series
aggregation, the F1-maximising threshold, precision / recall / F1, a rolling z-score baseline."""

import numpy as np
import torch
from torch import Tensor


def aggregate_windows(values: Tensor, starts: Tensor) -> tuple[int, Tensor, Tensor]:
    """Average per-step values of overlapping windows onto the series they were cut from.

    Args:
        values: ``(N, W, ...)`` one value (or vector) per window step.
        starts: ``(N,)`` absolute index of each window's first step.

    Returns:
        ``(first, series, covered)``: ``first`` the absolute index of the first covered step,
        ``series`` ``(T, ...)`` the mean over all windows covering each step (``T = max(starts)
        + W - first``; 0 where no window covers it), ``covered`` ``(T,)`` bool.
    """
    if values.dim() < 2 or starts.shape != values.shape[:1] or len(starts) == 0:
        raise ValueError(
            f"need values (N, W, ...) and starts (N,), got {tuple(values.shape)} and "
            f"{tuple(starts.shape)}"
        )
    n, w = values.shape[:2]
    first = int(starts.min())
    length = int(starts.max()) - first + w
    index = (starts.long() - first)[:, None] + torch.arange(w)  # (N, W) position in the series
    index, values = index.flatten(), values.double().flatten(0, 1)  # (N * W), (N * W, ...)
    total = values.new_zeros((length, *values.shape[1:])).index_add_(0, index, values)
    count = values.new_zeros(length).index_add_(0, index, values.new_ones(n * w))
    covered = count > 0
    shape = (length,) + (1,) * (values.dim() - 1)
    return first, total / count.clamp(min=1).view(shape), covered


def precision_recall_f1(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Point-wise precision, recall and F1 of boolean ``predicted`` against ``labels`` ``(T,)``.

    A ratio with a zero denominator (nothing flagged, nothing to find) counts as 0.
    """
    predicted, labels = np.asarray(predicted, bool), np.asarray(labels, bool)
    if predicted.shape != labels.shape:
        raise ValueError(f"predictions {predicted.shape} and labels {labels.shape} differ")
    tp = float(np.sum(predicted & labels))
    precision = tp / max(float(predicted.sum()), 1.0)
    recall = tp / max(float(labels.sum()), 1.0)
    f1 = 2 * tp / max(float(predicted.sum() + labels.sum()), 1.0)
    return {"precision": precision, "recall": recall, "f1": f1}


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """Threshold ``tau`` maximising the F1 of ``scores > tau`` against ``labels`` ``(T,)``.

    Every cut between two distinct score values is tried; ``tau`` is the midpoint between the
    lowest flagged score and the highest unflagged one (the next lower distinct score, or that
    score minus 1 when all steps are flagged). Among equal F1s the highest threshold wins. Without
    any positive label the F1 is 0 everywhere; ``tau = max(scores)``, which flags nothing.
    """
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, bool)
    if scores.shape != labels.shape or scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"need scores and labels of one shape (T,), got {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("anomaly scores contain NaN or infinite values")
    if not labels.any():
        return float(scores.max())
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], np.cumsum(labels[order])  # flag the top k = 1..T
    flagged = np.arange(1, len(ranked) + 1)
    cut = np.append(ranked[1:] < ranked[:-1], True)  # a cut must not split equal scores
    f1 = np.where(cut, 2 * hits / (flagged + labels.sum()), -1.0)
    k = int(np.argmax(f1))  # first maximum: the fewest flagged, i.e. the highest threshold
    below = ranked[k + 1] if k + 1 < len(ranked) else ranked[k] - 1.0
    return float((ranked[k] + below) / 2)


def rolling_zscore(values: np.ndarray, window: int) -> np.ndarray:
    """Rolling z-score baseline: ``|x_t - mean| / std`` over the ``window`` steps before ``t``.

    The trailing window excludes ``x_t`` and is shorter at the start (steps with fewer than two
    earlier values score 0); a flat history's std is floored at ``1e-6``. Channels are averaged.

    Args:
        values: ``(T,)`` or ``(T, C)`` series.
        window: trailing steps of history (>= 2).

    Returns:
        ``(T,)`` float64 scores.
    """
    if window < 2:
        raise ValueError(f"the z-score window must be >= 2 steps, got {window}")
    x = np.asarray(values, np.float64)
    x = x[:, None] if x.ndim == 1 else x
    zeros = np.zeros((1, x.shape[1]))
    s1, s2 = np.concatenate([zeros, x.cumsum(0)]), np.concatenate([zeros, (x * x).cumsum(0)])
    t = np.arange(len(x))
    lo = np.maximum(t - window, 0)
    count = (t - lo)[:, None]  # values in x[lo : t]
    safe = np.maximum(count, 1)
    mean = (s1[t] - s1[lo]) / safe
    var = np.maximum((s2[t] - s2[lo]) / safe - mean**2, 0.0)
    z = np.abs(x - mean) / np.maximum(np.sqrt(var), 1e-6)
    return np.where(count >= 2, z, 0.0).mean(axis=1)


def smooth(scores: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of ``scores`` ``(T,)`` over ``width`` (odd) steps; the mean of the
    steps available at the ends. ``width=1`` returns the scores unchanged."""
    if width < 1 or width % 2 == 0:
        raise ValueError(f"the smoothing width must be an odd number >= 1, got {width}")
    scores = np.asarray(scores, np.float64)
    if width == 1:
        return scores
    kernel = np.ones(width)
    return np.convolve(scores, kernel, "same") / np.convolve(np.ones_like(scores), kernel, "same")


def choose_zscore_window(
    values: np.ndarray, labels: np.ndarray, windows: list[int], smoothing: int = 1
) -> tuple[int, float]:
    """The z-score baseline's trailing window and threshold with the best validation F1.

    Args:
        values: ``(T,)`` or ``(T, C)`` validation series.
        labels: ``(T,)`` bool validation labels.
        windows: candidate trailing windows (>= 2 each); of equal F1s the shortest wins.
        smoothing: width of :func:`smooth` applied to the z-scores, as to the model's scores.

    Returns:
        ``(window, threshold)``.
    """
    if not windows:
        raise ValueError("zscore_windows is empty; give at least one trailing window")
    best = (-1.0, 0, 0.0)
    for window in windows:
        scores = smooth(rolling_zscore(values, window), smoothing)
        threshold = best_f1_threshold(scores, labels)
        f1 = precision_recall_f1(scores > threshold, labels)["f1"]
        best = max(best, (f1, -window, threshold))  # higher F1, then the shorter window
    return -best[1], best[2]
