"""Sequence classification task (IMDB sentiment): cross-entropy with accuracy, F1 and AUROC."""

from typing import Literal

import torch
import torch.nn.functional as F
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassAUROC, MulticlassF1Score

from src.tasks.checkpointing import SelfContained
from src.tasks.epoch_log import EpochMetrics, log_loss, update_metrics
from src.tasks.optim import configure


class ClassificationTask(SelfContained, EpochMetrics, LightningModule):
    """Trains any ``net(tokens, lengths) -> logits`` on batches ``{tokens, lengths, labels}``.

    Args:
        net: The network, e.g. :class:`src.models.classifier.RNNClassifier`.
        num_classes: Classes (linked from the datamodule).
        optimizer: Optimizer factory (YAML ``class_path``); Adam by default.
        scheduler: LR scheduler factory; ReduceLROnPlateau watches ``monitor``.
        monitor: Metric watched by ReduceLROnPlateau.
        scheduler_interval: Step the scheduler every ``"epoch"`` or ``"step"``.
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int = 2,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        monitor: str = "val/loss",
        scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net, self.optimizer, self.scheduler = net, optimizer, scheduler
        self.keep_net_spec(net)
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes, average="micro"),
                "f1": MulticlassF1Score(num_classes, average="macro"),
                "auroc": MulticlassAUROC(num_classes),
            }
        )
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def setup(self, stage: str) -> None:
        # Pretrained word vectors (e.g. GloVe via ``--data.init_args.vectors_path``) enter the
        # network once, before the first step; a resumed run then restores its own weights.
        datamodule = getattr(self.trainer, "datamodule", None)
        vectors = getattr(datamodule, "vectors", None) if stage == "fit" else None
        if vectors is not None:
            if not hasattr(self.net, "load_embeddings"):
                raise ValueError(f"{type(self.net).__name__} cannot take pretrained vectors")
            self.net.load_embeddings(vectors)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(tokens, lengths)

    def _shared_step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self(batch["tokens"], batch["lengths"])
        loss = F.cross_entropy(logits, batch["labels"])
        update_metrics(self, stage, logits.detach().softmax(-1), batch["labels"])
        n = batch["labels"].numel()
        log_loss(self, stage, loss, n)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        probs = self(batch["tokens"], batch["lengths"]).softmax(-1)
        return {"label": probs.argmax(-1), "probs": probs}

    def configure_optimizers(self) -> dict:
        interval = self.hparams.scheduler_interval
        return configure(self, self.optimizer, self.scheduler, self.hparams.monitor, interval)
