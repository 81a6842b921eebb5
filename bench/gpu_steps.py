"""GPU step benchmarks: matmul references and the BiLSTM training step in four layouts.

Used by :mod:`bench.bench_gpu`; every function takes the device, so the tests run it on CPU.
"""

from contextlib import contextmanager, nullcontext
from functools import partial

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bench.bench_rnn import _batch, imdb_like_lengths
from bench.common import lstm_flops_per_token, timed
from src.data.sampler import BucketBatchSampler
from src.models.recurrent.encoder import RecurrentEncoder


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_mb(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


@contextmanager
def _dense_exact_on(enc: RecurrentEncoder, devices: tuple[str, ...]):
    """``enc``'s variable-length path: dense on ``devices``, else packed."""
    previous = enc.dense_exact_devices
    enc.dense_exact_devices = devices
    try:
        yield
    finally:
        enc.dense_exact_devices = previous


def _forward(enc: RecurrentEncoder, x, lengths, layout: str) -> torch.Tensor:
    """``(N, L, D * H)`` outputs of one of the four layouts (see :func:`cudnn_steps`)."""
    if layout == "padded":
        return enc.rnn(x)[0]
    if layout == "packed":
        p = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(enc.rnn(p)[0], batch_first=True, total_length=x.size(1))[0]
    with _dense_exact_on(enc, (x.device.type,) if layout == "exact_dense" else ()):
        return enc(x, lengths, need_cell_state=False)[0]


def _step(enc, x, lengths, layout: str, bf16: bool, device: str) -> None:
    """One forward + backward on ``x`` ``(N, L, H_in)``."""
    autocast = torch.autocast(device.split(":")[0], torch.bfloat16) if bf16 else nullcontext()
    with autocast:
        out = _forward(enc, x, lengths, layout)
    out.float().pow(2).mean().backward()
    sync(device)


def _length_sets(n: int, quick: bool) -> dict[str, torch.Tensor]:
    """IMDB-like lengths of one random batch, and of a bucketed one (median by real tokens)."""
    scale = 0.25 if quick else 1.0
    pool = imdb_like_lengths(4096 if quick else 25000, seed=1, scale=scale)
    batches = sorted(BucketBatchSampler(pool.tolist(), n, seed=0), key=lambda b: int(pool[b].sum()))
    return {
        "random": imdb_like_lengths(n, scale=scale),
        "bucketed": pool[batches[len(batches) // 2]],
    }


LAYOUTS = ("packed", "padded", "exact_packed", "exact_dense")


def cudnn_steps(device: str, quick: bool) -> list[dict]:
    """BiLSTM 2 x 256 (input 128) fwd + bwd on IMDB-like lengths, fp32 and bf16 autocast.

    Layouts: ``nn.LSTM`` on packed and on padded batches, and ``RecurrentEncoder``'s exact
    path (packed results, ``c_n`` skipped) by cuDNN's packed kernel (its default on CUDA) and by
    the dense kernel with the backward direction reversed within lengths
    (``dense_exact_devices``), on a random and on a length-bucketed batch. A layout that
    fails is reported with its error and the others still run.
    """
    rows = []
    hidden, layers, repeats = (32, 1, 2) if quick else (256, 2, 5)
    torch.manual_seed(0)
    enc = RecurrentEncoder(128, hidden, "lstm", layers, bidirectional=True).to(device)
    for n in (16,) if quick else (64, 256):
        for kind, lengths in _length_sets(n, quick).items():
            x = _batch(lengths, 128).to(device)
            tokens = int(lengths.sum())
            flops = 3 * lstm_flops_per_token(128, hidden, layers, 2) * tokens
            padded = len(lengths) * int(lengths.max())
            head = {"batch": n, "lengths": kind, "real_token_share": tokens / padded}
            try:  # the exact paths' agreement on this device (fp32)
                with torch.no_grad():
                    a, b = (_forward(enc, x, lengths, k) for k in ("exact_packed", "exact_dense"))
                head["exact_dense_vs_packed_max_abs_diff"] = float((a - b).abs().max())
            except RuntimeError as error:
                head["exact_dense_error"] = str(error).splitlines()[0][:300]
            for dtype in ("fp32", "bf16"):
                for layout in LAYOUTS:
                    row = {**head, "dtype": dtype, "layout": layout}
                    step = partial(_step, enc, x, lengths, layout, dtype == "bf16", device)
                    reset_peak(device)
                    try:  # the dense exact path on CUDA was written without a GPU to try it on
                        t = timed(step, repeats)
                    except RuntimeError as error:
                        rows.append({**row, "error": str(error).splitlines()[0][:300]})
                        continue
                    row.update(t)
                    row["real_tokens_per_s"] = tokens / t["median_s"]
                    row["tflops_real_tokens"] = flops / t["median_s"] / 1e12
                    row["max_memory_allocated_mb"] = peak_mb(device)
                    rows.append(row)
    return rows


def matmul_tflops(device: str, size: int = 8192) -> dict:
    """Large square matmul TFLOP/s in bf16 and in fp32 with TF32 on: the GPU's reference."""
    out = {}
    for name, dtype, tf32 in (("bf16", torch.bfloat16, False), ("tf32", torch.float32, True)):
        a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        try:
            t = timed(lambda a=a, b=b: (a @ b, sync(device)), 5)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = previous
        out[name] = 2 * size**3 / t["median_s"] / 1e12
    return out
