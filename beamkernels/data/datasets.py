"""Datasets: channels generated on the fly (training), fixed generated sets (validation/test) and
.mat files in the thesis layout. Every sample is a dict {"H": [K, Nr, Nt], "Fopt": [K, Nt, Ns],
"Wopt": [K, Nr, Ns]} (complex)."""

from __future__ import annotations

import os
import re
from typing import Dict, Iterator, Optional, Union

import numpy as np
import torch

from beamkernels.data.channel import ChannelBatch, ChannelConfig, generate_channels, optimal_precoders
from beamkernels.data.checks import ChannelDataError, check_targets
from beamkernels.data.matio import PathLike, load_mat


def _dist_rank_world():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _chunk_seed(*words: int) -> int:
    # SeedSequence mixes (seed, epoch, rank, chunk) into well-separated streams.
    s = np.random.SeedSequence([int(w) for w in words]).generate_state(2, np.uint32)
    return (int(s[0]) << 31) ^ int(s[1])


class GeneratedChannels(torch.utils.data.IterableDataset):
    """Fresh channels every epoch, generated in chunks of ``chunk_size`` in the worker.

    An epoch has ``num_samples`` samples in total, split over DDP ranks (each rank gets
    ceil(num_samples / world_size), like DistributedSampler pads, so every rank runs the same
    number of steps). Within a rank the chunks are dealt round-robin to the DataLoader workers.
    Chunk i of rank r in epoch e is drawn with seed f(seed, e, r, i): the data of a rank does not
    depend on the number of workers, ranks and workers never repeat each other, and a run is
    reproducible.

    Epochs: the epoch used is ``set_epoch``'s value plus the number of iterations this copy of
    the dataset has started since then (a copy sent to a worker starts from the set value). Call ``set_epoch(e)`` at the start of every epoch (as with
    DistributedSampler): then epoch e is the same data with num_workers=0, with workers, and with
    persistent workers (whose copies never see set_epoch but count their own epochs). Without
    set_epoch, num_workers=0 and persistent workers still get new samples every epoch, but
    non-persistent workers (a fresh copy per epoch) would repeat epoch 0.
    """

    def __init__(self, config: Optional[ChannelConfig] = None, num_samples: int = 10000, seed: int = 0,
                 chunk_size: int = 256, dtype: torch.dtype = torch.complex64):
        super().__init__()
        if num_samples < 0 or chunk_size < 1:
            raise ValueError(f"GeneratedChannels: need num_samples >= 0 and chunk_size >= 1, got {num_samples}, {chunk_size}")
        self.config = ChannelConfig() if config is None else config
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.chunk_size = int(chunk_size)
        self.dtype = dtype
        self.epoch = 0
        self._since_set = 0  # iterations started since set_epoch, in process _count_pid
        self._count_pid = os.getpid()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._since_set = 0


    def _per_rank(self, world: int) -> int:
        return -(-self.num_samples // world)

    def __len__(self) -> int:
        return self._per_rank(_dist_rank_world()[1])

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        rank, world = _dist_rank_world()
        info = torch.utils.data.get_worker_info()
        wid, nw = (0, 1) if info is None else (info.id, info.num_workers)
        # A copy in a DataLoader worker (forked or spawned) starts counting at the epoch last set,
        # whatever the parent's copy iterated itself: the count belongs to one process.
        if self._count_pid != os.getpid():
            self._count_pid, self._since_set = os.getpid(), 0
        epoch = self.epoch + self._since_set
        self._since_set += 1
        n = self._per_rank(world)
        n_chunks = -(-n // self.chunk_size)
        for c in range(wid, n_chunks, nw):
            size = min(self.chunk_size, n - c * self.chunk_size)
            b = generate_channels(size, self.config, seed=_chunk_seed(self.seed, epoch, rank, c), dtype=self.dtype)
            for j in range(size):
                yield {"H": b.H[j], "Fopt": b.Fopt[j], "Wopt": b.Wopt[j]}


class ChannelDataset(torch.utils.data.Dataset):
    """A fixed in-memory set: ``ChannelDataset(num_samples, config, seed=0)`` generates it once
    (reproducible), ``ChannelDataset(batch)`` wraps an existing ChannelBatch. ``.batch`` holds the
    whole set (with the path responses At/Ar when generated, for OMP)."""

    def __init__(self, data: Union[int, ChannelBatch], config: Optional[ChannelConfig] = None, seed: int = 0,
                 dtype: torch.dtype = torch.complex64):
        if isinstance(data, ChannelBatch):
            if config is not None:
                raise ValueError("ChannelDataset: give a ChannelBatch or (num_samples, config), not both")
            self.batch = data
        elif isinstance(data, int) and not isinstance(data, bool):
            self.batch = generate_channels(data, config, seed=seed, dtype=dtype)
        else:
            raise TypeError(f"ChannelDataset: first argument must be a sample count or a ChannelBatch, got {type(data).__name__}")

    def __len__(self) -> int:
        return len(self.batch)

    def __getitem__(self, i) -> Dict[str, torch.Tensor]:
        return {"H": self.batch.H[i], "Fopt": self.batch.Fopt[i], "Wopt": self.batch.Wopt[i]}


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# Per-variable layout, MATLAB order per sample: (symbolic dims) -> for messages.
_LAYOUT = {"H": "[Nr, Nt, K]", "Fopt": "[Nt, Ns, K]", "Wopt": "[Nr, Ns, K]"}


def _variable(d, key, role, path) -> np.ndarray:
    if key not in d:
        present = ", ".join(sorted(d)) or "none"
        raise ChannelDataError(f"{path}: variable '{key}' ({role} {_LAYOUT[role]}) not found; numeric variables present: {present}")
    x = d[key]
    if not np.iscomplexobj(x):
        raise ChannelDataError(f"{path}: variable '{key}' is real (dtype {x.dtype}) but must be complex ({role} {_LAYOUT[role]})")
    if not np.isfinite(x).all():
        raise ChannelDataError(f"{path}: variable '{key}' contains NaN or Inf ({int((~np.isfinite(x)).sum())} entries)")
    return x


def _to_samples(x: np.ndarray, key: str, role: str, path: str, sample_axis: Optional[int]) -> np.ndarray:
    """MATLAB-order array -> [N, K, a, b] by padding MATLAB's dropped trailing singleton dims and
    permuting (never reshaping)."""
    full = 3 if (sample_axis is None and x.ndim <= 3) else 4
    if x.ndim > full or x.ndim < 2:
        want = f"{_LAYOUT[role]}" + ("" if full == 3 else " plus one sample axis")
        raise ChannelDataError(f"{path}: variable '{key}' has shape {list(x.shape)} (MATLAB order), expected {want}"
                               + (" (4-D data: pass sample_axis)" if x.ndim > 4 else ""))
    x = x.reshape(x.shape + (1,) * (full - x.ndim))  # append dropped trailing singletons only
    if full == 3:
        x = x[None]
    else:
        ax = 3 if sample_axis is None else sample_axis
        if not -4 <= ax < 4:
            raise ChannelDataError(f"{path}: sample_axis={sample_axis} out of range for variable '{key}' of shape {list(x.shape)}")
        x = np.moveaxis(x, ax, 0)
    return x.transpose(0, 3, 1, 2)  # [N, a, b, K] -> [N, K, a, b]


class MatChannelDataset(torch.utils.data.Dataset):
    """Channels and targets from MATLAB files in the thesis layout: H [Nr, Nt, K],
    Fopt_final [Nt, Ns, K], Wopt_final [Nr, Ns, K] (complex; v7 via scipy, v7.3/HDF5 via h5py).
    The targets are optional: a file that holds neither target variable (or f_key = w_key =
    None) gets the SVD targets of its H with ``ns`` streams (optimal_precoders; listed in
    ``.computed_targets``); a file with only one of them is an error.

    ``path``: one .mat file or a directory of them (all ``*.mat``, natural sort order). A file
    holds one sample (3-D, or 2-D when K = 1) or several along ``sample_axis`` (an axis of the
    4-D MATLAB-order array; None = the last axis for 4-D arrays, the layout save_mat writes).
    Loads everything into memory as ``dtype``. ``check=True`` verifies that the targets are the
    SVD targets of H (check_targets at ``snr_db``), which catches axis-order mistakes. Bad data
    raises ChannelDataError naming the file and the variable. ``.batch`` is the ChannelBatch.
    """

    def __init__(self, path: PathLike, h_key: str = "H", f_key: str = "Fopt_final", w_key: str = "Wopt_final",
                 sample_axis: Optional[int] = None, check: bool = True, snr_db: float = 10.0, rtol: float = 1e-3,
                 dtype: torch.dtype = torch.complex64, ns: int = 2):
        if dtype not in (torch.complex64, torch.complex128):
            raise TypeError(f"MatChannelDataset: dtype must be torch.complex64 or torch.complex128, got {dtype}")
        if (f_key is None) != (w_key is None):
            raise ValueError(f"MatChannelDataset: f_key and w_key must both be names or both None (SVD targets), "
                             f"got {f_key!r} and {w_key!r}")
        path = os.fspath(path)
        if os.path.isdir(path):
            # natural order; names with the same numbers (s1.mat, s01.mat) by name, not by listdir's order
            files = sorted((f for f in os.listdir(path) if f.lower().endswith(".mat")), key=lambda f: (_natural_key(f), f))
            if not files:
                raise ChannelDataError(f"{path}: directory contains no .mat files")
            files = [os.path.join(path, f) for f in files]
        else:
            files = [path]
        Hs, Fs, Ws, names, stored = [], [], [], [], []
        self.computed_targets: list = []
        ref = None
        for fp in files:
            d = load_mat(fp)
            H = _to_samples(_variable(d, h_key, "H", fp), h_key, "H", fp, sample_axis)
            N, K, Nr, Nt = H.shape
            if 0 in H.shape:
                raise ChannelDataError(f"{fp}: variable '{h_key}' is empty (MATLAB-order shape {list(d[h_key].shape)}: "
                                       f"{N} samples, K={K}, Nr={Nr}, Nt={Nt})")
            has = [k is not None and k in d for k in (f_key, w_key)]
            if has[0] != has[1]:
                miss, there = (f_key, w_key) if not has[0] else (w_key, f_key)
                present = ", ".join(sorted(d)) or "none"
                raise ChannelDataError(f"{fp}: variable '{miss}' not found but '{there}' is: store both targets or neither "
                                       f"(neither: the SVD targets of H are computed); numeric variables present: {present}")
            if not has[0]:
                if not 1 <= ns <= min(Nr, Nt):
                    raise ChannelDataError(f"{fp}: no stored targets, and ns={ns} streams need 1 <= ns <= min(Nr={Nr}, Nt={Nt})")
                Ft, Wt = optimal_precoders(torch.from_numpy(np.ascontiguousarray(H)).to(torch.complex128), ns)
                F, W = Ft.numpy(), Wt.numpy()
                self.computed_targets.append(fp)
            else:
                F = _to_samples(_variable(d, f_key, "Fopt", fp), f_key, "Fopt", fp, sample_axis)
                W = _to_samples(_variable(d, w_key, "Wopt", fp), w_key, "Wopt", fp, sample_axis)
            Ns = F.shape[-1]
            if F.shape != (N, K, Nt, Ns):
                raise ChannelDataError(f"{fp}: variable '{f_key}' has shape {list(d[f_key].shape)} (MATLAB order), expected "
                                       f"[Nt={Nt}, Ns, K={K}]{' + samples' if N > 1 or sample_axis is not None else ''} "
                                       f"to match '{h_key}' of shape {list(d[h_key].shape)}")
            if W.shape != (N, K, Nr, Ns):
                raise ChannelDataError(f"{fp}: variable '{w_key}' has shape {list(d[w_key].shape)} (MATLAB order), expected "
                                       f"[Nr={Nr}, Ns={Ns}, K={K}]{' + samples' if N > 1 or sample_axis is not None else ''} "
                                       f"to match '{h_key}' {list(d[h_key].shape)} and '{f_key}' {list(d[f_key].shape)}")
            if has[0] and Ns > min(Nr, Nt):
                raise ChannelDataError(f"{fp}: variables '{f_key}' / '{w_key}' hold Ns = {Ns} streams, more than "
                                       f"min(Nr={Nr}, Nt={Nt}) of '{h_key}': they cannot be SVD targets")
            if ref is None:
                ref = (K, Nr, Nt, Ns, fp)
            elif (K, Nr, Nt, Ns) != ref[:4]:
                raise ChannelDataError(f"{fp}: variable '{h_key}'/'{f_key}' has (K, Nr, Nt, Ns) = {(K, Nr, Nt, Ns)} but "
                                       f"{ref[4]} has {ref[:4]}; all files must share one setting")
            Hs.append(torch.from_numpy(np.ascontiguousarray(H)))
            Fs.append(torch.from_numpy(np.ascontiguousarray(F)))
            Ws.append(torch.from_numpy(np.ascontiguousarray(W)))
            stored += [has[0]] * N
            names += [fp] if N == 1 and sample_axis is None and d[h_key].ndim <= 3 else [f"{fp} [sample {i}]" for i in range(N)]
        H, F, W = torch.cat(Hs), torch.cat([f.to(Hs[0].dtype) for f in Fs]), torch.cat([w.to(Hs[0].dtype) for w in Ws])
        sel = torch.tensor(stored, dtype=torch.bool)
        if check and bool(sel.any()):  # the stored targets (computed ones are SVD targets by construction)
            idx = sel.nonzero().flatten()
            try:
                check_targets(H[idx], F[idx], W[idx], snr_db=snr_db, rtol=rtol, names=[names[i] for i in idx.tolist()])
            except ChannelDataError as e:
                raise ChannelDataError(f"{e} [variables '{h_key}', '{f_key}', '{w_key}']") from None
        self.files = files
        self.names = names
        self.batch = ChannelBatch(H=H.to(dtype), Fopt=F.to(dtype), Wopt=W.to(dtype))
        for role, t in (("H", self.batch.H), ("Fopt", self.batch.Fopt), ("Wopt", self.batch.Wopt)):
            bad = (~torch.isfinite(torch.view_as_real(t))).flatten(1).any(1)  # finite in the file, not in dtype
            if bool(bad.any()):
                i = int(bad.nonzero()[0])
                raise ChannelDataError(f"{names[i]}: {role} overflows {dtype} (finite in the file); load it with "
                                       f"dtype=torch.complex128")

    def __len__(self) -> int:
        return len(self.batch)

    def __getitem__(self, i) -> Dict[str, torch.Tensor]:
        return {"H": self.batch.H[i], "Fopt": self.batch.Fopt[i], "Wopt": self.batch.Wopt[i]}
