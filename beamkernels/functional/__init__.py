"""The typed public functions, one per op (complex tensors in, complex tensors out).

Each picks a backend (see beamkernels.use_backend) and calls the registered op; the
implementations live in beamkernels/ops/.
"""

from beamkernels.ops.activation import cardioid, crelu, modrelu, zrelu
from beamkernels.ops.conv import complex_conv1d, complex_conv2d, complex_conv_transpose2d
from beamkernels.ops.norm import complex_batch_norm, complex_layer_norm, naive_complex_batch_norm
from beamkernels.ops.layers import complex_dropout, complex_dropout2d, complex_linear, complex_upsample
from beamkernels.ops.pool import complex_adaptive_avg_pool2d, complex_avg_pool2d, complex_max_pool2d

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
