"""Pure-PyTorch references: the specification of every beamkernels op.

Every backend must agree with these (tests/ compare against them), and their autograd defines
the gradients (PyTorch's conjugate-Wirtinger convention). They are also the ``reference``
backend. Definitions: shared/complex-ops.md.
"""

from beamkernels.reference.activation import cardioid, crelu, modrelu, zrelu
from beamkernels.reference.conv import complex_conv1d, complex_conv2d, complex_conv_transpose2d
from beamkernels.reference.norm import complex_batch_norm, complex_layer_norm, naive_complex_batch_norm
from beamkernels.reference.layers import complex_dropout, complex_dropout2d, complex_linear, complex_upsample
from beamkernels.reference.pool import complex_adaptive_avg_pool2d, complex_avg_pool2d, complex_max_pool2d

__all__ = [
    "crelu",
    "zrelu",
    "modrelu",
    "cardioid",
    "complex_conv1d",
    "complex_conv2d",
    "complex_conv_transpose2d",
    "complex_batch_norm",
    "complex_layer_norm",
    "naive_complex_batch_norm",
    "complex_max_pool2d",
    "complex_avg_pool2d",
    "complex_adaptive_avg_pool2d",
    "complex_linear",
    "complex_dropout",
    "complex_dropout2d",
    "complex_upsample",
]
