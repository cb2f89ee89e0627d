// Torch-free CUDA launchers for max-pool by magnitude (see csrc/pool.h).
#pragma once
#include <cuda_runtime_api.h>

#include "pool.h"

namespace beamkernels {
namespace cuda {

template <typename T>
cudaError_t max_pool2d_forward(const MaxPoolParams<T>& p, cudaStream_t stream);
// grad_x must be zeroed; out-of-range indices are skipped (the CPU backend reports them).
template <typename T>
cudaError_t max_pool2d_backward(const MaxPoolParams<T>& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace beamkernels
