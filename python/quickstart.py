"""Quickstart: the thesis's complex convolution, and the same layer from beamkernels.

The thesis notebooks built a complex 3x3 convolution out of two real ``nn.Conv2d`` (one for the
real part of the weight, one for the imaginary part) applied four times:

    Re(y) = conv_re(Re x) - conv_im(Im x),    Im(y) = conv_re(Im x) + conv_im(Re x)

``beamkernels.nn.ComplexConv2d`` is that layer on complex tensors, with the activation fused.
This script copies the thesis layer's weights into a beamkernels layer, checks the two agree
(forward and gradients, with modReLU after the conv), then times both side by side.

Run:  PYTHONPATH=. python python/quickstart.py   (a few seconds on 2 CPU cores)
"""

from __future__ import annotations

import torch
import torch.utils.benchmark as tub
from torch import nn

import beamkernels
import beamkernels.nn as bnn


class ThesisComplexConv2d(nn.Module):
    """The notebook's layer: 4 real convs on (Re x, Im x), plus modReLU written in PyTorch."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv_re = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv_im = nn.Conv2d(cin, cout, 3, padding=1)
        self.act_bias = nn.Parameter(torch.full((cout,), -0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xr, xi = x.real, x.imag
        # Each real conv adds its own bias once per call, hence (b_re - b_im) and (b_re + b_im).
        yr = self.conv_re(xr) - self.conv_im(xi)
        yi = self.conv_re(xi) + self.conv_im(xr)
        y = torch.complex(yr, yi)
        mag = y.abs()
        scale = torch.relu(mag + self.act_bias[:, None, None]) / mag.clamp_min(1e-12)
        return y * scale  # modReLU: relu(|z| + b) z / |z|


def copy_into_beamkernels(t: ThesisComplexConv2d) -> bnn.ComplexConv2d:
    cout, cin = t.conv_re.weight.shape[:2]
    layer = bnn.ComplexConv2d(cin, cout, 3, padding=1, activation="modrelu")
    with torch.no_grad():
        layer.weight.copy_(torch.complex(t.conv_re.weight, t.conv_im.weight))
        b_re, b_im = t.conv_re.bias, t.conv_im.bias
        layer.bias.copy_(torch.complex(b_re - b_im, b_re + b_im))
        layer.activation_bias.copy_(t.act_bias)
    return layer


def main() -> None:
    torch.manual_seed(0)
    B, K, Nr, Nt = 32, 5, 36, 144
    print(f"beamkernels {beamkernels.__version__}, backends here: {beamkernels.available_backends()}")
    thesis = ThesisComplexConv2d(K, 16)
    fused = copy_into_beamkernels(thesis)
    H = torch.randn(B, K, Nr, Nt, dtype=torch.complex64)

    # 1. They agree: forward and the gradients of a real loss.
    Ht = H.clone().requires_grad_()
    Hf = H.clone().requires_grad_()
    yt, yf = thesis(Ht), fused(Hf)
    err = (yt - yf).abs().max().item()
    yt.abs().square().sum().backward()
    yf.abs().square().sum().backward()
    gerr = (Ht.grad - Hf.grad).abs().max().item() / Ht.grad.abs().max().item()
    print(f"max |y_thesis - y_beamkernels| = {err:.2e}; relative input-gradient difference = {gerr:.2e}")
    assert err < 1e-4 and gerr < 1e-4, "the two layers disagree"

    # 2. Side by side: forward, and forward + backward, on the thesis's first layer (5 -> 16). The
    # backward starts from a fixed upstream gradient g (dL/dy), so the timing is the layer's alone
    # (a loss such as y.abs().sum() adds PyTorch's own elementwise passes, the same for both).
    g = torch.randn(B, 16, Nr, Nt, dtype=torch.complex64)

    def fwd_bwd(layer, x):
        def run():
            layer(x).backward(g)
        return run

    x = H.clone().requires_grad_()
    rows = [
        ("forward", lambda: thesis(H), lambda: fused(H)),
        ("forward+backward", fwd_bwd(thesis, x), fwd_bwd(fused, x)),
    ]
    print(f"\nconv 5 -> 16, 3x3, + modReLU on [{B}, {K}, {Nr}, {Nt}] complex64, {torch.get_num_threads()} threads")
    print(f"{'mode':18s} {'thesis (4 real convs)':>22s} {'beamkernels':>12s} {'speed-up':>9s}")
    for mode, a, b in rows:
        ta = tub.Timer("f()", globals={"f": a}).blocked_autorange(min_run_time=0.5).median
        tb = tub.Timer("f()", globals={"f": b}).blocked_autorange(min_run_time=0.5).median
        print(f"{mode:18s} {ta * 1e3:19.2f} ms {tb * 1e3:9.2f} ms {ta / tb:8.2f}x")


if __name__ == "__main__":
    main()
