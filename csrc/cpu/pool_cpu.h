// Torch-free CPU kernels for max-pool by magnitude (see csrc/pool.h).
#pragma once
#include "pool.h"

namespace beamkernels {
namespace cpu {

template <typename T>
void max_pool2d_forward(const MaxPoolParams<T>& p);
// Zeroes grad_x and scatters grad_out to the argmax indices. Returns the number of indices
// outside [0, H*W) (then nothing was written for them); the glue
// turns a nonzero count into an error instead of writing out of bounds.
template <typename T>
index_t max_pool2d_backward(const MaxPoolParams<T>& p);

}  // namespace cpu
}  // namespace beamkernels
