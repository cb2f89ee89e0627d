"""Complex pooling in plain PyTorch (the specification).

- complex_max_pool2d: max-pool by magnitude. Each output is the ORIGINAL complex input element
  whose |z| is the largest in its window (compared as the key Re^2 + Im^2, which orders like |z|
  and needs no square root); ties go to the first element of the window in row-major order;
  padding counts as -inf (never chosen); an element whose key is NaN wins (as in torch.max).
  Indices are torch-style flat per-plane positions h * W + w. The gradient flows to the chosen
  element only (a gather, whose backward scatter-adds).
- complex_avg_pool2d / complex_adaptive_avg_pool2d: the complex mean, which is linear, so
  pooling Re and Im separately with torch's real pools is exact.
Window geometry (output size, ceil_mode, the padding limits) follows torch.nn.MaxPool2d.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling output size: floor (or ceil) of (size + 2p - d(k-1) - 1) / s + 1; in ceil
    mode the last window must start inside the input or the left padding."""
    num = size + 2 * p - d * (k - 1) - 1
    out = (num + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _windows(t: Tensor, k, s, d, out) -> Tensor:
    """[N, C, Hp, Wp] (already padded to the exact extent) -> [N, C, oh, ow, kh * kw]."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = k, s, d, out
    w = t.unfold(2, dh * (kh - 1) + 1, sh).unfold(3, dw * (kw - 1) + 1, sw)[..., ::dh, ::dw]
    return w.reshape(t.shape[0], t.shape[1], oh, ow, kh * kw)


def complex_max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                       return_indices: bool = False):
    """Max-pool by magnitude over [N, C, H, W] (or unbatched [C, H, W]); see the module docstring."""
    k = _pair(kernel_size)
    s = _pair(stride if stride is not None and stride != [] else kernel_size)
    p, d = _pair(padding), _pair(dilation)
    unbatched = x.dim() == 3
    if unbatched:
        x = x.unsqueeze(0)
    n, c, h, w = x.shape
    oh = pool_output_size(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = pool_output_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    # Pad (or crop) each side so the padded plane is exactly the extent the windows cover.
    ext_h = (oh - 1) * s[0] + d[0] * (k[0] - 1) + 1
    ext_w = (ow - 1) * s[1] + d[1] * (k[1] - 1) + 1
    pads = (p[1], ext_w - w - p[1], p[0], ext_h - h - p[0])
    key = x.real.detach() ** 2 + x.imag.detach() ** 2
    key = F.pad(key, pads, value=-math.inf)
    pos = torch.arange(h * w, device=x.device).view(1, 1, h, w)
    pos = F.pad(pos, pads, value=-1)
    arg = _windows(key, k, s, d, (oh, ow)).argmax(dim=-1, keepdim=True)  # first maximum
    idx = _windows(pos, k, s, d, (oh, ow)).expand(n, c, oh, ow, k[0] * k[1]).gather(-1, arg).squeeze(-1)
    out = x.reshape(n, c, h * w).gather(-1, idx.reshape(n, c, oh * ow)).view(n, c, oh, ow)
    if unbatched:
        out, idx = out.squeeze(0), idx.squeeze(0)
    return (out, idx) if return_indices else out


def _split(fn, x: Tensor) -> Tensor:
    return torch.complex(fn(x.real), fn(x.imag))


def complex_avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                       count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """The complex mean over each window: torch's avg_pool2d on Re and Im."""
    return _split(lambda t: F.avg_pool2d(t, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                         divisor_override), x)


def complex_adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """The complex mean over adaptive windows: torch's adaptive_avg_pool2d on Re and Im."""
    return _split(lambda t: F.adaptive_avg_pool2d(t, output_size), x)
