"""Drop-in complex layers with torch.nn signatures: complex64/complex128 in and out."""

from beamkernels.nn import init
from beamkernels.nn.activation import Cardioid, CReLU, ModReLU, ZReLU
from beamkernels.nn.conv import ComplexConv1d, ComplexConv2d, ComplexConvTranspose2d
from beamkernels.nn.norm import ComplexBatchNorm1d, ComplexBatchNorm2d, ComplexLayerNorm, NaiveComplexBatchNorm2d
from beamkernels.nn.layers import ComplexDropout, ComplexDropout2d, ComplexLinear, ComplexUpsample
from beamkernels.nn.pool import ComplexAdaptiveAvgPool2d, ComplexAvgPool2d, ComplexMaxPool2d

__all__ = [
    "CReLU",
    "ZReLU",
    "ModReLU",
    "Cardioid",
    "ComplexConv1d",
    "ComplexConv2d",
    "ComplexConvTranspose2d",
    "ComplexBatchNorm1d",
    "ComplexBatchNorm2d",
    "ComplexLayerNorm",
    "NaiveComplexBatchNorm2d",
    "init",
    "ComplexMaxPool2d",
    "ComplexAvgPool2d",
    "ComplexAdaptiveAvgPool2d",
    "ComplexLinear",
    "ComplexDropout",
    "ComplexDropout2d",
    "ComplexUpsample",
]
