"""Shared fixtures."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny matmuls: on a busy 2-core machine OpenMP hand-offs cost ~8 ms each, the math 3 us."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """``tiny_checkpoint(config_name) -> (checkpoint path, datamodule)``: the experiment YAML
    trained for two steps on a copy of its tiny fixture data, which is then deleted, so only the
    checkpoint is left to predict or export from. Built once per session and config."""
    import os
    import shutil
    from pathlib import Path

    import yaml

    from src.cli import main

    root = Path(__file__).resolve().parents[1]
    fixtures = root / "tests" / "fixtures"
    made: dict[str, tuple[Path, object]] = {}

    def data_overrides(datamodule: str, data: Path) -> dict:
        for name in ("imdb", "ud_ewt", "multi30k", "text"):
            if not (data / name).exists():
                shutil.copytree(fixtures / name, data / name)
        cache = str(data / "cache")
        return {
            "IMDBDataModule": {"data_dir": str(data / "imdb"), "cache_dir": cache, "batch_size": 8},
            "UDPOSDataModule": {
                "data_dir": str(data / "ud_ewt"),
                "cache_dir": cache,
                "min_freq": 1,
                "batch_size": 2,
            },
            "ParallelTextDataModule": {
                "data_dir": str(data / "multi30k"),
                "cache_dir": cache,
                "hub_name": "",
                "batch_size": 4,
                "eval_batch_size": 4,
            },
            "CharLMDataModule": {
                "path": str(data / "text" / "reviews.csv.gz"),
                "cache_dir": cache,
                "max_chars": None,
                "val_chars": 200,
                "test_chars": 200,
                "min_count": 1,
                "batch_size": 4,
                "bptt": 16,
            },
            "TimeSeriesDataModule": {"n_points": 900, "batch_size": 16},
            "AnomalyDataModule": {"n_points": 900, "batch_size": 16},
        }[datamodule]

    def build(name: str) -> tuple[Path, object]:
        if name in made:
            return made[name]
        tmp = tmp_path_factory.mktemp(name)
        cfg = yaml.safe_load((root / "configs" / f"{name}.yaml").read_text())
        datamodule = cfg["data"]["class_path"].rsplit(".", 1)[-1]
        data = tmp / "data"
        cfg["data"]["init_args"].update(data_overrides(datamodule, data))
        net = cfg["model"]["init_args"]["net"]["init_args"]
        net.update({k: 8 for k in ("hidden_size", "embedding_dim") if k in net})
        trainer = cfg.setdefault("trainer", {})
        trainer.update(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
        trainer.update(num_sanity_val_steps=0)
        if "attention_plots" in cfg["model"]["init_args"]:
            cfg["model"]["init_args"]["attention_plots"] = 0
        trainer.update(enable_progress_bar=False, enable_model_summary=False)
        config = tmp / f"{name}.yaml"
        config.write_text(yaml.safe_dump(cfg))
        cwd = os.getcwd()
        os.chdir(tmp)  # logs and the config's own checkpoints land in tmp
        try:
            cli = main(["fit", "--config", str(config)])
        finally:
            os.chdir(cwd)
        ckpt = tmp / "model.ckpt"
        cli.trainer.save_checkpoint(ckpt)
        shutil.rmtree(data, ignore_errors=True)  # predict and export must not need it
        made[name] = (ckpt, cli.datamodule)
        return made[name]

    return build
