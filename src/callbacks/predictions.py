"""Writes ``predict`` outputs to JSON Lines or CSV, one row per example."""

import csv
import json
from pathlib import Path
from typing import Literal

import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter


class PredictionWriter(BasePredictionWriter):
    """Streams every predict batch to ``path`` (default ``<log_dir>/predictions.<format>``).

    Each row holds the example's index in the predict dataset (when the loader knows it) and
    every tensor the task's ``predict_step`` returned, as plain numbers or lists. Under DDP each
    rank writes its own file (``predictions-rank<R>.<format>``).

    Args:
        path: Output file; ``None`` writes into the run's log directory.
        format: ``"jsonl"`` or ``"csv"`` (list values are JSON-encoded in their cell).
    """

    def __init__(self, path: str | None = None, format: Literal["jsonl", "csv"] = "jsonl") -> None:
        super().__init__(write_interval="batch")
        if format not in ("jsonl", "csv"):
            raise ValueError(f"format must be 'jsonl' or 'csv', got {format!r}")
        self.path, self.format = path, format
        self._file, self._csv = None, None

    def _target(self, trainer: Trainer) -> Path:
        if self.path is not None:
            path = Path(self.path)
        else:
            path = Path(trainer.log_dir or trainer.default_root_dir) / f"predictions.{self.format}"
        if trainer.world_size > 1:
            path = path.with_name(f"{path.stem}-rank{trainer.global_rank}{path.suffix}")
        return path

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.output_path = self._target(trainer)
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.output_path.open("w", newline="")
        self._csv = None

    def write_on_batch_end(
        self, trainer, pl_module, prediction: dict, batch_indices, batch, batch_idx, dataloader_idx
    ) -> None:
        columns = {
            k: v.detach().cpu().tolist() for k, v in prediction.items() if torch.is_tensor(v)
        }
        n = len(next(iter(columns.values())))
        for i in range(n):
            row = {"index": batch_indices[i]} if batch_indices is not None else {}
            row.update({k: v[i] for k, v in columns.items()})
            if self.format == "jsonl":
                self._file.write(json.dumps(row) + "\n")
                continue
            if self._csv is None:
                self._csv = csv.DictWriter(self._file, fieldnames=list(row))
                self._csv.writeheader()
            self._csv.writerow(
                {k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()}
            )

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
