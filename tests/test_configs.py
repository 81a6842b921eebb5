"""Every experiment config trains and tests from its checkpoint through the CLI, then predicts, on
tiny data (shipped fixtures or short synthetic series); every output lands under a temporary
folder."""

import math
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException

from src.callbacks.predictions import PredictionWriter
from src.checkpoints import load_checkpoint
from src.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def _ett_csv(folder: Path) -> Path:
    """An 800-row random walk with ETT's columns, as ``ETTh1.csv`` in ``folder``."""
    values = np.random.default_rng(0).standard_normal((800, 7)).cumsum(0)
    frame = pd.DataFrame(values, columns=["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"])
    frame.insert(0, "date", pd.date_range("2016-07-01", periods=800, freq="h").astype(str))
    frame.to_csv(folder / "ETTh1.csv", index=False)
    return folder


# Datamodule class name -> data arguments that make it tiny (``tmp`` is the test's folder).
TINY_DATA = {
    "IMDBDataModule": lambda tmp: {
        "data_dir": FIXTURES / "imdb", "cache_dir": tmp / "cache", "batch_size": 8,
    },
    "TimeSeriesDataModule": lambda tmp: {"n_points": 2000, "batch_size": 16},
    "AnomalyDataModule": lambda tmp: {"n_points": 900, "window": 30, "batch_size": 16},
    "ParallelTextDataModule": lambda tmp: {
        "data_dir": FIXTURES / "multi30k", "cache_dir": tmp / "cache", "hub_name": "",
        "batch_size": 4, "eval_batch_size": 4,
    },
    "SyntheticSeqDataModule": lambda tmp: {
        "num_train": 64, "num_val": 16, "num_test": 16, "batch_size": 16,
    },
    "CharLMDataModule": lambda tmp: {
        "path": FIXTURES / "text" / "reviews.csv.gz", "cache_dir": tmp / "cache",
        "max_chars": None, "val_chars": 200, "test_chars": 200, "min_count": 1, "batch_size": 4,
        "bptt": 16,
    },
    "IMDBLMDataModule": lambda tmp: {
        "data_dir": FIXTURES / "imdb", "cache_dir": tmp / "cache", "min_freq": 1, "hub_name": "",
        "unsup_path": FIXTURES / "text" / "reviews.csv.gz", "batch_size": 2, "bptt": 8,
    },
    "ETTDataModule": lambda tmp: {
        "data_dir": _ett_csv(tmp), "borders": [400, 600, 800], "batch_size": 64,
        "dataset": "ETTh1", "output_len": 96,  # a config shipped for another point too
    },
    "UDPOSDataModule": lambda tmp: {
        "data_dir": FIXTURES / "ud_ewt", "cache_dir": tmp / "cache", "min_freq": 1,
        "batch_size": 2,
    },
}  # fmt: skip
# Configs whose task has no predict stage, and why; predicting must then fail with Lightning's
# message (when it stops failing, remove the entry).
NO_PREDICT = {
    "charlm_imdb": "the language model samples text with src/generate.py instead",
    "imdb_lm": "a pretraining stage: its checkpoint initialises configs/imdb_finetune.yaml",
    "imdb_lm_backward": "its backward twin, for configs/imdb_finetune_backward.yaml",
}
# Configs whose network has no parameters (the naive forecasts): nothing to fit, only tested.
NOTHING_TO_FIT = {"ett_naive", "ett_seasonal_naive"}
# Network widths shrunk wherever the config sets them; the architecture stays as shipped.
TINY_NET = {"hidden_size": 8, "embedding_dim": 8, "char_hidden_size": 4, "char_embedding_dim": 4}
# Task arguments shrunk wherever the config sets them (each attention plot costs a second).
TINY_MODEL = {"attention_plots": 1, "pretrained": None}  # no other run's checkpoint here
# Two training steps in one epoch, validated once; two batches to test and to predict.
TINY_TRAINER = {
    "max_epochs": 1, "max_steps": 2, "limit_train_batches": 2, "limit_val_batches": 2,
    "limit_test_batches": 2, "limit_predict_batches": 2, "val_check_interval": 1.0,
    "check_val_every_n_epoch": 1, "num_sanity_val_steps": 0, "log_every_n_steps": 1,
    "enable_progress_bar": False, "enable_model_summary": False,
}  # fmt: skip


def _args(config: Path, tmp_path: Path) -> list[str]:
    """``--config`` plus the overrides that make ``config`` tiny and write under ``tmp_path``:
    runs in ``runs/<experiment>/version_N/``, data caches in ``cache/``."""
    cfg = yaml.safe_load(config.read_text())
    datamodule = cfg["data"]["class_path"].rsplit(".", 1)[-1]
    if datamodule not in TINY_DATA:
        pytest.fail(
            f"{config.name}: no tiny data for {datamodule}; add to TINY_DATA in {__file__} the "
            "data arguments that shrink it (fixture paths, sizes, batch_size)"
        )
    model = cfg["model"]["init_args"]
    net = model.get("net", {}).get("init_args", {})
    overrides = {f"data.init_args.{k}": v for k, v in TINY_DATA[datamodule](tmp_path).items()}
    overrides |= {f"model.init_args.net.init_args.{k}": v for k, v in TINY_NET.items() if k in net}
    overrides |= {f"model.init_args.{k}": v for k, v in TINY_MODEL.items() if k in model}
    overrides |= {f"trainer.{k}": v for k, v in TINY_TRAINER.items()}
    overrides["trainer.default_root_dir"] = tmp_path / "runs"  # the one switch for all outputs
    args = ["--config", str(config)]
    for key, value in overrides.items():
        args += [f"--{key}", "null" if value is None else str(value)]
    return args


def _finite(metrics: dict) -> dict:
    bad = {k: float(v) for k, v in metrics.items() if not math.isfinite(float(v))}
    assert not bad, f"non-finite metrics {bad}"
    return metrics


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_fits_tests_and_predicts(config, tmp_path, monkeypatch):
    cwd, runs = tmp_path / "cwd", tmp_path / "runs"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # stays empty: every output follows trainer.default_root_dir
    args = _args(config, tmp_path)
    if config.stem in NOTHING_TO_FIT:
        assert "test/mse" in _finite(main(["test", *args]).trainer.callback_metrics)
        return

    fit = main(["fit", *args])  # two training steps, then one validation
    assert fit.trainer.state.finished and fit.trainer.global_step == 2
    run = runs / config.stem / "version_0"
    assert Path(fit.trainer.log_dir).resolve() == run
    assert (run / "config.yaml").is_file() and list(run.glob("events.out.tfevents.*"))
    checkpoint = fit.trainer.checkpoint_callback
    assert checkpoint is not None, f"{config.name} saves no checkpoint"
    monitored = _finite(fit.trainer.callback_metrics)[checkpoint.monitor]  # it was logged
    assert float(checkpoint.best_model_score) == float(monitored)
    ckpt = Path(checkpoint.best_model_path).resolve()
    assert ckpt.parent == run / "checkpoints" and (ckpt.parent / "last.ckpt").is_file()
    load_checkpoint(ckpt.parent / "last.ckpt")  # tensors and plain values only, checksums pass

    # a freshly built model loads the checkpoint, as a user's `test --ckpt_path` does
    tested = main(["test", *args, "--ckpt_path", str(ckpt)])
    results = _finite(tested.trainer.callback_metrics)
    assert checkpoint.monitor.replace("val/", "test/", 1) in results, sorted(results)

    trainer, datamodule = tested.trainer, tested.datamodule
    if config.stem in NO_PREDICT:
        with pytest.raises(MisconfigurationException, match="predict_dataloader"):
            trainer.predict(tested.model, datamodule=datamodule, ckpt_path=str(ckpt))
    else:
        outputs = trainer.predict(tested.model, datamodule=datamodule, ckpt_path=str(ckpt))
        loader = datamodule.predict_dataloader()
        examples = [len(batch) for batch in islice(loader.batch_sampler, 2)]
        assert len(outputs) == len(examples)
        for batch, n in zip(outputs, examples, strict=True):  # each example gets its prediction
            tensors = [v for v in batch.values() if torch.is_tensor(v)]
            sizes = {k: len(v) for k, v in batch.items()}
            assert tensors and all(len(v) == n for v in tensors), (n, sizes)
        writer = next(c for c in trainer.callbacks if isinstance(c, PredictionWriter))
        assert runs in writer.output_path.resolve().parents
        assert len(writer.output_path.read_text().splitlines()) == sum(examples)  # a line each
    assert not list(cwd.iterdir())
