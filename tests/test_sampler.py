"""Tests for BucketBatchSampler: coverage, DDP shards, epochs, padding efficiency, Lightning."""

import math

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler

from src.data.sampler import BucketBatchSampler


def lognormal_lengths(n: int = 5000, seed: int = 0) -> np.ndarray:
    """IMDB-like review lengths: log-normal, median ~170 tokens, truncated to 400."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(mean=5.15, sigma=0.65, size=n).astype(int), 5, 400)


def real_token_share(batches, lengths) -> float:
    real = sum(lengths[b].sum() for b in batches)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    return real / padded


def test_single_replica_covers_every_example_once():
    lengths = lognormal_lengths(1000)
    sampler = BucketBatchSampler(lengths, batch_size=32, bucket_size=5)
    batches = list(sampler)
    assert len(batches) == len(sampler) == math.ceil(1000 / 32)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000))
    assert sum(len(b) < 32 for b in batches) == 1  # only the last batch of the epoch is short
    for b in batches:  # longest first inside each batch
        assert list(lengths[b]) == sorted(lengths[b], reverse=True)


def test_drop_last_drops_only_the_short_batch():
    sampler = BucketBatchSampler(lognormal_lengths(1000), 32, drop_last=True, bucket_size=5)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 1000 // 32
    assert all(len(b) == 32 for b in batches)
    assert len({i for b in batches for i in b}) == 31 * 32


@pytest.mark.parametrize(("n", "drop_last"), [(1024, False), (1000, False), (1000, True)])
def test_two_replicas_get_disjoint_shards_of_equal_length(n, drop_last):
    lengths = lognormal_lengths(n)
    shards = [
        list(BucketBatchSampler(lengths, 32, drop_last=drop_last, num_replicas=2, rank=r, seed=5))
        for r in range(2)
    ]
    assert len(shards[0]) == len(shards[1])
    for r, shard in enumerate(shards):
        assert len(shard) == len(
            BucketBatchSampler(lengths, 32, drop_last=drop_last, num_replicas=2, rank=r)
        )
    seen = [{i for b in shard for i in b} for shard in shards]
    full = n // 32 if drop_last else math.ceil(n / 32)
    if drop_last or full % 2 == 0:  # an even deal: disjoint, nothing repeated
        assert not seen[0] & seen[1]
        assert len(seen[0] | seen[1]) == (n if not drop_last else (full // 2) * 2 * 32)
    else:  # padded by repeating one batch from the start of the epoch
        assert seen[0] | seen[1] == set(range(n))
        assert len(seen[0] & seen[1]) <= 32


def test_epochs_change_composition_but_are_reproducible():
    lengths = lognormal_lengths(2000)
    sampler = BucketBatchSampler(lengths, 32, bucket_size=4, seed=1)
    epoch0 = list(sampler)
    assert list(sampler) == epoch0  # same epoch, same batches
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert sorted(i for b in epoch1 for i in b) == list(range(2000))
    assert {tuple(sorted(b)) for b in epoch0} != {tuple(sorted(b)) for b in epoch1}
    other_seed = BucketBatchSampler(lengths, 32, bucket_size=4, seed=2)
    assert list(other_seed) != epoch0


def test_no_shuffle_is_sorted_and_deterministic():
    lengths = lognormal_lengths(500)
    sampler = BucketBatchSampler(lengths, 64, shuffle=False)
    batches = list(sampler)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(500))
    assert list(lengths[flat]) == sorted(lengths, reverse=True)
    sampler.set_epoch(3)
    assert list(sampler) == batches


def test_real_token_share_is_high_on_lognormal_lengths():
    lengths = lognormal_lengths(20000)
    bucketed = list(BucketBatchSampler(lengths, 64, seed=0))
    assert real_token_share(bucketed, lengths) >= 0.95
    perm = np.random.default_rng(0).permutation(len(lengths))
    random_batches = [perm[i : i + 64] for i in range(0, len(perm), 64)]
    assert real_token_share(random_batches, lengths) < 0.6  # what bucketing saves


def test_defaults_to_single_process_and_checks_arguments():
    sampler = BucketBatchSampler([3, 1, 2], 2)
    assert (sampler.num_replicas, sampler.rank) == (1, 0)
    with pytest.raises(ValueError, match="rank 2 is out of range"):
        BucketBatchSampler([3, 1, 2], 2, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="batch_size"):
        BucketBatchSampler([3, 1, 2], 0)


def _lightning_dataloader(lengths, batch_size, world=None):
    """A loader built as in a ``*_dataloader`` hook, where Lightning records init arguments."""
    from lightning.fabric.utilities.data import _replace_dunder_methods

    world = world or {}
    with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
        sampler = BucketBatchSampler(lengths, batch_size, seed=0, **world)
        return DataLoader(list(range(len(lengths))), batch_sampler=sampler)


@pytest.mark.parametrize("own_world", [False, True])
def test_lightning_distributed_sampler_injection(own_world):
    """What Lightning does under DDP with ``use_distributed_sampler=True``."""
    from lightning.fabric.utilities.data import _set_sampler_epoch
    from lightning.pytorch.utilities.data import _update_dataloader

    lengths = lognormal_lengths(1001)
    shards, lens = [], []
    for rank in range(2):
        world = {"num_replicas": 2, "rank": rank} if own_world else None
        dl = _lightning_dataloader(lengths, 32, world)
        injected = DistributedSampler(dl.dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        dl = _update_dataloader(dl, injected)
        assert isinstance(dl.batch_sampler, BucketBatchSampler)
        assert dl.batch_sampler.sampler is injected and dl.batch_sampler.num_replicas == 1
        _set_sampler_epoch(dl, 0)
        shards.append([i for b in dl for i in b.tolist()])
        lens.append(len(dl))
        assert len(list(dl)) == len(dl)
        _set_sampler_epoch(dl, 1)  # Lightning's per-epoch hook reaches the bucket shuffling
        assert dl.batch_sampler.epoch == 1
        assert [i for b in dl for i in b.tolist()] != shards[-1]
    assert lens[0] == lens[1]
    assert set(shards[0]) | set(shards[1]) == set(range(1001))
    assert len(set(shards[0]) & set(shards[1])) <= 1  # DistributedSampler pads one sample


def test_lightning_sets_epoch_on_own_sampler():
    from lightning.fabric.utilities.data import _set_sampler_epoch

    dl = _lightning_dataloader(lognormal_lengths(300), 16)
    first = [b.tolist() for b in dl]
    _set_sampler_epoch(dl, 4)
    assert dl.batch_sampler.epoch == 4
    assert [b.tolist() for b in dl] != first
    assert all(isinstance(b, torch.Tensor) for b in dl)


@pytest.mark.parametrize(("n", "drop_last"), [(1000, False), (1000, True), (70, False)])
def test_uneven_deal_gives_each_batch_once(n, drop_last):
    lengths = lognormal_lengths(n)
    single = list(BucketBatchSampler(lengths, 32, shuffle=False, drop_last=drop_last))
    shards = [
        BucketBatchSampler(lengths, 32, False, drop_last, num_replicas=3, rank=r, even=False)
        for r in range(3)
    ]
    dealt = [list(s) for s in shards]
    assert [len(d) for d in dealt] == [len(s) for s in shards]
    assert sorted(b for d in dealt for b in d) == sorted(single)  # the same batches, once each
    assert max(map(len, dealt)) - min(map(len, dealt)) <= 1


def test_uneven_deal_with_fewer_batches_than_ranks_gives_each_rank_one():
    lengths = lognormal_lengths(40)
    shards = [
        list(BucketBatchSampler(lengths, 32, False, num_replicas=3, rank=r, even=False))
        for r in range(3)
    ]
    assert [len(s) for s in shards] == [1, 1, 1]
    assert sorted(i for s in shards for i in s[0]) == list(range(40))
    for (batch,) in shards:
        assert list(lengths[batch]) == sorted(lengths[batch], reverse=True)
    with pytest.raises(ValueError, match="2 examples cannot give each of 3 ranks a batch"):
        list(BucketBatchSampler(lengths[:2], 32, False, num_replicas=3, rank=0, even=False))
