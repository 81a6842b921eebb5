"""Process-wide CPU settings for training runs: treat subnormal floats as zero and, on request,
keep freed memory in glibc's heap.

PyTorch's CPU allocator caches nothing, and glibc serves every block above its mmap threshold (at
most 32 MiB) with a fresh ``mmap`` that it unmaps again on ``free``: each large activation or
gradient of a training step then costs page faults and pages the kernel must zero. A recurrent
training step allocates and frees gigabytes that way, so the kernel's page work takes a large
share of its CPU time (``bench/bench_rnn.py`` times the training loop both ways; figures in
docs/performance.md). Keeping freed blocks in the heap saves that work when every step has the
same shapes; with batches of varying lengths the heap fragments and grows step after step (a
fine-tuning run on whole IMDB reviews reached 23 GB and was killed), so it is opt-in
(``SEQLAB_RETAIN_MEMORY=1``).

Gradients that shrink through many recurrent steps (an LSTM's cell-state chain over a long
review) reach subnormal magnitudes (below 1.2e-38 in fp32), on which x86 arithmetic runs many
times slower; flushing them to zero, as TensorFlow does by default, changes no result that
fp32 training can resolve.
"""

import ctypes
import os
import platform

import torch

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_MAX = -4
_applied: dict[str, bool] = {}  # what apply_cpu_settings() did in this process


def retain_freed_memory() -> bool:
    """Serve all allocations from glibc's heap and keep freed blocks there for reuse.

    Faster when every training step allocates the same shapes (fixed-length windows or BPTT
    chunks); with varying shapes the heap fragments and the process grows without bound, so
    :func:`apply_cpu_settings` calls it only with ``SEQLAB_RETAIN_MEMORY=1``.

    Returns:
        Whether the setting was applied (only with glibc, i.e. on most Linux systems).
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the C library this process already runs on
    no_mmap = libc.mallopt(_M_MMAP_MAX, 0)  # big blocks come from the heap too
    no_trim = libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # and freed ones stay there
    return bool(no_mmap and no_trim)


def flush_denormals() -> bool:
    """Flush subnormal floats to zero (x86 FTZ/DAZ), in this thread and the threads it starts.

    The CPU flag belongs to each thread and new threads inherit it, so this must run before the
    first parallel torch operation creates the intra-op thread pool; called later it reaches the
    calling thread only. Set ``SEQLAB_FLUSH_DENORMAL=0`` to leave it off.

    Returns:
        Whether the setting was applied (CPUs with SSE3, i.e. x86-64).
    """
    if os.environ.get("SEQLAB_FLUSH_DENORMAL", "1") == "0":
        return False
    return torch.set_flush_denormal(True)


def apply_cpu_settings() -> dict[str, bool]:
    """:func:`flush_denormals`, and :func:`retain_freed_memory` when the environment has
    ``SEQLAB_RETAIN_MEMORY=1``, as the entry points (``src.cli``, ``src.generate``,
    ``bench.run``) apply them first thing; call it at the start of your own training script to
    get the same speed.

    Returns:
        Which settings were applied, by function name.
    """
    retain = os.environ.get("SEQLAB_RETAIN_MEMORY", "0") == "1" and retain_freed_memory()
    _applied.update(retain_freed_memory=retain, flush_denormals=flush_denormals())
    return dict(_applied)


def settings() -> dict[str, object]:
    """The process-wide settings a run trained under, for its logged hyperparameters: what
    :func:`apply_cpu_settings` applied, the switches' environment values and the thread count."""
    switches = ("SEQLAB_RETAIN_MEMORY", "SEQLAB_FLUSH_DENORMAL", "OMP_NUM_THREADS")
    return {
        **{name: _applied.get(name, False) for name in ("retain_freed_memory", "flush_denormals")},
        **{name: os.environ.get(name, "") for name in switches},
        "torch_num_threads": torch.get_num_threads(),
        "torch_version": str(torch.__version__),
    }
