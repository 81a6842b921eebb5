"""Sequence tagging task (part-of-speech): token cross-entropy, accuracy and per-tag F1, padding
ignored."""

from typing import Literal

import torch
import torch.nn.functional as F
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from src.data.conllu.source import IGNORE_INDEX
from src.tasks.checkpointing import SelfContained
from src.tasks.epoch_log import EpochMetrics, log_loss, update_metrics
from src.tasks.optim import configure


def _padding(lengths: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``(N, L)`` mask, true at padded steps: padding is known from lengths, not from labels."""
    steps = torch.arange(logits.size(1), device=logits.device)
    return steps[None, :] >= lengths.to(logits.device)[:, None]


class TaggingTask(SelfContained, EpochMetrics, LightningModule):
    """Trains any ``net(words, chars, lengths) -> (N, L, T)`` on ``{words, chars, lengths, tags}``.

    Steps past each sentence's length (padding) count in neither the loss nor the metrics. Logged:
    ``<stage>/loss``, ``<stage>/acc`` (token accuracy), ``<stage>/f1`` (macro F1 over tags) and, at
    test, ``test/f1_<TAG>`` for every tag.

    Args:
        net: The network, e.g. :class:`src.models.tagger.BiLSTMTagger`.
        num_tags: Tags ``T`` (linked from the datamodule).
        tag_names: Tag names in id order (linked), used in per-tag metric names.
        optimizer: Optimizer factory (YAML ``class_path``); Adam by default.
        scheduler: LR scheduler factory; ReduceLROnPlateau watches ``monitor``.
        monitor: Metric watched by ReduceLROnPlateau.
        scheduler_interval: Step the scheduler every ``"epoch"`` or ``"step"``.
    """

    def __init__(
        self,
        net: nn.Module,
        num_tags: int = 17,
        tag_names: list[str] | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        monitor: str = "val/acc",
        scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__()
        if tag_names is not None and len(tag_names) != num_tags:
            raise ValueError(f"{len(tag_names)} tag_names for num_tags={num_tags}")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net, self.optimizer, self.scheduler = net, optimizer, scheduler
        self.keep_net_spec(net)
        self.tag_names = tag_names or [str(i) for i in range(num_tags)]
        common = {"num_classes": num_tags, "ignore_index": IGNORE_INDEX}
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(average="micro", **common),
                "f1": MulticlassF1Score(average="macro", **common),
            }
        )
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.test_tag_f1 = MulticlassF1Score(average=None, **common)

    def forward(self, words, chars, lengths) -> torch.Tensor:
        return self.net(words, chars, lengths)

    def _shared_step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self(batch["words"], batch["chars"], batch["lengths"])  # (N, L, T)
        tags = batch["tags"].masked_fill(_padding(batch["lengths"], logits), IGNORE_INDEX)
        flat, tags = logits.flatten(0, 1), tags.flatten()  # (N * L, T), (N * L,)
        loss = F.cross_entropy(flat, tags, ignore_index=IGNORE_INDEX)
        update_metrics(self, stage, flat.detach(), tags)
        if stage == "test":
            self.test_tag_f1.update(flat.detach(), tags)
        n = int((tags != IGNORE_INDEX).sum())
        log_loss(self, stage, loss, n)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()  # test/acc, test/f1
        scores = self.test_tag_f1.compute()  # (T,)
        self.log_dict({f"test/f1_{t}": s for t, s in zip(self.tag_names, scores, strict=True)})
        self.test_tag_f1.reset()

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        """Tag ids ``(N, L)`` (``-100`` at padding) and lengths; names via ``tag_names``."""
        logits = self(batch["words"], batch["chars"], batch["lengths"])
        tags = logits.argmax(-1).masked_fill(_padding(batch["lengths"], logits), IGNORE_INDEX)
        return {"tags": tags, "lengths": batch["lengths"]}

    def configure_optimizers(self) -> dict:
        interval = self.hparams.scheduler_interval
        return configure(self, self.optimizer, self.scheduler, self.hparams.monitor, interval)
