"""``complex-unfolded``: model-based deep learning ("deep unfolding") of subspace iteration.

Deep unfolding (J. R. Hershey, J. Le Roux, F. Weninger, "Deep Unfolding: Model-Based
Inspiration of Novel Deep Architectures", arXiv:1409.2574, 2014; for communications:
A. Balatsoukas-Stimming, C. Studer, "Deep Unfolding for Communications Systems: A Survey and
Some New Directions", IEEE SiPS 2019) turns the iterations of a known algorithm into network
layers with learnable parameters. The algorithm here is subspace (orthogonal / power) iteration
for the Ns dominant right singular vectors of each H_k, i.e. the optimal precoder Fopt: its
fixed points span the top eigenspace of H_k^H H_k, and it converges from any start that is not
orthogonal to that subspace, at rate (s_{Ns+1} / s_Ns)^2 per iteration.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from beamkernels.models._common import check_combiner, check_input, check_streams, finish
from beamkernels.models.outputs import orthonormal_basis, scale_to_power
from beamkernels.models.registry import register
from beamkernels.models.thesis import ThesisComplexCNN
from beamkernels.nn._dtype import RealStateFollowsDtype


def orthonormalize(X: Tensor) -> Tensor:
    """Orthonormal basis of the columns of X [..., N, Ns] (reduced QR, outputs.orthonormal_basis:
    differentiable also where X is rank-deficient). Only span(X) matters to the rate with a
    matched combiner, and an orthonormal basis gives the Ns streams equal power, as the SVD
    precoder does."""
    return orthonormal_basis(X)


@register("complex-unfolded",
          "Complex CNN initial F + T unrolled subspace-iteration layers (deep unfolding); W = matched combiner")
class ComplexUnfolded(RealStateFollowsDtype, nn.Module):
    """A complex CNN's precoder refined by T unrolled subspace-iteration layers.

    Input: H [B, K, Nr, Nt] complex (K as channels).
    1. Initial precoder: F0 [B, K, Nt, Ns] = the unnormalized F head of a thesis-complex-cnn
       (``width`` w = 16: ComplexConv2d K -> w -> 2w -> 4w with the activation fused, each + 2x2
       complex max-pool; flatten 4w x 4 x 18 = 4608; ComplexLinear(4608 -> ``hidden`` = 256) +
       activation; ComplexLinear(hidden -> K*Nt*Ns)), reused from models.thesis, no W head.
    2. T = ``iterations`` (default 3) unrolled layers, per subcarrier k:
           F_{t+1} = orth( a_t * G_k F_t + b_t * F_t ),   G_k = H_k^H H_k / ||H_k||_F^2,
       a_t, b_t learnable complex scalars (init a_t = 1, b_t = 0: plain subspace iteration),
       orth = reduced QR (orthonormal columns). G_k is scaled to unit trace so that a_t and b_t
       mean the same for every channel (the overall scale is removed by orth anyway); b_t / a_t
       acts as a learned shift of the spectrum (a shifted power iteration).
    3. F = F_T normalized to ||F_k||_F^2 = Ns; W = the matched combiner (orthonormal basis of
       col(H_k F_k), outputs.matched_combiner), the best receiver for that F.
    ``iterations=0`` is the CNN alone (F0 normalized, as thesis-complex-cnn with
    combiner="matched"); with T >= 1 the refinement does most of the work: plain subspace
    iteration from a random start already approaches the SVD bound (see README), so compare
    against the untrained model and against T = 0 before crediting the CNN.
    ``combiner``: only "matched" (the unrolled layers refine F; there is no W head).
    Output: F [B, K, Nt, Ns] (||F_k||_F^2 = Ns), W [B, K, Nr, Ns] (orthonormal columns), complex.
    Parameters at the default config: 3,148,092 (real; a complex weight counts 2; the 2T
    complex scalars a_t, b_t are 12 of them).
    """

    DOCUMENTED_PARAMS = 3_148_092

    def __init__(self, K: int = 5, Nr: int = 36, Nt: int = 144, Ns: int = 2, width: int = 16,
                 hidden: int = 256, iterations: int = 3, activation: str = "modrelu", combiner: str = "matched",
                 device=None, dtype=None):
        super().__init__()
        check_streams(K, Nr, Nt, Ns, type(self).__name__)
        if check_combiner(combiner) != "matched":
            raise ValueError(f"complex-unfolded: combiner must be 'matched' (the unrolled layers refine F only; "
                             f"there is no W head); got {combiner!r}")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ValueError(f"complex-unfolded: iterations must be an int >= 0 (0 = the CNN alone); got {iterations!r}")
        self.K, self.Nr, self.Nt, self.Ns = K, Nr, Nt, Ns
        self.combiner, self.iterations = combiner, iterations
        self.cnn = ThesisComplexCNN(K, Nr, Nt, Ns, width=width, hidden=hidden, activation=activation,
                                    combiner="matched", device=device, dtype=dtype)
        kw = dict(device=device, dtype=dtype or torch.complex64)
        self.a = nn.Parameter(torch.ones(iterations, **kw))
        self.b = nn.Parameter(torch.zeros(iterations, **kw))

    def forward(self, H: Tensor) -> tuple[Tensor, Tensor]:
        check_input(H, self.K, self.Nr, self.Nt, "complex-unfolded")
        F, _ = self.cnn.raw_outputs(H)
        if self.iterations:
            # H_k / ||H_k||_F, so G_k = Hs^H Hs has unit trace; G_k F is applied as Hs^H (Hs F)
            # ([Nr, Nt] products, never the Nt x Nt Gram matrix).
            Hs = scale_to_power(H, (-2, -1), 1.0, zero_to_unit=False)  # (any scale of H: ~1e-8 too)
            for t in range(self.iterations):
                F = orthonormalize(self.a[t] * (Hs.mH @ (Hs @ F)) + self.b[t] * F)
        return finish(H, F, None)
