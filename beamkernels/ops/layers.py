"""Complex linear, dropout and upsampling: thin, exact compositions of PyTorch ops.

These have no custom kernels: they validate their inputs and compute with PyTorch on every
device; dropout and upsampling have no backend dispatch, complex_linear follows it (below). The
reference (beamkernels/reference/layers.py) is the specification.

complex_linear uses torch's native complex GEMM (F.linear on complex64/128): measured on the
CPU against Gauss's 3 real GEMMs and one block-real GEMM, it was the fastest at every size
tried (benchmarks/bench_linear.py, README). It is the one op here that follows the backend
choice: the reference backend is F.linear with PyTorch's autograd (the specification); every
other backend runs the same GEMMs through _ComplexLinear, whose backward computes
dL/dx = g conj(W) without conjugating the weight into a copy (PyTorch's autograd materializes
conj(W) for it: 15 ms of the thesis model's 1024 x 4608 layer per step), in one of two BLAS
orientations: on the CPU the one timed faster for the layer's shape (_dx_transposed_form, below).
"""

from __future__ import annotations

import numbers
import time

import torch
from torch import Tensor

from beamkernels import reference as ref
from beamkernels._backend import current_backend
from beamkernels._checks import check_complex, check_same_device, check_same_dtype
from beamkernels.ops._dispatch import functorch_active


class _ComplexLinear(torch.autograd.Function):
    """y = x W^T + b (F.linear) with a backward that never conjugates W into a copy:
    dL/dx = g conj(W) = (W^H g^T)^T or conj(conj(g) W) (_dx_transposed_form; used when g and x
    are smaller than W, _conj_small_pays);
    dL/dW = g^T conj(x); dL/db = sum of g (PyTorch's conjugate-Wirtinger convention)."""

    generate_vmap_rule = True  # torch.func (grad, vmap, jacrev) support

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return torch.nn.functional.linear(x, weight, bias)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, bias = inputs
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx, g: Tensor):
        x, weight = ctx.saved_tensors
        x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _dx(g2, weight, _dx_transposed_form(g2, weight)).reshape(x.shape)
        if ctx.needs_input_grad[1]:
            gw = g2.mT @ x2.conj()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g2.sum(0)
        return gx, gw, gb


def _dx(g2: Tensor, weight: Tensor, transposed: bool) -> Tensor:
    """dL/dx = g conj(W) for g [M, out], W [out, in], as a plain (unconjugated) contiguous tensor.
    transposed: (W^H g^T)^T, BLAS reads W conjugate-transposed ('C', the forward's access to W);
    else conj(conj(g) W): W read as stored ('N'), conj(g) a copy of the small g. resolve_conj: a
    plain tensor for the caller (x.grad.numpy(), view_as_real), one pass over the small result."""
    if transposed:
        return (weight.mH @ g2.mT).mT.contiguous()
    return (g2.conj() @ weight).conj().resolve_conj()


# Which dL/dx form is faster depends on the BLAS and the CPU, so on the CPU each layer shape (in,
# out, dtype, threads, and rows rounded to a power-of-two bucket, so that varying batch sizes or
# sequence lengths do not each pay a timing) times both once at its first backward and keeps the
# faster. Measured (MKL, 2 threads, the thesis model's 4608 -> 1024 layer at 32 rows, steady
# heap): AMD EPYC Zen 3 17-21 (transposed) vs 26-31 ms; Intel Xeon AVX-512 16.9 vs 9.5 ms
# (9216 -> 1440: 49.3 vs 30.0 ms; 1024 -> 256: 0.69 vs 0.51 ms). Nothing is timed for GPU tensors (unmeasured) and under
# torch.use_deterministic_algorithms(True) (must not depend on timings): the conj form below
# DX_TRANSPOSED_MIN_ROWS rows (BLAS's matrix-vector paths favour it everywhere measured: 1 row
# 3.6 vs 8.3 ms on the Zen 3), the transposed form from there. Nor while tracing on the CPU
# (torch.compile, torch.func): the same below DX_TRANSPOSED_MIN_ROWS, else the process's last
# timed winner (the transposed form if none).
DX_TRANSPOSED_MIN_ROWS = 4
_DX_TIMED: dict[tuple, bool] = {}  # (rows bucket, in, out, dtype, threads) -> transposed form is faster
_DX_LAST: dict[str, bool] = {}  # device type -> the last timed winner (the default while tracing)
_PLAIN = (torch.Tensor, torch.nn.Parameter)  # not fake / functional tensors of a tracer


def _dx_transposed_form(g2: Tensor, weight: Tensor) -> bool:
    rows = g2.shape[0]
    if g2.device.type != "cpu" or torch.are_deterministic_algorithms_enabled():
        return rows >= DX_TRANSPOSED_MIN_ROWS
    # torch.func transforms wrap tensors whose type is still torch.Tensor: time nothing under them.
    if (torch.compiler.is_compiling() or functorch_active()
            or type(g2) not in _PLAIN or type(weight) not in _PLAIN):
        return rows >= DX_TRANSPOSED_MIN_ROWS and _DX_LAST.get("cpu", True)
    key = (rows.bit_length(), weight.shape[1], weight.shape[0], weight.dtype, torch.get_num_threads())
    choice = _DX_TIMED.get(key)
    if choice is None:
        choice = _DX_TIMED[key] = _DX_LAST["cpu"] = _time_dx_forms(g2, weight)
    return choice


def _time_dx_forms(g2: Tensor, weight: Tensor) -> bool:
    """True if (W^H g^T)^T is faster than conj(conj(g) W) here: one warm-up call each, then the
    better of two alternating timed calls each (the candidates differ by 1.4-1.8x where it matters)."""
    best = [float("inf"), float("inf")]
    with torch.no_grad():
        for rep in range(3):
            for i, transposed in enumerate((True, False)):
                t0 = time.perf_counter()
                _dx(g2, weight, transposed)
                if rep:
                    best[i] = min(best[i], time.perf_counter() - t0)
    return best[0] <= best[1]


# Below this many weight elements the conj(W) copy costs less than _ComplexLinear's per-call
# overhead (~25 us; [32, 256] -> 64 forward 0.063 vs 0.039 ms). Forward+backward at 32 rows, 2 threads,
# Intel Xeon, ours / F.linear: 2^18 weights (1024 -> 256, 256 -> 1024) 1.13-1.21 / 1.11-1.15 ms and
# 1.12 / 1.00-1.03 ms; 1024 -> 360 1.53 / 1.54-1.55 ms (a tie); 1024 -> 1440 5.25-5.35 / 6.26-6.31 ms.
CONJ_SMALL_MIN_WEIGHT = 1 << 19


def _conj_small_pays(x: Tensor, weight: Tensor) -> bool:
    """_ComplexLinear only where its backward pays: dL/dx is needed, W is large and conjugating
    g [M, out] and dL/dx [M, in] moves less than conjugating W [out, in]. Elsewhere F.linear
    (the same GEMMs, PyTorch's autograd)."""
    if not (torch.is_grad_enabled() and x.requires_grad) or weight.numel() < CONJ_SMALL_MIN_WEIGHT:
        return False
    m = x.numel() // max(x.shape[-1], 1)
    return m * (weight.shape[0] + weight.shape[1]) < weight.numel()


def complex_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y = x W^T + b`` with complex x [..., in], W [out, in], b [out].

    Equivalent to: ``x @ weight.T + bias``.
    """
    op = "complex_linear"
    check_complex(x, op, "x")
    check_complex(weight, op, "weight")
    check_same_dtype(weight, x, op, "weight", "x")
    check_same_device(weight, x, op, "weight", "x")
    if weight.dim() != 2:
        raise ValueError(f"beamkernels.{op}: argument 'weight' must be 2-D [out_features, in_features], got shape {list(weight.shape)}")
    if x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"beamkernels.{op}: argument 'x' must be [..., {weight.shape[1]}] (in_features of weight), got shape {list(x.shape)}")
    if bias is not None:
        check_complex(bias, op, "bias")
        check_same_dtype(bias, x, op, "bias", "x")
        check_same_device(bias, x, op, "bias", "x")
        if tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(f"beamkernels.{op}: argument 'bias' must have shape [{weight.shape[0]}], got {list(bias.shape)}")
    # Pure PyTorch on every backend and device: only the reference backend's choice (F.linear with
    # PyTorch's autograd) matters; no backend can fail to run it.
    if current_backend() == "reference" or not _conj_small_pays(x, weight):
        return ref.complex_linear(x, weight, bias)
    return _ComplexLinear.apply(x, weight, bias)


def check_dropout_p(p, op: str) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"beamkernels.{op}: argument 'p' must be a number in [0, 1], got {type(p).__name__}")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"beamkernels.{op}: argument 'p' must be in [0, 1], got {p}")
    return float(p)


def complex_dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each complex element with probability p (one mask shared by Re and Im) and scale the
    kept ones by ``1 / (1 - p)`` (once). Identity when not training; p = 1 gives zeros.

    Equivalent to: ``x * (torch.rand(x.shape) >= p) / (1 - p)`` (a real mask).
    """
    op = "complex_dropout"
    check_complex(x, op, "x")
    p = check_dropout_p(p, op)
    return ref.complex_dropout(x, p, bool(training))


def complex_dropout2d(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero whole channels: one mask per (sample, channel) of [N, C, H, W] (per channel of an
    unbatched [C, H, W]), kept channels scaled by ``1 / (1 - p)``. Identity when not training.

    Equivalent to: ``x * (torch.rand(N, C, 1, 1) >= p) / (1 - p)``.
    """
    op = "complex_dropout2d"
    check_complex(x, op, "x")
    if x.dim() not in (3, 4):
        raise ValueError(f"beamkernels.{op}: argument 'x' must be [N, C, H, W] or unbatched [C, H, W], got shape {list(x.shape)}")
    p = check_dropout_p(p, op)
    return ref.complex_dropout2d(x, p, bool(training))


UPSAMPLE_MODES = {"nearest": (3, 4, 5), "bilinear": (4,)}  # mode -> input dims


def complex_upsample(x: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                     align_corners: bool | None = None, recompute_scale_factor: bool | None = None) -> Tensor:
    """Upsample (nearest or bilinear) the real and imaginary parts (exact: both are linear).
    Arguments as torch.nn.functional.interpolate (modes 'nearest' and 'bilinear' only).

    Equivalent to: ``torch.complex(F.interpolate(x.real, ...), F.interpolate(x.imag, ...))``.
    """
    op = "complex_upsample"
    check_complex(x, op, "x")
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"beamkernels.{op}: argument 'mode' must be one of {sorted(UPSAMPLE_MODES)}, got {mode!r}")
    if x.dim() not in UPSAMPLE_MODES[mode]:
        want = " or ".join(f"{d}-D" for d in UPSAMPLE_MODES[mode])
        raise ValueError(f"beamkernels.{op}: mode {mode!r} needs a {want} input [N, C, ...], got shape {list(x.shape)}")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"beamkernels.{op}: give exactly one of 'size' and 'scale_factor', got size={size!r}, scale_factor={scale_factor!r}")
    if align_corners is not None and mode == "nearest":
        raise ValueError(f"beamkernels.{op}: argument 'align_corners' applies only to mode 'bilinear', got align_corners={align_corners!r} with mode 'nearest'")
    return ref.complex_upsample(x, size, scale_factor, mode, align_corners, recompute_scale_factor)


__all__ = ["complex_linear", "complex_dropout", "complex_dropout2d", "complex_upsample"]
