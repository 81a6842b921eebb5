"""Task metrics are fed every step (in bulk) and logged once per epoch, over all of its batches."""

import lightning as L
import pytest
import torch
from torch import nn

from src.tasks import epoch_log
from src.tasks.classification import ClassificationTask
from src.tasks.epoch_log import flush_metrics, update_metrics


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
        # classes predicted 0 1 0 1 0 1 0 1 for labels 0 1 0 1 1 0 1 1: F1 4/7 (class 0), 2/3 (1)
        assert metrics[f"{stage}/f1"].item() == pytest.approx((4 / 7 + 2 / 3) / 2)
    # one-vs-rest AUROC: of 15 (positive, negative) pairs 7 ranked right and 5 tied, per class;
    # in training the scale moves between batches and breaks the ties, so validation only
    assert metrics["val/auroc"].item() == pytest.approx(9.5 / 15)
    assert not task.val_metrics["acc"].update_count  # reset for the next epoch
    tested = trainer.test(task, torch.utils.data.DataLoader(batches[1:], batch_size=None))[0]
    assert tested["test/acc"] == 1 / 4  # a fresh epoch: the earlier batches are not in it


def test_metric_inputs_are_kept_then_passed_on_in_bulk(monkeypatch):
    monkeypatch.setattr(epoch_log, "BUFFER_ELEMENTS", 8)
    task = ClassificationTask(_FirstToken())
    probs, labels = torch.tensor([[0.9, 0.1], [0.2, 0.8]], requires_grad=True), torch.tensor([0, 0])
    acc = task.val_metrics["acc"]
    update_metrics(task, "val", probs, labels)  # 4 prediction values kept
    assert acc.update_count == 0
    update_metrics(task, "val", probs, labels)  # 8: passed on as one update of 4 rows
    assert acc.update_count == 1 and acc.tp.sum() + acc.fn.sum() == 4
    update_metrics(task, "val", probs, labels)
    flush_metrics(task, "val")
    flush_metrics(task, "val")  # nothing left: no second update
    assert acc.update_count == 2
    assert acc.compute().item() == 3 / 6  # the first row of each step is right
    assert task.train_metrics["acc"].update_count == 0  # stages kept apart


class _Recorder(L.pytorch.loggers.Logger):
    """Keeps what Lightning writes: ``(step, name, value)``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = []

    name, version = "recorder", 0

    def log_metrics(self, metrics, step=None) -> None:
        self.rows += [(step, k, float(v)) for k, v in metrics.items() if k.startswith("train/")]

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


class _LossesSeen(ClassificationTask):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.seen.append(float(loss.detach()))
        return loss


def test_train_loss_is_the_window_mean_written_on_lightnings_logging_steps(tmp_path):
    g = torch.Generator().manual_seed(0)
    batches = [
        _batch(torch.randint(0, 9, (4,), generator=g).tolist(), [0, 1, 1, 0]) for _ in range(7)
    ]
    recorder = _Recorder()
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", logger=recorder, log_every_n_steps=3,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, limit_val_batches=0,
    )  # fmt: skip
    task = _LossesSeen(_FirstToken(), optimizer=lambda p: torch.optim.SGD(p, lr=0.5))
    task.seen = []
    trainer.fit(task, torch.utils.data.DataLoader(batches, batch_size=None))
    written = [(step, value) for step, name, value in recorder.rows if name == "train/loss"]
    # 14 steps, windows of 3 across the epoch boundary: written at steps 2, 5, 8, 11
    assert [step for step, _ in written] == [2, 5, 8, 11]
    for i, (_, value) in enumerate(written):
        assert value == pytest.approx(sum(task.seen[3 * i : 3 * i + 3]) / 3, rel=1e-6)
    assert len(set(task.seen)) > 3  # the losses changed: stale or single-step values would fail
