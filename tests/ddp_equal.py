"""DDP equality cases (IMDB classifier, sine forecaster) shared by tests/test_ddp_equal.py and
its DDP ranks: ``python tests/ddp_equal.py WORK_DIR`` with ``LOCAL_RANK``/``WORLD_SIZE`` set.

Each rank fits the case's model for ``STEPS`` steps on batches of ``BATCH // world`` (rank r
takes the r-th part of the single process's batch), validates and tests the single process's
checkpoint with the datamodule's own loaders, and writes the weights, metrics and the example
indices of its shards to ``WORK_DIR/rank<r>/``.
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path

import numpy as np
import torch
import yaml
from lightning.pytorch import Trainer
from torch.utils.data import DataLoader

from src.data.collate import pad_collate
from src.data.imdb.datamodule import IMDBDataModule
from src.data.series.datamodule import TimeSeriesDataModule
from src.models.classifier import RNNClassifier
from src.models.forecaster import RNNForecaster
from src.tasks.classification import ClassificationTask
from src.tasks.forecasting import ForecastingTask

ROOT = Path(__file__).resolve().parents[1]
CASES = ("imdb", "sine")
BATCH, STEPS = 8, 3


def datamodule(case: str, work: Path):
    if case == "imdb":
        fixtures = ROOT / "tests" / "fixtures" / "imdb"
        cache = str(work / "cache")
        return IMDBDataModule(str(fixtures), cache, val_size=0.2, batch_size=4, hub_name="")
    return TimeSeriesDataModule("sine", n_points=600, input_len=20, output_len=5, batch_size=16)


def model(case: str, dm):
    """The case's task with dropout off, initialised identically in every process."""
    torch.manual_seed(0)
    adam = partial(torch.optim.Adam, lr=1e-2)
    if case == "imdb":
        net = RNNClassifier(
            dm.vocab_size, 2, 16, 16, bidirectional=True, pooling="max", output_dropout=0.0
        )
        return ClassificationTask(net, optimizer=adam)
    net = RNNForecaster(dm.input_size, dm.output_len, dm.n_targets, hidden_size=16)
    return ForecastingTask(net, dm.target_mean, dm.target_std, optimizer=adam)


def train_loader(case: str, dm, world: int, rank: int) -> DataLoader:
    """``STEPS`` batches: the single process's batch k is ``order[k*BATCH:(k+1)*BATCH]``, and
    rank r of ``world`` takes its r-th part (IMDB: longest reviews first, as packing wants)."""
    dm.setup()
    ds = dm.datasets["train"]
    order = np.argsort(-ds.lengths, kind="stable") if case == "imdb" else np.arange(len(ds))
    part = BATCH // world
    starts = [k * BATCH + rank * part for k in range(STEPS)]
    batches = [order[s : s + part].tolist() for s in starts]
    collate = pad_collate if case == "imdb" else None
    return DataLoader(ds, batch_sampler=batches, collate_fn=collate)


def trainer(world: int, **overrides) -> Trainer:
    """The ``cpu`` preset for one process; the ``ddp`` preset made runnable on CPU (gloo)."""
    preset = "ddp" if world > 1 else "cpu"
    kwargs = yaml.safe_load((ROOT / "configs" / "trainer" / f"{preset}.yaml").read_text())
    kwargs = kwargs["trainer"] | {"accelerator": "cpu", "devices": world, "precision": "32-true"}
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    return Trainer(**kwargs | quiet | {"enable_checkpointing": False} | overrides)


def fit(case: str, dm, world: int, rank: int):
    """Fit ``STEPS`` steps; the fitted task and its trainer."""
    task = model(case, dm)
    t = trainer(world, max_steps=STEPS, limit_val_batches=0, gradient_clip_val=1.0)
    t.fit(task, train_dataloaders=train_loader(case, dm, world, rank))
    return task, t


def evaluate(case: str, dm, world: int, ckpt: Path) -> dict[str, float]:
    """Validation and test metrics of the checkpoint, as logged."""
    metrics: dict[str, float] = {}
    t = trainer(world)
    for run in (t.validate, t.test):
        run(model(case, dm), datamodule=dm, ckpt_path=str(ckpt), verbose=False)
        metrics |= {k: v.item() for k, v in t.callback_metrics.items()}
    return metrics


def shards(dm) -> dict[str, list[int]]:
    """The example indices this rank's validation/test (and sine training) loaders yield."""
    out = {
        s: [i for b in getattr(dm, f"{s}_dataloader")().batch_sampler for i in b]
        for s in ("val", "test")
    }
    if isinstance(dm, TimeSeriesDataModule):
        out["train"] = [int(i) for i in dm.train_dataloader().sampler]
    return out


def rank_main(work: Path) -> None:
    rank, world = int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    torch.set_num_threads(1)
    out = work / f"rank{rank}"
    out.mkdir(parents=True, exist_ok=True)
    record = {}
    for case in CASES:
        dm = datamodule(case, work)
        task, t = fit(case, dm, world, rank)
        if rank == 0:
            torch.save(task.state_dict(), out / f"{case}_weights.pt")
        metrics = evaluate(case, dm, world, work / f"{case}.ckpt")
        record[case] = {"metrics": metrics, "shards": shards(dm)}
    (out / "record.json").write_text(json.dumps(record))


if __name__ == "__main__":
    rank_main(Path(sys.argv[1]))
