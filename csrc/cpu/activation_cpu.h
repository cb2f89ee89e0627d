// Torch-free CPU kernels for the complex activations (see csrc/activation.h).
#pragma once
#include "activation.h"

namespace beamkernels {
namespace cpu {

// Rows of `inner` elements are split into chunks of at most kActivationGrain elements; the
// backward writes one modReLU bias partial sum per chunk: [outer * channels * chunks_per_row].
constexpr index_t kActivationGrain = 16384;
inline index_t activation_chunks_per_row(index_t inner) {
  return inner > kActivationGrain ? (inner + kActivationGrain - 1) / kActivationGrain : 1;
}

template <typename T>
void activation_forward(const ActivationParams<T>& p);
template <typename T>
void activation_backward(const ActivationParams<T>& p);

}  // namespace cpu
}  // namespace beamkernels
