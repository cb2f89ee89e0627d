// Torch-free CUDA kernels for the whitening batch-norm (formulas in csrc/norm.h).
//
// Forward (training): bn_reduce_kernel<5> (grid [blocks, C]; each block sums its share of the
// channel's n = N * inner values, shifted by x[0, c, 0], in double; warp shuffles + shared
// memory) -> bn_finalize_forward (one thread per channel: merge the block partials, mean, cov,
// coefficients A = G W, beta, m) -> bn_apply_kernel (grid-stride, interleaved complex in/out).
// Backward: bn_reduce_kernel<6> (sum g, sum g (x - m)^T) -> bn_finalize_backward -> apply.
// Deterministic: fixed partial layout, merged in a fixed order. UNMEASURED: no GPU was
// available when this was written; it is compile-checked only (plain nvcc, sm_90).
#include "cuda/grid_limits.h"
#include "cuda/norm_cuda.h"

namespace beamkernels {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocksPerChannel = 128;

template <int K>
__device__ __forceinline__ void block_reduce(double (&v)[K], double* shared /* [K * 32] */) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int k = 0; k < K; ++k)
    for (int off = 16; off > 0; off >>= 1) v[k] += __shfl_down_sync(0xffffffffu, v[k], off);
  if (lane == 0)
#pragma unroll
    for (int k = 0; k < K; ++k) shared[k * 32 + warp] = v[k];
  __syncthreads();
  if (warp == 0) {
    const int nwarps = blockDim.x >> 5;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      v[k] = lane < nwarps ? shared[k * 32 + lane] : 0.0;
      for (int off = 16; off > 0; off >>= 1) v[k] += __shfl_down_sync(0xffffffffu, v[k], off);
    }
  }
}

// K = 5: statistics of x shifted by x[0, c, 0]. K = 6: backward sums with g and x - mean.
template <typename T, int K>
__global__ void __launch_bounds__(kThreads) bn_reduce_kernel(BatchNormParams<T> p, double* partials) {
  __shared__ double shared[K * 32];
  const index_t per_channel = p.outer * p.inner;
  // gridDim.y is at most the device's limit (65535): channels beyond it (layer norm over many samples) loop.
  for (index_t c = blockIdx.y; c < p.channels; c += gridDim.y) {
    double v[K];
#pragma unroll
    for (int k = 0; k < K; ++k) v[k] = 0.0;
    T kr, ki;
    if (K == 5) {
      kr = p.x[2 * c * p.inner];
      ki = p.x[2 * c * p.inner + 1];
    } else {
      kr = p.mean_in[2 * c];
      ki = p.mean_in[2 * c + 1];
    }
    const index_t stride = index_t(gridDim.x) * blockDim.x;
    for (index_t e = index_t(blockIdx.x) * blockDim.x + threadIdx.x; e < per_channel; e += stride) {
      const index_t nn = e / p.inner, i = e - nn * p.inner;
      const index_t off = 2 * ((nn * p.channels + c) * p.inner + i);
      const double a = double(p.x[off] - kr), b = double(p.x[off + 1] - ki);
      if (K == 5) {
        v[0] += a;
        v[1] += b;
        v[2] += a * a;
        v[3] += a * b;
        v[K - 1] += b * b;
      } else {
        const double gr = double(p.grad_out[off]), gi = double(p.grad_out[off + 1]);
        v[0] += gr;
        v[1] += gi;
        v[2] += gr * a;
        v[3] += gr * b;
        v[4 % K] += gi * a;
        v[K - 1] += gi * b;
      }
    }
    block_reduce<K>(v, shared);
    if (threadIdx.x == 0) {
      double* out = partials + (c * gridDim.x + blockIdx.x) * K;
#pragma unroll
      for (int k = 0; k < K; ++k) out[k] = v[k];
    }
    __syncthreads();  // shared is reused by the next channel
  }
}

template <typename T>
__global__ void bn_finalize_forward(BatchNormParams<T> p, const double* partials, int blocks, T* coefs) {
  const index_t c = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= p.channels) return;
  double mr, mi, vrr, vri, vii;
  if (p.training) {
    double s[5] = {0, 0, 0, 0, 0};
    for (int b = 0; b < blocks; ++b)
      for (int k = 0; k < 5; ++k) s[k] += partials[(c * blocks + b) * 5 + k];
    const double inv_n = 1.0 / double(p.outer * p.inner);
    const double er = s[0] * inv_n, ei = s[1] * inv_n;
    mr = double(p.x[2 * c * p.inner]) + er;
    mi = double(p.x[2 * c * p.inner + 1]) + ei;
    vrr = fmax(s[2] * inv_n - er * er, 0.0);
    vri = s[3] * inv_n - er * ei;
    vii = fmax(s[4] * inv_n - ei * ei, 0.0);
    p.mean_out[2 * c] = T(mr);
    p.mean_out[2 * c + 1] = T(mi);
    p.cov_out[3 * c] = T(vrr);
    p.cov_out[3 * c + 1] = T(vri);
    p.cov_out[3 * c + 2] = T(vii);
  } else {
    mr = p.mean_in[2 * c];
    mi = p.mean_in[2 * c + 1];
    vrr = p.cov_in[3 * c];
    vri = p.cov_in[3 * c + 1];
    vii = p.cov_in[3 * c + 2];
  }
  double g[3], b[2], a[6];
  if (p.weight)
    for (int j = 0; j < 3; ++j) g[j] = p.weight[3 * c + j];
  if (p.bias)
    for (int j = 0; j < 2; ++j) b[j] = p.bias[2 * c + j];
  bn_forward_coefs(vrr, vri, vii, p.weight ? g : nullptr, p.bias ? b : nullptr, p.eps, a);
  // (A, beta, m_hi, m_lo): x - m_hi is exact near the mean, then - m_lo (see csrc/cpu/norm.cpp).
  T* out = coefs + 10 * c;
  for (int j = 0; j < 6; ++j) out[j] = T(a[j]);
  out[6] = T(mr);
  out[7] = T(mi);
  out[8] = T(mr - double(out[6]));
  out[9] = T(mi - double(out[7]));
}

template <typename T>
__global__ void bn_finalize_backward(BatchNormParams<T> p, const double* partials, int blocks, T* coefs) {
  const index_t c = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= p.channels) return;
  double s[6] = {0, 0, 0, 0, 0, 0};
  for (int b = 0; b < blocks; ++b)
    for (int k = 0; k < 6; ++k) s[k] += partials[(c * blocks + b) * 6 + k];
  double g[3], gw[3], gb[2], k[11];
  if (p.weight)
    for (int j = 0; j < 3; ++j) g[j] = p.weight[3 * c + j];
  bn_backward_coefs(s, double(p.outer * p.inner), double(p.cov_in[3 * c]), double(p.cov_in[3 * c + 1]),
                    double(p.cov_in[3 * c + 2]), p.weight ? g : nullptr, p.eps, p.training, gw, gb, k);
  for (int j = 0; j < 3; ++j) p.grad_weight[3 * c + j] = T(gw[j]);
  for (int j = 0; j < 2; ++j) p.grad_bias[2 * c + j] = T(gb[j]);
  T* out = coefs + 11 * c;
  for (int j = 0; j < 9; ++j) out[j] = T(k[j]);
  out[9] = p.mean_in[2 * c];
  out[10] = p.mean_in[2 * c + 1];
}

// Forward (BWD = false): y = A (x - m) + beta. Backward: gx = K g + P (x - m) + q.
template <typename T, bool BWD>
__global__ void __launch_bounds__(kThreads) bn_apply_kernel(BatchNormParams<T> p, const T* coefs) {
  const index_t total = p.outer * p.channels * p.inner;
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  for (index_t e = index_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const index_t c = (e / p.inner) % p.channels;
    const T xr = p.x[2 * e], xi = p.x[2 * e + 1];
    if (!BWD) {
      const T* a = coefs + 10 * c;
      const T dr = (xr - a[6]) - a[8], di = (xi - a[7]) - a[9];
      p.out[2 * e] = a[0] * dr + a[1] * di + a[4];
      p.out[2 * e + 1] = a[2] * dr + a[3] * di + a[5];
    } else {
      const T* k = coefs + 11 * c;
      const T dr = xr - k[9], di = xi - k[10];
      const T gr = p.grad_out[2 * e], gi = p.grad_out[2 * e + 1];
      p.out[2 * e] = k[0] * gr + k[1] * gi + k[4] * dr + k[5] * di + k[7];
      p.out[2 * e + 1] = k[2] * gr + k[3] * gi + k[5] * dr + k[6] * di + k[8];
    }
  }
}

// Channels on grid y, at most the device's limit (65535 on every GPU so far); the reduction loops
// over the channels beyond it.
cudaError_t grid_y(index_t channels, unsigned* out) {
  int limit = 0;
  const cudaError_t err = grid_yz_limit(&limit);
  *out = unsigned(channels < limit ? channels : limit);
  return err;
}

int apply_blocks(index_t total) {
  const index_t b = (total + kThreads - 1) / kThreads;
  return int(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

}  // namespace

int bn_blocks_per_channel(index_t values_per_channel) {
  const index_t b = (values_per_channel + kThreads * 8 - 1) / (kThreads * 8);
  return int(b < 1 ? 1 : (b > kMaxBlocksPerChannel ? kMaxBlocksPerChannel : b));
}

template <typename T>
cudaError_t batch_norm_forward(const BatchNormParams<T>& p, double* partials, T* coefs, cudaStream_t stream) {
  const index_t per_channel = p.outer * p.inner;
  if (p.channels == 0) return cudaSuccess;
  const int blocks = bn_blocks_per_channel(per_channel);
  if (p.training) {
    if (per_channel == 0) return cudaSuccess;  // the glue zero-fills the statistics
    unsigned gy = 0;
    const cudaError_t err = grid_y(p.channels, &gy);
    if (err != cudaSuccess) return err;
    bn_reduce_kernel<T, 5><<<dim3(blocks, gy), kThreads, 0, stream>>>(p, partials);
  }
  const int cblocks = int((p.channels + 127) / 128);
  bn_finalize_forward<T><<<cblocks, 128, 0, stream>>>(p, partials, blocks, coefs);
  const index_t total = per_channel * p.channels;
  if (total > 0) bn_apply_kernel<T, false><<<apply_blocks(total), kThreads, 0, stream>>>(p, coefs);
  return cudaGetLastError();
}

template <typename T>
cudaError_t batch_norm_backward(const BatchNormParams<T>& p, double* partials, T* coefs, cudaStream_t stream) {
  const index_t per_channel = p.outer * p.inner;
  if (p.channels == 0 || per_channel == 0) return cudaSuccess;  // the glue zero-fills the gradients
  const int blocks = bn_blocks_per_channel(per_channel);
  unsigned gy = 0;
  const cudaError_t err = grid_y(p.channels, &gy);
  if (err != cudaSuccess) return err;
  bn_reduce_kernel<T, 6><<<dim3(blocks, gy), kThreads, 0, stream>>>(p, partials);
  const int cblocks = int((p.channels + 127) / 128);
  bn_finalize_backward<T><<<cblocks, 128, 0, stream>>>(p, partials, blocks, coefs);
  bn_apply_kernel<T, true><<<apply_blocks(per_channel * p.channels), kThreads, 0, stream>>>(p, coefs);
  return cudaGetLastError();
}

template cudaError_t batch_norm_forward<float>(const BatchNormParams<float>&, double*, float*, cudaStream_t);
template cudaError_t batch_norm_forward<double>(const BatchNormParams<double>&, double*, double*, cudaStream_t);
template cudaError_t batch_norm_backward<float>(const BatchNormParams<float>&, double*, float*, cudaStream_t);
template cudaError_t batch_norm_backward<double>(const BatchNormParams<double>&, double*, double*, cudaStream_t);

}  // namespace cuda
}  // namespace beamkernels
