"""``complex-resnet``: a residual complex encoder with whitening batch-norm and dense F/W heads."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from beamkernels import nn as bnn
from beamkernels.models._common import (ConvBNAct, DenseHeads, check_activation, check_combiner, check_input,
                                        check_streams, finish, make_activation)
from beamkernels.models.registry import register


class ResidualBlock(nn.Module):
    """x -> act(x + BN(conv(act(BN(conv(x)))))), complex, whitening BN (He et al. 2016's basic
    block in the complex form of Trabelsi et al. 2018)."""

    def __init__(self, c: int, activation: str, **kw):
        super().__init__()
        self.a = ConvBNAct(c, c, activation, **kw)
        self.b = ConvBNAct(c, c, activation, act=False, **kw)
        self.act = make_activation(activation, c, **kw)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.b(self.a(x)))


@register("complex-resnet", "Residual complex encoder (stride-2 stages, whitening BN) + dense F/W heads")
class ComplexResNet(nn.Module):
    """Residual complex encoder.

    Input: H [B, K, Nr, Nt] complex (K as channels).
    Layers (width w = 16, ``blocks`` = 1 per stage): stem ConvBNAct K -> w (36x144) and a residual
    block; three stages each a stride-2 ConvBNAct (w -> 2w -> 4w -> 8w; 36x144 -> 18x72 -> 9x36
    -> 5x18) and residual blocks; complex adaptive average pool to 4 x 9; flatten (8w*36 = 4608);
    ComplexLinear(4608 -> hidden = 512) + activation; dense heads to F and W.
    ``combiner``: "head" (default: W from its own head) or "matched" (no W head; W = the matched
    combiner of H and the predicted F, as in thesis-real-encoder).
    Output: F [B, K, Nt, Ns] (||F_k||_F^2 = Ns), W [B, K, Nr, Ns] (unit-norm columns), complex.
    Parameters at the default config: 7,549,584 (real; a complex weight counts 2).
    """

    DOCUMENTED_PARAMS = 7_549_584

    def __init__(self, K: int = 5, Nr: int = 36, Nt: int = 144, Ns: int = 2, width: int = 16,
                 blocks: int = 1, hidden: int = 512, activation: str = "modrelu", combiner: str = "head",
                 device=None, dtype=None):
        super().__init__()
        check_streams(K, Nr, Nt, Ns, type(self).__name__)
        check_activation(activation)
        self.combiner = check_combiner(combiner)
        self.K, self.Nr, self.Nt, self.Ns = K, Nr, Nt, Ns
        kw = dict(device=device, dtype=dtype or torch.complex64)
        layers: list[nn.Module] = [ConvBNAct(K, width, activation, **kw)]
        layers += [ResidualBlock(width, activation, **kw) for _ in range(blocks)]
        c = width
        for _ in range(3):
            layers.append(ConvBNAct(c, 2 * c, activation, stride=2, **kw))
            c *= 2
            layers += [ResidualBlock(c, activation, **kw) for _ in range(blocks)]
        self.encoder = nn.Sequential(*layers)
        self.pool = bnn.ComplexAdaptiveAvgPool2d((4, 9))
        self.fc = bnn.ComplexLinear(c * 36, hidden, **kw)
        self.fc_act = make_activation(activation, hidden, **kw)
        self.heads = DenseHeads(hidden, K, Nr, Nt, Ns, with_w=combiner == "head", **kw)

    def forward(self, H: Tensor) -> tuple[Tensor, Tensor]:
        check_input(H, self.K, self.Nr, self.Nt, "complex-resnet")
        z = self.pool(self.encoder(H)).flatten(1)
        return finish(H, *self.heads(self.fc_act(self.fc(z))))
