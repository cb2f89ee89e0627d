"""Fused complex convolutions: ``activation(conv(x, weight) + bias)`` in one op.

- ``beamkernels::complex_conv2d`` / ``complex_conv2d_backward``: schemas in csrc/ops.cpp, CPU
  kernels in csrc/cpu/conv.cpp + conv_glue.cpp (CUDA: csrc/cuda/conv.cu); fake and autograd here.
- ``beamkernels::triton_complex_conv2d`` / ``triton_complex_conv2d_backward``: Triton
  implicit-GEMM kernels (beamkernels/kernels/triton/conv.py).
- The public functions validate inputs, resolve the backend and call one of the above, or the
  reference (beamkernels/reference/conv.py), which is the specification.

conv1d runs as conv2d on [N, C, 1, L]. conv_transpose2d: see its docstring for its backends.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as TF
from torch import Tensor

from beamkernels import _ext
from beamkernels import reference as ref
from beamkernels._backend import conv_tf32_enabled
from beamkernels._checks import check_complex, check_real_param, check_same_device, check_same_dtype
from beamkernels.ops import _triton
from beamkernels.ops._dispatch import pick_backend
from beamkernels.ops._autograd import recording, reference_vjp
from beamkernels.ops import activation as act_ops

# Activation codes shared with csrc/activation.h (enum Activation) and kernels/triton/activation.py.
ACT_CODES = {None: 0, "crelu": 1, "zrelu": 2, "modrelu": 3, "cardioid": 4}
_ACT_NAMES = {code: name for name, code in ACT_CODES.items()}

IntOrPair = Union[int, Sequence[int]]


# ---- validation and argument normalization (shared by every backend) ----
def _tuple(v, n: int, op: str, arg: str, minimum: int) -> tuple[int, ...]:
    if isinstance(v, bool) or not isinstance(v, (int, tuple, list, torch.Size)):
        raise TypeError(f"beamkernels.{op}: argument '{arg}' must be an int or a tuple of {n} ints, got {v!r}")
    t = (int(v),) * n if isinstance(v, int) else tuple(int(e) for e in v)
    if len(t) == 1 and n > 1:
        t = t * n
    if len(t) != n:
        raise ValueError(f"beamkernels.{op}: argument '{arg}' must have {n} values, got {v!r}")
    if any(e < minimum for e in t):
        raise ValueError(f"beamkernels.{op}: argument '{arg}' must be >= {minimum}, got {v!r}")
    return t


def _check_activation(op: str, activation, activation_bias, z_channels: int, x: Tensor) -> None:
    if activation not in ACT_CODES:
        raise ValueError(
            f"beamkernels.{op}: argument 'activation' must be one of None, 'crelu', 'zrelu', 'modrelu', "
            f"'cardioid', got {activation!r}")
    if activation == "modrelu":
        if activation_bias is None:
            raise ValueError(f"beamkernels.{op}: activation='modrelu' needs 'activation_bias' (real, one per output "
                             f"channel: shape [{z_channels}])")
        check_real_param(activation_bias, x, op, "activation_bias", (z_channels,))
    elif activation_bias is not None:
        raise ValueError(f"beamkernels.{op}: 'activation_bias' is only used with activation='modrelu', "
                         f"got activation={activation!r}")


def _check_weight_bias(op: str, x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    check_complex(weight, op, "weight")
    check_same_dtype(weight, x, op, "weight", "x")
    check_same_device(weight, x, op, "weight", "x")
    if bias is not None:
        check_complex(bias, op, "bias")
        check_same_dtype(bias, x, op, "bias", "x")
        check_same_device(bias, x, op, "bias", "x")


def _same_padding(op: str, kernel, dilation) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """padding='same' as torch: total d*(k-1) per dim, the extra one (odd total) on the right.
    Returns (symmetric padding, F.pad spec for the extra right side or None)."""
    sym, extra = [], []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        sym.append(total // 2)
        extra.append(total - 2 * (total // 2))
    if not any(extra):
        return tuple(sym), None
    pad = []
    for e in reversed(extra):  # F.pad lists the last dim first
        pad += [0, e]
    return tuple(sym), tuple(pad)


def _prepare_conv(op: str, x: Tensor, weight: Tensor, bias, stride, padding, dilation, groups, activation,
                  activation_bias, nd: int):
    """Validates a forward conv; returns (x, stride, padding, dilation) with padding explicit and
    symmetric (an odd 'same' total is applied to x with F.pad, as torch does)."""
    check_complex(x, op, "x")
    layout = "[N, C, L]" if nd == 1 else "[N, C, H, W]"
    if x.dim() != nd + 2:
        raise ValueError(f"beamkernels.{op}: argument 'x' must have {nd + 2} dims {layout}, got shape {list(x.shape)}")
    _check_weight_bias(op, x, weight, bias)
    if weight.dim() != nd + 2:
        raise ValueError(f"beamkernels.{op}: argument 'weight' must have {nd + 2} dims [C_out, C_in / groups, "
                         f"{'k' if nd == 1 else 'kh, kw'}], got shape {list(weight.shape)}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"beamkernels.{op}: argument 'groups' must be a positive int, got {groups!r}")
    cin, cout = x.shape[1], weight.shape[0]
    if cin == 0 or cout == 0:  # (0 % groups == 0: zero channels would pass the checks below)
        raise ValueError(f"beamkernels.{op}: x and weight need at least one channel, got {cin} input channels "
                         f"(x.shape[1]) and {cout} output channels (weight.shape[0])")
    if cin % groups or cout % groups:
        raise ValueError(f"beamkernels.{op}: groups={groups} must divide both the input channels ({cin}) and the "
                         f"output channels (weight.shape[0] = {cout})")
    if weight.shape[1] * groups != cin:
        raise ValueError(f"beamkernels.{op}: x has {cin} channels but weight.shape[1] * groups = {weight.shape[1]} * "
                         f"{groups} = {weight.shape[1] * groups} (weight must be [C_out, C_in / groups, ...])")
    if bias is not None and tuple(bias.shape) != (cout,):
        raise ValueError(f"beamkernels.{op}: argument 'bias' must have shape [{cout}], got {list(bias.shape)}")
    stride = _tuple(stride, nd, op, "stride", 1)
    dilation = _tuple(dilation, nd, op, "dilation", 1)
    kernel = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0,) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"beamkernels.{op}: padding='same' needs stride 1 (as in torch), got stride={stride}")
            padding, extra = _same_padding(op, kernel, dilation)
            if extra is not None:
                x = TF.pad(x, extra)
        else:
            raise ValueError(f"beamkernels.{op}: argument 'padding' must be an int, a tuple, 'valid' or 'same', "
                             f"got {padding!r}")
    else:
        padding = _tuple(padding, nd, op, "padding", 0)
    for i in range(nd):
        span = dilation[i] * (kernel[i] - 1) + 1
        if x.shape[2 + i] + 2 * padding[i] < span:
            raise ValueError(f"beamkernels.{op}: the kernel (extent {span} = dilation * (k - 1) + 1 in spatial dim {i}) "
                             f"is bigger than the padded input ({x.shape[2 + i]} + 2 * {padding[i]})")
    _check_activation(op, activation, activation_bias, cout, x)
    return x, stride, padding, dilation


# ---- compiled (C++ / CUDA) ops: fake kernels and autograd ----
def _out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


_COMPILED_CONV = _ext.LOADED and hasattr(torch.ops.beamkernels, "complex_conv2d")


def register_compiled_conv(namespace: str = "beamkernels") -> None:
    """Fake kernels and autograd of <namespace>::complex_conv2d (the C++ / CUDA op). Called once
    for the package's own ops; tests/cuda_emu calls it for the emulated CUDA build of the same
    kernels, so that they run through this very code."""

    @torch.library.register_fake(f"{namespace}::complex_conv2d")
    def _conv_fake(x, weight, bias, stride, padding, dilation, groups, activation, activation_bias, save_z=True):
        n, cout = x.shape[0], weight.shape[0]
        ho = _out_size(x.shape[2], weight.shape[2], stride[0], padding[0], dilation[0])
        wo = _out_size(x.shape[3], weight.shape[3], stride[1], padding[1], dilation[1])
        y = x.new_empty((n, cout, ho, wo))
        # The pre-activation z for the backward; none without an activation or save_z (see csrc/ops.cpp).
        saved = x.new_empty((n, 2 * cout, ho, wo) if activation != 0 and save_z else (0,), dtype=x.real.dtype)
        return y, saved

    @torch.library.register_fake(f"{namespace}::complex_conv2d_backward")
    def _conv_bwd_fake(grad, x, weight, bias, saved, stride, padding, dilation, groups, activation, activation_bias,
                       output_mask):
        def out(ref_t, on):
            return ref_t.new_empty(ref_t.shape) if on else ref_t.new_empty((0,))
        gx = out(x, output_mask[0])
        gw = out(weight, output_mask[1])
        gb = weight.new_empty((weight.shape[0],)) if (output_mask[2] and bias is not None) else weight.new_empty((0,))
        gab = (saved.new_empty((weight.shape[0],)) if (output_mask[3] and activation_bias is not None)
               else saved.new_empty((0,)))
        return gx, gw, gb, gab

    _register_conv_autograd("", namespace)


# ---- Triton ops ----
_TRITON_CONV = False
if _triton.ENABLED:
    from typing import Optional

    from torch.library import triton_op, wrap_triton

    from beamkernels.kernels.triton import activation as tka
    from beamkernels.kernels.triton import conv as tkc

    _TRITON_CONV = True

    def _precision(x: Tensor) -> str:
        """tl.dot's input_precision: TF32 where PyTorch's own convs use it
        (conv_tf32_enabled: torch.backends.cudnn.conv.fp32_precision / allow_tf32, TF32 by
        default), else exact fp32; fp64 and the interpreter always "ieee"."""
        if x.dtype == torch.complex128 or x.device.type != "cuda" or not conv_tf32_enabled():
            return "ieee"
        return "tf32"

    def _geometry(x, weight, stride, padding, dilation, groups):
        n, c, h, w = x.shape
        o, cg, kh, kw = weight.shape
        ho = _out_size(h, kh, stride[0], padding[0], dilation[0])
        wo = _out_size(w, kw, stride[1], padding[1], dilation[1])
        g = dict(C=c, H=h, W=w, O=o, HO=ho, WO=wo, KH=kh, KW=kw, SH=stride[0], SW=stride[1], PH=padding[0],
                 PW=padding[1], DH=dilation[0], DW=dilation[1], CG=cg, OG=o // groups, G=groups)
        # The kernels index within one sample with 32 bits (kernels/triton/conv.py); weight offsets
        # have no 64-bit base, and 2 * offset (the real view) must fit too.
        for what, count, limit in (("one sample of x (padded)", c * (h + 2 * padding[0]) * (w + 2 * padding[1]), 31),
                                   ("one sample of the output", o * ho * wo, 31), ("the weight", weight.numel(), 30)):
            if count >= 2**limit:
                raise ValueError(f"beamkernels.complex_conv2d (triton backend): {what} has {count} elements; the "
                                 f"Triton kernels index it with 32 bits (< 2^{limit} elements). "
                                 "Use beamkernels.use_backend('cuda') for this layer.")
        return g

    def _grid(*tiles: int) -> tuple[int]:
        return _triton.flat_grid("complex_conv2d", *tiles)

    @triton_op("beamkernels::triton_complex_conv2d", mutates_args=())
    def triton_complex_conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: list[int],
                              padding: list[int], dilation: list[int], groups: int, activation: int,
                              activation_bias: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        g = _geometry(x, weight, stride, padding, dilation, groups)  # size checks before any copy
        x, weight = x.contiguous(), weight.contiguous()
        n = x.shape[0]
        y = x.new_empty((n, g["O"], g["HO"], g["WO"]))
        z = torch.empty_like(y) if activation != 0 else x.new_empty((0,))  # saved pre-activation
        m, k = n * g["HO"] * g["WO"], g["CG"] * g["KH"] * g["KW"]
        if m == 0:
            return y, z
        xr, yr = torch.view_as_real(x), torch.view_as_real(y)
        br = torch.view_as_real(bias.contiguous()) if bias is not None else xr
        ab = activation_bias.contiguous() if activation_bias is not None else xr
        zr = torch.view_as_real(z) if activation != 0 else yr

        prec = _precision(x)

        def grid(meta):
            return _grid(_triton.cdiv(m, meta["BM"]), _triton.cdiv(g["OG"], meta["BN"]), groups)

        wrap_triton(tkc.conv2d_fwd_kernels[prec])[grid](
            xr, torch.view_as_real(weight), br, ab, yr, zr, M=m, K=k, HAS_BIAS=bias is not None, ACT=activation,
            SAVE_Z=activation != 0, PREC=prec, **g)
        return y, z

    @triton_op("beamkernels::triton_complex_conv2d_backward", mutates_args=())
    def triton_complex_conv2d_backward(grad: Tensor, x: Tensor, weight: Tensor, bias: Optional[Tensor], saved: Tensor,
                                       stride: list[int], padding: list[int], dilation: list[int], groups: int,
                                       activation: int, activation_bias: Optional[Tensor],
                                       output_mask: list[bool]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x, weight, grad = x.contiguous(), weight.contiguous(), grad.contiguous()
        g = _geometry(x, weight, stride, padding, dilation, groups)
        n, o = x.shape[0], g["O"]
        inner = g["HO"] * g["WO"]
        empty = x.new_empty((0,))
        gx, gw, gb = empty, empty, x.new_empty((0,))
        gab = x.real.new_empty((0,))
        # dL/dz = act'(z)^H dL/dy: the activation's backward kernel (with modReLU bias partials).
        if activation == 0 or grad.numel() == 0:
            gz = grad
            partial = None
        else:
            z = saved.contiguous()
            gz = torch.empty_like(z)
            chunks = _triton.cdiv(inner, 1024)
            rows = n * o
            partial = x.real.new_empty(rows * chunks if activation == 3 else 1)
            zr = torch.view_as_real(z)
            wrap_triton(tka.activation_bwd_kernel)[(rows * chunks,)](
                torch.view_as_real(grad), zr, activation_bias.contiguous() if activation_bias is not None else zr,
                torch.view_as_real(gz), partial, o, inner, chunks, ACT=activation, BLOCK=1024)
        if output_mask[2] and bias is not None:
            gb = gz.sum(dim=(0, 2, 3))
        if output_mask[3] and activation_bias is not None:
            gab = (partial.view(n, o, -1).sum(dim=(0, 2)) if partial is not None and n > 0
                   else torch.zeros_like(activation_bias))
        gzr = torch.view_as_real(gz) if gz.numel() else None
        prec = _precision(x)
        if output_mask[0]:
            gx = torch.zeros_like(x) if gzr is None else torch.empty_like(x)
            m = x.numel() // g["C"] if g["C"] else 0
            k = g["OG"] * g["KH"] * g["KW"]
            if gzr is not None and m > 0:
                def grid_x(meta):
                    return _grid(_triton.cdiv(m, meta["BM"]), _triton.cdiv(g["CG"], meta["BN"]), groups)
                wrap_triton(tkc.conv2d_bwd_input_kernels[prec])[grid_x](
                    gzr, torch.view_as_real(weight), torch.view_as_real(gx), M=m, K=k, PREC=prec, **g)
        if output_mask[1]:
            k = g["CG"] * g["KH"] * g["KW"]
            r = n * inner
            if gzr is None or r == 0:
                gw = torch.zeros_like(weight)
            else:
                gw = torch.empty_like(weight)

                def grid_w(meta):
                    return _grid(_triton.cdiv(g["OG"], meta["BM"]), _triton.cdiv(k, meta["BN"]), groups)
                wrap_triton(tkc.conv2d_bwd_weight_kernels[prec])[grid_w](
                    gzr, torch.view_as_real(x), torch.view_as_real(gw), K=k, R=r, PREC=prec, **g)
        return gx, gw, gb, gab


def _register_conv_autograd(prefix: str, namespace: str = "beamkernels") -> None:
    """Autograd for <namespace>::<prefix>complex_conv2d: the backward op gets which of
    (x, weight, bias, activation_bias) need a gradient, so e.g. dL/dx is skipped for an input image."""
    backward_op = getattr(getattr(torch.ops, namespace), f"{prefix}complex_conv2d_backward")

    def setup(ctx, inputs, output):
        x, weight, bias, stride, padding, dilation, groups, activation, activation_bias = inputs[:9]
        ctx.save_for_backward(x, weight, bias, output[1], activation_bias)
        ctx.args = (stride, padding, dilation, groups, activation)
        ctx.set_materialize_grads(False)  # no zero-filled gradient for the unused `saved` output

    def backward(ctx, grad, grad_saved):
        x, weight, bias, saved, activation_bias = ctx.saved_tensors
        stride, padding, dilation, groups, activation = ctx.args
        if grad is None:
            return (None,) * len(ctx.needs_input_grad)
        need = ctx.needs_input_grad
        if recording():  # double backward: through the reference (see ops/_autograd.py)
            act = _ACT_NAMES[activation]
            gx, gw, gb, gab = reference_vjp(
                lambda x, w, b, ab: ref.complex_conv2d(x, w, b, tuple(stride), tuple(padding), tuple(dilation), groups,
                                                       act, ab),
                [x, weight, bias, activation_bias], [need[0], need[1], need[2], need[8]], grad)
            grads = (gx, gw, gb, None, None, None, None, None, gab)
            return grads + (None,) * (len(need) - len(grads))
        mask = [need[0], need[1], bias is not None and need[2], activation_bias is not None and need[8]]
        gx, gw, gb, gab = backward_op(grad, x, weight, bias, saved, stride, padding, dilation, groups, activation,
                                      activation_bias, mask)
        grads = (gx if mask[0] else None, gw if mask[1] else None, gb if mask[2] else None,
                 None, None, None, None, None, gab if mask[3] else None)
        return grads + (None,) * (len(need) - len(grads))  # save_z (compiled op only)

    torch.library.register_autograd(f"{namespace}::{prefix}complex_conv2d", backward, setup_context=setup)


if _COMPILED_CONV:
    register_compiled_conv()
if _TRITON_CONV:
    _register_conv_autograd("triton_")


def _implemented_conv2d() -> tuple[str, ...]:
    impl = ["reference"]
    if _COMPILED_CONV:
        impl += ["cpu", "cuda"]
    if _TRITON_CONV:
        impl.append("triton")
    return tuple(impl)


def _conv2d_dispatch(op: str, x: Tensor, weight: Tensor, bias, stride, padding, dilation, groups, activation,
                     activation_bias) -> Tensor:
    backend = pick_backend(op, x.device, implemented=_implemented_conv2d())
    if backend == "reference":
        return ref.complex_conv2d(x, weight, bias, stride, padding, dilation, groups, activation, activation_bias)
    code = ACT_CODES[activation]
    if backend == "triton":
        return torch.ops.beamkernels.triton_complex_conv2d(
            x, weight, bias, list(stride), list(padding), list(dilation), groups, code, activation_bias)[0]
    # Inference (no graph will be recorded): the op need not write the pre-activation z. (Under
    # torch.func transforms pick_backend chose the reference.) torch.jit.trace records the op
    # once for every later call, with or without grad: keep z there (a z-less trace cannot
    # backpropagate, and trace's check, run under no_grad, would see another graph).
    save_z = torch.jit.is_tracing() or (torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, weight, bias, activation_bias)))
    return torch.ops.beamkernels.complex_conv2d(
        x, weight, bias, list(stride), list(padding), list(dilation), groups, code, activation_bias, save_z)[0]


# ---- public functions ----
def complex_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
                   padding: IntOrPair | str = 0, dilation: IntOrPair = 1, groups: int = 1,
                   activation: str | None = None, activation_bias: Tensor | None = None) -> Tensor:
    """Fused complex 2-D convolution: ``activation(conv2d(x, weight) + bias)``.

    x: complex [N, C_in, H, W]; weight: complex [C_out, C_in / groups, kh, kw]; bias: complex
    [C_out] or None; stride, padding (int, pair, 'valid' or 'same'), dilation, groups as in
    torch.nn.functional.conv2d. activation: None, 'crelu', 'zrelu', 'modrelu' or 'cardioid';
    activation_bias: modReLU's real bias [C_out] (only with 'modrelu').
    y[n, o] = sum_{c, i, j} w[o, c, i, j] x[n, c, s*h + d*i - p, s*w + d*j - p] + b[o]  (no conjugation).

    Equivalent to: ``act(torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups))``
    with ``act`` the matching beamkernels.functional activation.
    """
    op = "complex_conv2d"
    x, stride, padding, dilation = _prepare_conv(op, x, weight, bias, stride, padding, dilation, groups, activation,
                                                 activation_bias, 2)
    return _conv2d_dispatch(op, x, weight, bias, stride, padding, dilation, groups, activation, activation_bias)


def complex_conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
                   padding: IntOrPair | str = 0, dilation: IntOrPair = 1, groups: int = 1,
                   activation: str | None = None, activation_bias: Tensor | None = None) -> Tensor:
    """Fused complex 1-D convolution: ``activation(conv1d(x, weight) + bias)``; x [N, C_in, L],
    weight [C_out, C_in / groups, k]. Runs as complex_conv2d on [N, C_in, 1, L].

    Equivalent to: ``act(torch.nn.functional.conv1d(x, weight, bias, stride, padding, dilation, groups))``.
    """
    op = "complex_conv1d"
    x, stride, padding, dilation = _prepare_conv(op, x, weight, bias, stride, padding, dilation, groups, activation,
                                                 activation_bias, 1)
    backend = pick_backend(op, x.device, implemented=_implemented_conv2d())
    if backend == "reference":
        return ref.complex_conv1d(x, weight, bias, stride, padding, dilation, groups, activation, activation_bias)
    y = _conv2d_dispatch(op, x.unsqueeze(2), weight.unsqueeze(2), bias, (1,) + stride, (0,) + padding,
                         (1,) + dilation, groups, activation, activation_bias)
    return y.squeeze(2)


def complex_conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
                             padding: IntOrPair = 0, output_padding: IntOrPair = 0, groups: int = 1,
                             dilation: IntOrPair = 1, activation: str | None = None,
                             activation_bias: Tensor | None = None) -> Tensor:
    """Complex transposed 2-D convolution with bias and activation: ``activation(conv_transpose2d(x, weight) + bias)``.

    x: complex [N, C_in, H, W]; weight: complex [C_in, C_out / groups, kh, kw] (torch's layout);
    the transpose (not the conjugate transpose) of conv2d, as torch computes it. The Triton backend
    (and the others when output_padding >= stride in width) runs it as a stride-1 complex_conv2d on
    the zero-inserted, padded input with the flipped, transposed weight (see _transposed_as_conv),
    which costs s_h * s_w times the useful work; the cpu and cuda backends run one
    real transposed conv (oneDNN / cuDNN) producing y's interleaved view directly, then the bias and
    the activation op (see _transposed_block_real); on the cpu backend, kernel == stride (no
    padding / dilation / output_padding, one group) is one complex GEMM + pixel shuffle instead
    (see _transposed_tiles).

    Equivalent to: ``act(torch.nn.functional.conv_transpose2d(x, weight, bias, stride, padding,
    output_padding, groups, dilation))``.
    """
    op = "complex_conv_transpose2d"
    check_complex(x, op, "x")
    if x.dim() != 4:
        raise ValueError(f"beamkernels.{op}: argument 'x' must have 4 dims [N, C, H, W], got shape {list(x.shape)}")
    _check_weight_bias(op, x, weight, bias)
    if weight.dim() != 4:
        raise ValueError(f"beamkernels.{op}: argument 'weight' must have 4 dims [C_in, C_out / groups, kh, kw], "
                         f"got shape {list(weight.shape)}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"beamkernels.{op}: argument 'groups' must be a positive int, got {groups!r}")
    cin = x.shape[1]
    if weight.shape[0] != cin:
        raise ValueError(f"beamkernels.{op}: x has {cin} channels but weight.shape[0] = {weight.shape[0]} "
                         f"(weight must be [C_in, C_out / groups, kh, kw])")
    if cin % groups:
        raise ValueError(f"beamkernels.{op}: groups={groups} must divide the input channels ({cin})")
    cout = weight.shape[1] * groups
    if cin == 0 or cout == 0:
        raise ValueError(f"beamkernels.{op}: x and weight need at least one channel, got {cin} input channels "
                         f"(x.shape[1]) and {cout} output channels (weight.shape[1] * groups)")
    if bias is not None and tuple(bias.shape) != (cout,):
        raise ValueError(f"beamkernels.{op}: argument 'bias' must have shape [{cout}], got {list(bias.shape)}")
    stride = _tuple(stride, 2, op, "stride", 1)
    padding = _tuple(padding, 2, op, "padding", 0)
    dilation = _tuple(dilation, 2, op, "dilation", 1)
    output_padding = _tuple(output_padding, 2, op, "output_padding", 0)
    for i in range(2):
        if output_padding[i] >= max(stride[i], dilation[i]):
            raise ValueError(f"beamkernels.{op}: output_padding must be smaller than stride or dilation, got "
                             f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
        size = (x.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (weight.shape[2 + i] - 1) \
            + output_padding[i] + 1
        if size < 1:
            raise ValueError(f"beamkernels.{op}: the output would be empty in spatial dim {i} (size {size}); "
                             f"padding={padding} is too large")
    _check_activation(op, activation, activation_bias, cout, x)
    backend = pick_backend(op, x.device, implemented=_implemented_conv2d())
    if backend == "reference":
        return ref.complex_conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation,
                                            activation, activation_bias)
    if backend == "cpu" and tuple(weight.shape[2:]) == stride and padding == (0, 0) and output_padding == (0, 0) \
            and dilation == (1, 1) and groups == 1:
        return _bias_activation(_transposed_tiles(x, weight), bias, activation, activation_bias)
    # Under torch.compile the stride-1 rewrite (our conv op, opaque to Inductor) instead: Inductor's
    # layout choices for a real transposed conv fed by a planar copy broke with dynamic shapes
    # (a backward stride assertion; before that, a symbolic-shape TypeError on an interleaved view).
    if backend in ("cpu", "cuda") and output_padding[1] < stride[1] and not torch.compiler.is_compiling():
        y = _transposed_block_real(x, weight, stride, padding, output_padding, groups, dilation)
        return _bias_activation(y, bias, activation, activation_bias)
    x_conv, w_conv = _transposed_as_conv(x, weight, stride, padding, output_padding, groups, dilation)
    return _conv2d_dispatch(op, x_conv, w_conv, bias, (1, 1), (0, 0), dilation, groups, activation, activation_bias)


def _transposed_real_weight(weight: Tensor, dil_w: int, groups: int) -> Tensor:
    """Complex transposed-conv weight [C_in, C_out / g, kh, kw] -> the real one of
    _transposed_block_real, [2 C_in, C_out / g, kh, 2 d_w (kw - 1) + 2], input channels in the
    planar order of _planar_by_group: the channel of Re x_c has the taps (Wr, Wi) at columns
    2 d_w j + {0, 1} (output Re, Im), the channel of Im x_c the taps (-Wi, Wr); zeros between the
    taps for d_w > 1."""
    wr, wi = weight.real, weight.imag
    w = torch.stack([torch.stack([wr, wi], -1), torch.stack([-wi, wr], -1)], 0)  # [2, C_in, C_out/g, kh, kw, 2]
    cin, cg, kh, kw = weight.shape
    # (part, group, c) -> (group, part, c): the planar channels of each group stay in that group
    w = w.reshape(2, groups, cin // groups, cg, kh, kw, 2).transpose(0, 1)
    if dil_w == 1:
        return w.reshape(2 * cin, cg, kh, 2 * kw)
    big = torch.stack([w] + [torch.zeros_like(w)] * (dil_w - 1), -2)  # [..., kw, d_w, 2]
    return big.reshape(2 * cin, cg, kh, 2 * kw * dil_w)[..., :2 * dil_w * (kw - 1) + 2]


def _planar_by_group(x: Tensor, groups: int) -> Tensor:
    """Complex [N, C, H, W] -> real [N, 2C, H, W]: per group, the Re planes of its channels, then
    their Im planes (x.real / x.imag: works on conjugate views and any memory format)."""
    re, im, cg = x.real, x.imag, x.shape[1] // groups
    return torch.cat([p[:, g * cg:(g + 1) * cg] for g in range(groups) for p in (re, im)], 1)


def _transposed_block_real(x: Tensor, weight: Tensor, stride, padding, output_padding, groups: int,
                           dilation) -> Tensor:
    """conv_transpose2d as ONE real transposed conv (ATen: oneDNN / cuDNN) whose output is y's
    interleaved real view [N, C_out, Ho, 2 Wo], so y needs no layout copy and no zero insertion:
    input x in planar form [N, 2 C_in, H, W] (_planar_by_group; one copy of the small input),
    stride (s_h, 2 s_w), padding (p_h, 2 p_w), output_padding (op_h, 2 op_w), dilation (d_h, 1)
    with the width taps of _transposed_real_weight. Needs 2 op_w < 2 s_w (the caller falls back to
    the stride-1 rewrite otherwise). Autograd differentiates the real transposed conv. (The planar
    input is built from x.real / x.imag, not an interleaved view_as_real permute: that refused
    conjugate views, and torch.compile's Inductor failed on it under dynamic shapes.)"""
    n = x.shape[0]
    yr = TF.conv_transpose2d(_planar_by_group(x, groups), _transposed_real_weight(weight, dilation[1], groups), None,
                             (stride[0], 2 * stride[1]), (padding[0], 2 * padding[1]),
                             (output_padding[0], 2 * output_padding[1]), groups, (dilation[0], 1))
    # oneDNN may return yr channels-last (a channels-last x): y's interleaved view needs it contiguous
    yr = yr.contiguous()
    return torch.view_as_complex(yr.view(n, yr.shape[1], yr.shape[2], yr.shape[3] // 2, 2))


def _transposed_tiles(x: Tensor, weight: Tensor) -> Tensor:
    """conv_transpose2d with kernel == stride (no padding, dilation, output_padding; one group), the
    U-Net's 2x2 stride-2 upsampling: each input pixel writes its own kh x kw output tile, tiles do
    not overlap, so it is one complex GEMM per sample, z[n] = W^T x[n] ([C_out kh kw, C_in] @
    [C_in, H W], BLAS cgemm), and a pixel shuffle y[n, o, kh i + a, kw j + b] = z[n, (o, a, b), (i, j)].
    Autograd differentiates the bmm and the permute. Measured (CPU, 1 thread, batch 32, page faults
    excluded, forward+backward) on the U-Net's up-convs 32 -> 16 at 18x72, 64 -> 32 at 9x36, 128 -> 64
    at 4x18: 42 / 32 / 28.5 ms vs 55 / 40 / 30 ms for _transposed_block_real (whose oneDNN
    transposed conv writes a channels-last output that ATen then copies back)."""
    n, cin, h, w = x.shape
    cout, kh, kw = weight.shape[1], weight.shape[2], weight.shape[3]
    wt = weight.permute(1, 2, 3, 0).reshape(1, cout * kh * kw, cin).expand(n, -1, -1)
    z = torch.bmm(wt, x.reshape(n, cin, h * w))
    return z.view(n, cout, kh, kw, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, cout, h * kh, w * kw)


def _bias_activation(y: Tensor, bias: Tensor | None, activation: str | None, activation_bias: Tensor | None) -> Tensor:
    """act(y + bias) with beamkernels' activation ops (two passes; one without an activation)."""
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    if activation is None:
        return y
    if activation == "modrelu":
        return act_ops.modrelu(y, activation_bias)
    return getattr(act_ops, activation)(y)


def _transposed_as_conv(x: Tensor, weight: Tensor, stride, padding, output_padding, groups: int, dilation):
    """conv_transpose2d as a stride-1 conv2d (so that it runs on the fused conv kernels):
    conv_transpose2d(x, W) = conv2d(pad(zero_insert(x, s), d (k - 1) - p, + output_padding on the far
    side), W', dilation d) with W'[o, c] = W[c, o] flipped in space (per group; no conjugation:
    the transpose, not the adjoint). Negative pads crop. Zero insertion makes a stride-s transposed
    conv cost s_h * s_w times the useful work."""
    n, c, h, w = x.shape
    sh, sw = stride
    if sh > 1 or sw > 1:
        up = x.new_zeros((n, c, (h - 1) * sh + 1, (w - 1) * sw + 1))
        up[:, :, ::sh, ::sw] = x
        x = up
    kh, kw = weight.shape[2], weight.shape[3]
    ph = dilation[0] * (kh - 1) - padding[0]
    pw = dilation[1] * (kw - 1) - padding[1]
    x = TF.pad(x, (pw, pw + output_padding[1], ph, ph + output_padding[0]))
    cin, cout_g = weight.shape[0], weight.shape[1]
    w_conv = (weight.reshape(groups, cin // groups, cout_g, kh, kw).transpose(1, 2)
              .reshape(groups * cout_g, cin // groups, kh, kw).flip(-2, -1))
    return x, w_conv
