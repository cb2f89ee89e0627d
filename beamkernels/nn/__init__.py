"""Drop-in complex layers with torch.nn signatures: complex64/complex128 in and out."""

from beamkernels.nn.activation import Cardioid, CReLU, ModReLU, ZReLU

__all__ = ["CReLU", "ZReLU", "ModReLU", "Cardioid"]
