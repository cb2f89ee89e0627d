// Torch-free CUDA kernels of the fused complex convolution (definitions: csrc/conv.h,
// shared/complex-ops.md). Compiles with plain nvcc: nvcc -c -std=c++17 -arch=sm_90 conv.cu -I csrc.
//
// forward: an implicit GEMM on CUDA cores. A block computes a tile of kTileP output pixels x
//   kTileO output channels of one group; the reduction over (c, kh, kw) runs in chunks of kTileK
//   staged in shared memory (x gathered with the conv's index map, zero outside the image). The
//   epilogue adds the bias, writes the saved pre-activation (planar) and y = act(z) (interleaved).
// backward (direct kernels, correct but not tuned, UNMEASURED: no GPU was available):
//   1. one block per (n, o) row: dL/dz = act'(z)^H dL/dy, with block-reduced row sums of dL/dz and
//      of modReLU's bias term;
//   2. dL/dx: one thread per input element, gathering over (o, kh, kw) with the conjugated weight;
//   3. dL/dW: one block per weight element, reducing gz * conj(x) over (n, ho, wo).
#include "cuda/conv_cuda.h"

namespace beamkernels {
namespace cuda {
namespace {

constexpr int kTileP = 64;   // output pixels per block
constexpr int kTileO = 16;   // output channels per block
constexpr int kTileK = 16;   // reduction chunk
constexpr int kThreads = 256;
constexpr int kPixPerThread = kTileP * kTileO / kThreads;  // 4

template <typename T>
struct C2 {
  T re, im;
};

template <Activation A, typename T>
__global__ void conv2d_fwd_kernel(ConvParams<T> p) {
  __shared__ C2<T> xs[kTileK][kTileP];
  __shared__ C2<T> ws[kTileK][kTileO];
  const index_t m_total = p.n * p.ho * p.wo;
  const index_t og = p.cout / p.groups, cg = p.cin / p.groups;
  const index_t k_total = cg * p.kh * p.kw;
  const int grp = blockIdx.z;
  const index_t m0 = static_cast<index_t>(blockIdx.x) * kTileP;
  const index_t o0 = static_cast<index_t>(blockIdx.y) * kTileO;
  const int tid = threadIdx.x;
  const int to = tid % kTileO;           // this thread's output channel in the tile
  const int tp = (tid / kTileO) * kPixPerThread;  // its first pixel in the tile
  T acc_r[kPixPerThread], acc_i[kPixPerThread];
#pragma unroll
  for (int i = 0; i < kPixPerThread; ++i) acc_r[i] = acc_i[i] = T(0);

  for (index_t k0 = 0; k0 < k_total; k0 += kTileK) {
    // Stage x: kTileK x kTileP complex values (4 per thread).
    for (int e = tid; e < kTileK * kTileP; e += kThreads) {
      const int kk = e / kTileP, pp = e % kTileP;
      const index_t k = k0 + kk, m = m0 + pp;
      C2<T> v{T(0), T(0)};
      if (k < k_total && m < m_total) {
        const index_t kw_ = k % p.kw, t = k / p.kw, kh_ = t % p.kh, c = grp * cg + t / p.kh;
        const index_t wo = m % p.wo, t2 = m / p.wo, ho = t2 % p.ho, n = t2 / p.ho;
        const index_t h = ho * p.stride_h - p.pad_h + kh_ * p.dil_h;
        const index_t w = wo * p.stride_w - p.pad_w + kw_ * p.dil_w;
        if (h >= 0 && h < p.h && w >= 0 && w < p.w) {
          const index_t off = 2 * (((n * p.cin + c) * p.h + h) * p.w + w);
          v = {p.x[off], p.x[off + 1]};
        }
      }
      xs[kk][pp] = v;
    }
    // Stage w: kTileK x kTileO complex values.
    for (int e = tid; e < kTileK * kTileO; e += kThreads) {
      const int kk = e / kTileO, oo = e % kTileO;
      const index_t k = k0 + kk, o = o0 + oo;
      C2<T> v{T(0), T(0)};
      if (k < k_total && o < og) {
        const index_t off = 2 * ((grp * og + o) * k_total + k);
        v = {p.weight[off], p.weight[off + 1]};
      }
      ws[kk][oo] = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      const C2<T> wv = ws[kk][to];
#pragma unroll
      for (int i = 0; i < kPixPerThread; ++i) {
        const C2<T> xv = xs[kk][tp + i];
        acc_r[i] += xv.re * wv.re - xv.im * wv.im;
        acc_i[i] += xv.re * wv.im + xv.im * wv.re;
      }
    }
    __syncthreads();
  }

  const index_t o = o0 + to;
  if (o >= og) return;
  const index_t oc = grp * og + o;
  const T br = p.bias ? p.bias[2 * oc] : T(0), bi = p.bias ? p.bias[2 * oc + 1] : T(0);
  const T ab = p.act_bias ? p.act_bias[oc] : T(0);
  const index_t inner = p.ho * p.wo;
#pragma unroll
  for (int i = 0; i < kPixPerThread; ++i) {
    const index_t m = m0 + tp + i;
    if (m >= m_total) break;
    const index_t n = m / inner, q = m % inner;
    if (p.z) {  // planar, bias not added (the layout ConvEpilogueParams describes)
      const index_t plane = (n * 2 * p.cout + 2 * oc) * inner;
      p.z[plane + q] = acc_r[i];
      p.z[plane + inner + q] = acc_i[i];
    }
    const Cplx<T> v = act_forward<A, T>(acc_r[i] + br, acc_i[i] + bi, ab);
    const index_t off = 2 * ((n * p.cout + oc) * inner + q);
    p.y[off] = v.re;
    p.y[off + 1] = v.im;
  }
}

template <typename T>
__device__ T block_sum(T v, T* scratch) {
  for (int s = 16; s > 0; s >>= 1) v += __shfl_down_sync(0xffffffffu, v, s);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T r = T(0);
  if (threadIdx.x == 0) {
    for (int i = 0; i < (blockDim.x + 31) / 32; ++i) r += scratch[i];
  }
  return r;  // valid in thread 0
}

// One block per (n, o) row of Ho * Wo elements.
template <Activation A, typename T>
__global__ void conv2d_grad_z_kernel(ConvParams<T> p) {
  __shared__ T scratch[32];
  const index_t r = blockIdx.x;
  const index_t n = r / p.cout, o = r % p.cout;
  const index_t inner = p.ho * p.wo;
  const T br = p.bias ? p.bias[2 * o] : T(0), bi = p.bias ? p.bias[2 * o + 1] : T(0);
  const T ab = p.act_bias ? p.act_bias[o] : T(0);
  constexpr bool kNeedZ = A != Activation::kNone;  // without an activation z is not saved (p.z null)
  const T* re = kNeedZ ? p.z + (n * 2 * p.cout + 2 * o) * inner : nullptr;
  const T* im = kNeedZ ? re + inner : nullptr;
  T sr = T(0), si = T(0), sb = T(0);
  for (index_t q = threadIdx.x; q < inner; q += blockDim.x) {
    const index_t off = 2 * (r * inner + q);
    T local = T(0);
    const T zr = kNeedZ ? re[q] + br : T(0), zi = kNeedZ ? im[q] + bi : T(0);
    const Cplx<T> g = act_backward<A, T>(p.grad_out[off], p.grad_out[off + 1], zr, zi, ab, &local);
    p.grad_z[off] = g.re;
    p.grad_z[off + 1] = g.im;
    sr += g.re;
    si += g.im;
    sb += local;
  }
  sr = block_sum(sr, scratch);
  si = block_sum(si, scratch);
  sb = block_sum(sb, scratch);
  if (threadIdx.x == 0) {
    p.row_sums[3 * r] = sr;
    p.row_sums[3 * r + 1] = si;
    p.row_sums[3 * r + 2] = sb;
  }
}

// dL/dx[n, c, h, w] = sum_{o in group, i, j} gz[n, o, ho, wo] conj(w[o, c, i, j]) where
// h = ho * s_h - p_h + i * d_h (and likewise w) has an integer solution ho in range.
template <typename T>
__global__ void conv2d_grad_x_kernel(ConvParams<T> p) {
  const index_t total = p.n * p.cin * p.h * p.w;
  const index_t og = p.cout / p.groups, cg = p.cin / p.groups;
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t w = e % p.w, t = e / p.w, h = t % p.h, t2 = t / p.h, c = t2 % p.cin, n = t2 / p.cin;
    const index_t grp = c / cg, cl = c % cg;
    T ar = T(0), ai = T(0);
    for (index_t i = 0; i < p.kh; ++i) {
      const index_t hh = h + p.pad_h - i * p.dil_h;
      if (hh < 0 || hh % p.stride_h) continue;
      const index_t ho = hh / p.stride_h;
      if (ho >= p.ho) continue;
      for (index_t j = 0; j < p.kw; ++j) {
        const index_t ww = w + p.pad_w - j * p.dil_w;
        if (ww < 0 || ww % p.stride_w) continue;
        const index_t wo = ww / p.stride_w;
        if (wo >= p.wo) continue;
        for (index_t ol = 0; ol < og; ++ol) {
          const index_t o = grp * og + ol;
          const index_t go = 2 * (((n * p.cout + o) * p.ho + ho) * p.wo + wo);
          const index_t wof = 2 * (((o * cg + cl) * p.kh + i) * p.kw + j);
          const T gr = p.grad_z[go], gi = p.grad_z[go + 1], wr = p.weight[wof], wi = p.weight[wof + 1];
          ar += gr * wr + gi * wi;  // g * conj(w)
          ai += gi * wr - gr * wi;
        }
      }
    }
    p.grad_x[2 * e] = ar;
    p.grad_x[2 * e + 1] = ai;
  }
}

// One block per weight element (o, c, i, j): sum over (n, ho, wo) of gz * conj(x).
template <typename T>
__global__ void conv2d_grad_w_kernel(ConvParams<T> p) {
  __shared__ T scratch[32];
  const index_t cg = p.cin / p.groups, og = p.cout / p.groups;
  const index_t e = blockIdx.x;
  const index_t j = e % p.kw, t = e / p.kw, i = t % p.kh, t2 = t / p.kh, cl = t2 % cg, o = t2 / cg;
  const index_t c = (o / og) * cg + cl;
  const index_t r_total = p.n * p.ho * p.wo;
  T sr = T(0), si = T(0);
  for (index_t r = threadIdx.x; r < r_total; r += blockDim.x) {
    const index_t wo = r % p.wo, t3 = r / p.wo, ho = t3 % p.ho, n = t3 / p.ho;
    const index_t h = ho * p.stride_h - p.pad_h + i * p.dil_h, w = wo * p.stride_w - p.pad_w + j * p.dil_w;
    if (h < 0 || h >= p.h || w < 0 || w >= p.w) continue;
    const index_t go = 2 * (((n * p.cout + o) * p.ho + ho) * p.wo + wo);
    const index_t xo = 2 * (((n * p.cin + c) * p.h + h) * p.w + w);
    const T gr = p.grad_z[go], gi = p.grad_z[go + 1], xr = p.x[xo], xi = p.x[xo + 1];
    sr += gr * xr + gi * xi;  // g * conj(x)
    si += gi * xr - gr * xi;
  }
  sr = block_sum(sr, scratch);
  si = block_sum(si, scratch);
  if (threadIdx.x == 0) {
    p.grad_weight[2 * e] = sr;
    p.grad_weight[2 * e + 1] = si;
  }
}


#define BK_LAUNCH_BY_ACT(KERNEL, GRID, BLOCK, STREAM, P)                                               \
  switch ((P).act) {                                                                                   \
    case Activation::kNone: KERNEL<Activation::kNone, T><<<GRID, BLOCK, 0, STREAM>>>(P); break;         \
    case Activation::kCReLU: KERNEL<Activation::kCReLU, T><<<GRID, BLOCK, 0, STREAM>>>(P); break;       \
    case Activation::kZReLU: KERNEL<Activation::kZReLU, T><<<GRID, BLOCK, 0, STREAM>>>(P); break;       \
    case Activation::kModReLU: KERNEL<Activation::kModReLU, T><<<GRID, BLOCK, 0, STREAM>>>(P); break;   \
    default: KERNEL<Activation::kCardioid, T><<<GRID, BLOCK, 0, STREAM>>>(P); break;                   \
  }

}  // namespace

template <typename T>
cudaError_t conv2d_forward(const ConvParams<T>& p, cudaStream_t stream) {
  const index_t m_total = p.n * p.ho * p.wo;
  const index_t og = p.cout / p.groups;
  if (m_total == 0 || p.cout == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>((m_total + kTileP - 1) / kTileP), static_cast<unsigned>((og + kTileO - 1) / kTileO),
                  static_cast<unsigned>(p.groups));
  BK_LAUNCH_BY_ACT(conv2d_fwd_kernel, grid, kThreads, stream, p)
  return cudaGetLastError();
}

template <typename T>
cudaError_t conv2d_backward(const ConvParams<T>& p, cudaStream_t stream) {
  const index_t rows = p.n * p.cout;
  if (rows == 0) return cudaSuccess;
  BK_LAUNCH_BY_ACT(conv2d_grad_z_kernel, static_cast<unsigned>(rows), 256, stream, p)
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  if (p.grad_x) {
    const index_t total = p.n * p.cin * p.h * p.w;
    const index_t blocks = (total + 255) / 256;
    conv2d_grad_x_kernel<T><<<static_cast<unsigned>(blocks < 65535 * 32 ? blocks : 65535 * 32), 256, 0, stream>>>(p);
    err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  if (p.grad_weight) {
    const index_t elems = p.cout * (p.cin / p.groups) * p.kh * p.kw;
    if (elems > 0) conv2d_grad_w_kernel<T><<<static_cast<unsigned>(elems), 256, 0, stream>>>(p);
    err = cudaGetLastError();
  }
  return err;
}

template cudaError_t conv2d_forward<float>(const ConvParams<float>&, cudaStream_t);
template cudaError_t conv2d_forward<double>(const ConvParams<double>&, cudaStream_t);
template cudaError_t conv2d_backward<float>(const ConvParams<float>&, cudaStream_t);
template cudaError_t conv2d_backward<double>(const ConvParams<double>&, cudaStream_t);

}  // namespace cuda
}  // namespace beamkernels
