"""TensorBoard figures of forecasts against the truth for fixed evaluation windows, with the
outer-quantile interval when the task forecasts quantiles."""

import matplotlib

matplotlib.use("Agg")  # figures are rendered off-screen, also where no display exists

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from lightning import Callback, LightningModule, Trainer  # noqa: E402
from torch.utils.data import default_collate  # noqa: E402


class ForecastPlot(Callback):
    """After every validation epoch and after testing, logs one figure per stage (``val/forecast``,
    ``test/forecast``): ``num_windows`` windows spread evenly over the stage's dataset (the same
    ones every epoch) times the chosen ``channels``, each panel the input, the truth and the
    forecast on the scaled values, plus the band between the first and last quantile when the
    net returns ``(N, H, T, Q)``. Needs a logger with ``add_figure`` (TensorBoard); without one
    it does nothing.

    Args:
        num_windows: Windows per figure (rows).
        channels: Target channels drawn (columns); indices into the last axis of ``y``, those
            past its end left out.
        history: Input steps shown before the forecast; ``None`` shows them all.
    """

    def __init__(
        self, num_windows: int = 3, channels: list[int] | None = None, history: int | None = None
    ) -> None:
        if num_windows < 1:
            raise ValueError(f"num_windows must be >= 1, got {num_windows}")
        self.num_windows, self.channels, self.history = num_windows, channels or [0], history

    def _log(self, trainer: Trainer, module: LightningModule, stage: str) -> None:
        experiment = getattr(trainer.logger, "experiment", None)
        loaders = trainer.val_dataloaders if stage == "val" else trainer.test_dataloaders
        if not hasattr(experiment, "add_figure") or loaders is None or trainer.sanity_checking:
            return
        dataset = loaders[0].dataset if isinstance(loaders, list) else loaders.dataset
        n = min(self.num_windows, len(dataset))
        picks = [round(i * (len(dataset) - 1) / max(n - 1, 1)) for i in range(n)]
        batch = default_collate([dataset[i] for i in picks])
        with torch.no_grad():
            pred = module(batch["x"].to(module.device)).cpu()  # (n, H, T[, Q])
        median = getattr(module, "median", None)
        figure = self.figure(batch["x"], batch["y"], pred, picks, median)
        experiment.add_figure(f"{stage}/forecast", figure, global_step=trainer.global_step)
        plt.close(figure)

    def figure(self, x, y, pred, picks: list[int], median: int | None = None) -> plt.Figure:
        """Panels for inputs ``(n, L, C)``, truths ``(n, H, T)``, forecasts ``(n, H, T[, Q])``
        (``median``: the index of the quantile drawn as the line, by default the middle one)."""
        channels = [c for c in self.channels if c < y.size(-1)] or [0]  # per-channel samples: 1
        rows, cols = len(picks), len(channels)
        fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 2.2 * rows), squeeze=False)
        length, horizon = x.size(1), y.size(1)
        shown = min(self.history or length, length)
        past, future = range(-shown + 1, 1), range(1, horizon + 1)
        for r, window in enumerate(picks):
            for k, c in enumerate(channels):
                ax = axes[r][k]
                ax.plot(past, x[r, -shown:, c], color="0.5", lw=0.8, label="input")
                ax.plot(future, y[r, :, c], color="k", lw=1.0, label="truth")
                if pred.dim() == 4:
                    q = pred[r, :, c]  # (H, Q)
                    ax.fill_between(
                        future, q[:, 0], q[:, -1], color="C0", alpha=0.25, label="interval"
                    )
                    mid = q.size(1) // 2 if median is None else median
                    ax.plot(future, q[:, mid], color="C0", lw=1.0, label="median")
                else:
                    ax.plot(future, pred[r, :, c], color="C0", lw=1.0, label="forecast")
                ax.set_title(f"window {window}, channel {c}", fontsize=8)
                ax.tick_params(labelsize=7)
        axes[0][0].legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        return fig

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(trainer, pl_module, "test")
