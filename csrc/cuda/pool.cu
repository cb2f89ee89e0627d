// Torch-free CUDA kernels for max-pool by magnitude (spec: beamkernels/reference/pool.py, key and
// tie rule: csrc/pool.h). One thread per output (grid-stride loop, 64-bit indices), complex
// loads as float2/double2. The key is computed with round-to-nearest intrinsics so nvcc cannot
// contract it into an FMA (it must round exactly as the reference). The backward scatters each
// output gradient to its argmax with atomicAdd (overlapping windows can share an argmax).
// Compiles with plain nvcc: nvcc -c -std=c++17 -arch=sm_90 csrc/cuda/pool.cu -I csrc
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/pool_cuda.h"

namespace beamkernels {
namespace cuda {
namespace {

template <typename T>
struct Vec2;
template <>
struct Vec2<float> {
  using type = float2;
};
template <>
struct Vec2<double> {
  using type = double2;
};

__device__ __forceinline__ float key_rn(float a, float b) { return __fadd_rn(__fmul_rn(a, a), __fmul_rn(b, b)); }
__device__ __forceinline__ double key_rn(double a, double b) { return __dadd_rn(__dmul_rn(a, a), __dmul_rn(b, b)); }

template <typename T>
__global__ void max_pool_fwd_kernel(MaxPoolParams<T> p) {
  using V = typename Vec2<T>::type;
  const index_t total = p.planes * p.out_height * p.out_width;
  const V* x = reinterpret_cast<const V*>(p.x);
  V* out = reinterpret_cast<V*>(p.out);
  for (index_t o = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; o < total;
       o += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t ow = o % p.out_width;
    const index_t t = o / p.out_width;
    const index_t oh = t % p.out_height;
    const index_t plane = t / p.out_height;
    const V* in = x + plane * p.height * p.width;
    const index_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
    T best = T(0);
    V val{T(0), T(0)};
    index_t arg = -1;
    for (index_t i = 0; i < p.kh; ++i) {
      const index_t h = h0 + i * p.dh;
      if (h < 0 || h >= p.height) continue;
      for (index_t j = 0; j < p.kw; ++j) {
        const index_t w = w0 + j * p.dw;
        if (w < 0 || w >= p.width) continue;
        const index_t pos = h * p.width + w;
        const V v = in[pos];
        const T k = key_rn(v.x, v.y);
        if (arg < 0 || pool_takes(k, best)) {
          best = k;
          val = v;
          arg = pos;
        }
      }
    }
    out[o] = val;
    p.indices[o] = arg;
  }
}

template <typename T>
__global__ void max_pool_bwd_kernel(MaxPoolParams<T> p) {
  const index_t plane_out = p.out_height * p.out_width, plane_in = p.height * p.width;
  const index_t total = p.planes * plane_out;
  for (index_t o = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; o < total;
       o += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t i = p.indices[o];
    if (i < 0 || i >= plane_in) continue;
    const index_t dst = (o / plane_out) * plane_in + i;
    atomicAdd(p.grad_x + 2 * dst, p.grad_out[2 * o]);
    atomicAdd(p.grad_x + 2 * dst + 1, p.grad_out[2 * o + 1]);
  }
}

constexpr int kThreads = 256;

inline unsigned blocks_for(index_t total) {
  return static_cast<unsigned>(std::min<index_t>((total + kThreads - 1) / kThreads, index_t(1) << 20));
}

}  // namespace

template <typename T>
cudaError_t max_pool2d_forward(const MaxPoolParams<T>& p, cudaStream_t stream) {
  const index_t total = p.planes * p.out_height * p.out_width;
  if (total == 0) return cudaSuccess;
  max_pool_fwd_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t max_pool2d_backward(const MaxPoolParams<T>& p, cudaStream_t stream) {
  const index_t total = p.planes * p.out_height * p.out_width;
  if (total == 0) return cudaSuccess;
  max_pool_bwd_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template cudaError_t max_pool2d_forward<float>(const MaxPoolParams<float>&, cudaStream_t);
template cudaError_t max_pool2d_forward<double>(const MaxPoolParams<double>&, cudaStream_t);
template cudaError_t max_pool2d_backward<float>(const MaxPoolParams<float>&, cudaStream_t);
template cudaError_t max_pool2d_backward<double>(const MaxPoolParams<double>&, cudaStream_t);

}  // namespace cuda
}  // namespace beamkernels
