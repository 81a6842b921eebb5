"""The interface every task's predictor implements, and length-bucketed batching."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule, LightningModule


class Predictor:
    """Predictions for one input from a checkpoint's task and datamodule, as output rows.

    :meth:`predict` reads and checks the whole input before it returns, so a bad input fails
    before any output is written; the rows are then computed as they are consumed.

    Args:
        task: The task, in eval mode.
        datamodule: Its datamodule with the checkpoint's preprocessing state.
        batch_size: Inputs per forward pass.
        options: The values of the ``python -m src.predict`` options named in :attr:`options`.
    """

    #: ``python -m src.predict`` options this predictor reads (beyond input, output, batch size)
    options: tuple[str, ...] = ()

    def __init__(
        self,
        task: LightningModule,
        datamodule: LightningDataModule | None,
        batch_size: int = 64,
        **options: Any,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"--batch_size must be positive, got {batch_size}")
        self.task, self.datamodule, self.batch_size = task, datamodule, batch_size
        self.__dict__.update(options)

    def predict(self, path: str, fmt: str | None = None) -> Iterator[dict[str, Any]]:
        """Rows for the input at ``path`` (``-``: standard input) in format ``fmt``."""
        raise NotImplementedError


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Input indices sorted by length (longest first) and cut into batches of ``batch_size``,
    so that each batch holds similar lengths and little padding."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def in_input_order(batches: list[np.ndarray], compute: Any, n: int) -> Iterator[dict[str, Any]]:
    """Run ``compute(indices) -> rows`` on every batch under ``inference_mode`` and yield the rows
    in input order."""
    rows: list[dict[str, Any] | None] = [None] * n
    with torch.inference_mode():
        for indices in batches:
            for i, row in zip(indices, compute(indices), strict=True):
                rows[int(i)] = row
    yield from rows  # type: ignore[misc]
