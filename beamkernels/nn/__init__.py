"""Drop-in complex layers with torch.nn signatures: complex64/complex128 in and out."""

from beamkernels.nn import init
from beamkernels.nn.activation import Cardioid, CReLU, ModReLU, ZReLU
from beamkernels.nn.conv import ComplexConv1d, ComplexConv2d, ComplexConvTranspose2d
from beamkernels.nn.norm import ComplexBatchNorm1d, ComplexBatchNorm2d, ComplexLayerNorm, NaiveComplexBatchNorm2d

__all__ = [
    "CReLU", "ZReLU", "ModReLU", "Cardioid",
    "ComplexConv1d", "ComplexConv2d", "ComplexConvTranspose2d",
    "ComplexBatchNorm1d", "ComplexBatchNorm2d", "ComplexLayerNorm", "NaiveComplexBatchNorm2d",
    "init",
]
