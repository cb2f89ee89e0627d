"""Clustered Saleh-Valenzuela wideband mmWave channel and its SVD targets.

Model (O. El Ayach et al., "Spatially Sparse Precoding in Millimeter Wave MIMO Systems", IEEE TWC
13(3), 2014, eqs. 4-6; the wideband, per-tap form and the default numbers follow X. Yu et al.,
"Alternating Minimization Algorithms for Hybrid Precoding in Millimeter Wave MIMO Systems", IEEE
JSTSP 10(3), 2016, and its public MATLAB setting):

    H[k] = sqrt(Nt Nr / (Nc Nray)) * sum_c sum_l alpha_cl a_r(az_r, el_r) a_t(az_t, el_t)^H
           * exp(-j 2 pi k c / K),     k = 0..K-1,

cluster c being delay tap c, alpha_cl ~ CN(0, 1) i.i.d., cluster mean angles uniform (or uniform
in a sector), ray angles Laplacian around the mean with standard deviation sigma (scale
b = sigma / sqrt(2)) truncated to (mean - pi, mean + pi), and the UPA response (half-wavelength
spacing, W x H elements, m the slow index)

    a(az, el)[m*H + n] = exp(j pi (m sin(az) sin(el) + n cos(el))) / sqrt(W H).

Everything is computed in float64/complex128 and cast at the end; there is no Python loop over
samples, clusters or rays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Optional, Tuple, Union

import torch

Sector = Optional[Tuple[float, float]]


@dataclass
class ChannelConfig:
    """Every parameter of the channel model. The defaults are Yu's thesis setting.

    Sectors are ``(low, high)`` in degrees for the cluster *mean* angles; ``None`` means uniform
    on [0, 2 pi). With the UPA response above the array lies in the y-z plane and broadside is
    az = 0, el = 90 degrees, so El Ayach's 60 x 20 degree transmit sector is
    az in (-30, 30), el in (80, 100).
    """

    tx_w: int = 12
    tx_h: int = 12
    rx_w: int = 6
    rx_h: int = 6
    Ns: int = 2
    K: int = 5
    Nc: int = 5
    Nray: int = 10
    angle_spread_deg: float = 10.0
    tx_az_sector_deg: Sector = None
    tx_el_sector_deg: Sector = None
    rx_az_sector_deg: Sector = None
    rx_el_sector_deg: Sector = None

    def __post_init__(self):
        for name in ("tx_w", "tx_h", "rx_w", "rx_h", "Ns", "K", "Nc", "Nray"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"ChannelConfig: '{name}' must be a positive int, got {v!r}")
        if self.Ns > min(self.Nt, self.Nr):
            raise ValueError(f"ChannelConfig: Ns={self.Ns} exceeds min(Nt, Nr)={min(self.Nt, self.Nr)}")
        if not (self.angle_spread_deg >= 0 and math.isfinite(self.angle_spread_deg)):
            raise ValueError(f"ChannelConfig: 'angle_spread_deg' must be finite and >= 0, got {self.angle_spread_deg!r}")
        for name in ("tx_az_sector_deg", "tx_el_sector_deg", "rx_az_sector_deg", "rx_el_sector_deg"):
            s = getattr(self, name)
            if s is None:
                continue
            if len(s) != 2 or not (s[0] <= s[1]):
                raise ValueError(f"ChannelConfig: '{name}' must be None or (low, high) in degrees with low <= high, got {s!r}")
            setattr(self, name, (float(s[0]), float(s[1])))

    @property
    def Nt(self) -> int:
        return self.tx_w * self.tx_h

    @property
    def Nr(self) -> int:
        return self.rx_w * self.rx_h

    @property
    def num_paths(self) -> int:
        return self.Nc * self.Nray

    @classmethod
    def yu(cls, **overrides) -> "ChannelConfig":
        """Yu's thesis setting (the default): 12x12 -> 6x6 UPAs, Ns=2, K=5, Nc=5, Nray=10, 10 deg."""
        return cls(**overrides)

    @classmethod
    def el_ayach(cls, Nt: int = 64, Nr: int = 16, **overrides) -> "ChannelConfig":
        """El Ayach et al.'s figures: Nc=8, Nray=10, 7.5 degree spread, transmit cluster means in a
        60 x 20 degree sector around broadside (az in (-30, 30), el in (80, 100) degrees),
        receive means uniform. Square UPAs: Nt=64 -> 8x8, Nr=16 -> 4x4, Nt=256 -> 16x16,
        Nr=64 -> 8x8 (any perfect square works). K defaults to 1 (the paper is narrowband)."""
        tw, rw = math.isqrt(Nt), math.isqrt(Nr)
        if tw * tw != Nt or rw * rw != Nr:
            raise ValueError(f"ChannelConfig.el_ayach: Nt and Nr must be perfect squares (square UPAs), got Nt={Nt}, Nr={Nr}")
        kw = dict(tx_w=tw, tx_h=tw, rx_w=rw, rx_h=rw, Ns=2, K=1, Nc=8, Nray=10, angle_spread_deg=7.5,
                  tx_az_sector_deg=(-30.0, 30.0), tx_el_sector_deg=(80.0, 100.0))
        kw.update(overrides)
        return cls(**kw)

    def replace(self, **changes) -> "ChannelConfig":
        return replace(self, **changes)


def upa_response(az: torch.Tensor, el: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """UPA array response, shape az.shape + [w*h]; index m*h + n (m slow), unit norm."""
    m = torch.arange(w, dtype=az.dtype, device=az.device)
    n = torch.arange(h, dtype=az.dtype, device=az.device)
    u = (torch.sin(az) * torch.sin(el))[..., None, None]
    v = torch.cos(el)[..., None, None]
    phase = math.pi * (m[:, None] * u + n[None, :] * v)  # [..., w, h]
    a = torch.polar(torch.full_like(phase, 1.0 / math.sqrt(w * h)), phase)
    return a.reshape(*az.shape, w * h)


def _uniform(shape, lo, hi, gen) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)


def truncated_laplace(shape, scale: float, bound: float, gen) -> torch.Tensor:
    """Laplace(0, scale) samples truncated to (-bound, bound), exactly, by inverting the CDF
    F(x) = e^{x/b}/2 (x < 0), 1 - e^{-x/b}/2 (x >= 0) on the uniform interval (F(-bound), F(bound))."""
    if scale == 0:
        return torch.zeros(shape, dtype=torch.float64)
    lo = 0.5 * math.exp(-bound / scale)
    u = _uniform(shape, lo, 1.0 - lo, gen)
    x = torch.where(u < 0.5, scale * torch.log(2.0 * u), -scale * torch.log(2.0 * (1.0 - u)))
    # Guard the open interval against rounding at the ends.
    return x.clamp(-bound, bound)


def _cluster_means(n, Nc, sector: Sector, gen) -> torch.Tensor:
    if sector is None:
        return _uniform((n, Nc), 0.0, 2 * math.pi, gen)
    return _uniform((n, Nc), math.radians(sector[0]), math.radians(sector[1]), gen)


@dataclass
class ChannelBatch:
    """A batch of channels and their targets.

    H [n, K, Nr, Nt], Fopt [n, K, Nt, Ns], Wopt [n, K, Nr, Ns], At [n, Nc*Nray, Nt] (transmit array
    responses a_t of every path as rows, unit norm), Ar [n, Nc*Nray, Nr]. At/Ar may be None for
    data loaded from files. Integer indexing drops the batch dim (like a tensor); slices,
    index tensors and lists keep it.
    """

    H: torch.Tensor
    Fopt: Optional[torch.Tensor]
    Wopt: Optional[torch.Tensor]
    At: Optional[torch.Tensor] = None
    Ar: Optional[torch.Tensor] = None
    config: Optional[ChannelConfig] = field(default=None, compare=False)

    def _map(self, f) -> "ChannelBatch":
        kw = {fl.name: (f(getattr(self, fl.name)) if isinstance(getattr(self, fl.name), torch.Tensor) else getattr(self, fl.name))
              for fl in fields(self)}
        return ChannelBatch(**kw)

    def to(self, *args, **kwargs) -> "ChannelBatch":
        return self._map(lambda t: t.to(*args, **kwargs))

    def __len__(self) -> int:
        return self.H.shape[0]

    def __repr__(self) -> str:
        parts = [f"{f.name}={list(getattr(self, f.name).shape)}" for f in fields(self)
                 if isinstance(getattr(self, f.name), torch.Tensor)]
        return f"ChannelBatch({', '.join(parts)}, dtype={self.H.dtype}, device={self.H.device})"

    def __getitem__(self, idx) -> "ChannelBatch":
        return self._map(lambda t: t[idx])


def optimal_precoders(H: torch.Tensor, Ns: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-subcarrier SVD targets: H = U S V^H (singular values descending),
    Fopt = V[:, :Ns], Wopt = U[:, :Ns]. H [..., Nr, Nt] -> Fopt [..., Nt, Ns], Wopt [..., Nr, Ns].
    The columns are defined only up to a common phase per column pair (and a unitary mix when
    singular values coincide); W^H H F = diag(s_1..s_Ns) holds exactly."""
    if not isinstance(H, torch.Tensor) or not H.is_complex():
        raise TypeError(f"optimal_precoders: H must be a complex tensor, got {getattr(H, 'dtype', type(H).__name__)}")
    if H.dim() < 2:
        raise ValueError(f"optimal_precoders: H must be [..., Nr, Nt], got shape {list(H.shape)}")
    if not 1 <= Ns <= min(H.shape[-2:]):
        raise ValueError(f"optimal_precoders: need 1 <= Ns <= min(Nr, Nt)={min(H.shape[-2:])}, got Ns={Ns}")
    U, _, Vh = torch.linalg.svd(H, full_matrices=False)
    return Vh[..., :Ns, :].mH.resolve_conj().contiguous(), U[..., :, :Ns].contiguous()


def _make_generator(seed, generator) -> torch.Generator:
    if generator is not None:
        if seed is not None:
            raise ValueError("generate_channels: give either seed or generator, not both")
        if generator.device.type != "cpu":
            raise ValueError("generate_channels: the generator must be a CPU torch.Generator (sampling runs on the CPU)")
        return generator
    g = torch.Generator()
    if seed is None:
        # Follow torch's global RNG, so torch.manual_seed makes this reproducible too.
        seed = int(torch.randint(0, 2**62, (1,)).item())
    g.manual_seed(_fold_seed(int(seed)))
    return g


def _fold_seed(seed: int) -> int:
    """The 32 bits torch's CPU generator keeps of a seed (its mt19937 drops the rest): bits above 32
    are folded in, so seeds that differ only there (2^40 vs 0) still give different data; seeds
    in [0, 2^32) are kept as they are."""
    s = seed & 0xFFFF_FFFF_FFFF_FFFF
    return (s ^ (s >> 32)) & 0xFFFF_FFFF


def generate_channels(
    n: int,
    config: Optional[ChannelConfig] = None,
    *,
    seed: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
    device: Union[str, torch.device] = "cpu",
    dtype: torch.dtype = torch.complex64,
    with_targets: bool = True,
) -> ChannelBatch:
    """Draw n channels of the clustered wideband model (module docstring) and their SVD targets.

    Sampling runs on the CPU in float64 from a CPU generator (so a seed gives the same data on
    every device), the SVD in complex128; the result is cast to ``dtype`` and moved to ``device``.
    with_targets=False skips the SVD (Fopt and Wopt are then None), e.g. for channel statistics.
    """
    cfg = ChannelConfig() if config is None else config
    if not isinstance(cfg, ChannelConfig):
        raise TypeError(f"generate_channels: config must be a ChannelConfig, got {type(cfg).__name__}")
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"generate_channels: n must be an int >= 0, got {n!r}")
    if dtype not in (torch.complex64, torch.complex128):
        raise TypeError(f"generate_channels: dtype must be torch.complex64 or torch.complex128, got {dtype}")
    gen = _make_generator(seed, generator)
    Nc, Nray, K, L = cfg.Nc, cfg.Nray, cfg.K, cfg.num_paths
    sigma = math.radians(cfg.angle_spread_deg)
    b = sigma / math.sqrt(2.0)

    def ray_angles(sector):
        mean = _cluster_means(n, Nc, sector, gen)  # [n, Nc]
        off = truncated_laplace((n, Nc, Nray), b, math.pi, gen)
        return (mean[..., None] + off).reshape(n, L)  # path index = c * Nray + l

    az_t = ray_angles(cfg.tx_az_sector_deg)
    el_t = ray_angles(cfg.tx_el_sector_deg)
    az_r = ray_angles(cfg.rx_az_sector_deg)
    el_r = ray_angles(cfg.rx_el_sector_deg)
    At = upa_response(az_t, el_t, cfg.tx_w, cfg.tx_h)  # [n, L, Nt]
    Ar = upa_response(az_r, el_r, cfg.rx_w, cfg.rx_h)  # [n, L, Nr]
    # alpha ~ CN(0, 1): real and imaginary parts N(0, 1/2).
    alpha = torch.complex(torch.randn((n, L), generator=gen, dtype=torch.float64),
                          torch.randn((n, L), generator=gen, dtype=torch.float64)) * math.sqrt(0.5)
    # Tap c = cluster c: per-path, per-subcarrier phase exp(-j 2 pi k c / K).
    c = torch.arange(Nc, dtype=torch.float64).repeat_interleave(Nray)  # [L]
    k = torch.arange(K, dtype=torch.float64)
    tap = torch.polar(torch.ones(K, L, dtype=torch.float64), -2 * math.pi * k[:, None] * c[None, :] / K)
    gains = math.sqrt(cfg.Nt * cfg.Nr / L) * alpha[:, None, :] * tap[None]  # [n, K, L]
    H = torch.einsum("nlr,nkl,nlt->nkrt", Ar, gains, At.conj())
    Fopt, Wopt = optimal_precoders(H, cfg.Ns) if with_targets else (None, None)
    out = ChannelBatch(H=H, Fopt=Fopt, Wopt=Wopt, At=At, Ar=Ar, config=cfg)
    return out.to(device=device, dtype=dtype)
