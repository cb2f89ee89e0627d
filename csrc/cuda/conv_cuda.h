// Torch-free CUDA launchers of the fused complex convolution (see csrc/conv.h).
#pragma once
#include <cuda_runtime.h>

#include "conv.h"

namespace beamkernels {
namespace cuda {

// y = act(conv(x, w) + b) (interleaved) and, when p.z != nullptr, the saved pre-activation in
// the planar layout of ConvEpilogueParams ([N, 2 C_out, Ho * Wo], Re at 2o, Im at 2o + 1, no bias).
template <typename T>
cudaError_t conv2d_forward(const ConvParams<T>& p, cudaStream_t stream);

// From grad_out and the saved planar z (p.z): dL/dz (p.grad_z), the per-(n, o) row sums
// (p.row_sums), then dL/dx (if p.grad_x) and dL/dW (if p.grad_weight).
template <typename T>
cudaError_t conv2d_backward(const ConvParams<T>& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace beamkernels
