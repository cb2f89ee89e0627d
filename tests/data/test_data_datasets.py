"""Datasets: on-the-fly generation (seeding across epochs, workers and ranks), fixed sets."""

import pytest
import torch

import beamkernels.data.datasets as dsmod
from beamkernels.data import ChannelBatch, ChannelConfig, ChannelDataset, GeneratedChannels, generate_channels

SMALL = ChannelConfig(tx_w=4, tx_h=3, rx_w=3, rx_h=2, K=3, Ns=2, Nc=2, Nray=3)


def keys(samples):
    # a fingerprint per sample: its first channel entry
    return [complex(s["H"][0, 0, 0]) for s in samples]


def test_generated_shapes_and_len():
    ds = GeneratedChannels(SMALL, num_samples=10, seed=0, chunk_size=4)
    items = list(ds)
    assert len(ds) == 10 and len(items) == 10
    assert items[0]["H"].shape == (3, 6, 12) and items[0]["Fopt"].shape == (3, 12, 2) and items[0]["Wopt"].shape == (3, 6, 2)
    assert items[0]["H"].dtype == torch.complex64
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    assert batch["H"].shape == (5, 3, 6, 12)


def test_generated_seeding_and_epochs():
    a = keys(GeneratedChannels(SMALL, num_samples=9, seed=1, chunk_size=4))
    b = keys(GeneratedChannels(SMALL, num_samples=9, seed=1, chunk_size=4))
    assert a == b and len(set(a)) == 9
    ds = GeneratedChannels(SMALL, num_samples=9, seed=1, chunk_size=4)
    ds.set_epoch(1)
    assert not set(keys(ds)) & set(a)
    assert not set(keys(GeneratedChannels(SMALL, num_samples=9, seed=2, chunk_size=4))) & set(a)


def test_generated_epochs_without_and_with_set_epoch():
    ds = GeneratedChannels(SMALL, num_samples=6, seed=7, chunk_size=4)
    e0, e1 = keys(ds), keys(ds)  # no set_epoch, num_workers=0: a new epoch each iteration
    assert not set(e0) & set(e1)
    ds.set_epoch(1)
    assert keys(ds) == e1
    ds.set_epoch(0)
    assert keys(ds) == e0
    # persistent workers keep their own copy (set_epoch does not reach it) and count epochs themselves
    fresh = GeneratedChannels(SMALL, num_samples=6, seed=7, chunk_size=4)
    loader = torch.utils.data.DataLoader(fresh, batch_size=None, num_workers=1, persistent_workers=True)
    got = []
    for epoch in range(2):
        fresh.set_epoch(epoch)
        got.append(keys(loader))
    assert got == [e0, e1]


def test_generated_workers_do_not_repeat():
    ds = GeneratedChannels(SMALL, num_samples=20, seed=3, chunk_size=3)
    single = keys(ds)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    multi = keys(loader)
    assert len(multi) == 20 and sorted(multi, key=abs) == sorted(single, key=abs)  # same set, workers disjoint


def test_generated_ranks_do_not_repeat(monkeypatch):
    seen = []
    for rank in range(3):
        monkeypatch.setattr(dsmod, "_dist_rank_world", lambda r=rank: (r, 3))
        ds = GeneratedChannels(SMALL, num_samples=10, seed=4, chunk_size=2)
        k = keys(ds)
        assert len(ds) == 4 and len(k) == 4  # ceil(10 / 3): every rank runs the same number of steps
        seen += k
    assert len(set(seen)) == 12


def test_fixed_dataset():
    ds = ChannelDataset(6, SMALL, seed=5)
    again = ChannelDataset(6, SMALL, seed=5)
    assert len(ds) == 6 and torch.equal(ds[3]["H"], again[3]["H"])
    assert ds.batch.At is not None
    b = generate_channels(4, SMALL, seed=6)
    wrapped = ChannelDataset(b)
    assert isinstance(wrapped.batch, ChannelBatch) and torch.equal(wrapped[2]["Fopt"], b.Fopt[2])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["Wopt"].shape == (4, 3, 6, 2)
    with pytest.raises(TypeError, match="sample count or a ChannelBatch"):
        ChannelDataset("x")
