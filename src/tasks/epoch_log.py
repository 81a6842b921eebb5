"""Metric logging shared by the tasks: epoch metrics fed in bulk and computed once, training step
values logged only on the steps Lightning writes."""

import torch
from lightning import LightningModule
from torch import Tensor
from torchmetrics import Metric, MetricCollection

BUFFER_ELEMENTS = 1 << 20  # predictions held per stage before the metrics take them (4 MiB fp32)


def update_metrics(module: LightningModule, stage: str, *inputs: Tensor | None) -> None:
    """Give one step's ``inputs`` (e.g. predictions, targets) to ``module.{stage}_metrics``.

    They are kept (detached) and passed on concatenated once the first inputs of the kept steps
    hold ``BUFFER_ELEMENTS`` values, and at the epoch's end (:func:`flush_metrics`): a torchmetrics
    update has a fixed cost that hardly depends on its number of rows, so one update per buffer
    instead of one per step saves it on nearly every step. ``None`` inputs stay ``None``.
    """
    kept = module.__dict__.setdefault("_metric_inputs", {}).setdefault(stage, [0, []])
    kept[0] += inputs[0].numel()
    kept[1].append(tuple(None if t is None else t.detach() for t in inputs))
    if kept[0] >= BUFFER_ELEMENTS:
        flush_metrics(module, stage)


def flush_metrics(module: LightningModule, stage: str) -> None:
    """Pass the inputs kept by :func:`update_metrics` to ``module.{stage}_metrics``."""
    kept = module.__dict__.get("_metric_inputs", {}).pop(stage, None)
    if kept:
        columns = zip(*kept[1], strict=True)  # one tuple per input, one entry per step
        inputs = [None if c[0] is None else torch.cat(c) for c in columns]
        getattr(module, f"{stage}_metrics").update(*inputs)


def log_epoch(module: LightningModule, metrics: MetricCollection, prog_bar: bool) -> None:
    """Log ``metrics.compute()`` (synced across ranks) once, then reset them.

    The tasks feed their metrics every step but log them here, at the epoch's end: each
    ``self.log`` call has a fixed cost in Lightning (it walks the stored result's attributes),
    which adds up when made per metric per step. Nothing is logged for an epoch without batches.
    """
    if any(m.update_count for m in metrics.values()):
        module.log_dict(metrics.compute(), prog_bar=prog_bar)
    metrics.reset()


class EpochMetrics:
    """LightningModule mixin: logs ``train_metrics`` / ``val_metrics`` / ``test_metrics`` (each a
    ``MetricCollection`` fed by :func:`update_metrics`) with :func:`log_epoch` at their epoch's
    end."""

    def on_train_epoch_end(self) -> None:
        flush_metrics(self, "train")
        log_epoch(self, self.train_metrics, prog_bar=False)

    def on_validation_epoch_end(self) -> None:
        flush_metrics(self, "val")
        log_epoch(self, self.val_metrics, prog_bar=True)

    def on_test_epoch_end(self) -> None:
        flush_metrics(self, "test")
        log_epoch(self, self.test_metrics, prog_bar=True)


def writes_step_logs(module: LightningModule) -> bool:
    """Whether Lightning writes step metrics to its loggers after the current training step:
    every ``log_every_n_steps`` optimizer steps (``fast_dev_run``: every step)."""
    trainer = module._trainer  # None when a step is called outside a Trainer
    if trainer is None:
        return False
    every = trainer.log_every_n_steps
    return bool(trainer.fast_dev_run) or (every > 0 and (module.global_step + 1) % every == 0)


def log_train_step(module: LightningModule, values: dict[str, Tensor], prog_bar: bool) -> None:
    """Log training-step ``values`` as their means over the steps since the last written ones,
    only on the steps whose metrics Lightning writes (:func:`writes_step_logs`).

    A ``self.log`` call has a fixed cost in Lightning, large next to a tiny model's step; keeping
    the step's values (detached) costs nothing, and the curve each logger draws is the mean over
    the ``log_every_n_steps`` window instead of one noisy step of it.
    The progress bar shows the same value, refreshed at that interval.
    """
    windows = module.__dict__.setdefault("_step_windows", {})
    for name, value in values.items():
        windows.setdefault(name, []).append(value.detach())
    if writes_step_logs(module):
        for name, window in windows.items():
            module.log(name, torch.stack(window).mean(), prog_bar=prog_bar, sync_dist=False)
        windows.clear()


def log_loss(module: LightningModule, stage: str, loss: Tensor, batch_size: int) -> None:
    """``{stage}/loss``: training through :func:`log_train_step`; evaluation every step, which
    Lightning averages over the epoch (weighted by ``batch_size``, synced across ranks).

    The evaluation sum is kept in float64, which holds sums of float32 losses times batch sizes
    exactly (unless they span some 29 binary orders of magnitude): the epoch mean then does not
    depend on how the batches were split across ranks.
    """
    if stage == "train":
        log_train_step(module, {"train/loss": loss}, prog_bar=True)
    else:
        value = loss.detach().double()
        module.log(f"{stage}/loss", value, prog_bar=True, batch_size=batch_size, sync_dist=True)


def running_state(module: LightningModule) -> dict:
    """What the training epoch in progress has gathered for its metrics: the inputs kept by
    :func:`update_metrics`, the step values of :func:`log_train_step` and the accumulators of
    ``module.train_metrics``, so that a checkpoint taken mid-epoch resumes them."""
    state: dict = {}
    kept = module.__dict__.get("_metric_inputs", {}).get("train")
    if kept:
        state["metric_inputs"] = [kept[0], [list(step) for step in kept[1]]]
    windows = module.__dict__.get("_step_windows")
    if windows:
        state["step_windows"] = {name: list(values) for name, values in windows.items()}
    metrics = getattr(module, "train_metrics", None)
    if isinstance(metrics, Metric | MetricCollection):
        members = metrics.items(keep_base=True) if isinstance(metrics, MetricCollection) else []
        members = dict(members) or {"": metrics}
        state["train_metrics"] = {
            name: {"states": dict(m.metric_state), "updates": m.update_count}
            for name, m in members.items()
        }
    return state


def load_running_state(module: LightningModule, state: dict) -> None:
    """Put back what :func:`running_state` returned."""
    if "metric_inputs" in state:
        count, steps = state["metric_inputs"]
        inputs = module.__dict__.setdefault("_metric_inputs", {})
        inputs["train"] = [count, [tuple(step) for step in steps]]
    if "step_windows" in state:
        module.__dict__["_step_windows"] = {k: list(v) for k, v in state["step_windows"].items()}
    metrics = getattr(module, "train_metrics", None)
    for name, saved in state.get("train_metrics", {}).items():
        metric = metrics[name] if name else metrics
        for key, value in saved["states"].items():
            setattr(metric, key, value)
        metric._update_count = saved["updates"]  # torchmetrics keeps no public setter
        metric._computed = None
