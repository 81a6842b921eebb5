"""Length-bucketing batch sampler: batches of similar lengths, reshuffled every epoch, DDP-aware."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import BatchSampler, DistributedSampler, Sampler

from src.data.resumable import EpochSampler


class BucketBatchSampler(BatchSampler):
    """Yield batches of indices whose lengths are close, so padded batches are mostly real tokens.

    With ``shuffle=True`` each epoch draws a random order (``seed + epoch``), cuts it into pools
    of ``bucket_size * batch_size`` examples, sorts each pool by length (longest first), cuts
    the pools into batches and shuffles the batch order. Pools are whole multiples of the batch,
    so only the very last batch of an epoch can be short. With ``shuffle=False`` the whole set is
    sorted longest first (deterministic; for validation and test). Every batch is sorted by
    decreasing length, as ``pack_padded_sequence(enforce_sorted=True)`` wants.

    Distributed: the batches of an epoch are dealt round-robin to ``num_replicas`` ranks, so the
    shards are disjoint and every rank yields ``len(self)`` batches. With ``drop_last=False`` the
    list is padded by repeating batches from its start (as ``DistributedSampler`` repeats
    samples); with ``drop_last=True`` the short last batch and the remainder are dropped. With
    ``even=False`` nothing is repeated or dropped: the ranks get the batches a single process
    would see, each exactly once, and may get one batch more than another (evaluation). With
    fewer batches than ranks, the examples are cut into one batch per rank instead, since a
    rank without a batch would leave the others waiting in the metric sync.
    If Lightning injects a ``DistributedSampler`` as ``sampler`` (``use_distributed_sampler=True``
    under DDP), that sampler already holds this rank's shard of the examples: the batches are
    then made from it and ``num_replicas``/``rank`` are ignored.

    Args:
        lengths: length of every example of the dataset, indexed like the dataset.
        batch_size: examples per batch.
        shuffle: random pools and batch order per epoch; ``False`` sorts everything.
        drop_last: drop the last short batch (and, distributed, the batches left after an even
            deal) instead of keeping it (and padding by repetition).
        bucket_size: pool size in batches. The default 100 pools 6,400 examples at batch 64,
            about four pools per IMDB training epoch: lengths inside a batch nearly match
            (docs/performance.md gives the real-token share on IMDB) while batch composition
            still changes every epoch.
            Smaller pools give more randomness and a little more padding.
        seed: base seed; the epoch's randomness is ``(seed, epoch)``, identical on every rank.
        num_replicas: number of ranks; default ``torch.distributed``'s world size, else 1.
        rank: this rank; default ``torch.distributed``'s rank, else 0.
        sampler: optional source of the example order (e.g. Lightning's ``DistributedSampler``);
            default a seeded permutation (``shuffle``) or ``0..n-1``.
        even: distributed, give every rank the same number of batches (training, where the
            ranks step together); ``False`` deals each batch once (validation and test metrics
            equal a single process's).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        bucket_size: int = 100,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        sampler: Sampler[int] | None = None,
        even: bool = True,
    ) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if sampler is None:
            sampler = EpochSampler(len(self.lengths), shuffle, seed)
        super().__init__(sampler, batch_size, drop_last)  # checks batch_size and drop_last
        if bucket_size < 1:
            raise ValueError(f"bucket_size must be a positive number of batches, got {bucket_size}")
        distributed = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if distributed else 1
        if rank is None:
            rank = dist.get_rank() if distributed else 0
        if isinstance(sampler, DistributedSampler):  # the sampler shards the examples already
            num_replicas, rank = 1, 0
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is out of range for num_replicas={num_replicas}")
        self.shuffle, self.bucket_size, self.seed = shuffle, bucket_size, seed
        self.num_replicas, self.rank, self.even = num_replicas, rank, even
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """Current epoch: the one set on the index sampler (where Lightning sets it)."""
        return getattr(self.sampler, "epoch", self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next iteration (call it on every rank before each epoch)."""
        self._epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def _all_batches(self) -> list[np.ndarray]:
        order = np.fromiter(iter(self.sampler), dtype=np.int64)
        pool = self.bucket_size * self.batch_size if self.shuffle else max(len(order), 1)
        batches: list[np.ndarray] = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]  # longest first
            batches.extend(np.split(chunk, range(self.batch_size, len(chunk), self.batch_size)))
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            perm = np.random.default_rng((self.seed, self.epoch, 1)).permutation(len(batches))
            batches = [batches[i] for i in perm]
        return batches

    def _one_per_rank(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        order = np.concatenate(batches)
        if len(order) < self.num_replicas:
            raise ValueError(
                f"{len(order)} examples cannot give each of {self.num_replicas} ranks a batch; "
                "use fewer devices or more data"
            )
        parts = np.array_split(order, self.num_replicas)
        return [p[np.argsort(-self.lengths[p], kind="stable")] for p in parts]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        if self.num_replicas > 1 and not self.even:
            if 0 < len(batches) < self.num_replicas:
                batches = self._one_per_rank(batches)
            batches = batches[self.rank :: self.num_replicas]
        elif self.num_replicas > 1:
            total = len(self) * self.num_replicas
            if total > len(batches):  # pad by repeating batches from the start, cyclically
                batches = [batches[i % len(batches)] for i in range(total)]
            batches = batches[self.rank : total : self.num_replicas]
        for b in batches:
            yield b.tolist()

    def __len__(self) -> int:
        n = len(self.sampler)
        full = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        if self.num_replicas == 1:
            return full
        if not self.even:
            if 0 < full < self.num_replicas:
                return 1  # see _one_per_rank
            return len(range(self.rank, full, self.num_replicas))
        if self.drop_last:
            return full // self.num_replicas
        return math.ceil(full / self.num_replicas)
