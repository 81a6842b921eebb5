"""Time-series forecasting task: MSE training loss, errors reported in the series' own units
against the naive last-value forecast."""

from typing import Literal

import torch
import torch.nn.functional as F
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import Metric

from src.tasks.optim import configure


class ForecastMetrics(Metric):
    """Accumulates MSE, MAE, sMAPE and the naive forecast's MSE over an epoch (DDP-synced)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        for name in ("sq", "abs", "smape", "naive_sq", "count"):
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor, naive: Tensor) -> None:
        err = (pred - target).double()
        self.sq += err.pow(2).sum()
        self.abs += err.abs().sum()
        denom = (pred.abs() + target.abs()).double().clamp_min(1e-8)
        self.smape += (2 * err.abs() / denom).sum()
        self.naive_sq += (naive - target).double().pow(2).sum()
        self.count += target.numel()

    def compute(self) -> dict[str, Tensor]:
        mse = self.sq / self.count
        naive_mse = self.naive_sq / self.count
        return {
            "mse": mse,
            "rmse": mse.sqrt(),
            "mae": self.abs / self.count,
            "smape": 100 * self.smape / self.count,
            "naive_mse": naive_mse,
            "rel_naive": mse / naive_mse,
        }


class ForecastingTask(LightningModule):
    """Trains ``net(x) -> (N, output_len, T)`` on batches ``{x, y, last}`` (scaled values).

    The loss is the MSE on scaled targets; every reported error (``val/mse``, ``val/mae``,
    ``val/rmse``, ``val/smape``, ``val/rel_naive`` = MSE / naive MSE) is measured after inverse
    scaling, in the series' own units.

    Args:
        net: The network, e.g. :class:`src.models.forecaster.RNNForecaster`.
        target_mean: Per-target scaler mean (linked from the datamodule); stored in checkpoints.
        target_std: Per-target scaler std (linked from the datamodule).
        optimizer: Optimizer factory (YAML ``class_path``); Adam by default.
        scheduler: LR scheduler factory; ReduceLROnPlateau watches ``monitor``.
        monitor: Metric watched by ReduceLROnPlateau.
        scheduler_interval: Step the scheduler every ``"epoch"`` or ``"step"``.
    """

    def __init__(
        self,
        net: nn.Module,
        target_mean: list[float] | None = None,
        target_std: list[float] | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        monitor: str = "val/loss",
        scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net, self.optimizer, self.scheduler = net, optimizer, scheduler
        self.register_buffer("mean", torch.tensor(target_mean or [0.0]))
        self.register_buffer("std", torch.tensor(target_std or [1.0]))
        self.train_metrics = ForecastMetrics()
        self.val_metrics = ForecastMetrics()
        self.test_metrics = ForecastMetrics()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def inverse_transform(self, y: Tensor) -> Tensor:
        """Scaled ``(..., T)`` values back to the series' units."""
        return y * self.std + self.mean

    def _shared_step(self, batch: dict, stage: str) -> Tensor:
        pred = self(batch["x"])
        loss = F.mse_loss(pred, batch["y"])
        naive = batch["last"].unsqueeze(1).expand_as(batch["y"])  # repeat the last observation
        inv = self.inverse_transform
        getattr(self, f"{stage}_metrics").update(inv(pred.detach()), inv(batch["y"]), inv(naive))
        n = batch["y"].size(0)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=n, sync_dist=stage != "train")
        return loss

    def _log_epoch(self, stage: str) -> None:
        metric = getattr(self, f"{stage}_metrics")
        if metric.update_count:  # nothing to report after an empty epoch
            for name, value in metric.compute().items():
                self.log(f"{stage}/{name}", value.float(), prog_bar=name == "mse")
        metric.reset()

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        return {"forecast": self.inverse_transform(self(batch["x"]))}

    def configure_optimizers(self) -> dict:
        interval = self.hparams.scheduler_interval
        return configure(self, self.optimizer, self.scheduler, self.hparams.monitor, interval)
