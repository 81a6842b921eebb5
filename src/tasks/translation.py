"""Sequence-to-sequence task (translation, synthetic reverse/sort): label-smoothed token
cross-entropy; corpus BLEU (sacrebleu, Post 2018) and exact match on decoded text."""

from typing import Literal

import sacrebleu
import torch
import torch.nn.functional as F
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure
from torch import nn

from src.models.beam_search import beam_search
from src.tasks.checkpointing import SelfContained
from src.tasks.epoch_log import log_loss
from src.tasks.optim import configure


class Seq2SeqTask(SelfContained, LightningModule):
    """Trains a :class:`~src.models.seq2seq.Seq2Seq` on ``{src, src_lengths, tgt, index}``.

    Validation decodes greedily with ``val_beam_size=1`` (cheap), test and predict with
    ``beam_size``. Hypotheses and references are detokenised by the datamodule
    (``decode_target``, ``references``) and scored with ``sacrebleu.corpus_bleu`` (``val/bleu``,
    ``test/bleu``) and exact match (``val/exact``, ``test/exact``). At the end of each validation
    the attention of the first ``attention_plots`` validation sentences goes to TensorBoard.

    Args:
        net: The network.
        optimizer: Optimizer factory (YAML ``class_path``); Adam by default.
        scheduler: LR scheduler factory; ReduceLROnPlateau watches ``monitor``.
        monitor: Metric watched by ReduceLROnPlateau.
        scheduler_interval: Step the scheduler every ``"epoch"`` or ``"step"``.
        label_smoothing: Label smoothing of the token cross-entropy.
        teacher_forcing_ratio: Probability of feeding the gold previous token while training.
        beam_size: Beam width for test and predict. val_beam_size: For validation.
        length_penalty: GNMT length-penalty exponent of the beam search.
        max_len_a: Decoding stops after ``max_len_a * S + max_len_b`` tokens (``S`` the
            longest source of the batch). max_len_b: See ``max_len_a``.
        attention_plots: Validation sentences whose attention is plotted; 0 disables.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        monitor: str = "val/bleu",
        scheduler_interval: Literal["epoch", "step"] = "epoch",
        label_smoothing: float = 0.0,
        teacher_forcing_ratio: float = 1.0,
        beam_size: int = 5,
        val_beam_size: int = 1,
        length_penalty: float = 1.0,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        attention_plots: int = 4,
    ) -> None:
        super().__init__()
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(
                f"teacher_forcing_ratio must lie in [0, 1], got {teacher_forcing_ratio}"
            )
        if beam_size < 1 or val_beam_size < 1:
            raise ValueError("beam_size and val_beam_size must be at least 1")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net, self.optimizer, self.scheduler = net, optimizer, scheduler
        self.keep_net_spec(net)
        self._outputs: dict[str, tuple[list[str], list[str]]] = {}

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, beam_size: int = 1):
        """Decode ``src`` ``(N, S)``: ``(N, T)`` token ids (greedy when ``beam_size == 1``)."""
        max_len = int(self.hparams.max_len_a * src.size(1) + self.hparams.max_len_b)
        if beam_size == 1:
            return self.net.greedy(src, src_lengths, max_len)[0]
        penalty = self.hparams.length_penalty
        return beam_search(self.net, src, src_lengths, beam_size, max_len, penalty)

    def _shared_step(self, batch: dict, stage: str) -> torch.Tensor:
        tgt_in, tgt_out = batch["tgt"][:, :-1], batch["tgt"][:, 1:]  # <bos> y, y <eos>
        ratio = self.hparams.teacher_forcing_ratio if stage == "train" else 1.0
        logits, _ = self.net(batch["src"], batch["src_lengths"], tgt_in, ratio)
        loss = F.cross_entropy(
            logits.flatten(0, 1),  # (N * T, V)
            tgt_out.flatten(),
            ignore_index=self.net.pad_id,
            label_smoothing=self.hparams.label_smoothing,
        )
        n = batch["src"].size(0)
        log_loss(self, stage, loss, n)
        if stage != "train":
            beam = self.hparams.val_beam_size if stage == "val" else self.hparams.beam_size
            hyps, refs = self._outputs.setdefault(stage, ([], []))
            dm = self.trainer.datamodule
            hyps += dm.decode_target(self(batch["src"], batch["src_lengths"], beam))
            refs += dm.references(stage, batch["index"])
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def _log_corpus(self, stage: str) -> None:
        hyps, refs = self._outputs.pop(stage, ([], []))
        if not hyps:
            return
        bleu = sacrebleu.corpus_bleu(hyps, [refs]).score
        exact = sum(h == r for h, r in zip(hyps, refs, strict=True)) / len(hyps)
        self.log_dict({f"{stage}/bleu": bleu, f"{stage}/exact": exact}, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        self._log_corpus("val")
        if self.hparams.attention_plots > 0 and not self.trainer.sanity_checking:
            self._plot_attention()

    def on_test_epoch_end(self) -> None:
        self._log_corpus("test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        tokens = self(batch["src"], batch["src_lengths"], self.hparams.beam_size)
        return {
            "index": batch["index"],
            "translation": self.trainer.datamodule.decode_target(tokens),
        }

    def _plot_attention(self) -> None:
        logger = next((lg for lg in self.loggers if isinstance(lg, TensorBoardLogger)), None)
        if logger is None:
            return
        dm = self.trainer.datamodule
        ds = dm.datasets["val"]
        k = min(self.hparams.attention_plots, len(ds))
        batch = {key: v.to(self.device) for key, v in dm.collate([ds[i] for i in range(k)]).items()}
        tokens, weights = self.net.greedy(batch["src"], batch["src_lengths"])
        for i in range(k):
            src = dm.source_tokens(batch["src"][i, : batch["src_lengths"][i]])
            tgt = dm.target_tokens(tokens[i])
            fig = Figure(figsize=(0.3 * len(src) + 2, 0.3 * len(tgt) + 2))
            ax = fig.add_subplot()
            ax.imshow(weights[i, : len(tgt), : len(src)].cpu().numpy(), cmap="viridis", vmin=0)
            ax.set_xticks(range(len(src)), src, rotation=90, fontsize=7)
            ax.set_yticks(range(len(tgt)), tgt, fontsize=7)
            fig.tight_layout()
            logger.experiment.add_figure(f"attention/val_{i}", fig, self.global_step)

    def configure_optimizers(self) -> dict:
        interval = self.hparams.scheduler_interval
        return configure(self, self.optimizer, self.scheduler, self.hparams.monitor, interval)
