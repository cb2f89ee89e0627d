"""``complex-unet``: a complex U-Net (encoder, decoder with transposed convs, skip connections
by channel concatenation), whitening batch-norm throughout, ending in F/W axis heads."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from beamkernels import nn as bnn
from beamkernels.models._common import (ConvBNAct, check_activation, check_combiner, check_input, check_poolable,
                                        check_streams, finish)
from beamkernels.models.registry import register


class DoubleConv(nn.Sequential):
    """(complex conv3x3 -> whitening BN -> activation) x 2."""

    def __init__(self, cin: int, cout: int, activation: str, **kw):
        super().__init__(ConvBNAct(cin, cout, activation, **kw), ConvBNAct(cout, cout, activation, **kw))


class Up(nn.Module):
    """Transposed conv 2x2 stride 2 (halves the channels), zero-pad to the skip's size (odd
    sizes such as 9 -> 4 -> 8), concatenate [skip, up] on channels, DoubleConv."""

    def __init__(self, cin: int, cskip: int, cout: int, activation: str, **kw):
        super().__init__()
        self.up = bnn.ComplexConvTranspose2d(cin, cin // 2, 2, stride=2, **kw)
        self.conv = DoubleConv(cskip + cin // 2, cout, activation, **kw)
        self.in_channels_after_concat = cskip + cin // 2

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)
        dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        if dh or dw:
            x = torch.nn.functional.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        return self.conv(torch.cat([skip, x], dim=1))


class AxisHeads(nn.Module):
    """From a full-resolution map [B, C, Nr, Nt]: a 1x1 complex conv to K*Ns channels per output,
    then a complex linear map over the other antenna axis (Nr for F, Nt for W):
    F[b, k, t, s] = sum_r a_r * g[b, k*Ns + s, r, t] (+ bias), and likewise W over t."""

    def __init__(self, c: int, K: int, Nr: int, Nt: int, Ns: int, with_w: bool = True, **kw):
        super().__init__()
        self.K, self.Nr, self.Nt, self.Ns = K, Nr, Nt, Ns
        self.f_proj = bnn.ComplexConv2d(c, K * Ns, 1, **kw)
        self.f_reduce = bnn.ComplexLinear(Nr, 1, **kw)
        self.with_w = with_w
        if with_w:
            self.w_proj = bnn.ComplexConv2d(c, K * Ns, 1, **kw)
            self.w_reduce = bnn.ComplexLinear(Nt, 1, **kw)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        B, K, Nr, Nt, Ns = x.shape[0], self.K, self.Nr, self.Nt, self.Ns
        g = self.f_proj(x).transpose(-1, -2).reshape(-1, Nr)          # [B*K*Ns*Nt, Nr]
        F = self.f_reduce(g).reshape(B, K, Ns, Nt).transpose(-1, -2)   # [B, K, Nt, Ns]
        if not self.with_w:
            return F, None
        h = self.w_proj(x).reshape(-1, Nt)                              # [B*K*Ns*Nr, Nt]
        W = self.w_reduce(h).reshape(B, K, Ns, Nr).transpose(-1, -2)   # [B, K, Nr, Ns]
        return F, W


@register("complex-unet", "Complex U-Net (3 pools, transposed-conv decoder, concat skips, whitening BN) with F/W axis heads")
class ComplexUNet(nn.Module):
    """Complex U-Net.

    Input: H [B, K, Nr, Nt] complex (K as channels).
    Encoder (width w = 16): DoubleConv K -> w at 36x144, then max-pool 2x2 and DoubleConv to 2w
    (18x72), 4w (9x36), and the bottleneck 8w (4x18); DoubleConv = (complex conv3x3 -> whitening
    BN -> activation) x 2. Decoder: at each level a 2x2 stride-2 transposed conv (halving the
    channels), zero-pad to the skip's size, concatenation [skip, up] (channels 4w+4w, 2w+2w,
    w+w) and a DoubleConv back to 4w, 2w, w. Heads (AxisHeads): 1x1 conv to K*Ns channels and a
    complex linear map over Nr (for F) or Nt (for W).
    ``combiner``: "head" (default: W from its own head) or "matched" (no W head; W = the matched
    combiner of H and the predicted F, as in thesis-real-encoder).
    Output: F [B, K, Nt, Ns] (||F_k||_F^2 = Ns), W [B, K, Nr, Ns] (unit-norm columns), complex.
    Parameters at the default config: 968,468 (real; a complex weight counts 2).
    """

    DOCUMENTED_PARAMS = 968_468

    def __init__(self, K: int = 5, Nr: int = 36, Nt: int = 144, Ns: int = 2, width: int = 16,
                 depth: int = 3, activation: str = "modrelu", combiner: str = "head", device=None, dtype=None):
        super().__init__()
        check_streams(K, Nr, Nt, Ns, type(self).__name__)
        check_activation(activation)
        self.combiner = check_combiner(combiner)
        if depth < 1:
            raise ValueError(f"complex-unet: depth must be >= 1, got {depth}")
        check_poolable(Nr, Nt, depth, "complex-unet")
        self.K, self.Nr, self.Nt, self.Ns = K, Nr, Nt, Ns
        kw = dict(device=device, dtype=dtype or torch.complex64)
        chans = [width * 2**i for i in range(depth + 1)]
        self.inc = DoubleConv(K, chans[0], activation, **kw)
        self.pool = bnn.ComplexMaxPool2d(2)
        self.down = nn.ModuleList(DoubleConv(chans[i], chans[i + 1], activation, **kw) for i in range(depth))
        self.up = nn.ModuleList(Up(chans[i + 1], chans[i], chans[i], activation, **kw) for i in reversed(range(depth)))
        self.heads = AxisHeads(chans[0], K, Nr, Nt, Ns, with_w=combiner == "head", **kw)

    def forward(self, H: Tensor) -> tuple[Tensor, Tensor]:
        check_input(H, self.K, self.Nr, self.Nt, "complex-unet")
        x = self.inc(H)
        skips = [x]
        for block in self.down:
            x = block(self.pool(x))
            skips.append(x)
        skips.pop()  # the bottleneck output is x itself
        for block in self.up:
            x = block(x, skips.pop())
        return finish(H, *self.heads(x))
