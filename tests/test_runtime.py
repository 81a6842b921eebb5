"""src.runtime's CPU settings: glibc heap reuse (no page faults), subnormals flushed to zero."""

import platform
import subprocess
import sys

import pytest

PROBE = """
import resource, sys, torch
from src.runtime import apply_cpu_settings, retain_freed_memory
if sys.argv[1] == "settings":  # what the entry points do: heap reuse only when asked for
    applied = apply_cpu_settings()["retain_freed_memory"]
else:
    applied = retain_freed_memory() if sys.argv[1] == "retain" else False
for _ in range(20):  # 64 MiB blocks, allocated and freed until the heap has settled
    torch.empty(16 << 20).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    torch.empty(16 << 20).fill_(1.0)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _run(probe: str, mode: str, env: dict) -> list[str]:
    """``probe`` in a fresh interpreter (its own glibc heap and thread pool); its printed words."""
    run = subprocess.run(
        [sys.executable, "-c", probe, mode],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    return run.stdout.split()


def _probe(mode: str, **env) -> tuple[bool, int]:
    applied, faults = _run(PROBE, mode, env)
    return applied == "True", int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_freed_blocks_are_reused_without_page_faults():
    applied, faults = _probe("retain")
    default_applied, default_faults = _probe("default")
    assert applied and not default_applied
    # 5 x 64 MiB: glibc's default maps and zeroes fresh pages each time (80k of 4 KiB, or 160
    # transparent huge pages), the kept heap reuses its block
    assert default_faults > 100 and faults < default_faults / 20
    # the entry points' settings: glibc's defaults unless SEQLAB_RETAIN_MEMORY=1
    assert _probe("settings") == (False, pytest.approx(default_faults, rel=0.5))
    on, on_faults = _probe("settings", SEQLAB_RETAIN_MEMORY="1")
    assert on and on_faults < default_faults / 20


SUBNORMAL_PROBE = """
import sys, torch
from src.runtime import flush_denormals
if sys.argv[1] == "late":
    torch.ones(1 << 20) * 2.0  # a parallel op first: the intra-op threads exist before the flag
applied = flush_denormals() if sys.argv[1] != "default" else False
tiny = torch.ones(1 << 20, dtype=torch.int32).view(torch.float32)  # 1.4e-45 each, subnormal
print(applied, torch.get_num_threads(), int(((tiny * 2.0) != 0).sum()))  # a parallel op
"""


def _subnormal_probe(mode: str, **env) -> tuple[bool, int, int]:
    applied, threads, nonzero = _run(SUBNORMAL_PROBE, mode, env)
    return applied == "True", int(threads), int(nonzero)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86's FTZ/DAZ flag")
def test_subnormals_flush_to_zero_in_every_thread_when_set_first():
    assert _subnormal_probe("default") == (False, pytest.approx(1, abs=1e9), 1 << 20)
    applied, threads, nonzero = _subnormal_probe("first")
    assert applied and nonzero == 0  # the worker threads inherited the flag
    applied, _, late_nonzero = _subnormal_probe("late")
    if threads > 1:  # set after the pool started, it reaches the calling thread only
        assert applied and 0 < late_nonzero < 1 << 20
    assert _subnormal_probe("first", SEQLAB_FLUSH_DENORMAL="0")[::2] == (False, 1 << 20)
