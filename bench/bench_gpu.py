"""IMDB BiLSTM on one GPU: the project's recipe against the plain-PyTorch tutorial one, same run.

    python -m bench.bench_gpu [--quick] [--data-dir data/imdb] [--device cuda] [-- CLI args]

- ``tutorial``: the tutorial recipe, plain PyTorch: shuffled batches of 64, embedding 128, packed
  BiLSTM 128 (final hidden states), fp32, Adam 1e-3.
- ``project``: ``configs/imdb_bilstm.yaml`` + ``configs/trainer/gpu.yaml`` through ``src.cli``
  (Lightning, bucketed batches, bf16 autocast); CLI arguments after ``--`` are added, e.g.
  ``-- --data.init_args.batch_size 256``.

Both train the same number of epochs; the figure is the last epoch's training time (the first
pays for cuDNN's plans and the CUDA context), then test accuracy after those epochs. Also the
bf16 / tf32 matmul references and the cuDNN BiLSTM 2 x 256 training step on IMDB-like lengths
(``nn.LSTM`` packed vs padded and ``RecurrentEncoder``'s exact path by cuDNN's packed kernel vs
by its dense kernel, random and bucketed batches, fp32 vs bf16 autocast, batch 64 and 256), with
``max_memory_allocated``. ``-- --model.init_args.net.init_args.dense_exact_devices [cpu,cuda]``
trains the project's recipe on the dense exact path. Without CUDA it reports ``skipped``;
``--device cpu`` runs the same code (the tests do, tiny).
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from bench.common import machine
from bench.gpu_steps import cudnn_steps, matmul_tflops, peak_mb, reset_peak, sync
from src.cli import main as cli_main
from src.data.imdb.datamodule import IMDBDataModule

ROOT = Path(__file__).resolve().parents[1]


class TutorialBiLSTM(nn.Module):
    """The tutorial's IMDB model: embedding, packed BiLSTM, linear on both final hidden states."""

    def __init__(self, vocab_size: int, embedding_dim: int = 128, hidden_size: int = 128) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.rnn = nn.LSTM(embedding_dim, hidden_size, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden_size, 2)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens)  # (N, L, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.rnn(packed)  # h_n (2, N, H)
        return self.out(torch.cat([h_n[-2], h_n[-1]], 1))


def tutorial_recipe(data_dir: str, cache_dir: str, epochs: int, device: str) -> dict:
    """Trains the tutorial's model for ``epochs``; each epoch's training seconds, test accuracy."""
    torch.manual_seed(0)
    dm = IMDBDataModule(data_dir, cache_dir, batch_size=64, bucket=False, pin_memory=True)
    dm.prepare_data()
    dm.setup("fit")
    model = TutorialBiLSTM(dm.vocab_size).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    reset_peak(device)
    epoch_s, reviews = [], 0
    for _ in range(epochs):
        model.train()
        start, reviews = time.perf_counter(), 0
        for batch in dm.train_dataloader():
            tokens, labels = (batch[k].to(device, non_blocking=True) for k in ("tokens", "labels"))
            loss = F.cross_entropy(model(tokens, batch["lengths"]), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            reviews += len(labels)
        sync(device)
        epoch_s.append(time.perf_counter() - start)
    dm.setup("test")
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in dm.test_dataloader():
            logits = model(batch["tokens"].to(device), batch["lengths"])
            correct += int((logits.argmax(1).cpu() == batch["labels"]).sum())
            total += len(batch["labels"])
    return {
        "epoch_s": epoch_s,
        "reviews_per_s": reviews / epoch_s[-1],
        "test_acc": correct / total,
        "max_memory_allocated_mb": peak_mb(device),
    }


class _TrainClock(Callback):
    """Per epoch: from its start to its last training batch's end (validation left out)."""

    def __init__(self) -> None:
        self.epoch_s, self.reviews, self.start, self.end, self.count = [], [], 0.0, 0.0, 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start, self.count = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.count += len(batch["labels"])
        if batch_idx == trainer.num_training_batches - 1:
            sync(str(pl_module.device))
            self.epoch_s.append(time.perf_counter() - self.start)
            self.reviews.append(self.count)


def project_recipe(
    data_dir: str, cache_dir: str, epochs: int, device: str, extra: list[str], tmp: Path
) -> dict:
    """``configs/imdb_bilstm.yaml`` (+ the GPU preset on CUDA) through the CLI, logs in ``tmp``."""
    cfg = yaml.safe_load((ROOT / "configs" / "imdb_bilstm.yaml").read_text())
    cfg["data"]["init_args"].update(data_dir=data_dir, cache_dir=cache_dir)
    cfg["trainer"].update(max_epochs=epochs, enable_progress_bar=False, default_root_dir=str(tmp))
    config = tmp / "imdb_bilstm.yaml"
    config.write_text(yaml.safe_dump(cfg))
    presets = ["--config", str(ROOT / "configs" / "trainer" / "gpu.yaml")]
    if not device.startswith("cuda"):
        presets = ["--trainer.accelerator", "cpu"]
    cli = cli_main(["--config", str(config), *presets, *extra], run=False)
    clock = _TrainClock()
    cli.trainer.callbacks.append(clock)
    reset_peak(device)
    cli.trainer.fit(cli.model, cli.datamodule)
    tested = cli.trainer.test(cli.model, cli.datamodule, ckpt_path="best", verbose=False)
    return {
        "args": extra,
        "batch_size": cli.datamodule.hparams.batch_size,
        "precision": str(cli.trainer.precision),
        "dense_exact_devices": list(cli.model.net.encoder.dense_exact_devices),
        "epoch_s": clock.epoch_s,
        "reviews_per_s": clock.reviews[-1] / clock.epoch_s[-1],
        "test_acc": tested[0]["test/acc"],
        "max_memory_allocated_mb": peak_mb(device),
    }


def run(
    quick: bool = False,
    data_dir: str = "data/imdb",
    device: str | None = None,
    extra: list[str] | None = None,
) -> dict:
    """All of the above; ``device`` defaults to CUDA and the run is skipped without it."""
    device = device or ("cuda" if torch.cuda.is_available() else "")
    if not device:
        return {"skipped": "no CUDA device"}
    if not Path(data_dir).exists():
        return {"skipped": f"no IMDB copy at {data_dir} (--data-dir)"}
    epochs = 1 if quick else 2
    report = {"machine": machine(), "quick": quick, "device": device, "epochs": epochs}
    report["matmul_tflops"] = matmul_tflops(device, 512 if quick else 8192)
    report["cudnn_steps"] = cudnn_steps(device, quick)
    with tempfile.TemporaryDirectory() as tmp:
        cache = str(Path(tmp) / "cache")  # both recipes tokenise alike, into one cache
        report["tutorial"] = tutorial_recipe(data_dir, cache, epochs, device)
        report["project"] = project_recipe(data_dir, cache, epochs, device, extra or [], Path(tmp))
    report["epoch_speedup_vs_tutorial"] = (
        report["tutorial"]["epoch_s"][-1] / (report["project"]["epoch_s"][-1])
    )
    return report


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--quick", action="store_true")
    cli.add_argument("--data-dir", default="data/imdb")
    cli.add_argument("--device", default=None, help="default: cuda when available")
    args, extra = cli.parse_known_args()
    extra = [a for a in extra if a != "--"]
    print(json.dumps(run(args.quick, args.data_dir, args.device, extra), indent=2))
