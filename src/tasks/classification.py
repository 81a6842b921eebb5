"""Sequence classification task (IMDB sentiment): cross-entropy with accuracy, F1 and AUROC."""

import logging
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassAUROC, MulticlassF1Score

from src.errors import SeqLabError
from src.models.pretrained import PARTS, Part, load_language_model
from src.run_dirs import last_checkpoint
from src.tasks.checkpointing import SelfContained
from src.tasks.epoch_log import EpochMetrics, log_loss, update_metrics
from src.tasks.optim import configure, discriminative_groups

log = logging.getLogger(__name__)


class ClassificationTask(SelfContained, EpochMetrics, LightningModule):
    """Trains any ``net(tokens, lengths) -> logits`` on batches ``{tokens, lengths, labels}``.

    Args:
        net: The network, e.g. :class:`src.models.classifier.RNNClassifier`.
        num_classes: Classes (linked from the datamodule).
        optimizer: Optimizer factory (YAML ``class_path``); Adam by default.
        scheduler: LR scheduler factory; ReduceLROnPlateau watches ``monitor``.
        monitor: Metric watched by ReduceLROnPlateau.
        scheduler_interval: Step the scheduler every ``"epoch"`` or ``"step"``.
        pretrained: Language-model checkpoint (``configs/imdb_lm.yaml``) whose weights
            initialise the net before training (see
            :func:`~src.models.pretrained.load_language_model`; the vocabulary is checked
            against the datamodule's tokenizer), or an experiment's run folder such as
            ``lightning_logs/imdb_lm``: the newest ``version_*/checkpoints/last.ckpt`` in it.
        pretrained_parts: What to take from it: ``embedding``, ``encoder`` or both.
        lr_decay: Discriminative learning rates (Howard & Ruder 2018): the net's top layer
            group trains at the optimizer's rate, each group below at ``1 / lr_decay`` of the
            one above (needs ``net.layer_groups()``); 1 trains all at one rate.
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int = 2,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        monitor: str = "val/loss",
        scheduler_interval: Literal["epoch", "step"] = "epoch",
        pretrained: str | None = None,
        pretrained_parts: tuple[Part, ...] = PARTS,
        lr_decay: float = 1.0,
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
        if self.hparams.pretrained and stage == "fit":  # a language model's layers, likewise
            tokenizer = getattr(datamodule, "tokenizer", None)
            vocab = tokenizer.get_vocab() if tokenizer is not None else None
            path, parts = Path(self.hparams.pretrained), self.hparams.pretrained_parts
            path = last_checkpoint(path, None) if path.is_dir() else path
            names = load_language_model(self.net, path, parts, vocab)
            log.info("initialised %d tensors from %s: %s", len(names), path, ", ".join(names))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(tokens, lengths)

    def _shared_step(self, batch: dict, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["tokens"], batch["lengths"])
        loss = F.cross_entropy(logits, batch["labels"])
        update_metrics(self, stage, logits.detach().softmax(-1), batch["labels"])
        n = batch["labels"].numel()
        log_loss(self, stage, loss, n)
        return loss, logits

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")[0]

    def validation_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        return {"preds": self._shared_step(batch, "val")[1].argmax(-1)}  # for callbacks' figures

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        return {"preds": self._shared_step(batch, "test")[1].argmax(-1)}

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        probs = self(batch["tokens"], batch["lengths"]).softmax(-1)
        return {"label": probs.argmax(-1), "probs": probs}

    def configure_optimizers(self) -> dict:
        interval, decay = self.hparams.scheduler_interval, self.hparams.lr_decay
        params = None
        if decay != 1.0:
            if not hasattr(self.net, "layer_groups"):
                raise SeqLabError(
                    f"lr_decay needs layer groups, which {type(self.net).__name__} lacks"
                )
            params = discriminative_groups(self.net.layer_groups(), decay)
        return configure(
            self, self.optimizer, self.scheduler, self.hparams.monitor, interval, params
        )
