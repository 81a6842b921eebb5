"""One folder per run, last.ckpt as the latest epoch, and --ckpt_path last naming one file."""

import multiprocessing as mp
import os

import pytest
import torch
import yaml
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from src.callbacks.checkpoint import ModelCheckpoint
from src.cli import main
from src.errors import SeqLabError
from src.run_dirs import claim_version, last_checkpoint
from tests.test_cli import ROOT, _tiny_config


class _Scripted(LightningModule):
    """Logs a scripted validation metric per epoch, so which epoch is "best" is known."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.layer, self.scores = torch.nn.Linear(2, 1), scores

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/score", self.scores[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit_scripted(tmp_path, callback) -> dict:
    loader = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
    trainer = Trainer(
        max_epochs=3,
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(_Scripted([1.0, 2.0, 3.0]), loader, loader)  # best is epoch 0, mode "min"
    return torch.load(tmp_path / "last.ckpt", weights_only=False)


def test_last_checkpoint_is_the_latest_epoch_even_without_improvement(tmp_path):
    ours = ModelCheckpoint(dirpath=tmp_path, monitor="val/score", save_last=True)
    last = _fit_scripted(tmp_path, ours)
    assert (last["epoch"], last["global_step"]) == (3, 6)  # all 3 epochs of 2 batches done
    assert len(list(tmp_path.glob("epoch=0*.ckpt"))) == 1  # the best stays the best


def test_lightnings_own_last_checkpoint_lags_behind(tmp_path):
    """Why the subclass exists: Lightning writes last.ckpt only when the top k changed."""
    theirs = LightningModelCheckpoint(dirpath=tmp_path, monitor="val/score", save_last=True)
    assert _fit_scripted(tmp_path, theirs)["epoch"] == 0


def _claim(base, queue) -> None:
    queue.put(claim_version(base))


def test_runs_started_together_claim_different_folders(tmp_path):
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(tmp_path, queue)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    claimed = sorted(queue.get(timeout=5) for _ in procs)
    assert claimed == list(range(6))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"version_{n}" for n in range(6)]


def test_last_checkpoint_picks_the_named_version_else_the_newest(tmp_path):
    for version, mtime in ((0, 300), (1, 100), (2, 200)):
        path = tmp_path / f"version_{version}" / "checkpoints" / "last.ckpt"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        os.utime(path, (mtime, mtime))
    (tmp_path / "version_3").mkdir()  # a run that wrote no checkpoint yet
    assert last_checkpoint(tmp_path, None).parent.parent.name == "version_0"
    assert last_checkpoint(tmp_path, 2).parent.parent.name == "version_2"
    with pytest.raises(SeqLabError, match="version_3/checkpoints/last.ckpt does not exist"):
        last_checkpoint(tmp_path, 3)
    with pytest.raises(SeqLabError, match="no last.ckpt under .*train first"):
        last_checkpoint(tmp_path / "other", None)


def test_one_setting_moves_every_output_and_resume_continues_in_place(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    limits = {"max_epochs": 2, "limit_train_batches": 2, "limit_val_batches": 1}
    config = _tiny_config(ROOT / "configs" / "sine_lstm.yaml", tmp_path, **limits)
    root = tmp_path / "logs" / "sine_lstm"
    main(["fit", "--config", str(config)])
    main(["fit", "--config", str(config)])  # a second run of the experiment: its own folder
    assert sorted(p.name for p in root.iterdir()) == ["version_0", "version_1"]
    for run in root.iterdir():
        assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "sine_lstm.yaml"]  # nothing else

    first = root / "version_0" / "checkpoints" / "last.ckpt"
    resume = ["--trainer.max_epochs", "3", "--ckpt_path", str(first)]
    resumed = main(["fit", "--config", str(config), *resume])
    assert resumed.trainer.current_epoch == 3
    assert resumed.trainer.log_dir == str(root / "version_0")  # continued in its own folder
    assert torch.load(first, weights_only=True)["epoch"] == 3  # all three epochs done
    assert sorted(p.name for p in root.iterdir()) == ["version_0", "version_1"]

    hparams = yaml.safe_load((root / "version_0" / "hparams.yaml").read_text())
    assert hparams["runtime"]["torch_version"] == torch.__version__
    assert set(hparams["runtime"]) >= {"retain_freed_memory", "flush_denormals"}


def test_ckpt_path_last_without_a_run_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = _tiny_config(ROOT / "configs" / "sine_lstm.yaml", tmp_path, max_epochs=1)
    with pytest.raises(SeqLabError, match="no last.ckpt under"):
        main(["test", "--config", str(config), "--ckpt_path", "last"])


def test_a_command_that_fails_leaves_no_empty_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _tiny_config(ROOT / "configs" / "sine_lstm.yaml", tmp_path, max_epochs=1)
    bad = ["--model.init_args.net.init_args.num_layers", "0"]  # refused by the network
    with pytest.raises(ValueError, match="num_layers"):
        main(["fit", "--config", str(config), *bad])
    root = tmp_path / "logs" / "sine_lstm"
    assert list(root.iterdir()) == []  # the folder it claimed is gone
    main(["fit", "--config", str(config), "--trainer.limit_train_batches", "2"])
    assert [p.name for p in root.iterdir()] == ["version_0"]  # the next run takes version_0
