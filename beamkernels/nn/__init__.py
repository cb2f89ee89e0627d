"""Drop-in complex layers with torch.nn signatures: complex64/complex128 in and out."""

from beamkernels.nn.activation import Cardioid, CReLU, ModReLU, ZReLU
from beamkernels.nn.norm import ComplexBatchNorm1d, ComplexBatchNorm2d, ComplexLayerNorm, NaiveComplexBatchNorm2d

__all__ = ["CReLU", "ZReLU", "ModReLU", "Cardioid",
           "ComplexBatchNorm1d", "ComplexBatchNorm2d", "ComplexLayerNorm", "NaiveComplexBatchNorm2d"]
