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
// Tiles per Winograd vector of the float forward and dL/dx: 16 where the CPU has AVX-512 F/BW/DQ/VL,
// else 8 (also with the environment variable BEAMKERNELS_CPU_WINOGRAD_LANES=8, read once); doubles
// and the weight gradient always run 8.
int conv_winograd_max_lanes();
template <typename T>
void conv_winograd_forward(const WinogradParams<T>& p);
// Elements of scratch that conv_winograd_forward takes per thread (grows with C_in x W_out).
index_t conv_winograd_scratch(int lanes, index_t cin, index_t wo);

template <typename T>
void conv_winograd_weight_grad(const WinogradWeightGradParams<T>& p);
// Elements of scratch that conv_winograd_weight_grad takes per thread (input and dL/dz rows, their
// transforms, the lane accumulators of 16 C_in C_out products).
index_t conv_winograd_weight_grad_scratch(index_t cin, index_t cout, index_t wo);

// The fused epilogue's row function (conv.cpp): y[i] = act(re[i] + br, im[i] + bi) interleaved, for
// contiguous rows re, im of length n (ab: modReLU's bias); multiversioned like the other passes.
template <typename T>
using ConvForwardRowFn = void (*)(const T* re, const T* im, T* y, index_t n, T br, T bi, T ab);
ConvForwardRowFn<float> conv_forward_row_fn(Activation a, float);
ConvForwardRowFn<double> conv_forward_row_fn(Activation a, double);

}  // namespace cpu
}  // namespace beamkernels
