"""Complex normalization layers (torch.nn style) over beamkernels.functional.

Buffers and parameters are real tensors (no complex buffers, so state_dicts and exports work):
running_mean [C, 2] = (Re, Im), running_var [C, 3] = (Vrr, Vri, Vii) (unbiased, without eps),
weight [C, 3] = (g_rr, g_ri, g_ii) of the symmetric 2x2 affine G, bias [C, 2] = (Re, Im) of beta.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from beamkernels import functional as F
from beamkernels.nn._dtype import RealStateFollowsDtype, complex_dtype

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def _check_num_features(m: nn.Module, num_features) -> None:
    if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
        raise ValueError(f"{type(m).__name__}: num_features must be an int >= 1, got {num_features!r}")


def _real_dtype(name: str, dtype) -> torch.dtype:
    """complex64 (or None) -> float32, complex128 -> float64; float32 / float64 stay; else TypeError."""
    return complex_dtype(name, dtype, allow_real=True).to_real()


def _register_bn_state(m: nn.Module, affine: bool, track_running_stats: bool, weight: Tensor, bias: Tensor | None,
                       running_var: Tensor, device) -> None:
    """torch.nn.BatchNorm's state: parameters `weight`, `bias` (or None without affine; `bias`
    None with bias=False) and buffers `running_mean` [C, 2], `running_var`, `num_batches_tracked`
    (or None without running stats)."""
    if affine:
        m.weight = nn.Parameter(weight)
        if bias is not None:
            m.bias = nn.Parameter(bias)
        else:
            m.register_parameter("bias", None)
    else:
        m.register_parameter("weight", None)
        m.register_parameter("bias", None)
    if track_running_stats:
        m.register_buffer("running_mean", torch.zeros(running_var.shape[0], 2, dtype=running_var.dtype, device=device))
        m.register_buffer("running_var", running_var)
        m.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
    else:
        m.register_buffer("running_mean", None)
        m.register_buffer("running_var", None)
        m.register_buffer("num_batches_tracked", None)


class _ComplexBatchNorm(RealStateFollowsDtype, nn.Module):
    """Whitening batch-norm (Trabelsi et al. 2018, sec. 3.5); see complex_batch_norm.

    Args mirror torch.nn.BatchNorm2d: num_features (C), eps (added to the covariance diagonal),
    momentum (None = cumulative moving average), affine (learn G and beta; init G = I / sqrt(2),
    beta = 0, as in the paper), track_running_stats (False: batch statistics in eval too),
    device, dtype (complex64 / complex128 or its real counterpart: the layer's tensors are real),
    keyword-only bias (False: affine learns G only, no shift beta).
    The running covariance starts at the identity (torch's running_var starts at 1).
    """

    _dims: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        _check_num_features(self, num_features)
        kw = dict(device=device, dtype=_real_dtype(type(self).__name__, dtype))
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _register_bn_state(self, affine, track_running_stats, torch.empty(num_features, 3, **kw),
                           torch.empty(num_features, 2, **kw) if bias else None, torch.empty(num_features, 3, **kw),
                           device)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.copy_(torch.tensor([1.0, 0.0, 1.0], dtype=self.running_var.dtype))
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            with torch.no_grad():
                self.weight.copy_(torch.tensor([_INV_SQRT2, 0.0, _INV_SQRT2], dtype=self.weight.dtype))
                if self.bias is not None:
                    self.bias.zero_()

    def _check_input_dim(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__}: input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() not in self._dims:
            raise ValueError(f"{type(self).__name__}: expected a {' or '.join(f'{d}D' for d in self._dims)} "
                             f"input {self._layout}, got shape {list(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected {self.num_features} channels (dim 1), "
                             f"got input of shape {list(x.shape)}")
        self._check_input_dtype(x)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.complex_batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                                    self.weight, self.bias, use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class ComplexBatchNorm1d(_ComplexBatchNorm):
    """Whitening batch-norm over [N, C] or [N, C, L] complex inputs."""

    _dims = (2, 3)
    _layout = "[N, C] or [N, C, L]"


class ComplexBatchNorm2d(_ComplexBatchNorm):
    """Whitening batch-norm over [N, C, H, W] complex inputs."""

    _dims = (4,)
    _layout = "[N, C, H, W]"


class ComplexLayerNorm(RealStateFollowsDtype, nn.Module):
    """Per-sample whitening over the trailing ``normalized_shape`` dims (never batch-dependent),
    then a symmetric 2x2 affine and a complex shift per element of normalized_shape
    (weight [*normalized_shape, 3] = (g_rr, g_ri, g_ii), init (1/sqrt 2, 0, 1/sqrt 2);
    bias [*normalized_shape, 2], init 0), like torch.nn.LayerNorm's elementwise affine.
    Arguments in torch.nn.LayerNorm's order: normalized_shape, eps, elementwise_affine, bias
    (False: no shift), device, dtype (complex64 / complex128 or its real counterpart)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if len(shape) == 0 or any((not isinstance(s, int)) or s < 1 for s in shape):
            raise ValueError(f"ComplexLayerNorm: normalized_shape must be positive ints, got {normalized_shape!r}")
        self.normalized_shape = shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        kw = dict(device=device, dtype=_real_dtype("ComplexLayerNorm", dtype))
        if elementwise_affine:
            self.weight = nn.Parameter(torch.empty(*shape, 3, **kw))
            if bias:
                self.bias = nn.Parameter(torch.empty(*shape, 2, **kw))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            with torch.no_grad():
                self.weight.copy_(torch.tensor([_INV_SQRT2, 0.0, _INV_SQRT2], dtype=self.weight.dtype))
                if self.bias is not None:
                    self.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dtype(x)
        return F.complex_layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class NaiveComplexBatchNorm2d(RealStateFollowsDtype, nn.Module):
    """Two independent real BatchNorm2d on Re and Im (no whitening), for comparison only.

    weight/bias/running_mean/running_var are real [C, 2] (column 0: real part, 1: imaginary);
    arguments as ComplexBatchNorm2d (torch.nn.BatchNorm2d's, keyword-only bias included)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        _check_num_features(self, num_features)
        kw = dict(device=device, dtype=_real_dtype("NaiveComplexBatchNorm2d", dtype))
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _register_bn_state(self, affine, track_running_stats, torch.empty(num_features, 2, **kw),
                           torch.empty(num_features, 2, **kw) if bias else None, torch.empty(num_features, 2, **kw),
                           device)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            with torch.no_grad():
                self.weight.fill_(1.0)
                if self.bias is not None:
                    self.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"NaiveComplexBatchNorm2d: input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"NaiveComplexBatchNorm2d: expected [N, {self.num_features}, H, W], got {list(x.shape)}")
        self._check_input_dtype(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.naive_complex_batch_norm(x, self.running_mean if track else None,
                                          self.running_var if track else None, self.weight, self.bias,
                                          use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
