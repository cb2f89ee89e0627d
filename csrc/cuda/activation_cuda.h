// Torch-free launchers for the CUDA activation kernels (csrc/cuda/activation.cu).
#pragma once
#include <cuda_runtime.h>

#include "activation.h"

namespace beamkernels {
namespace cuda {

// Each block handles one chunk of kActChunk elements of one (outer, channel) row.
constexpr int kActThreads = 256;
constexpr int kActItems = 4;
constexpr index_t kActChunk = index_t(kActThreads) * kActItems;
inline index_t act_chunks_per_row(index_t inner) { return inner == 0 ? 0 : (inner + kActChunk - 1) / kActChunk; }

// Forward: p.x -> p.out. Backward: (p.grad_out, p.x) -> p.out (grad x) and, for modReLU,
// p.grad_bias_partial[outer * channels * chunks_per_row] (reduced by the caller).
template <typename T>
cudaError_t launch_activation_forward(const ActivationParams<T>& p, cudaStream_t stream);
template <typename T>
cudaError_t launch_activation_backward(const ActivationParams<T>& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace beamkernels
