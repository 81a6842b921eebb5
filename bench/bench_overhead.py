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


class _PlainTwin(Callback):
    """After each Lightning step, the same batch's step by a plain PyTorch loop on a twin network.

    The Lightning step is timed from the end of the previous plain step to the end of its own
    (data fetching, hooks, logging, checkpoint checks included); the plain step right after it.
    Each pair runs within milliseconds, so the machine's drift cancels pair by pair.
    """

    def __init__(self, net: torch.nn.Module, loss_fn, skip: int) -> None:
        self.net, self.loss_fn, self.skip = net.train(), loss_fn, skip
        self.opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        self.lightning, self.plain, self.mark = [], [], None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        end = time.perf_counter()
        with torch.enable_grad():
            _plain_step(self.net, self.opt, self.loss_fn, batch)
        plain_end = time.perf_counter()
        if batch_idx >= self.skip:
            self.lightning.append(end - self.mark)
            self.plain.append(plain_end - end)
        self.mark = plain_end

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.mark is None:
            self.mark = time.perf_counter()


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


def _plain_step(net, opt, loss_fn, batch) -> None:
    opt.zero_grad()
    loss_fn(net, batch).backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()


def _case(make_net, make_task, batches, loss_fn, skip: int = 3) -> dict:
    """The project's Trainer on ``make_task(make_net())`` with a plain twin, step by step."""
    torch.manual_seed(0)
    task = make_task(make_net())
    torch.manual_seed(0)  # the twin starts from the same weights
    twin = _PlainTwin(make_net(), loss_fn, skip)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(
            max_steps=len(batches),
            limit_val_batches=0,
            gradient_clip_val=1.0,
            callbacks=[twin, ModelCheckpoint(dirpath=tmp, save_last=True)],
            logger=L.pytorch.loggers.TensorBoardLogger(tmp),
            log_every_n_steps=10,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
            devices=1,
        )
        loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False)
        trainer.fit(task, loader)
    ratios = [(q - p) / p for p, q in zip(twin.plain, twin.lightning, strict=True)]
    quartiles = statistics.quantiles(ratios, n=4)
    return {
        "steps": len(ratios),
        "plain_step_s": statistics.median(twin.plain),
        "lightning_step_s": statistics.median(twin.lightning),
        "overhead_pct": 100 * statistics.median(ratios),
        "overhead_pct_of_totals": 100 * (sum(twin.lightning) / sum(twin.plain) - 1),
        "overhead_pct_iqr": [100 * quartiles[0], 100 * quartiles[2]],
        "overhead_ms_per_step": 1000
        * statistics.median([q - p for p, q in zip(twin.plain, twin.lightning, strict=True)]),
    }


def run(quick: bool = False) -> dict:
    steps = 8 if quick else 120  # IMDB-sized steps; the tiny model runs 5x as many

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
        ),
        "tiny_forecaster_step": _case(
            series_net, ForecastingTask, _series_batches(steps * 5), series_loss
        ),
    }


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--quick", action="store_true")
    print(json.dumps(run(cli.parse_args().quick), indent=2))
