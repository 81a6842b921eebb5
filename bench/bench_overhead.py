"""Lightning overhead: the project's Trainer + task vs a plain PyTorch loop, same model and data.

python -m bench.bench_overhead [--quick]
"""

import argparse
import json
import statistics
import tempfile
import time

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from bench.common import machine
from src.models.classifier import RNNClassifier
from src.models.forecaster import RNNForecaster
from src.tasks.classification import ClassificationTask
from src.tasks.forecasting import ForecastingTask


class _StepClock(Callback):
    """Wall time from the start of step ``skip`` to the end of the last step."""

    def __init__(self, skip: int) -> None:
        self.skip, self.start, self.end = skip, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.skip:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()


def _text_batches(n: int, length: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        lengths = torch.randint(length - 8, length + 1, (64,), generator=g)
        tokens = torch.randint(1, 30000, (64, length), generator=g)
        tokens[torch.arange(length) >= lengths[:, None]] = 0
        out.append(
            {
                "tokens": tokens,
                "lengths": lengths,
                "labels": torch.randint(0, 2, (64,), generator=g),
            }
        )
    return out


def _series_batches(n: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    return [
        {
            "x": torch.randn(64, 60, 1, generator=g),
            "y": torch.randn(64, 10, 1, generator=g),
            "last": torch.randn(64, 1, generator=g),
        }
        for _ in range(n)
    ]


def _plain(net, batches, loss_fn, skip: int) -> float:
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for i, batch in enumerate(batches):
        if i == skip:
            start = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(net, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    return (time.perf_counter() - start) / (len(batches) - skip)


def _lightning(task, batches, skip: int) -> float:
    clock = _StepClock(skip)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(
            max_steps=len(batches),
            limit_val_batches=0,
            gradient_clip_val=1.0,
            callbacks=[clock, ModelCheckpoint(dirpath=tmp, save_last=True)],
            logger=L.pytorch.loggers.TensorBoardLogger(tmp),
            log_every_n_steps=10,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
            devices=1,
        )
        loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False)
        trainer.fit(task, loader)
    return (clock.end - clock.start) / (len(batches) - skip)


def _case(make_net, make_task, batches, loss_fn, repeats: int, skip: int = 2) -> dict:
    plain, light = [], []
    for r in range(repeats):  # interleaved in ABBA order, fresh identical weights each time
        runs = [
            lambda: plain.append(_plain(make_net(), batches, loss_fn, skip)),
            lambda: light.append(_lightning(make_task(make_net()), batches, skip)),
        ]
        for run in runs if r % 2 == 0 else runs[::-1]:
            torch.manual_seed(0)
            run()
    # each repeat's pair ran back to back, so the machine's drift cancels within a pair
    pairs = [(q - p) / p for p, q in zip(plain, light, strict=True)]
    p, q = statistics.median(plain), statistics.median(light)
    return {
        "plain_step_s": p,
        "lightning_step_s": q,
        "plain_all": plain,
        "lightning_all": light,
        "overhead_pct": 100 * statistics.median(pairs),
        "overhead_pct_range": [100 * min(pairs), 100 * max(pairs)],
        "overhead_ms_per_step": 1000
        * statistics.median([b - a for a, b in zip(plain, light, strict=True)]),
    }


def run(quick: bool = False) -> dict:
    repeats, steps = (2, 8) if quick else (10, 30)

    def text_net():
        return RNNClassifier(
            30000,
            embedding_dim=128,
            hidden_size=128,
            bidirectional=True,
            pooling="max",
            output_dropout=0.0,
        )

    def text_loss(net, b):
        return F.cross_entropy(net(b["tokens"], b["lengths"]), b["labels"])

    def series_net():
        return RNNForecaster(hidden_size=16)

    def series_loss(net, b):
        return F.mse_loss(net(b["x"]), b["y"])

    return {
        "machine": machine(),
        "imdb_bilstm_step": _case(
            text_net,
            ClassificationTask,
            _text_batches(steps, 64 if quick else 256),
            text_loss,
            repeats,
        ),
        "tiny_forecaster_step": _case(
            series_net, ForecastingTask, _series_batches(steps * 5), series_loss, repeats
        ),
    }


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--quick", action="store_true")
    print(json.dumps(run(cli.parse_args().quick), indent=2))
