"""Fine-tuning schedules of ULMFiT (Howard & Ruder 2018): gradual unfreezing and slanted
triangular learning rates, over the layer groups of ``net.layer_groups()``."""

from __future__ import annotations

from typing import Any, Literal

from lightning import Callback, LightningModule, Trainer


def _layer_groups(module: LightningModule) -> list[list[Any]]:
    net = getattr(module, "net", None)
    if not hasattr(net, "layer_groups"):
        raise ValueError(f"{type(net).__name__} has no layer_groups(); these schedules need one")
    return net.layer_groups()


class GradualUnfreezing(Callback):
    """Train the top layer group first, then unfreeze one more group below it every ``every``
    epochs (or steps), down to the embedding.

    With the groups of :meth:`~src.models.classifier.RNNClassifier.layer_groups` (embedding,
    each recurrent layer, head) and ``every=1`` epoch: epoch 0 trains the head, epoch 1 the head
    and the top recurrent layer, and so on. Frozen parameters have ``requires_grad=False``, so
    no gradient is computed for them (a frozen stack costs only its forward pass). Parameters
    that were frozen when training started (e.g. ``freeze_embeddings``) are never unfrozen.

    Args:
        every: Epochs (or steps) between two unfreezings.
        interval: ``"epoch"`` or ``"step"``: the unit of ``every``.
    """

    def __init__(self, every: int = 1, interval: Literal["epoch", "step"] = "epoch") -> None:
        if every < 1 or interval not in ("epoch", "step"):
            raise ValueError(f"every must be >= 1 and interval epoch or step: {every}, {interval}")
        self.every, self.interval = every, interval
        self._trainable: set[int] | None = None

    def trainable_groups(self, trainer: Trainer) -> int:
        """How many groups, from the top, train at the current epoch / step."""
        count = trainer.current_epoch if self.interval == "epoch" else trainer.global_step
        return 1 + count // self.every

    def apply(self, trainer: Trainer, module: LightningModule) -> None:
        """Set ``requires_grad`` of every group for the current epoch / step."""
        groups = _layer_groups(module)
        if self._trainable is None:  # what the run may ever train
            self._trainable = {id(p) for g in groups for p in g if p.requires_grad}
        k = self.trainable_groups(trainer)
        for i, group in enumerate(groups):
            for p in group:
                p.requires_grad_(i >= len(groups) - k and id(p) in self._trainable)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.apply(trainer, pl_module)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args) -> None:
        if self.interval == "step":
            self.apply(trainer, pl_module)


class SlantedTriangularLR(Callback):
    """Slanted triangular learning rates: each optimizer group's rate rises linearly from
    ``1 / ratio`` of its base rate to the base rate over the first ``cut_frac`` of the training
    steps, then falls linearly back to ``1 / ratio`` at the last step.

    The base rates are the groups' rates when training starts (with discriminative learning
    rates, each group keeps its share); they are saved with the callback's state, so a resumed
    run continues the schedule. The total is Lightning's ``estimated_stepping_batches``
    (``max_epochs`` or ``max_steps``). Use it without an LR scheduler in the task.

    Args:
        cut_frac: Share of the steps spent rising (0.1 in ULMFiT).
        ratio: Peak rate over the lowest rate (32 in ULMFiT).
    """

    def __init__(self, cut_frac: float = 0.1, ratio: float = 32.0) -> None:
        if not 0.0 < cut_frac < 1.0 or ratio < 1.0:
            raise ValueError(f"need 0 < cut_frac < 1 and ratio >= 1, got {cut_frac}, {ratio}")
        self.cut_frac, self.ratio = cut_frac, ratio
        self.base_lrs: list[float] | None = None
        self.total_steps: int | None = None

    def factor(self, step: int) -> float:
        """Share of the base rate at optimizer step ``step`` (0-based)."""
        total = max(int(self.total_steps or 1), 1)
        cut = max(int(total * self.cut_frac), 1)
        p = step / cut if step < cut else 1 - (step - cut) / max(total - 1 - cut, 1)
        return (1 + max(p, 0.0) * (self.ratio - 1)) / self.ratio

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.base_lrs is None:
            self.base_lrs = [g["lr"] for g in trainer.optimizers[0].param_groups]
            self.total_steps = int(trainer.estimated_stepping_batches)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args) -> None:
        factor = self.factor(trainer.global_step)
        for group, base in zip(trainer.optimizers[0].param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor

    def state_dict(self) -> dict[str, Any]:
        return {"base_lrs": self.base_lrs, "total_steps": self.total_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_lrs, self.total_steps = state_dict["base_lrs"], state_dict["total_steps"]
