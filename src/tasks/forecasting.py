"""Time-series forecasting task (direct multi-step, recursive one-step, seq2seq with teacher
forcing, stateful truncated BPTT): MSE loss, errors in the series' own units against the naive and
seasonal-naive forecasts; quantile forecasts with the pinball loss."""

import inspect
from typing import Literal

import torch
import torch.nn.functional as F
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from src.models.recursive import recursive_error, recursive_forecast
from src.tasks.checkpointing import SelfContained
from src.tasks.epoch_log import flush_metrics, log_loss, update_metrics
from src.tasks.forecast_metrics import ForecastMetrics
from src.tasks.optim import configure
from src.tasks.quantile import QuantileMetrics, check_quantiles, pinball_loss

__all__ = ["ForecastMetrics", "ForecastingTask"]
LOSSES = {"mse": F.mse_loss, "mae": F.l1_loss}


STAGES = ("train", "val", "test")


def _detach(state: Tensor | tuple[Tensor, ...]) -> Tensor | tuple[Tensor, ...]:
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


class ForecastingTask(SelfContained, LightningModule):
    """Trains a forecaster on batches ``{x, y, last[, seasonal]}`` (scaled values).

    The loss is the MSE (or MAE) on scaled targets; every reported error (``val/mse``, ``val/mae``,
    ``val/rmse``, ``val/smape``, ``val/rel_naive`` = MSE / naive MSE, and with a seasonal
    baseline ``val/seasonal_mse``, ``val/rel_seasonal``) is measured after inverse scaling, in the
    series' own units. Validation, test and predict always forecast the ``H`` steps after each
    input window, so every mode's figures are comparable:

    - direct (default): ``net(x)`` gives ``(N, H, T)``. A net whose ``forward`` has a ``target``
      parameter (e.g. :class:`~src.models.seq2seq_forecaster.Seq2SeqForecaster`) also receives
      the scaled truth ``y`` ``(N, H, T)`` in training, for teacher forcing; never when evaluating.
    - ``recursive``: a one-step net (:class:`~src.models.recursive.OneStepForecaster`) is trained
      on the first target step (so ``train/*`` are one-step figures) and evaluated over the
      horizon with :func:`~src.models.recursive.recursive_forecast`. Inputs must all be targets.
    - ``stateful``: training batches are contiguous stream chunks (``x`` ``(B, K, C)``, ``y``
      ``(B, K, H, T)``, ``last`` ``(B, K, T)``); ``net.forward_steps(x, state)`` forecasts the
      next ``H`` steps at every step of the chunk, the loss averages all of them, and the final
      state, detached, starts the next batch (truncated BPTT over ``K`` steps). The state resets to
      zeros at every training epoch's start and at every evaluation; evaluation forecasts each
      window from zeros after reading its ``input_len`` steps, like the other modes.

    With ``quantiles`` the net returns ``(N, H, T, Q)`` (one forecast per level), the loss is the
    pinball loss averaged over the levels, the point forecast scored above is the median, and
    ``{stage}/coverage`` (share of truths between the first and last level) and
    ``{stage}/pinball`` are logged as well (on scaled values).

    Args:
        net: The network, e.g. :class:`src.models.forecaster.RNNForecaster`.
        target_mean: Per-target scaler mean (linked from the datamodule); stored in checkpoints.
        target_std: Per-target scaler std (linked from the datamodule).
        optimizer: Optimizer factory (YAML ``class_path``); Adam by default.
        scheduler: LR scheduler factory; ReduceLROnPlateau watches ``monitor``.
        monitor: Metric watched by ReduceLROnPlateau.
        scheduler_interval: Step the scheduler every ``"epoch"`` or ``"step"``.
        recursive: Train one step ahead, forecast the horizon recursively.
        stateful: Carry the recurrent state across training batches (linked from the datamodule).
        horizon: Forecast steps ``H`` (linked from the datamodule's ``output_len``); used by
            :meth:`forward` in recursive mode.
        loss: Training loss of point forecasts, ``"mse"`` or ``"mae"``.
        quantiles: Increasing levels in ``(0, 1)`` including 0.5, e.g. ``[0.1, 0.5, 0.9]``; the
            net must then output ``(N, H, T, Q)`` (e.g. ``num_quantiles: 3``).
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
        recursive: bool = False,
        stateful: bool = False,
        horizon: int | None = None,
        loss: Literal["mse", "mae"] = "mse",
        quantiles: list[float] | None = None,
    ) -> None:
        super().__init__()
        if recursive and stateful:
            raise ValueError("recursive and stateful training cannot be combined; pick one")
        if stateful and not hasattr(net, "forward_steps"):
            raise ValueError(
                f"stateful=True needs a net with forward_steps(x, state), not {type(net).__name__};"
                " use src.models.stateful_forecaster.StatefulForecaster"
            )
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        self.median = None if quantiles is None else check_quantiles(quantiles)
        if quantiles is not None and (recursive or stateful):
            raise ValueError("quantiles work with direct forecasting only; drop recursive/stateful")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net, self.optimizer, self.scheduler = net, optimizer, scheduler
        self.keep_net_spec(net)
        self.register_buffer("mean", torch.tensor(target_mean or [0.0]))
        self.register_buffer("std", torch.tensor(target_std or [1.0]))
        self.train_metrics = ForecastMetrics()
        self.val_metrics = ForecastMetrics()
        self.test_metrics = ForecastMetrics()
        if quantiles is not None:
            self.register_buffer("levels", torch.tensor(quantiles), persistent=False)
            for stage in STAGES:
                setattr(self, f"{stage}_quantile_metrics", QuantileMetrics(quantiles))
        self.teacher_forcing = "target" in inspect.signature(net.forward).parameters
        self.carried_state = None  # stateful mode: the detached state carried to the next batch

    def forward(self, x: Tensor) -> Tensor:
        """Forecast ``(N, H, T)`` (scaled) from ``x`` ``(N, L, C)``."""
        if self.hparams.recursive:
            if self.hparams.horizon is None:
                raise ValueError("recursive forecasting needs horizon (the data's output_len)")
            return recursive_forecast(self.net, x, self.hparams.horizon)
        return self.net(x)

    def inverse_transform(self, y: Tensor) -> Tensor:
        """Scaled ``(..., T)`` values back to the series' units."""
        return y * self.std + self.mean

    def _forecast(self, batch: dict, stage: str) -> tuple[Tensor, dict]:
        """The scaled forecasts for ``batch`` and the batch they are scored against."""
        x, y = batch["x"], batch["y"]
        train = stage == "train"
        if train and self.hparams.stateful:
            if y.dim() != 4:
                raise ValueError("stateful training needs stream batches; set data stateful: true")
            pred, state = self.net.forward_steps(x, self.carried_state)  # (B, K, H, T)
            self.carried_state = _detach(state)  # truncate BPTT at the batch boundary
            return pred.flatten(0, 1), {k: v.flatten(0, 1) for k, v in batch.items()}
        if self.hparams.recursive:
            if x.size(-1) != y.size(-1):
                raise ValueError(recursive_error(x.size(-1), y.size(-1)))
            if not train:
                return recursive_forecast(self.net, x, y.size(1)), batch
            pred = self.net(x)  # (N, 1, T)
            if pred.size(1) != 1:
                raise ValueError(
                    f"recursive=True trains a one-step net, got {pred.size(1)} steps; use "
                    "src.models.recursive.OneStepForecaster"
                )
            return pred, {k: v[:, :1] if k in ("y", "seasonal") else v for k, v in batch.items()}
        if train and self.teacher_forcing:
            return self.net(x, target=y), batch
        return self.net(x), batch

    def point_forecast(self, pred: Tensor) -> Tensor:
        """The median ``(N, H, T)`` of quantile forecasts ``(N, H, T, Q)``; else ``pred``."""
        if self.median is None:
            return pred
        expected = len(self.hparams.quantiles)
        if pred.dim() != 4 or pred.size(-1) != expected:
            raise ValueError(
                f"quantiles={self.hparams.quantiles} need net outputs (N, H, T, {expected}), got "
                f"{tuple(pred.shape)}; set the net's num_quantiles: {expected}"
            )
        return pred[..., self.median]

    def _shared_step(self, batch: dict, stage: str) -> Tensor:
        pred, batch = self._forecast(batch, stage)
        y, seasonal, inv = batch["y"], batch.get("seasonal"), self.inverse_transform
        if self.median is not None:
            quantile_pred, pred = pred, self.point_forecast(pred)
            loss = pinball_loss(quantile_pred, y, self.levels)
            getattr(self, f"{stage}_quantile_metrics").update(quantile_pred.detach(), y)
        else:
            loss = LOSSES[self.hparams.loss](pred, y)
        naive = batch["last"].unsqueeze(1).expand_as(y)  # repeat the last observation
        seasonal = None if seasonal is None else inv(seasonal)
        update_metrics(self, stage, inv(pred.detach()), inv(y), inv(naive), seasonal)
        n = y.size(0)
        log_loss(self, stage, loss, n)
        return loss

    def _log_epoch(self, stage: str) -> None:
        flush_metrics(self, stage)
        metric = getattr(self, f"{stage}_metrics")
        if metric.update_count:  # nothing to report after an empty epoch
            for name, value in metric.compute().items():
                self.log(f"{stage}/{name}", value.float(), prog_bar=name == "mse")
        metric.reset()
        quantile = getattr(self, f"{stage}_quantile_metrics", None)
        if quantile is not None and quantile.update_count:
            for name, value in quantile.compute().items():
                self.log(f"{stage}/{name}", value.float())
            quantile.reset()

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_train_epoch_start(self) -> None:
        self.carried_state = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)  # the class paths, for src.checkpoints.restore
        if self.carried_state is not None:  # stateful, mid-epoch: the next batch continues it
            checkpoint["carried_state"] = self.carried_state

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.carried_state = checkpoint.get("carried_state")

    def on_validation_epoch_start(self) -> None:
        self.carried_state = None

    def on_test_epoch_start(self) -> None:
        self.carried_state = None

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        pred = self._forecast(batch, "predict")[0]
        out = {"forecast": self.inverse_transform(self.point_forecast(pred))}
        if self.median is not None:  # (N, H, T, Q) in the series' units
            out["quantiles"] = self.inverse_transform(pred.transpose(-1, -2)).transpose(-1, -2)
        return out

    def configure_optimizers(self) -> dict:
        interval = self.hparams.scheduler_interval
        return configure(self, self.optimizer, self.scheduler, self.hparams.monitor, interval)
