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
#include <mma.h>

#include <type_traits>

#include "cuda/conv_cuda.h"
#include "cuda/grid_limits.h"

namespace beamkernels {
namespace cuda {
namespace {

constexpr int kTileP = 64;   // output pixels per block
constexpr int kTileO = 16;   // output channels per block
constexpr int kTileK = 16;   // reduction chunk
constexpr int kThreads = 256;
constexpr int kPixPerThread = kTileP * kTileO / kThreads;  // 4
// Bound on the reduction length (C_in / groups * kh * kw) and on padded image sizes in the forward
// kernels, which keep k, k0 + tile and image rows / columns in int.
constexpr index_t kMax32 = index_t(1) << 30;

template <typename T>
struct C2 {
  T re, im;
};

template <Activation A, typename T>
__global__ void conv2d_fwd_kernel(ConvParams<T> p, int group0) {
  __shared__ C2<T> xs[kTileK][kTileP];
  __shared__ C2<T> ws[kTileK][kTileO];
  const index_t m_total = p.n * p.ho * p.wo;
  const index_t og = p.cout / p.groups, cg = p.cin / p.groups;
  const index_t k_total = cg * p.kh * p.kw;
  const int grp = group0 + static_cast<int>(blockIdx.z);
  const index_t m0 = static_cast<index_t>(blockIdx.x) * kTileP;
  const index_t o0 = static_cast<index_t>(blockIdx.y) * kTileO;
  const int tid = threadIdx.x;
  const int to = tid % kTileO;           // this thread's output channel in the tile
  const int tp = (tid / kTileO) * kPixPerThread;  // its first pixel in the tile
  T acc_r[kPixPerThread], acc_i[kPixPerThread];
#pragma unroll
  for (int i = 0; i < kPixPerThread; ++i) acc_r[i] = acc_i[i] = T(0);

  // This thread's pixel in the x staging: pp = tid % kTileP in every step, so the 64-bit div / mod
  // of the pixel index is done once here; the reduction index k (< 2^30, checked by the glue) is
  // split with 32-bit div / mod (a 64-bit division is a ~70-instruction subroutine call).
  static_assert(kThreads % kTileP == 0, "each thread keeps one pixel");
  const int pp = tid % kTileP;
  const index_t m_x = m0 + pp;
  const bool m_ok = m_x < m_total;
  const index_t inner_ = p.ho * p.wo;
  const index_t n_ = m_ok ? m_x / inner_ : 0, q_ = m_ok ? m_x % inner_ : 0;
  // Image rows / columns fit in int (H, W + padding < 2^30: the glue checks).
  const int h_base = static_cast<int>((q_ / p.wo) * p.stride_h - p.pad_h);
  const int w_base = static_cast<int>((q_ % p.wo) * p.stride_w - p.pad_w);
  const int img_h = static_cast<int>(p.h), img_w = static_cast<int>(p.w);
  const T* x_n = p.x + 2 * n_ * p.cin * p.h * p.w;
  const int kw = static_cast<int>(p.kw), kh = static_cast<int>(p.kh), k_end = static_cast<int>(k_total);

  for (int k0 = 0; k0 < k_end; k0 += kTileK) {
    // Stage x: kTileK x kTileP complex values (4 per thread, all at pixel pp).
    for (int kk = tid / kTileP; kk < kTileK; kk += kThreads / kTileP) {
      const int k = k0 + kk;
      C2<T> v{T(0), T(0)};
      if (k < k_end && m_ok) {
        const int kw_ = k % kw, t = k / kw, kh_ = t % kh;
        const index_t c = grp * cg + t / kh;
        const int h = h_base + kh_ * p.dil_h, w = w_base + kw_ * p.dil_w;
        if (h >= 0 && h < img_h && w >= 0 && w < img_w) {
          const index_t off = 2 * ((c * p.h + h) * p.w + w);
          v = {x_n[off], x_n[off + 1]};
        }
      }
      xs[kk][pp] = v;
    }
    // Stage w: kTileK x kTileO complex values.
    for (int e = tid; e < kTileK * kTileO; e += kThreads) {
      const int kk = e / kTileO, oo = e % kTileO;
      const index_t k = k0 + kk, o = o0 + oo;
      C2<T> v{T(0), T(0)};
      if (k < k_end && o < og) {
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

// ---- TF32 tensor-core forward (float, sm_80+) ----
// The same implicit GEMM in block-real form, so that one real GEMM on tensor cores does the complex
// products: rows (Re z_o, Im z_o) of C = A B with A's 2x2 blocks [[Wr, -Wi], [Wi, Wr]] per (o, k) and
// B's rows (Re x_k, Im x_k) per reduction index k = (c, i, j) (4 real MACs per complex MAC, like
// cuDNN's real convs inside torch's complex conv, but one kernel, no layout copies, the epilogue
// fused). WMMA m16n16k8 TF32 fragments, fp32 accumulation; inputs rounded to TF32 (10 mantissa bits)
// as torch does for convs under torch.backends.cudnn.allow_tf32.
// Block tile: kTcO = 32 complex output channels (64 real rows) x kTcP = 128 pixels, reduction chunks of
// kTcK = 16 complex (32 real) staged in shared memory; 8 warps in a 2 x 4 grid, each 32 x 32 of C
// (2 x 2 fragments). The C tile is staged in shared memory (reusing the A/B buffers) for the epilogue.
constexpr int kTcO = 32, kTcP = 128, kTcK = 16;
[[maybe_unused]] constexpr int kTcLdA = 2 * kTcK + 4;  // row pitch (floats) of A [2 kTcO][2 kTcK]: a multiple of 4, rows 32-byte aligned per 16
[[maybe_unused]] constexpr int kTcLdB = kTcP + 4;      // row pitch of B [2 kTcK][kTcP] and of the C stage [2 kTcO][kTcP]
constexpr int kTcThreads = 256;

template <Activation A>
__global__ void __launch_bounds__(kTcThreads, 2) conv2d_fwd_tf32_kernel(ConvParams<float> p, int group0) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800  // WMMA TF32 (the host pass needs only the declaration)
  namespace wmma = nvcuda::wmma;
  constexpr int kTcSmemAB = 2 * kTcO * kTcLdA + 2 * kTcK * kTcLdB, kTcSmemC = 2 * kTcO * kTcLdB;
  constexpr int kTcSmem = kTcSmemAB > kTcSmemC ? kTcSmemAB : kTcSmemC;  // floats: 8448 = 33 KB
  __shared__ __align__(32) float smem[kTcSmem];
  float* as = smem;                       // A [2 kTcO][kTcLdA]
  float* bs = smem + 2 * kTcO * kTcLdA;   // B [2 kTcK][kTcLdB]
  float* cs = smem;                       // C stage [2 kTcO][kTcLdB], after the main loop
  const index_t m_total = p.n * p.ho * p.wo;
  const index_t og = p.cout / p.groups, cg = p.cin / p.groups;
  const index_t k_total = cg * p.kh * p.kw;
  const int grp = group0 + static_cast<int>(blockIdx.z);
  const index_t m0 = static_cast<index_t>(blockIdx.x) * kTcP;
  const index_t o0 = static_cast<index_t>(blockIdx.y) * kTcO;
  const int tid = threadIdx.x, warp = tid / 32;
  const int wr = (warp / 4) * 32, wc = (warp % 4) * 32;  // this warp's 32 x 32 corner of C
  // This thread's pixel in the B gather and in the epilogue: pp = tid % kTcP in every step (the
  // 64-bit div / mod of the pixel index done once, not per element).
  static_assert(kTcThreads % kTcP == 0, "each thread keeps one pixel");
  const int pp = tid % kTcP;
  const index_t m = m0 + pp;
  const bool m_ok = m < m_total;
  const float* x_n;
  int h_base, w_base;  // image rows / columns fit in int (H, W + padding < 2^30: the glue checks)
  {  // scoped: n and q are recomputed in the epilogue rather than held in registers across the loop
    const index_t inner = p.ho * p.wo;
    const index_t n = m_ok ? m / inner : 0, q = m_ok ? m % inner : 0;
    h_base = static_cast<int>((q / p.wo) * p.stride_h - p.pad_h);
    w_base = static_cast<int>((q % p.wo) * p.stride_w - p.pad_w);
    x_n = p.x + 2 * n * p.cin * p.h * p.w;
  }
  const int img_h = static_cast<int>(p.h), img_w = static_cast<int>(p.w);

  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2][2];
#pragma unroll
  for (int a = 0; a < 2; ++a)
#pragma unroll
    for (int b = 0; b < 2; ++b) wmma::fill_fragment(acc[a][b], 0.0f);

  // The reduction index k (< 2^30, checked by the glue) is split with 32-bit div / mod.
  const int kw = static_cast<int>(p.kw), kh = static_cast<int>(p.kh), k_end = static_cast<int>(k_total);
  for (int k0 = 0; k0 < k_end; k0 += kTcK) {
    // A: kTcO x kTcK complex weights -> 2x2 real blocks.
    for (int e = tid; e < kTcO * kTcK; e += kTcThreads) {
      const int oo = e / kTcK, kk = e % kTcK;
      const index_t o = o0 + oo, k = k0 + kk;
      float re = 0.f, im = 0.f;
      if (o < og && k < k_total) {
        const index_t off = 2 * ((grp * og + o) * k_total + k);
        re = p.weight[off];
        im = p.weight[off + 1];
      }
      float* r0 = as + (2 * oo) * kTcLdA + 2 * kk;
      float* r1 = r0 + kTcLdA;
      r0[0] = re, r0[1] = -im;
      r1[0] = im, r1[1] = re;
    }
    // B: kTcK x kTcP complex inputs gathered with the conv's index map (zero outside the image);
    // this thread always takes pixel pp (decomposed once, above), rows kk = tid / kTcP + step.
    // (The same gather as conv2d_fwd_kernel's, written out: a shared __forceinline__ helper, tried
    // 2026-12-03, made ptxas spill 44-52 bytes here instead of 20.)
    for (int kk = tid / kTcP; kk < kTcK; kk += kTcThreads / kTcP) {
      const int k = k0 + kk;
      float re = 0.f, im = 0.f;
      if (k < k_end && m_ok) {
        const int kw_ = k % kw, t = k / kw, kh_ = t % kh;
        const index_t c = grp * cg + t / kh;
        const int h = h_base + kh_ * p.dil_h, w = w_base + kw_ * p.dil_w;
        if (h >= 0 && h < img_h && w >= 0 && w < img_w) {
          const index_t off = 2 * ((c * p.h + h) * p.w + w);
          re = x_n[off];
          im = x_n[off + 1];
        }
      }
      bs[(2 * kk) * kTcLdB + pp] = re;
      bs[(2 * kk + 1) * kTcLdB + pp] = im;
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < 2 * kTcK; ks += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb[2];
#pragma unroll
      for (int a = 0; a < 2; ++a) {
        wmma::load_matrix_sync(fa[a], as + (wr + 16 * a) * kTcLdA + ks, kTcLdA);
#pragma unroll
        for (int t = 0; t < fa[a].num_elements; ++t) fa[a].x[t] = wmma::__float_to_tf32(fa[a].x[t]);
      }
#pragma unroll
      for (int b = 0; b < 2; ++b) {
        wmma::load_matrix_sync(fb[b], bs + ks * kTcLdB + wc + 16 * b, kTcLdB);
#pragma unroll
        for (int t = 0; t < fb[b].num_elements; ++t) fb[b].x[t] = wmma::__float_to_tf32(fb[b].x[t]);
      }
#pragma unroll
      for (int a = 0; a < 2; ++a)
#pragma unroll
        for (int b = 0; b < 2; ++b) wmma::mma_sync(acc[a][b], fa[a], fb[b], acc[a][b]);
    }
    __syncthreads();  // before the next chunk (or the C stage) overwrites A and B
  }
#pragma unroll
  for (int a = 0; a < 2; ++a)
#pragma unroll
    for (int b = 0; b < 2; ++b)
      wmma::store_matrix_sync(cs + (wr + 16 * a) * kTcLdB + wc + 16 * b, acc[a][b], kTcLdB, wmma::mem_row_major);
  __syncthreads();

  // Epilogue: consecutive threads take consecutive pixels (coalesced z and y writes).
  if (!m_ok) return;  // after the last __syncthreads
  const index_t inner = p.ho * p.wo, n = m / inner, q = m % inner;
  for (int oo = tid / kTcP; oo < kTcO; oo += kTcThreads / kTcP) {
    const index_t o = o0 + oo;
    if (o >= og) break;
    const index_t oc = grp * og + o;
    const float zr = cs[(2 * oo) * kTcLdB + pp], zi = cs[(2 * oo + 1) * kTcLdB + pp];
    if (p.z) {  // planar, bias not added
      const index_t plane = (n * 2 * p.cout + 2 * oc) * inner;
      p.z[plane + q] = zr;
      p.z[plane + inner + q] = zi;
    }
    const float br = p.bias ? p.bias[2 * oc] : 0.f, bi = p.bias ? p.bias[2 * oc + 1] : 0.f;
    const float ab = p.act_bias ? p.act_bias[oc] : 0.f;
    const Cplx<float> v = act_forward<A, float>(zr + br, zi + bi, ab);
    const index_t off = 2 * ((n * p.cout + oc) * inner + q);
    p.y[off] = v.re;
    p.y[off + 1] = v.im;
  }
#else
  __trap();  // never launched: the host checks for compute capability >= 8.0 (conv2d_forward)
#endif
}

// ---- TF32 tensor-core dL/dW (float, sm_80+) ----
// dL/dW[o, k] = sum_m gz[o, m] conj(x_col[k, m]) over m = (n, ho, wo), k = (c, i, j): ONE real GEMM
// C = A B with A's rows (Re gz_o, Im gz_o) and B's columns (Re x_k, Im x_k) gives the four products,
// combined in the epilogue: Re dW = C[2o][2k] + C[2o+1][2k+1], Im dW = C[2o+1][2k] - C[2o][2k+1].
// Block tile 32 complex o x 32 complex k (64 x 64 real), m in chunks of 32; the m range is split over
// gridDim.z blocks (split-K) whose partial sums are added with atomicAdd (grad_weight zeroed first;
// the order of the additions, and so the last bits, vary from run to run; one split, so one add per
// element onto zero, under torch.use_deterministic_algorithms).
constexpr int kTwO = 32, kTwK = 32, kTwM = 32;
[[maybe_unused]] constexpr int kTwLdA = kTwM + 4;      // A [2 kTwO][kTwM]
[[maybe_unused]] constexpr int kTwLdB = 2 * kTwK + 4;  // B [kTwM][2 kTwK] and the C stage [2 kTwO][2 kTwK]

__global__ void __launch_bounds__(kTcThreads, 2) conv2d_grad_w_tf32_kernel(ConvParams<float> p, index_t m_per_split,
                                                                               int group0) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  namespace wmma = nvcuda::wmma;
  constexpr int kAB = 2 * kTwO * kTwLdA + kTwM * kTwLdB, kC = 2 * kTwO * kTwLdB;
  __shared__ __align__(32) float smem[kAB > kC ? kAB : kC];
  float* as = smem;
  float* bs = smem + 2 * kTwO * kTwLdA;
  float* cs = smem;
  const index_t og = p.cout / p.groups, cg = p.cin / p.groups;
  const index_t k_total = cg * p.kh * p.kw, inner = p.ho * p.wo, m_total = p.n * inner;
  const index_t o_tiles = (og + kTwO - 1) / kTwO;
  const index_t grp = group0 + blockIdx.y / o_tiles;
  const index_t o0 = (blockIdx.y % o_tiles) * kTwO, k0 = static_cast<index_t>(blockIdx.x) * kTwK;
  const index_t m_begin = blockIdx.z * m_per_split;
  const index_t m_end = m_begin + m_per_split < m_total ? m_begin + m_per_split : m_total;
  const int tid = threadIdx.x, warp = tid / 32;
  const int wr = (warp / 2) * 16, wc = (warp % 2) * 32;  // 4 x 2 warps, each 16 x 32 of C

  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2];
  wmma::fill_fragment(acc[0], 0.0f);
  wmma::fill_fragment(acc[1], 0.0f);
  for (index_t mc = m_begin; mc < m_end; mc += kTwM) {
    for (int e = tid; e < kTwO * kTwM; e += kTcThreads) {  // A: gz rows, consecutive threads along m
      const int oo = e / kTwM, mm = e % kTwM;
      const index_t o = o0 + oo, m = mc + mm;
      float re = 0.f, im = 0.f;
      if (o < og && m < m_end) {
        const index_t n = m / inner, q = m % inner;
        const index_t off = 2 * ((n * p.cout + grp * og + o) * inner + q);
        re = p.grad_z[off];
        im = p.grad_z[off + 1];
      }
      as[(2 * oo) * kTwLdA + mm] = re;
      as[(2 * oo + 1) * kTwLdA + mm] = im;
    }
    for (int e = tid; e < kTwK * kTwM; e += kTcThreads) {  // B: x gathered, consecutive threads along m
      const int kk = e / kTwM, mm = e % kTwM;
      const index_t k = k0 + kk, m = mc + mm;
      float re = 0.f, im = 0.f;
      if (k < k_total && m < m_end) {
        const index_t j = k % p.kw, t = k / p.kw, i = t % p.kh, c = grp * cg + t / p.kh;
        const index_t wo = m % p.wo, t2 = m / p.wo, ho = t2 % p.ho, n = t2 / p.ho;
        const index_t h = ho * p.stride_h - p.pad_h + i * p.dil_h, w = wo * p.stride_w - p.pad_w + j * p.dil_w;
        if (h >= 0 && h < p.h && w >= 0 && w < p.w) {
          const index_t off = 2 * (((n * p.cin + c) * p.h + h) * p.w + w);
          re = p.x[off];
          im = p.x[off + 1];
        }
      }
      bs[mm * kTwLdB + 2 * kk] = re;
      bs[mm * kTwLdB + 2 * kk + 1] = im;
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < kTwM; ks += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
      wmma::load_matrix_sync(fa, as + wr * kTwLdA + ks, kTwLdA);
#pragma unroll
      for (int t = 0; t < fa.num_elements; ++t) fa.x[t] = wmma::__float_to_tf32(fa.x[t]);
#pragma unroll
      for (int b = 0; b < 2; ++b) {
        wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
        wmma::load_matrix_sync(fb, bs + ks * kTwLdB + wc + 16 * b, kTwLdB);
#pragma unroll
        for (int t = 0; t < fb.num_elements; ++t) fb.x[t] = wmma::__float_to_tf32(fb.x[t]);
        wmma::mma_sync(acc[b], fa, fb, acc[b]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int b = 0; b < 2; ++b)
    wmma::store_matrix_sync(cs + wr * kTwLdB + wc + 16 * b, acc[b], kTwLdB, wmma::mem_row_major);
  __syncthreads();
  for (int e = tid; e < kTwO * kTwK; e += kTcThreads) {
    const int oo = e / kTwK, kk = e % kTwK;
    const index_t o = o0 + oo, k = k0 + kk;
    if (o >= og || k >= k_total) continue;
    const float* r0 = cs + (2 * oo) * kTwLdB + 2 * kk;  // (gr xr, gr xi)
    const float* r1 = r0 + kTwLdB;                      // (gi xr, gi xi)
    const index_t off = 2 * ((grp * og + o) * k_total + k);
    atomicAdd(p.grad_weight + off, r0[0] + r1[1]);
    atomicAdd(p.grad_weight + off + 1, r1[0] - r0[1]);
  }
#else
  __trap();  // never launched: the host checks for compute capability >= 8.0 (conv2d_backward)
#endif
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

// One block per (n, o) row of Ho * Wo elements (rows beyond the grid: the next ones in steps of
// gridDim.x; the loop bound is the same for every thread of a block, so the barriers in block_sum
// are reached by all).
template <Activation A, typename T>
__global__ void conv2d_grad_z_kernel(ConvParams<T> p) {
  __shared__ T scratch[32];
  const index_t rows = p.n * p.cout, inner = p.ho * p.wo;
  constexpr bool kNeedZ = A != Activation::kNone;  // without an activation z is not saved (p.z null)
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const index_t n = r / p.cout, o = r % p.cout;
    const T br = p.bias ? p.bias[2 * o] : T(0), bi = p.bias ? p.bias[2 * o + 1] : T(0);
    const T ab = p.act_bias ? p.act_bias[o] : T(0);
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

// One block per weight element (o, c, i, j): sum over (n, ho, wo) of gz * conj(x) (elements beyond
// the grid: the next ones in steps of gridDim.x, uniformly per block as in conv2d_grad_z_kernel).
template <typename T>
__global__ void conv2d_grad_w_kernel(ConvParams<T> p) {
  __shared__ T scratch[32];
  const index_t cg = p.cin / p.groups, og = p.cout / p.groups;
  const index_t elems = p.cout * cg * p.kh * p.kw, r_total = p.n * p.ho * p.wo;
  for (index_t e = blockIdx.x; e < elems; e += gridDim.x) {
    const index_t j = e % p.kw, t = e / p.kw, i = t % p.kh, t2 = t / p.kh, cl = t2 % cg, o = t2 / cg;
    const index_t c = (o / og) * cg + cl;
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
}

// Groups beyond the device's grid y / z limit (grid_yz_limit) take several launches, each with its
// first group as group0; grid-stride x dimensions take at most kMaxStrideBlocks blocks.
constexpr index_t kMaxStrideBlocks = index_t(1) << 20;
inline unsigned stride_blocks(index_t n) { return static_cast<unsigned>(n < kMaxStrideBlocks ? n : kMaxStrideBlocks); }

// Launch KERNEL<activation[, T]> for the activation code ACT with the kernel arguments that follow.
#define BK_LAUNCH_BY_ACT(ACT, KERNEL, GRID, BLOCK, STREAM, ...)                                         \
  switch (ACT) {                                                                                      \
    case Activation::kNone: KERNEL<Activation::kNone, T><<<GRID, BLOCK, 0, STREAM>>>(__VA_ARGS__); break;       \
    case Activation::kCReLU: KERNEL<Activation::kCReLU, T><<<GRID, BLOCK, 0, STREAM>>>(__VA_ARGS__); break;     \
    case Activation::kZReLU: KERNEL<Activation::kZReLU, T><<<GRID, BLOCK, 0, STREAM>>>(__VA_ARGS__); break;     \
    case Activation::kModReLU: KERNEL<Activation::kModReLU, T><<<GRID, BLOCK, 0, STREAM>>>(__VA_ARGS__); break; \
    default: KERNEL<Activation::kCardioid, T><<<GRID, BLOCK, 0, STREAM>>>(__VA_ARGS__); break;                 \
  }

#define BK_LAUNCH_BY_ACT_FLOAT(ACT, KERNEL, GRID, BLOCK, STREAM, ...)                                   \
  switch (ACT) {                                                                                      \
    case Activation::kNone: KERNEL<Activation::kNone><<<GRID, BLOCK, 0, STREAM>>>(__VA_ARGS__); break;          \
    case Activation::kCReLU: KERNEL<Activation::kCReLU><<<GRID, BLOCK, 0, STREAM>>>(__VA_ARGS__); break;        \
    case Activation::kZReLU: KERNEL<Activation::kZReLU><<<GRID, BLOCK, 0, STREAM>>>(__VA_ARGS__); break;        \
    case Activation::kModReLU: KERNEL<Activation::kModReLU><<<GRID, BLOCK, 0, STREAM>>>(__VA_ARGS__); break;    \
    default: KERNEL<Activation::kCardioid><<<GRID, BLOCK, 0, STREAM>>>(__VA_ARGS__); break;                    \
  }

}  // namespace

template <typename T>
cudaError_t conv2d_forward(const ConvParams<T>& p, cudaStream_t stream) {
  const index_t m_total = p.n * p.ho * p.wo;
  const index_t og = p.cout / p.groups;
  if (m_total == 0 || p.cout == 0) return cudaSuccess;
  // The kernels split the reduction index k = (c, i, j) and index image rows / columns with 32-bit
  // arithmetic (the glue says so first, with a message).
  if ((p.cin / p.groups) * p.kh * p.kw >= kMax32 || p.h + 2 * p.pad_h >= kMax32 || p.w + 2 * p.pad_w >= kMax32)
    return cudaErrorInvalidValue;
  int limit = 0;
  cudaError_t err = grid_yz_limit(&limit);
  if (err != cudaSuccess) return err;
  bool tf32 = false;
  if constexpr (std::is_same<T, float>::value) tf32 = p.tf32 != 0;
  const index_t tile_p = tf32 ? kTcP : kTileP, tile_o = tf32 ? kTcO : kTileO;
  for (int g0 = 0; g0 < p.groups; g0 += limit) {  // groups on grid z, at most `limit` per launch
    const dim3 grid(static_cast<unsigned>((m_total + tile_p - 1) / tile_p), static_cast<unsigned>((og + tile_o - 1) / tile_o),
                    static_cast<unsigned>(p.groups - g0 < limit ? p.groups - g0 : limit));
    bool on_tensor_cores = false;
    if constexpr (std::is_same<T, float>::value) {
      if (tf32) {
        BK_LAUNCH_BY_ACT_FLOAT(p.act, conv2d_fwd_tf32_kernel, grid, kTcThreads, stream, p, g0)
        on_tensor_cores = true;
      }
    }
    if (!on_tensor_cores) BK_LAUNCH_BY_ACT(p.act, conv2d_fwd_kernel, grid, kThreads, stream, p, g0)
    if ((err = cudaGetLastError()) != cudaSuccess) return err;
  }
  return cudaSuccess;
}

// The tensor-core backward after the dL/dz kernel: dL/dx by the forward kernel on dL/dz with
// p.weight_t when the conv has stride 1 (else the direct kernel), dL/dW by the split-K GEMM kernel.
static cudaError_t conv2d_backward_tf32(const ConvParams<float>& p, cudaStream_t stream) {
  cudaError_t err = cudaSuccess;
  if (p.grad_x && p.weight_t) {
    ConvParams<float> q{};
    q.act = Activation::kNone;
    q.n = p.n, q.cin = p.cout, q.h = p.ho, q.w = p.wo, q.cout = p.cin, q.ho = p.h, q.wo = p.w, q.kh = p.kh, q.kw = p.kw;
    q.stride_h = q.stride_w = 1;
    q.pad_h = static_cast<int>((p.kh - 1) * p.dil_h - p.pad_h);
    q.pad_w = static_cast<int>((p.kw - 1) * p.dil_w - p.pad_w);
    q.dil_h = p.dil_h, q.dil_w = p.dil_w, q.groups = p.groups;
    q.tf32 = 1;
    q.x = p.grad_z;
    q.weight = p.weight_t;
    q.y = p.grad_x;
    err = conv2d_forward<float>(q, stream);
  } else if (p.grad_x) {
    const index_t total = p.n * p.cin * p.h * p.w;
    conv2d_grad_x_kernel<float><<<stride_blocks((total + 255) / 256), 256, 0, stream>>>(p);
    err = cudaGetLastError();
  }
  if (err != cudaSuccess || !p.grad_weight) return err;
  const index_t og = p.cout / p.groups, k_total = (p.cin / p.groups) * p.kh * p.kw;
  const index_t elems = p.cout * k_total, m_total = p.n * p.ho * p.wo;
  if (elems == 0) return cudaSuccess;
  err = cudaMemsetAsync(p.grad_weight, 0, sizeof(float) * 2 * elems, stream);
  if (err != cudaSuccess) return err;
  // Split m so that the grid fills the GPU about 4 times over, each split >= 8 chunks of m.
  int dev = 0, sms = 0, limit = 0;
  if ((err = cudaGetDevice(&dev)) != cudaSuccess) return err;
  if ((err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess) return err;
  if ((err = grid_yz_limit(&limit)) != cudaSuccess) return err;
  const index_t o_tiles = (og + kTwO - 1) / kTwO;
  const index_t tiles = ((k_total + kTwK - 1) / kTwK) * o_tiles * p.groups;
  index_t splits = (4 * static_cast<index_t>(sms) + tiles - 1) / tiles;
  const index_t max_splits = (m_total + 8 * kTwM - 1) / (8 * kTwM);
  splits = splits < max_splits ? splits : max_splits;
  splits = splits < 1 || p.deterministic ? 1 : (splits > limit ? limit : splits);
  const index_t m_per_split = ((m_total + splits - 1) / splits + kTwM - 1) / kTwM * kTwM;
  splits = (m_total + m_per_split - 1) / m_per_split;
  // (group, channel tile) pairs on grid y: at most `limit` per launch, whole groups each.
  const index_t groups_per_launch = o_tiles <= limit ? limit / o_tiles : 0;
  if (groups_per_launch == 0) return cudaErrorInvalidConfiguration;  // > 2M output channels per group
  for (index_t g0 = 0; g0 < p.groups; g0 += groups_per_launch) {
    const index_t g = p.groups - g0 < groups_per_launch ? p.groups - g0 : groups_per_launch;
    const dim3 grid(static_cast<unsigned>((k_total + kTwK - 1) / kTwK), static_cast<unsigned>(o_tiles * g),
                    static_cast<unsigned>(splits));
    conv2d_grad_w_tf32_kernel<<<grid, kTcThreads, 0, stream>>>(p, m_per_split, static_cast<int>(g0));
    if ((err = cudaGetLastError()) != cudaSuccess) return err;
  }
  return cudaSuccess;
}

template <typename T>
cudaError_t conv2d_backward(const ConvParams<T>& p, cudaStream_t stream) {
  const index_t rows = p.n * p.cout;
  if (rows == 0) return cudaSuccess;
  BK_LAUNCH_BY_ACT(p.act, conv2d_grad_z_kernel, stride_blocks(rows), 256, stream, p)
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  if constexpr (std::is_same<T, float>::value) {
    if (p.tf32) return conv2d_backward_tf32(p, stream);
  }
  if (p.grad_x) {
    const index_t total = p.n * p.cin * p.h * p.w;
    conv2d_grad_x_kernel<T><<<stride_blocks((total + 255) / 256), 256, 0, stream>>>(p);
    err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  if (p.grad_weight) {
    const index_t elems = p.cout * (p.cin / p.groups) * p.kh * p.kw;
    if (elems > 0) conv2d_grad_w_kernel<T><<<stride_blocks(elems), 256, 0, stream>>>(p);
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
