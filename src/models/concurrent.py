"""Runs independent autograd branches (e.g. an RNN's two directions) on CPU threads of their own.

A bidirectional layer's two directions are independent, but PyTorch runs them one after the other,
each on all intra-op threads; the small per-step matmuls of an RNN scale poorly across threads, so
giving each direction its own share of the cores is faster (measured by ``bench/bench_rnn.py``).
The autograd engine runs CPU backward on one thread, so :class:`_Concurrent` records each branch's
graph in the forward pass and differentiates the branches concurrently in its backward pass; the
parameters are inputs of the function, so their gradients arrive through the outer graph (DDP
hooks, gradient accumulation and clipping see nothing unusual). No double backward.
"""

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

Branch = Callable[..., tuple[Tensor, ...]]
_lock = threading.Lock()
_pool: tuple[ThreadPoolExecutor, int, int] | None = None  # (pool, width, threads in the caller)


def _executor(width: int) -> ThreadPoolExecutor:
    """``width`` worker threads, each with ``torch.get_num_threads() // width`` intra-op threads."""
    global _pool
    threads = torch.get_num_threads()
    with _lock:
        if _pool is not None and _pool[1:] == (width, threads):
            return _pool[0]
        if _pool is not None:
            _pool[0].shutdown(wait=False)
        ready = threading.Barrier(width + 1)
        pool = ThreadPoolExecutor(width, "seqlab-branch")
        share = max(1, threads // width)
        for _ in range(width):  # start every worker now and give it its share of the cores
            pool.submit(lambda: (torch.set_num_threads(share), ready.wait()))
        ready.wait()
        # a worker's set_num_threads also set the default of threads created later; put it back
        torch.set_num_threads(threads)
        _pool = (pool, width, threads)
        return pool


def _forget_pool_in_child() -> None:  # a forked child has the pool object but not its threads
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def usable(x: Tensor) -> bool:
    """Whether branching pays off for work on ``x``: CPU, several threads, no autocast."""
    return (
        x.device.type == "cpu"
        and torch.get_num_threads() >= 2
        and not torch.is_autocast_enabled("cpu")
    )


def run_concurrently(
    branches: Sequence[tuple[Branch, Sequence[Tensor]]],
) -> list[tuple[Tensor, ...]]:
    """Run ``fn(*inputs)`` for each ``(fn, inputs)`` on its own thread; differentiable.

    Args:
        branches: Functions returning a tuple of tensors, each with the tensors it reads; a
            function may read other tensors only if they need no gradient.

    Returns:
        Each function's outputs, in order.
    """
    pool = _executor(len(branches))
    fns = [fn for fn, _ in branches]
    inputs = [list(ins) for _, ins in branches]
    flat = [t for ins in inputs for t in ins]
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in flat)):
        mode = "inference" if torch.is_inference_mode_enabled() else "no_grad"
        futures = [pool.submit(_call, fn, ins, mode) for fn, ins in zip(fns, inputs, strict=True)]
        return [f.result() for f in futures]
    sizes, counts = [len(ins) for ins in inputs], []  # counts: outputs per branch, from forward
    out = _Concurrent.apply(fns, sizes, counts, pool, *flat)
    start, result = 0, []
    for n in counts:
        result.append(tuple(out[start : start + n]))
        start += n
    return result


def _call(fn: Branch, inputs: list[Tensor], mode: str) -> tuple[Tensor, ...]:
    # grad and inference modes are per thread: the caller's reach the worker through ``mode``
    if mode == "inference":
        with torch.inference_mode():
            return tuple(fn(*inputs))
    with torch.set_grad_enabled(mode == "grad"):
        return tuple(fn(*inputs))


def _grad(outputs, grads, inputs: list[Tensor]) -> list[Tensor | None]:
    pairs = [
        (o, g) for o, g in zip(outputs, grads, strict=True) if o.requires_grad and g is not None
    ]
    wanted = [t for t in inputs if t.requires_grad]
    if not pairs or not wanted:
        return [None] * len(inputs)
    outs, grads = zip(*pairs, strict=True)
    got = iter(torch.autograd.grad(outs, wanted, grads, allow_unused=True))
    return [next(got) if t.requires_grad else None for t in inputs]


class _Concurrent(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fns, sizes, counts, pool, *flat):
        leaves = [t.detach().requires_grad_(t.requires_grad) for t in flat]
        groups, start = [], 0
        for n in sizes:
            groups.append(leaves[start : start + n])
            start += n
        futures = [pool.submit(_call, fn, g, "grad") for fn, g in zip(fns, groups, strict=True)]
        outs = [f.result() for f in futures]
        ctx.graphs, ctx.pool = list(zip(outs, groups, strict=True)), pool
        counts.extend(len(o) for o in outs)
        return tuple(o.detach() for out in outs for o in out)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        futures, start = [], 0
        for outs, leaves in ctx.graphs:
            g = grads[start : start + len(outs)]
            start += len(outs)
            futures.append(ctx.pool.submit(_grad, outs, g, leaves))
        return (None, None, None, None, *(g for f in futures for g in f.result()))
