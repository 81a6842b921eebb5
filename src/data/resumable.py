"""Training loaders that a killed run resumes exactly: each epoch's order and worker seeding follow
from ``(seed, epoch)``, and a loader resumed mid-epoch skips the batches it had handed out."""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterator, Sized
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A 63-bit seed for ``stream`` of ``epoch``, mixed from ``(seed, epoch, stream)``."""
    return int(np.random.SeedSequence((seed, epoch, stream)).generate_state(1, np.uint64)[0] >> 1)


class EpochSampler(Sampler[int]):
    """Index order of one epoch: a permutation drawn from ``(seed, epoch)``, or ``0..n-1``.

    Lightning's fit loop calls ``set_epoch`` on ``dataloader.sampler`` and
    ``dataloader.batch_sampler.sampler`` before each epoch, also when it resumes one, so the
    order of every epoch is known without replaying the epochs before it.

    Args:
        n: number of examples.
        shuffle: a fresh permutation every epoch; ``False`` keeps ``0..n-1``.
        seed: base seed of the permutations.
    """

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0) -> None:
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        return iter(np.random.default_rng((self.seed, self.epoch)).permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


class _SkipSeen:
    """The loader's index sampler, less the batches its resumed epoch already handed out.

    DataLoader iterators read ``loader._index_sampler`` once (persistent workers keep it for
    every epoch), so this wrapper looks up the real sampler and the skip count on each ``iter``
    (a new iterator may call ``iter`` on it more than once: the loader clears the count after).
    It holds the loader weakly: a persistent workers' iterator keeps this wrapper, and a
    reference cycle through the loader would leave the iterator to the garbage collector, which
    may tear down the workers' queues first and then wait 5 s for each worker to stop.
    """

    def __init__(self, loader: ResumableDataLoader) -> None:
        self._loader = weakref.ref(loader)

    @property
    def loader(self) -> ResumableDataLoader:
        loader = self._loader()
        if loader is None:
            raise RuntimeError("the DataLoader of this sampler was deleted")
        return loader

    def _source(self) -> Any:
        return DataLoader._index_sampler.fget(self.loader)

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(iter(self._source()), self.loader._skipping, None)

    def __len__(self) -> int:
        return len(self._source())


class ResumableDataLoader(DataLoader):
    """A DataLoader for training whose epochs Lightning can stop and resume exactly.

    - Randomness depends on ``(seed, epoch)`` only, never on the global random state: with
      ``shuffle=True`` the order comes from an :class:`EpochSampler`, and the loader's generator
      (the worker processes' seed comes from it) is reset from ``(seed, epoch)`` as each epoch
      starts.
      Give a ``sampler`` or ``batch_sampler`` with ``set_epoch`` (e.g.
      :class:`~src.data.sampler.BucketBatchSampler`) for other orders.
    - ``state_dict`` / ``load_state_dict`` hold the epoch and the batches handed out in it;
      Lightning's fit loop stores them in every checkpoint and loads them when it resumes an
      epoch, and the resumed epoch then skips those batches without loading them.

    Worker processes are seeded per epoch when they start; with ``persistent_workers`` they
    start once per run, so a dataset that draws random numbers in its workers resumes exactly
    only without them.

    Args:
        dataset: the examples.
        shuffle: a new order every epoch (ignored when ``sampler`` or ``batch_sampler`` is given).
        seed: base seed; ``None`` takes ``torch.initial_seed()``, i.e. ``seed_everything``'s.
        **kwargs: DataLoader's other arguments (``batch_size``, ``sampler``, ``batch_sampler``,
            ``collate_fn``, ``num_workers``, ...).
    """

    def __init__(
        self, dataset: Dataset, shuffle: bool = False, seed: int | None = None, **kwargs: Any
    ) -> None:
        self._skipping, self._seen, self._epoch_now = 0, 0, 0
        self._resume: tuple[int, int] | None = None
        seed = torch.initial_seed() if seed is None else seed
        if kwargs.get("sampler") is None and kwargs.get("batch_sampler") is None:
            n = len(dataset) if isinstance(dataset, Sized) else 0
            kwargs["sampler"] = EpochSampler(n, shuffle, seed)
        if kwargs.get("generator") is None:
            kwargs["generator"] = torch.Generator()
        super().__init__(dataset, **kwargs)
        self.seed = seed

    @property
    def _index_sampler(self) -> _SkipSeen:
        return _SkipSeen(self)

    def _epoch(self) -> int:
        """The epoch Lightning set on the sampler (0 when no sampler keeps one)."""
        for sampler in (self.sampler, getattr(self.batch_sampler, "sampler", None)):
            epoch = getattr(sampler, "epoch", None)
            if isinstance(epoch, int):
                return epoch
        return 0

    def __iter__(self) -> Iterator[Any]:
        epoch = self._epoch()
        self.generator.manual_seed(epoch_seed(self.seed, epoch, stream=1))
        resume, self._resume = self._resume, None
        self._skipping = resume[1] if resume is not None and resume[0] == epoch else 0
        self._epoch_now, self._seen = epoch, self._skipping
        batches = super().__iter__()
        self._skipping = 0
        for batch in batches:
            self._seen += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """The current epoch and how many of its batches were handed out."""
        return {"epoch": self._epoch_now, "batches": self._seen}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Make the next iteration, if it is of the same epoch, skip the batches handed out."""
        self._resume = (int(state["epoch"]), int(state["batches"]))
