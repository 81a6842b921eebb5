"""Process-wide CPU memory setting for training runs: keep freed memory in glibc's heap.

PyTorch's CPU allocator caches nothing, and glibc serves every block above its mmap threshold (at
most 32 MiB) with a fresh ``mmap`` that it unmaps again on ``free``: each large activation or
gradient of a training step then costs page faults and pages the kernel must zero. A recurrent
training step allocates and frees gigabytes that way. On the 2-core reference machine a third of
the CPU time of a BiLSTM training loop went to the kernel, and the loop ran at about half the
speed it reaches with the heap kept (``bench/bench_rnn.py`` measures both side by side). The
price is that the process's resident memory stays at its peak instead of shrinking.
"""

import ctypes
import os
import platform

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_MAX = -4


def retain_freed_memory() -> bool:
    """Serve all allocations from glibc's heap and keep freed blocks there for reuse.

    Called by the command-line entry points (``src.cli``, ``src.generate``, ``bench.run``); call
    it at the start of your own training script to get the same speed. Set the environment
    variable ``SEQLAB_RETAIN_MEMORY=0`` to leave glibc's defaults alone.

    Returns:
        Whether the setting was applied (only with glibc, i.e. on most Linux systems).
    """
    if os.environ.get("SEQLAB_RETAIN_MEMORY", "1") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the C library this process already runs on
    no_mmap = libc.mallopt(_M_MMAP_MAX, 0)  # big blocks come from the heap too
    no_trim = libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # and freed ones stay there
    return bool(no_mmap and no_trim)
