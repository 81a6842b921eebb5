"""Training loaders: each epoch's order from (seed, epoch) alone, the global random state left
alone, and a loader resumed mid-epoch handing out exactly the batches that were left."""

import multiprocessing

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from src.data.resumable import EpochSampler, ResumableDataLoader
from src.data.sampler import BucketBatchSampler

DATA = TensorDataset(torch.arange(50))


def _epoch(loader, epoch: int) -> list[list[int]]:
    """One epoch's batches, after Lightning's ``set_epoch`` call."""
    for sampler in (loader.sampler, getattr(loader.batch_sampler, "sampler", None)):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
    return [batch[0].tolist() for batch in loader]


def test_epoch_order_depends_on_seed_and_epoch_only():
    a, b = EpochSampler(50, seed=3), EpochSampler(50, seed=3)
    a.set_epoch(4)
    torch.manual_seed(0)  # the global state plays no part
    first = list(a)
    b.set_epoch(4)
    torch.manual_seed(1)
    assert list(b) == first and sorted(first) == list(range(50))
    b.set_epoch(5)
    assert list(b) != first
    assert list(EpochSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]


def test_loader_leaves_the_global_random_state_alone():
    loader = ResumableDataLoader(DATA, batch_size=8, shuffle=True, seed=0)
    state = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    _epoch(loader, 0)
    assert torch.equal(torch.get_rng_state(), state[0])
    assert np.array_equal(np.random.get_state()[1], state[1])  # noqa: NPY002


@pytest.mark.parametrize("workers", [0, 2])
def test_resumed_epoch_hands_out_the_batches_that_were_left(workers):
    def make():
        kwargs = {"num_workers": workers, "persistent_workers": workers > 0}
        return ResumableDataLoader(DATA, batch_size=8, shuffle=True, seed=1, **kwargs)

    loader = make()
    _epoch(loader, 0)
    full = _epoch(loader, 1)
    iterator = iter(loader)
    seen = [next(iterator)[0].tolist() for _ in range(3)]
    assert seen == full[:3]
    state = loader.state_dict()
    assert state == {"epoch": 1, "batches": 3}

    resumed = make()
    resumed.load_state_dict(state)
    assert _epoch(resumed, 1) == full[3:]  # the rest of the epoch, nothing seen twice
    assert _epoch(resumed, 2) == _epoch(loader, 2)  # and the next epoch whole
    assert len(resumed) == len(full)


def test_deleting_a_loader_stops_its_persistent_workers_at_once():
    loader = ResumableDataLoader(
        DATA, batch_size=8, shuffle=True, seed=1, num_workers=2, persistent_workers=True
    )
    iterator = iter(loader)
    next(iterator)
    assert len(multiprocessing.active_children()) == 2
    # no reference cycle through the loader: freed here, workers stopped cleanly, rather than
    # left to a later garbage collection that waits 5 s per worker
    del iterator, loader
    assert multiprocessing.active_children() == []


def test_state_of_another_epoch_skips_nothing():
    loader = ResumableDataLoader(DATA, batch_size=8, shuffle=True, seed=1)
    loader.load_state_dict({"epoch": 0, "batches": 7})  # an epoch that had ended
    assert len(_epoch(loader, 1)) == 7


def test_bucketed_batches_resume_mid_epoch():
    lengths = np.random.default_rng(0).integers(1, 30, size=50)
    sampler = BucketBatchSampler(lengths, batch_size=4, bucket_size=2, seed=2)
    loader = ResumableDataLoader(DATA, batch_sampler=sampler)
    full = _epoch(loader, 3)
    other = ResumableDataLoader(
        DATA, batch_sampler=BucketBatchSampler(lengths, 4, bucket_size=2, seed=2)
    )
    other.load_state_dict({"epoch": 3, "batches": 5})
    assert _epoch(other, 3) == full[5:]
