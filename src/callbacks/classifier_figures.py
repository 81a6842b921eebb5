"""TensorBoard figures for a text classifier: the confusion matrix of every validation and test
epoch, and attention-pooling weights over fixed validation reviews, tokens coloured by weight."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure


def confusion_figure(matrix: np.ndarray, class_names: list[str], title: str) -> Figure:
    """Counts ``matrix[true, predicted]`` as a heatmap, with each cell's share of its row."""
    fig, ax = plt.subplots(figsize=(3.6, 3.2), layout="constrained")
    shares = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        color = "white" if shares[i, j] > 0.5 else "black"
        ax.text(j, i, f"{count}\n{shares[i, j]:.1%}", ha="center", va="center", color=color)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names)
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize="medium")
    return fig


def attention_figure(
    reviews: list[list[str]], weights: list[np.ndarray], titles: list[str], per_line: int = 16
) -> Figure:
    """Tokens laid out as text, each on a background whose darkness is its attention weight
    (scaled to the review's largest weight)."""
    lines = sum(-(-len(r) // per_line) + 1 for r in reviews)
    fig, ax = plt.subplots(figsize=(11, 0.24 * lines + 0.3))
    ax.set_axis_off()
    ax.set_position((0, 0, 1, 1))  # axes coordinates = figure coordinates
    y, dy = 1.0, 1.0 / (lines + 0.5)
    for tokens, w, title in zip(reviews, weights, titles, strict=True):
        ax.text(0.01, y - dy / 2, title, fontsize=8, weight="bold", va="center")
        y -= dy
        top = float(w.max()) or 1.0
        for start in range(0, len(tokens), per_line):
            x, end = 0.01, start + per_line
            for token, weight in zip(tokens[start:end], w[start:end], strict=True):
                shade = plt.cm.Reds(0.85 * float(weight) / top)
                box = {"facecolor": shade, "edgecolor": "none", "pad": 1.0}
                ax.text(x, y - dy / 2, token, fontsize=8, family="monospace", va="center", bbox=box)
                x += 0.0062 * (len(token) + 1)  # a monospace character is 0.6 em wide
            y -= dy
    return fig


class ClassifierFigures(Callback):
    """Logs ``{stage}/confusion_matrix`` after each validation and test epoch and, when the net
    pools with attention (``net(tokens, lengths, return_attention=True)`` returns weights),
    ``val/attention``: the weights over ``num_reviews`` fixed validation reviews (the first ones
    of at most ``max_tokens`` tokens). Needs a TensorBoard logger; does nothing without one.

    Args:
        num_reviews: Validation reviews shown in the attention figure.
        max_tokens: Longest review shown (whole reviews only).
        class_names: Names of the classes, by label id.
    """

    def __init__(
        self,
        num_reviews: int = 4,
        max_tokens: int = 120,
        class_names: tuple[str, ...] = ("negative", "positive"),
    ) -> None:
        self.num_reviews, self.max_tokens, self.class_names = num_reviews, max_tokens, class_names
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []

    @staticmethod
    def _logger(trainer: Trainer) -> TensorBoardLogger | None:
        return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)

    def _collect(self, outputs, batch) -> None:
        if isinstance(outputs, dict) and "preds" in outputs:
            self._pairs.append((batch["labels"].cpu(), outputs["preds"].cpu()))

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, *args) -> None:
        self._collect(outputs, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, *args) -> None:
        self._collect(outputs, batch)

    def _log_confusion(self, trainer: Trainer, stage: str) -> None:
        pairs, self._pairs = self._pairs, []
        logger = self._logger(trainer)
        if logger is None or not pairs or trainer.sanity_checking:
            return
        labels, preds = (torch.cat(t).numpy() for t in zip(*pairs, strict=True))
        k = len(self.class_names)
        matrix = np.bincount(labels * k + preds, minlength=k * k).reshape(k, k)
        accuracy = np.trace(matrix) / matrix.sum()
        title = f"{stage}, epoch {trainer.current_epoch}: accuracy {accuracy:.2%}"
        fig = confusion_figure(matrix, list(self.class_names), title)
        logger.experiment.add_figure(f"{stage}/confusion_matrix", fig, trainer.global_step)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log_confusion(trainer, "val")
        logger, datamodule = self._logger(trainer), getattr(trainer, "datamodule", None)
        if logger is None or trainer.sanity_checking or not hasattr(datamodule, "datasets"):
            return
        figure = self.attention(pl_module, datamodule)
        if figure is not None:
            logger.experiment.add_figure("val/attention", figure, trainer.global_step)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log_confusion(trainer, "test")

    @torch.no_grad()
    def attention(self, pl_module: LightningModule, datamodule) -> Figure | None:
        """The attention figure of the fixed validation reviews, or None without attention."""
        ds = datamodule.datasets["val"]
        rows = [i for i in range(len(ds)) if ds.lengths[i] <= self.max_tokens][: self.num_reviews]
        if not rows:
            return None
        reviews, weights, titles = [], [], []
        for i in rows:
            tokens = ds[i]["tokens"].long()[None].to(pl_module.device)  # (1, L)
            logits, w = pl_module.net(tokens, torch.tensor([tokens.size(1)]), return_attention=True)
            if w is None:
                return None
            prob = logits.softmax(-1)[0]
            reviews.append([datamodule.tokenizer.id_to_token(t) for t in tokens[0].tolist()])
            weights.append(w[0].float().cpu().numpy())
            label = self.class_names[ds.labels[i]] if ds.labels is not None else "?"
            titles.append(f"val review {i}: true {label}, P(positive) = {prob[-1]:.2f}")
        return attention_figure(reviews, weights, titles)
