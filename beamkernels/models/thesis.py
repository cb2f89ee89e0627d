"""The two networks of the thesis notebooks, written as they were meant to work.

- ``thesis-real-encoder`` (:class:`ThesisRealEncoder`): notebook 1. A real-valued CNN encoder
  on |H| followed by one dense layer that regresses F. It is an encoder + regressor, NOT a
  U-Net (no decoder, no skip concatenations). |H| cannot identify the precoder (conj(H) has
  the same |H| and the conjugate precoder; a single-path channel has constant |H|), so this
  model is limited by construction: it is kept as the faithful real baseline.
- ``thesis-complex-cnn`` (:class:`ThesisComplexCNN`): notebook 2, fixed. Complex convs with a
  genuine complex activation (modReLU by default; the notebook applied ReLU to complex numbers),
  2x2 pooling, the flatten size the pooled map really has (64 x 4 x 18, not 64 x 36 x 144), a
  complex dense layer and two heads for F and W.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from beamkernels import nn as bnn
from beamkernels.models._common import (DenseHeads, check_activation, check_combiner, check_input, check_poolable,
                                        check_streams, finish, make_activation)
from beamkernels.models.outputs import matched_combiner, normalize_precoder
from beamkernels.models.registry import register


def _pooled(n: int, times: int) -> int:
    for _ in range(times):
        n //= 2
    return n


class _RealDoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, slope: float, **kw):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False, **kw), nn.BatchNorm2d(cout, **kw), nn.LeakyReLU(slope),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False, **kw), nn.BatchNorm2d(cout, **kw), nn.LeakyReLU(slope),
        )


class _RealResidual(nn.Module):
    """conv-BN-LeakyReLU-conv-BN, + input, LeakyReLU."""

    def __init__(self, c: int, slope: float, **kw):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, bias=False, **kw), nn.BatchNorm2d(c, **kw), nn.LeakyReLU(slope),
            nn.Conv2d(c, c, 3, padding=1, bias=False, **kw), nn.BatchNorm2d(c, **kw),
        )
        self.act = nn.LeakyReLU(slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.body(x))


@register("thesis-real-encoder", "Real CNN encoder + dense regressor on |H| (thesis notebook 1); W = matched combiner")
class ThesisRealEncoder(nn.Module):
    """Real-valued encoder-regressor on |H| (thesis notebook 1).

    Input: H [B, K, Nr, Nt] complex; the network sees only |H| (real, K as channels).
    Layers (width w = 16): four stages at w, 2w, 4w, 8w channels, each a double conv
    (conv3x3-BN-LeakyReLU x2) followed by a residual block (conv-BN-LeakyReLU-conv-BN, + skip,
    LeakyReLU), with a 2x2 max-pool between stages (36x144 -> 18x72 -> 9x36 -> 4x18); flatten
    (8w x 4 x 18 = 9216) and Linear(9216 -> K*Nt*Ns = 1440), reshaped to F [B, K, Nt, Ns].
    Output: F [B, K, Nt, Ns] complex with zero imaginary part (the network is real), power-
    normalized per subcarrier; W [B, K, Nr, Ns] = the matched combiner for that F (orthonormal
    basis of col(H_k F_k), see outputs.matched_combiner), so the rate is that of F with the best
    receiver. W uses the complex H: only the precoder is limited to |H|.
    Parameters at the default config: 13,959,408 (real).
    """

    DOCUMENTED_PARAMS = 13_959_408

    def __init__(self, K: int = 5, Nr: int = 36, Nt: int = 144, Ns: int = 2, width: int = 16,
                 negative_slope: float = 0.01, device=None, dtype=None):
        super().__init__()
        check_streams(K, Nr, Nt, Ns, type(self).__name__)
        check_poolable(Nr, Nt, 3, type(self).__name__)
        self.K, self.Nr, self.Nt, self.Ns = K, Nr, Nt, Ns
        real = (dtype or torch.complex64).to_real()
        kw = dict(device=device, dtype=real)
        chans = [width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        cin = K
        for i, c in enumerate(chans):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            layers += [_RealDoubleConv(cin, c, negative_slope, **kw), _RealResidual(c, negative_slope, **kw)]
            cin = c
        self.encoder = nn.Sequential(*layers)
        self.flat_features = chans[-1] * _pooled(Nr, 3) * _pooled(Nt, 3)
        self.regressor = nn.Linear(self.flat_features, K * Nt * Ns, **kw)

    def forward(self, H: Tensor) -> tuple[Tensor, Tensor]:
        check_input(H, self.K, self.Nr, self.Nt, "thesis-real-encoder")
        x = self.encoder(H.abs())
        f = self.regressor(x.flatten(1)).reshape(-1, self.K, self.Nt, self.Ns)
        F = normalize_precoder(torch.complex(f, torch.zeros_like(f)))
        return F, matched_combiner(H, F)


@register("thesis-complex-cnn", "Complex CNN 5->16->32->64 with 2x2 pools, dense 1024, F/W heads (thesis notebook 2, fixed)")
class ThesisComplexCNN(nn.Module):
    """Complex CNN (thesis notebook 2, made to work).

    Input: H [B, K, Nr, Nt] complex (K as channels).
    Layers (width w = 16): ComplexConv2d(K -> w, 3x3, pad 1) with the activation fused, 2x2
    complex max-pool (36x144 -> 18x72); conv w -> 2w, pool (-> 9x36); conv 2w -> 4w, pool
    (-> 4x18); flatten (4w x 4 x 18 = 64*4*18 = 4608); ComplexLinear(4608 -> 1024) + activation;
    two ComplexLinear heads: 1024 -> K*Nt*Ns (F) and 1024 -> K*Nr*Ns (W).
    ``activation``: modrelu (default), crelu, zrelu or cardioid.
    ``combiner``: "head" (default: W from its own head) or "matched" (no W head; W = the matched
    combiner of H and the predicted F, as in thesis-real-encoder).
    Output: F [B, K, Nt, Ns] (||F_k||_F^2 = Ns), W [B, K, Nr, Ns] (unit-norm columns), complex.
    Parameters at the default config: 13,178,112 (real; a complex weight counts 2).
    """

    DOCUMENTED_PARAMS = 13_178_112

    def __init__(self, K: int = 5, Nr: int = 36, Nt: int = 144, Ns: int = 2, width: int = 16,
                 hidden: int = 1024, activation: str = "modrelu", combiner: str = "head", device=None, dtype=None):
        super().__init__()
        check_streams(K, Nr, Nt, Ns, type(self).__name__)
        check_poolable(Nr, Nt, 3, type(self).__name__)
        check_activation(activation)
        self.combiner = check_combiner(combiner)
        self.K, self.Nr, self.Nt, self.Ns = K, Nr, Nt, Ns
        kw = dict(device=device, dtype=dtype or torch.complex64)
        chans = [width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        cin = K
        for c in chans:
            layers += [bnn.ComplexConv2d(cin, c, 3, padding=1, activation=activation, **kw), bnn.ComplexMaxPool2d(2)]
            cin = c
        self.features = nn.Sequential(*layers)
        self.flat_features = chans[-1] * _pooled(Nr, 3) * _pooled(Nt, 3)
        self.fc = bnn.ComplexLinear(self.flat_features, hidden, **kw)
        self.fc_act = make_activation(activation, hidden, **kw)
        self.heads = DenseHeads(hidden, K, Nr, Nt, Ns, with_w=combiner == "head", **kw)

    def raw_outputs(self, H: Tensor) -> tuple[Tensor, Tensor | None]:
        """The heads' unnormalized F [B, K, Nt, Ns] and W (None with combiner="matched"); H is
        not checked here (complex-unfolded uses this as its initial precoder)."""
        z = self.features(H).flatten(1)
        return self.heads(self.fc_act(self.fc(z)))

    def forward(self, H: Tensor) -> tuple[Tensor, Tensor]:
        check_input(H, self.K, self.Nr, self.Nt, "thesis-complex-cnn")
        return finish(H, *self.raw_outputs(H))
