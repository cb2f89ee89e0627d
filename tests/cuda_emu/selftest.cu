// Kernels that check the emulator itself (test_emu_selftest.py): each one either computes
// something known (a warp-shuffle reduction, a WMMA tile product) or carries a deliberate bug
// (a missing or divergent __syncthreads, a bad launch, a trap) that the emulator must report.
// Plain CUDA: built by tests/cuda_emu/build.py like csrc/cuda/*.cu.
#include <cuda_runtime.h>
#include <mma.h>

namespace bk_emu_selftest {
namespace {

// out[i] = in[n - 1 - i] through shared memory; without the barrier a thread may read a slot
// before its owner wrote it.
template <bool kSync>
__global__ void reverse_kernel(float* out, const float* in, int n) {
  __shared__ float s[1024];
  const int t = threadIdx.x;
  s[t] = in[t];
  if (kSync) __syncthreads();
  out[t] = s[n - 1 - t];
}

__global__ void divergent_sync_kernel(float* out) {
  if (threadIdx.x < 16) __syncthreads();  // the other threads never arrive
  out[threadIdx.x] = 1.f;
}

// out[warp] = sum of threadIdx.x over the warp, by a shuffle-down tree.
__global__ void warp_sum_kernel(float* out) {
  float v = static_cast<float>(threadIdx.x);
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0) out[blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32] = v;
}

// One warp: C [16 x 16] = A [16 x 8] B [8 x 16], row-major, TF32 inputs (rounded first, or not).
template <bool kConvert>
__global__ void wmma_kernel(float* c, const float* a, const float* b) {
  namespace wmma = nvcuda::wmma;
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  wmma::load_matrix_sync(fa, a, 8);
  wmma::load_matrix_sync(fb, b, 16);
  if (kConvert) {
    for (int t = 0; t < fa.num_elements; ++t) fa.x[t] = wmma::__float_to_tf32(fa.x[t]);
    for (int t = 0; t < fb.num_elements; ++t) fb.x[t] = wmma::__float_to_tf32(fb.x[t]);
  }
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}

// A tile load from a pointer 4 bytes off the 32-byte alignment WMMA requires.
__global__ void misaligned_wmma_kernel(float* c, const float* a) {
  namespace wmma = nvcuda::wmma;
  __shared__ __align__(32) float tile[16 * 8 + 1];
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  for (int i = threadIdx.x; i < 16 * 8; i += 32) tile[i + 1] = a[i];
  __syncthreads();
  wmma::load_matrix_sync(fa, tile + 1, 8);
  c[threadIdx.x] = fa.x[0];
}

__global__ void __launch_bounds__(64) bounded_kernel(float* out) { out[threadIdx.x] = 1.f; }

__global__ void trap_kernel(float* out) {
  if (threadIdx.x == 3) __trap();
  out[threadIdx.x] = 1.f;
}

}  // namespace

cudaError_t reverse(float* out, const float* in, int n, bool sync) {
  if (sync) reverse_kernel<true><<<1, n>>>(out, in, n);
  else reverse_kernel<false><<<1, n>>>(out, in, n);
  return cudaGetLastError();
}

cudaError_t divergent_sync(float* out) {
  divergent_sync_kernel<<<1, 64>>>(out);
  return cudaGetLastError();
}

cudaError_t warp_sums(float* out, int blocks, int threads) {
  warp_sum_kernel<<<blocks, threads>>>(out);
  return cudaGetLastError();
}

cudaError_t wmma_tile(float* c, const float* a, const float* b, bool convert) {
  if (convert) wmma_kernel<true><<<1, 32>>>(c, a, b);
  else wmma_kernel<false><<<1, 32>>>(c, a, b);
  return cudaGetLastError();
}

cudaError_t launch_with(float* out, unsigned grid_y, unsigned threads) {
  warp_sum_kernel<<<dim3(1, grid_y), threads>>>(out);
  return cudaGetLastError();
}

cudaError_t misaligned_wmma(float* c, const float* a) {
  misaligned_wmma_kernel<<<1, 32>>>(c, a);
  return cudaGetLastError();
}

cudaError_t bounded(float* out, unsigned threads) {
  bounded_kernel<<<1, threads>>>(out);
  return cudaGetLastError();
}

cudaError_t trap(float* out) {
  trap_kernel<<<1, 32>>>(out);
  return cudaGetLastError();
}

}  // namespace bk_emu_selftest
