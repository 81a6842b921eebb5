"""Language-modelling task with truncated backpropagation through time across contiguous batches
(Williams & Peng 1990; char-rnn, Karpathy 2015): cross-entropy, bits per character, perplexity."""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MeanMetric

from src.data.chars.source import CharVocab
from src.tasks.checkpointing import SelfContained
from src.tasks.epoch_log import log_train_step
from src.tasks.optim import configure

State = Tensor | tuple[Tensor, ...]


def _detach(state: State) -> State:
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


class LanguageModelTask(SelfContained, LightningModule):
    """Trains ``net(x, state) -> (logits, state)`` on batches ``{x (N, L), y (N, L)}`` of ids.

    Truncated BPTT (Lightning 2 has no ``truncated_bptt_steps``): with ``stateful`` the final
    state of a batch, detached so no gradient flows into the previous batch, starts the next batch
    of the same stage. Each stage keeps its own state; it resets to zeros at the start of every
    training, validation and test epoch. Without ``stateful`` every batch starts from zeros.

    ``{stage}/loss`` is the mean cross-entropy in nats per character (``unit="token"``: per
    token); for validation and test it is averaged over every scored position of the held-out
    text (not per batch), with ``{stage}/ppl`` = exp(loss) and, for characters, ``{stage}/bpc`` =
    loss / ln 2. A net with ``target_nats(x, y, state) -> (nats, state)`` (an adaptive softmax,
    which scores the targets without the full distribution) is trained through it. Checkpoints
    keep the datamodule's ``tokenizer`` (JSON) when it has one, so a classifier can check that
    it shares the vocabulary.

    Args:
        net: The network, e.g. :class:`src.models.char_rnn.CharRNN`.
        vocab: The characters by id (linked from the datamodule); stored in checkpoints so
            :meth:`generate` needs no data.
        stateful: Carry the state across batches (linked from the datamodule).
        unit: What one position is: ``"character"`` (bits per character logged) or ``"token"``.
        optimizer: Optimizer factory (YAML ``class_path``); Adam by default.
        scheduler: LR scheduler factory; ReduceLROnPlateau watches ``monitor``.
        monitor: Metric watched by ReduceLROnPlateau.
        scheduler_interval: Step the scheduler every ``"epoch"`` or ``"step"``.
    """

    def __init__(
        self,
        net: nn.Module,
        vocab: list[str] | None = None,
        stateful: bool = True,
        unit: Literal["character", "token"] = "character",
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        monitor: str = "val/loss",
        scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__()
        size = getattr(net, "vocab_size", None)
        if vocab is not None and size is not None and len(vocab) != size:
            raise ValueError(f"vocab has {len(vocab)} characters but the net's vocab_size={size}")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net, self.optimizer, self.scheduler = net, optimizer, scheduler
        self.keep_net_spec(net)
        self.val_nats, self.test_nats = MeanMetric(), MeanMetric()  # per-character cross-entropy
        self.states: dict[str, State | None] = {}  # the detached state carried to the next batch

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        return self.net(x, state)

    def _shared_step(self, batch: dict, stage: str) -> Tensor:
        x, y = batch["x"], batch["y"]
        state = self.states.get(stage) if self.hparams.stateful else None
        if hasattr(self.net, "target_nats"):
            nats, state = self.net.target_nats(x, y, state)  # (N * L,)
        else:
            logits, state = self(x, state)
            nats = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        self.states[stage] = _detach(state)  # truncate BPTT at the batch boundary
        loss = nats.mean()
        if stage == "train":
            bits = {"train/bpc": loss / math.log(2)} if self.hparams.unit == "character" else {}
            log_train_step(self, {"train/loss": loss, **bits}, True)
        else:
            getattr(self, f"{stage}_nats").update(nats.detach())
        return loss

    def _log_epoch(self, stage: str) -> None:
        metric = getattr(self, f"{stage}_nats")
        if metric.update_count:  # nothing to report after an empty epoch
            nats = metric.compute()
            self.log(f"{stage}/loss", nats)
            self.log(f"{stage}/ppl", nats.exp(), prog_bar=self.hparams.unit == "token")
            if self.hparams.unit == "character":
                self.log(f"{stage}/bpc", nats / math.log(2), prog_bar=True)
        metric.reset()

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_train_epoch_start(self) -> None:
        self.states.pop("train", None)

    def on_validation_epoch_start(self) -> None:
        self.states.pop("val", None)

    def on_test_epoch_start(self) -> None:
        self.states.pop("test", None)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)  # the class paths, for src.checkpoints.restore
        if hasattr(self.net, "config"):  # lets src.generate rebuild the network without data
            checkpoint["net_config"] = dict(self.net.config)
        tokenizer = getattr(getattr(self._trainer, "datamodule", None), "tokenizer", None)
        if tokenizer is not None:  # a classifier initialised from this model checks its vocabulary
            checkpoint["tokenizer"] = tokenizer.to_str()
        if self.states.get("train") is not None:  # mid-epoch: the next batch continues it
            checkpoint["carried_state"] = self.states["train"]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if checkpoint.get("carried_state") is not None:
            self.states["train"] = checkpoint["carried_state"]

    def generate(
        self,
        prompt: str,
        length: int = 300,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> str:
        """``prompt`` followed by ``length`` sampled characters.

        The model first reads a newline (the document separator of review corpora) when the
        vocabulary has one, then the prompt, so an empty prompt starts a new document.
        """
        if not self.hparams.vocab:
            raise ValueError("this model has no vocabulary; train it with a CharLMDataModule")
        vocab = CharVocab(self.hparams.vocab)
        unknown = vocab.unknown(prompt)
        if unknown:
            raise ValueError(
                f"prompt characters {unknown} are not in the model's {len(vocab)}-character "
                "vocabulary; remove or replace them"
            )
        context = ("\n" if "\n" in vocab.stoi else "") + prompt
        if not context:
            raise ValueError("empty prompt and no newline in the vocabulary; give a prompt")
        ids = torch.as_tensor(vocab.encode(context), dtype=torch.long, device=self.device)
        generator = None if seed is None else torch.Generator(self.device).manual_seed(seed)
        was_training = self.training
        self.eval()
        try:
            out = self.net.sample(ids[None], length, temperature, top_k, generator)  # (1, length)
        finally:
            self.train(was_training)
        return prompt + vocab.decode(out[0])

    def configure_optimizers(self) -> dict:
        interval = self.hparams.scheduler_interval
        return configure(self, self.optimizer, self.scheduler, self.hparams.monitor, interval)
