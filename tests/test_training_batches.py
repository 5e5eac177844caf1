"""Training batches: the seeded per-epoch order of EpochBatches is the order the loop has always
used, and a batch gathered from ChunkTensors is, bit for bit, the item-by-item stack it replaced."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import TINY_TRAINING, write_demo_sounds
from distill.data.cache import ChunkDataset, dataset_stats, prepare_files
from distill.training.data import ChunkTensors, EpochBatches


def old_epoch_batches(n_items, batch_size, seed, epoch, first_step=0):
    """The loop's batches before EpochBatches (loop.epoch_order + slicing in Trainer.fit)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n_items, generator=generator)
    steps = math.ceil(n_items / batch_size)
    return [order[s * batch_size : (s + 1) * batch_size] for s in range(first_step, steps)]


@pytest.mark.parametrize(
    ("n_items", "batch_size", "seed"),
    [(1, 1, 0), (10, 4, 0), (12, 4, 3), (37, 8, 123), (300, 32, 7), (5, 512, 1)],
)
def test_each_epoch_gives_the_old_seeded_order_and_a_resume_continues_at_its_step(
    n_items, batch_size, seed
):
    batches = EpochBatches(n_items, batch_size, seed)
    assert batches.steps_per_epoch == math.ceil(n_items / batch_size)
    for epoch in range(4):
        for first_step in range(batches.steps_per_epoch):
            batches.set_epoch(epoch, first_step)
            new = list(batches)
            old = old_epoch_batches(n_items, batch_size, seed, epoch, first_step)
            assert len(new) == len(batches) == len(old)
            assert all(torch.equal(a, b) for a, b in zip(new, old, strict=True))
        batches.set_epoch(epoch)
        assert sorted(torch.cat(list(batches)).tolist()) == list(range(n_items))


def test_the_order_depends_on_seed_and_epoch_only():
    first = EpochBatches(40, 8, seed=0)
    first.set_epoch(2)
    again = EpochBatches(40, 8, seed=0)
    list(again)  # iterating another epoch first changes nothing: no state carries over
    again.set_epoch(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    for other in ((0, 3), (1, 2)):
        sampler = EpochBatches(40, 8, seed=other[0])
        sampler.set_epoch(other[1])
        assert not torch.equal(torch.cat(list(sampler)), torch.cat(list(first)))
    # The global RNG (dropout, the VAE's noise) is neither read nor advanced by the order.
    state = torch.get_rng_state()
    list(first)
    assert torch.equal(state, torch.get_rng_state())


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("batches")
    sounds = write_demo_sounds(root / "sounds", seed=5, count=4)
    files = sorted(sounds.iterdir())
    report = prepare_files(files, root / "cache", TINY_TRAINING["spectral"])
    assert len(report.files) == 4
    return report.files, dataset_stats(report.files)


def test_a_batch_is_one_gather_equal_to_the_old_item_by_item_stack(prepared):
    files, stats = prepared
    old, new = ChunkDataset(files, stats), ChunkTensors(files, stats)
    assert len(new) == len(old) == sum(f.n_chunks for f in files) >= 8
    assert new.files == old.files
    for i in range(len(old)):  # same items, in the same (file) order
        assert all(torch.equal(a, b) for a, b in zip(new[i], old[i], strict=True))
    batches = EpochBatches(len(new), 5, seed=3)
    for epoch in range(2):
        batches.set_epoch(epoch)
        for indices in batches:
            items = [old[int(i)] for i in indices]
            spec, audio = new.batch(indices)  # (B, 2, n_mels, frames), (B, samples)
            assert torch.equal(spec, torch.stack([s for s, _ in items]))
            assert torch.equal(audio, torch.stack([a for _, a in items]))
    with pytest.raises(IndexError, match="out of range"):
        new[len(new)]


def test_no_files_give_an_empty_dataset(prepared):
    _, stats = prepared
    assert len(ChunkTensors([], stats)) == 0
