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


class _ComputeClock:
    """Seconds spent in the model's arithmetic: the network's forward, the backward, and gradient
    clipping with the optimizer's update; each window opened by :meth:`start`, closed by
    :meth:`stop` (the forward by hooks on ``net``)."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.seconds, self._start = 0.0, 0.0
        net.register_forward_pre_hook(lambda *_: self.start())
        net.register_forward_hook(lambda *_: self.stop())

    def start(self) -> None:
        self._start = time.perf_counter()

    def stop(self) -> None:
        self.seconds += time.perf_counter() - self._start

    def lap(self) -> float:
        """Seconds since the last lap."""
        seconds, self.seconds = self.seconds, 0.0
        return seconds


class _PlainTwin(Callback):
    """After each Lightning step, the same batch's step by a plain PyTorch loop on a twin network.

    The Lightning step is timed from the end of the previous step to the end of its own (data
    fetching, hooks, logging, checkpoint checks included), less the plain step, which runs right
    after it on even steps and right before it (after the fetch) on odd ones. Each pair runs
    within milliseconds, so the machine's drift cancels pair by pair, and alternating the order
    cancels what running second gains (warm caches) or loses. Both steps also time their
    arithmetic (:class:`_ComputeClock`): the rest of each step is its overhead, a small figure
    that the arithmetic's noise does not blur.
    """

    def __init__(self, net: torch.nn.Module, loss_fn, skip: int) -> None:
        self.net, self.loss_fn, self.skip = net.train(), loss_fn, skip
        self.opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        self.lightning, self.plain, self.mark, self.plain_s = [], [], None, 0.0
        self.lightning_compute, self.plain_compute = [], []
        self.clock, self.twin_clock = None, _ComputeClock(net)

    def on_train_start(self, trainer, pl_module) -> None:
        self.clock = _ComputeClock(pl_module.net)
        trainer.optimizers[0].register_step_post_hook(lambda *_: self.clock.stop())

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.clock.start()

    def on_after_backward(self, trainer, pl_module) -> None:
        self.clock.stop()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.clock.start()  # then Lightning clips the gradients and steps the optimizer

    def _twin_step(self, batch) -> None:
        start = time.perf_counter()
        with torch.enable_grad():
            _plain_step(self.net, self.opt, self.loss_fn, batch, self.twin_clock)
        self.plain_s = time.perf_counter() - start

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.mark is None:
            self.mark = time.perf_counter()
        if batch_idx % 2:  # odd steps: the plain step first, so that order effects cancel
            self._twin_step(batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not batch_idx % 2:
            self._twin_step(batch)
        end = time.perf_counter()
        if batch_idx >= self.skip:
            self.lightning.append(end - self.mark - self.plain_s)
            self.plain.append(self.plain_s)
            self.lightning_compute.append(self.clock.lap())
            self.plain_compute.append(self.twin_clock.lap())
        self.clock.lap(), self.twin_clock.lap()
        self.mark = end


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


def _plain_step(net, opt, loss_fn, batch, clock: _ComputeClock) -> None:
    opt.zero_grad()
    loss = loss_fn(net, batch)
    clock.start()
    loss.backward()
    clock.stop()
    clock.start()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    clock.stop()


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
    # the steps' time outside the arithmetic, Lightning's minus the plain loop's
    rest = zip(twin.lightning, twin.lightning_compute, twin.plain, twin.plain_compute, strict=True)
    extra = [(q - qc) - (p - pc) for q, qc, p, pc in rest]
    extra_quartiles = statistics.quantiles(extra, n=4)
    plain = statistics.median(twin.plain)
    return {
        "steps": len(ratios),
        "plain_step_s": plain,
        "lightning_step_s": statistics.median(twin.lightning),
        "overhead_pct": 100 * statistics.median(ratios),
        "overhead_pct_of_totals": 100 * (sum(twin.lightning) / sum(twin.plain) - 1),
        "overhead_pct_iqr": [100 * quartiles[0], 100 * quartiles[2]],
        "overhead_pct_plain_second": 100 * statistics.median(ratios[skip % 2 :: 2]),
        "overhead_pct_plain_first": 100 * statistics.median(ratios[1 - skip % 2 :: 2]),
        "overhead_ms_per_step": 1000
        * statistics.median([q - p for p, q in zip(twin.plain, twin.lightning, strict=True)]),
        "compute_share_plain": statistics.median(twin.plain_compute) / plain,
        "outside_compute_ms_per_step": 1000 * statistics.median(extra),
        "outside_compute_ms_iqr": [1000 * extra_quartiles[0], 1000 * extra_quartiles[2]],
        "outside_compute_pct": 100 * statistics.median(extra) / plain,
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
