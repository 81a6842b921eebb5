"""Task metrics are updated every step and logged once per epoch, over all of its batches."""

import lightning as L
import torch
from torch import nn

from src.tasks.classification import ClassificationTask


class _FirstToken(nn.Module):
    """Predicts class ``tokens[:, 0] % 2`` (a learnable scale keeps the optimizer busy)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, tokens, lengths=None):
        return nn.functional.one_hot(tokens[:, 0] % 2, 2).float() * self.scale


def _batch(first_tokens, labels):
    tokens = torch.tensor(first_tokens)[:, None].repeat(1, 3)
    return {
        "tokens": tokens,
        "lengths": torch.full((len(labels),), 3),
        "labels": torch.tensor(labels),
    }


def test_epoch_metrics_cover_every_batch(tmp_path):
    # batch 1: 4 of 4 right; batch 2: 1 of 4 right -> 5 / 8 over the epoch (not 1/4, the last)
    batches = [_batch([0, 1, 0, 1], [0, 1, 0, 1]), _batch([0, 1, 0, 1], [1, 0, 1, 1])]
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        num_sanity_val_steps=0,
    )  # fmt: skip
    task = ClassificationTask(_FirstToken())
    loader = torch.utils.data.DataLoader(batches, batch_size=None)
    trainer.fit(task, loader, loader)
    metrics = trainer.callback_metrics
    for stage in ("train", "val"):
        assert metrics[f"{stage}/acc"].item() == 5 / 8
        assert {f"{stage}/f1", f"{stage}/auroc"} <= metrics.keys()
    assert not task.val_metrics["acc"].update_count  # reset for the next epoch
    tested = trainer.test(task, torch.utils.data.DataLoader(batches[1:], batch_size=None))[0]
    assert tested["test/acc"] == 1 / 4  # a fresh epoch: the earlier batches are not in it
