"""Reconstruction-based anomaly detection on time series (EncDec-AD, Malhotra et al. 2016): MSE
training, a threshold picked on validation, precision / recall / F1 against injected labels."""

import math
from typing import Literal

import numpy as np
import torch
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure  # no pyplot state: rendered by TensorBoard's Agg canvas
from torch import Tensor, nn

from src.tasks import anomaly_eval as ev
from src.tasks.checkpointing import SelfContained
from src.tasks.epoch_log import log_loss
from src.tasks.optim import configure


class AnomalyTask(SelfContained, LightningModule):
    """Trains a window autoencoder on batches ``{x (N, W, C), labels (N, W), start (N,)}``.

    Score: the reconstruction error per step ``(N, W)``, averaged over channels, then at the end
    of each validation / test epoch over all windows covering a step (through ``start``,
    :func:`~src.tasks.anomaly_eval.aggregate_windows`), then over ``smoothing`` neighbouring
    steps (:func:`~src.tasks.anomaly_eval.smooth`). A step is anomalous when its score exceeds
    ``threshold``, the value maximising the point-wise F1 on the validation labels
    (:func:`~src.tasks.anomaly_eval.best_f1_threshold`), stored as a buffer at every validation
    end, so a checkpoint carries the threshold of its own weights; test labels are only used to
    score. Baseline: a rolling z-score of the series
    (:func:`~src.tasks.anomaly_eval.rolling_zscore`) with the same smoothing, its trailing
    window (one of ``zscore_windows``) and threshold chosen on validation the same way.

    Logged: ``{val,test}/{precision,recall,f1,threshold}`` and
    ``{val,test}/zscore_{precision,recall,f1,threshold,window}``; ``train/loss`` (MSE over all
    steps), ``val/loss`` and ``test/loss`` (MSE over the steps labelled normal: the error on
    anomalies is the signal, not a fitting failure). At test end a figure of series, scores,
    thresholds, detections and true labels goes to TensorBoard as ``anomaly/test_plot``.

    Args:
        net: Window autoencoder ``(N, W, C) -> (N, W, C)``, e.g.
            :class:`src.models.autoencoder.LSTMAutoencoder`.
        optimizer: Optimizer factory (YAML ``class_path``); Adam by default.
        scheduler: LR scheduler factory; ReduceLROnPlateau watches ``monitor``.
        monitor: Metric watched by ReduceLROnPlateau.
        scheduler_interval: Step the scheduler every ``"epoch"`` or ``"step"``.
        input_noise: Std of Gaussian noise added to training inputs, the clean window being the
            target (denoising autoencoder, Vincent et al. 2008); 0 trains a plain autoencoder.
        smoothing: Odd width of the centred moving average applied to the per-step scores.
        zscore_windows: Candidate trailing windows of the z-score baseline.
        plot_steps: Steps of the test segment shown in the figure (from its start); ``None``: all.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        monitor: str = "val/loss",
        scheduler_interval: Literal["epoch", "step"] = "epoch",
        input_noise: float = 0.0,
        smoothing: int = 1,
        zscore_windows: list[int] | None = None,
        plot_steps: int | None = None,
    ) -> None:
        super().__init__()
        zscore_windows = zscore_windows or [10, 30, 100, 300]
        if input_noise < 0 or smoothing < 1 or smoothing % 2 == 0 or min(zscore_windows) < 2:
            raise ValueError(
                "need input_noise >= 0, an odd smoothing >= 1 and zscore_windows all >= 2, got "
                f"{input_noise}, {smoothing} and {zscore_windows}"
            )
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.hparams.zscore_windows = zscore_windows
        self.net, self.optimizer, self.scheduler = net, optimizer, scheduler
        self.keep_net_spec(net)
        for name in ("threshold", "zscore_threshold", "zscore_window"):  # set at validation end
            self.register_buffer(name, torch.tensor(math.nan))
        self._windows: dict[str, list[dict[str, Tensor]]] = {"val": [], "test": []}

    def forward(self, x: Tensor) -> Tensor:
        """Per-step reconstruction errors ``(N, W)`` (mean over channels) of ``x`` ``(N, W, C)``."""
        return (self.net(x) - x).pow(2).mean(-1)

    def _shared_step(self, batch: dict, stage: str) -> Tensor:
        x, labels = batch["x"], batch["labels"].bool()
        if stage == "train":
            noisy = x + self.hparams.input_noise * torch.randn_like(x)  # target stays clean
            loss = (self.net(noisy) - x).pow(2).mean()
        else:
            errors = self(x)  # (N, W)
            normal = ~labels
            loss = errors[normal].mean() if normal.any() else errors.mean()
            keep = {"errors": errors, "labels": labels.float(), "start": batch["start"], "x": x}
            self._windows[stage].append({k: v.detach() for k, v in keep.items()})
        n = x.size(0)
        log_loss(self, stage, loss, n)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        """Per-window errors ``(N, W)`` and starts ``(N,)``, to aggregate as in evaluation."""
        return {"error": self(batch["x"]), "start": batch["start"]}

    def _series(self, stage: str) -> dict[str, np.ndarray]:
        """The epoch's windows averaged onto the series: steps, scores, labels, values."""
        windows, self._windows[stage] = self._windows[stage], []
        cat = {k: torch.cat([w[k] for w in windows]) for k in windows[0]}
        if self.trainer.world_size > 1:  # equal shards (the distributed sampler pads them)
            cat = {k: self.all_gather(v).flatten(0, 1) for k, v in cat.items()}
        cat = {k: v.cpu() for k, v in cat.items()}
        first, scores, covered = ev.aggregate_windows(cat["errors"], cat["start"])
        labels = ev.aggregate_windows(cat["labels"], cat["start"])[1] > 0.5
        values = ev.aggregate_windows(cat["x"], cat["start"])[1]  # (T, C), equal in all windows
        return {
            "steps": first + np.flatnonzero(covered.numpy()),
            "scores": ev.smooth(scores[covered].numpy(), self.hparams.smoothing),
            "labels": labels[covered].numpy(),
            "values": values[covered].numpy(),
        }

    def _evaluate(self, stage: str, series: dict[str, np.ndarray]) -> None:
        labels, k = series["labels"], self.hparams.smoothing
        if stage == "val":
            self.threshold.fill_(ev.best_f1_threshold(series["scores"], labels))
            choice = ev.choose_zscore_window(
                series["values"], labels, self.hparams.zscore_windows, k
            )
            self.zscore_window.fill_(choice[0])
            self.zscore_threshold.fill_(choice[1])
        elif torch.isnan(self.threshold):
            raise RuntimeError(
                "no validation threshold: test a checkpoint written by fit, or run validate first"
            )
        window = int(self.zscore_window)
        series["zscores"] = ev.smooth(ev.rolling_zscore(series["values"], window), k)
        for prefix, score, threshold in (
            ("", series["scores"], float(self.threshold)),
            ("zscore_", series["zscores"], float(self.zscore_threshold)),
        ):
            series[f"{prefix}flags"] = score > threshold
            metrics = ev.precision_recall_f1(series[f"{prefix}flags"], labels)
            for name, value in {**metrics, "threshold": threshold}.items():
                self.log(f"{stage}/{prefix}{name}", value)
        self.log(f"{stage}/zscore_window", float(window))

    def on_validation_epoch_start(self) -> None:
        self._windows["val"] = []

    def on_test_epoch_start(self) -> None:
        self._windows["test"] = []

    def on_validation_epoch_end(self) -> None:
        if self._windows["val"]:
            self._evaluate("val", self._series("val"))

    def on_test_epoch_end(self) -> None:
        if not self._windows["test"]:
            return
        series = self._series("test")
        self._evaluate("test", series)
        loggers = [lg for lg in self.loggers if isinstance(lg, TensorBoardLogger)]
        if loggers and self.trainer.is_global_zero:
            figure = self._figure(series)
            loggers[0].experiment.add_figure("anomaly/test_plot", figure, self.global_step)

    def _figure(self, series: dict[str, np.ndarray]) -> Figure:
        """Series, model scores and z-scores against time; true anomalies shaded, detections x."""
        keep = slice(0, self.hparams.plot_steps)
        t, labels = series["steps"][keep], series["labels"][keep]
        fig = Figure(figsize=(12, 7), layout="constrained")
        axes = fig.subplots(3, 1, sharex=True)
        panels = [
            ("series (scaled, ch. 0)", series["values"][:, 0], None, series["flags"]),
            ("reconstruction error", series["scores"], self.threshold, series["flags"]),
            ("rolling z-score", series["zscores"], self.zscore_threshold, series["zscore_flags"]),
        ]
        for ax, (title, y, threshold, flags) in zip(axes, panels, strict=True):
            y, flags = y[keep], flags[keep]
            ax.plot(t, y, lw=0.8, color="tab:blue")
            for a, b in _runs(labels):
                ax.axvspan(t[a] - 0.5, t[b - 1] + 0.5, color="tab:red", alpha=0.2, lw=0)
            if threshold is not None:
                ax.axhline(float(threshold), color="black", ls="--", lw=0.8, label="threshold")
            ax.plot(t[flags], y[flags], "x", ms=3, color="tab:orange", label="detected")
            ax.set_ylabel(title, fontsize="small")
            ax.legend(loc="upper right", fontsize="small")
        if (series["scores"] > 0).all():
            axes[1].set_yscale("log")
        axes[0].set_title("test segment: true anomalies shaded red, detections marked x")
        axes[-1].set_xlabel("step")
        return fig

    def configure_optimizers(self) -> dict:
        interval = self.hparams.scheduler_interval
        return configure(self, self.optimizer, self.scheduler, self.hparams.monitor, interval)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``[a, b)`` index ranges of the True runs of a boolean ``(T,)`` array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))
