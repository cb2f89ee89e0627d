// Torch-free CUDA kernels for the complex activations. Formulas: csrc/activation.h (shared with
// the CPU kernels). One block per (row, chunk): a row is one (outer, channel) plane, so modReLU's
// bias is one scalar per block and its gradient one partial sum per block (deterministic; no
// atomics). Interleaved complex is read as one vector load per element (float2 / double2).
#include "cuda/activation_cuda.h"

namespace beamkernels {
namespace cuda {
namespace {

template <typename T> struct Vec2;
template <> struct Vec2<float> { using type = float2; };
template <> struct Vec2<double> { using type = double2; };

template <Activation A, typename T>
__global__ void __launch_bounds__(kActThreads) act_fwd_kernel(ActivationParams<T> p, index_t chunks) {
  using V = typename Vec2<T>::type;
  const index_t block = blockIdx.x;
  const index_t row = block / chunks;
  const index_t begin = (block % chunks) * kActChunk;
  const T bias = p.bias ? p.bias[row % p.channels] : T(0);
  const V* x = reinterpret_cast<const V*>(p.x) + row * p.inner;
  V* y = reinterpret_cast<V*>(p.out) + row * p.inner;
#pragma unroll
  for (int k = 0; k < kActItems; ++k) {
    const index_t i = begin + index_t(k) * kActThreads + threadIdx.x;  // coalesced
    if (i < p.inner) {
      const V v = x[i];
      const Cplx<T> r = act_forward<A, T>(v.x, v.y, bias);
      y[i] = V{r.re, r.im};
    }
  }
}

template <typename T>
__device__ T block_sum(T v) {
  __shared__ T warp_sums[kActThreads / 32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = v;
  __syncthreads();
  v = threadIdx.x < kActThreads / 32 ? warp_sums[threadIdx.x] : T(0);
  if (threadIdx.x < 32) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  }
  return v;  // valid in thread 0
}

template <Activation A, typename T>
__global__ void __launch_bounds__(kActThreads) act_bwd_kernel(ActivationParams<T> p, index_t chunks) {
  using V = typename Vec2<T>::type;
  const index_t block = blockIdx.x;
  const index_t row = block / chunks;
  const index_t begin = (block % chunks) * kActChunk;
  const T bias = p.bias ? p.bias[row % p.channels] : T(0);
  const V* x = reinterpret_cast<const V*>(p.x) + row * p.inner;
  const V* g = reinterpret_cast<const V*>(p.grad_out) + row * p.inner;
  V* gx = reinterpret_cast<V*>(p.out) + row * p.inner;
  T gb = T(0);
#pragma unroll
  for (int k = 0; k < kActItems; ++k) {
    const index_t i = begin + index_t(k) * kActThreads + threadIdx.x;
    if (i < p.inner) {
      const V xv = x[i];
      const V gv = g[i];
      const Cplx<T> r = act_backward<A, T>(gv.x, gv.y, xv.x, xv.y, bias, &gb);
      gx[i] = V{r.re, r.im};
    }
  }
  if constexpr (A == Activation::kModReLU) {
    gb = block_sum(gb);
    if (threadIdx.x == 0) p.grad_bias_partial[block] = gb;
  }
}


template <typename T>
cudaError_t launch(const ActivationParams<T>& p, cudaStream_t stream, bool backward) {
  const index_t chunks = act_chunks_per_row(p.inner);
  const index_t blocks = p.outer * p.channels * chunks;
  if (blocks == 0) return cudaSuccess;
  if (blocks > index_t(2147483647)) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned>(blocks)), threads(kActThreads);
#define BK_LAUNCH(ACT)                                                              \
  if (backward) act_bwd_kernel<ACT, T><<<grid, threads, 0, stream>>>(p, chunks);    \
  else act_fwd_kernel<ACT, T><<<grid, threads, 0, stream>>>(p, chunks);             \
  break;
  switch (p.act) {
    case Activation::kCReLU: BK_LAUNCH(Activation::kCReLU)
    case Activation::kZReLU: BK_LAUNCH(Activation::kZReLU)
    case Activation::kModReLU: BK_LAUNCH(Activation::kModReLU)
    case Activation::kCardioid: BK_LAUNCH(Activation::kCardioid)
    default: BK_LAUNCH(Activation::kNone)
  }
#undef BK_LAUNCH
  return cudaGetLastError();
}

}  // namespace

template <typename T>
cudaError_t launch_activation_forward(const ActivationParams<T>& p, cudaStream_t stream) {
  return launch(p, stream, false);
}
template <typename T>
cudaError_t launch_activation_backward(const ActivationParams<T>& p, cudaStream_t stream) {
  return launch(p, stream, true);
}

template cudaError_t launch_activation_forward<float>(const ActivationParams<float>&, cudaStream_t);
template cudaError_t launch_activation_forward<double>(const ActivationParams<double>&, cudaStream_t);
template cudaError_t launch_activation_backward<float>(const ActivationParams<float>&, cudaStream_t);
template cudaError_t launch_activation_backward<double>(const ActivationParams<double>&, cudaStream_t);

}  // namespace cuda
}  // namespace beamkernels
