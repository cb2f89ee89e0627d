// Torch-free CUDA launchers for the whitening batch-norm (see csrc/norm.h).
#pragma once
#include <cuda_runtime.h>

#include "norm.h"

namespace beamkernels {
namespace cuda {

// Blocks per channel of the reduction kernels; the caller allocates the workspace:
// partials: double [channels * blocks * 6]; coefs: T [channels * 11].
int bn_blocks_per_channel(index_t values_per_channel);

// Training (p.training): stats reduction -> per-channel finalize (mean_out, cov_out, coefs) ->
// apply. Eval: finalize from mean_in / cov_in -> apply.
template <typename T>
cudaError_t batch_norm_forward(const BatchNormParams<T>& p, double* partials, T* coefs, cudaStream_t stream);

// Reduction (sum g, sum g d^T) -> finalize (grad_weight, grad_bias, coefs) -> apply (grad_x).
template <typename T>
cudaError_t batch_norm_backward(const BatchNormParams<T>& p, double* partials, T* coefs, cudaStream_t stream);

}  // namespace cuda
}  // namespace beamkernels
