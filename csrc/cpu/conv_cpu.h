// Torch-free CPU passes of the fused complex convolution (see csrc/conv.h).
#pragma once
#include "conv.h"

namespace beamkernels {
namespace cpu {

template <typename T>
void conv_epilogue_forward(const ConvEpilogueParams<T>& p);
template <typename T>
void conv_epilogue_backward(const ConvEpilogueParams<T>& p);
template <typename T>
void gauss_combine(const GaussCombineParams<T>& p);
template <typename T>
void gauss_split(const GaussSplitParams<T>& p);

}  // namespace cpu
}  // namespace beamkernels
