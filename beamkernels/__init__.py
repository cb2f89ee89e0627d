"""beamkernels: fast, checked complex-valued neural-network layers for PyTorch.

- ``beamkernels.functional``: typed ops (complex in, complex out).
- ``beamkernels.nn``: layers with torch.nn signatures.
- ``beamkernels.reference``: the pure-PyTorch specification of every op.
- Backends: ``use_backend``, ``available_backends``, env ``BEAMKERNELS_BACKEND``; GPU conv
  precision (TF32 or exact fp32, as torch's convs): ``conv_tf32``, ``conv_tf32_enabled``.
"""

from beamkernels.version import __version__
from beamkernels import _ext
from beamkernels._backend import available_backends, conv_tf32, conv_tf32_enabled, current_backend, use_backend
from beamkernels._ext import ExtensionNotBuiltError, build_info
from beamkernels import ops  # noqa: F401  (registers fake kernels, autograd and Triton ops)
from beamkernels.ops import activation as _activation_ops  # noqa: F401
from beamkernels.ops import conv as _conv_ops  # noqa: F401
from beamkernels.ops import norm as _norm_ops  # noqa: F401
from beamkernels.ops import pool as _pool_ops  # noqa: F401
from beamkernels.ops import layers as _layers_ops  # noqa: F401
from beamkernels import functional, nn, reference

__all__ = [
    "__version__",
    "available_backends",
    "build_info",
    "conv_tf32",
    "conv_tf32_enabled",
    "current_backend",
    "use_backend",
    "ExtensionNotBuiltError",
    "functional",
    "nn",
    "reference",
]
