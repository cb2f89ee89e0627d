// Torch-free CPU kernels for the whitening batch-norm (see csrc/norm.h).
#pragma once
#include "norm.h"

namespace beamkernels {
namespace cpu {

// Forward: training = one statistics pass (shifted sums in double) + one apply pass;
// eval = one apply pass. Writes p.out (y) and, in training, p.mean_out / p.cov_out.
template <typename T>
void batch_norm_forward(const BatchNormParams<T>& p);

// Backward: one reduction pass (sum g, sum g d^T in double) + one apply pass.
// Writes p.out (grad_x), p.grad_weight [C, 3], p.grad_bias [C, 2].
template <typename T>
void batch_norm_backward(const BatchNormParams<T>& p);

}  // namespace cpu
}  // namespace beamkernels
