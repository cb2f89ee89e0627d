"""The typed public functions, one per op (complex tensors in, complex tensors out).

Each picks a backend (see beamkernels.use_backend) and calls the registered op; the
implementations live in beamkernels/ops/.
"""

from beamkernels.ops.activation import cardioid, crelu, modrelu, zrelu
from beamkernels.ops.conv import complex_conv1d, complex_conv2d, complex_conv_transpose2d

__all__ = [
    "crelu", "zrelu", "modrelu", "cardioid",
    "complex_conv1d", "complex_conv2d", "complex_conv_transpose2d",
]
