"""Where training batches come from: the channel generator (fresh channels every step, seeded
by (seed, step, rank) so a resumed run draws the same batches) or a directory of .mat files
(split into train / validation, shuffled per epoch, sharded across DDP ranks)."""

from __future__ import annotations

import os

import torch

from beamkernels.train.config import TrainConfig

# Distinct seed streams: training batches (indices from 0), validation set, test (report) set.
# torch's CPU generator keeps only the low 32 bits of a seed (its mt19937 takes a 32-bit seed), so
# the streams are offsets within 32 bits, 2^30 apart: a run's training batches meet the validation
# stream only after 2^30 steps. (Offsets of 2^40 and 2^41 once made all three streams one.)
_VAL_STREAM = 1 << 30
_TEST_STREAM = 2 << 30


def channel_config(preset: str):
    from beamkernels.data import ChannelConfig

    if preset == "yu":
        return ChannelConfig.yu()
    if preset == "el-ayach-64x16":
        return ChannelConfig.el_ayach(Nt=64, Nr=16)
    if preset == "el-ayach-256x64":
        return ChannelConfig.el_ayach(Nt=256, Nr=64)
    raise ValueError(f"unknown preset {preset!r}")


class Batch(dict):
    """A dict with H, Fopt, Wopt (and At, Ar for generated data) on the training device; generated
    training batches for the rate loss carry no Fopt / Wopt (see GeneratorSource.batch)."""


def _to_batch(b, device) -> Batch:
    if isinstance(b, dict):
        return Batch({k: v.to(device) for k, v in b.items() if isinstance(v, torch.Tensor)})
    out = Batch(H=b.H.to(device))
    if b.Fopt is not None:
        out["Fopt"], out["Wopt"] = b.Fopt.to(device), b.Wopt.to(device)
    if b.At is not None:
        out["At"], out["Ar"] = b.At.to(device), b.Ar.to(device)
    return out


class GeneratorSource:
    """Fresh channels every step: batch of step s on rank r is drawn with seed
    hash(seed, s, r), so runs are reproducible and a resumed run continues the same stream."""

    def __init__(self, cfg: TrainConfig, rank: int, world: int, device: torch.device):
        from beamkernels.data import generate_channels

        self._gen = generate_channels
        self.cfg, self.rank, self.world, self.device = cfg, rank, world, device
        self.channel = channel_config(cfg.preset)
        c = self.channel
        self.dims = dict(K=c.K, Nr=c.Nr, Nt=c.Nt, Ns=c.Ns)
        self.steps_per_epoch = cfg.steps_per_epoch
        self.has_paths = True

    def _seed(self, stream: int, index: int) -> int:
        return (stream + self.cfg.seed * 1_000_003 + index) % (1 << 32)

    def batch(self, epoch: int, step_in_epoch: int, global_step: int) -> Batch:
        # The rate loss is unsupervised: no SVD targets (the SVD is ~95 ms of a ~0.85 s U-Net step
        # at batch 32 on the CPU). The channels are the same either way (the targets draw no randomness).
        b = self._gen(self.cfg.batch_size, self.channel, seed=self._seed(0, global_step * self.world + self.rank),
                      with_targets=self.cfg.loss != "rate")
        return _to_batch(b, self.device)

    def val_set(self) -> Batch:
        return _to_batch(self._gen(self.cfg.val_samples, self.channel, seed=self._seed(_VAL_STREAM, 0)), self.device)

    def test_set(self) -> Batch:
        return _to_batch(self._gen(self.cfg.val_samples, self.channel, seed=self._seed(_TEST_STREAM, 0)), self.device)

    def describe(self) -> str:
        c = self.channel
        return (f"generator preset {self.cfg.preset}: Nt={c.Nt}, Nr={c.Nr}, Ns={c.Ns}, K={c.K}, Nc={c.Nc}, "
                f"Nray={c.Nray}, spread {c.angle_spread_deg} deg")


class MatSource:
    """A directory of .mat files (beamkernels.data.MatChannelDataset). The last ``val_samples``
    samples are held out (validation and report); the rest are shuffled each epoch (seeded by
    seed + epoch) and split across DDP ranks."""

    def __init__(self, cfg: TrainConfig, rank: int, world: int, device: torch.device):
        from beamkernels.data import MatChannelDataset

        if not os.path.isdir(cfg.data):
            raise FileNotFoundError(f"--data: {cfg.data!r} is neither 'generator' nor a directory of .mat files")
        self.cfg, self.rank, self.world, self.device = cfg, rank, world, device
        self.ds = MatChannelDataset(cfg.data)
        n = len(self.ds)
        if n < 2:
            raise ValueError(f"--data {cfg.data}: need at least 2 samples (train + validation), found {n}")
        self.n_val = max(1, min(cfg.val_samples, n // 2))  # never more than half the data
        self.n_train = n - self.n_val
        K, Nr, Nt = self.ds.batch.H.shape[-3:]
        self.dims = dict(K=int(K), Nr=int(Nr), Nt=int(Nt), Ns=int(self.ds.batch.Fopt.shape[-1]))
        per_rank = self.n_train // world
        full = max(1, per_rank // cfg.batch_size)
        self.steps_per_epoch = min(full, cfg.steps_per_epoch) if cfg.steps_per_epoch else full
        self.has_paths = False

    def _stack(self, idx) -> Batch:
        idx = torch.as_tensor(list(idx) if not isinstance(idx, torch.Tensor) else idx, dtype=torch.long)
        b = self.ds.batch  # the whole set, in memory (ChannelBatch)
        return _to_batch({"H": b.H[idx], "Fopt": b.Fopt[idx], "Wopt": b.Wopt[idx]}, self.device)

    def batch(self, epoch: int, step_in_epoch: int, global_step: int) -> Batch:
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.n_train, generator=g)[self.rank::self.world]
        bs = self.cfg.batch_size
        i = (step_in_epoch * bs) % max(1, len(perm) - bs + 1)
        return self._stack(perm[i:i + bs])

    def val_set(self) -> Batch:
        return self._stack(range(self.n_train, self.n_train + self.n_val))

    test_set = val_set

    def describe(self) -> str:
        d = self.dims
        return (f".mat directory {self.cfg.data}: {self.n_train} training + {self.n_val} held-out samples, "
                f"Nt={d['Nt']}, Nr={d['Nr']}, Ns={d['Ns']}, K={d['K']}")


def make_source(cfg: TrainConfig, rank: int, world: int, device: torch.device):
    if cfg.data == "generator":
        return GeneratorSource(cfg, rank, world, device)
    return MatSource(cfg, rank, world, device)


def chunks(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


__all__ = ["make_source", "GeneratorSource", "MatSource", "chunks", "channel_config"]
