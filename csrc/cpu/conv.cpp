// Torch-free CPU passes of the fused complex convolution: the bias + activation epilogue that
// turns the real conv's planar output into interleaved complex y, and the backward prologue that
// applies the activation's derivative and writes the planar gradient for the real conv's
// backward (with bias-gradient row sums). One pass each over the data; OpenMP over (n, o) rows,
// SIMD along the row; multiversioned like csrc/cpu/activation.cpp.
#include "cpu/conv_cpu.h"

#include <omp.h>

#include <algorithm>

namespace beamkernels {
namespace cpu {
namespace {

// One row: re/im parts of z (element stride S: 1 for planes, 2 for interleaved z) of length n ->
// interleaved y = act(z + b).
template <Activation A, int S, typename T>
__attribute__((always_inline)) inline void fwd_row(const T* __restrict re, const T* __restrict im, T* __restrict y,
                                                   index_t n, T br, T bi, T ab) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) {
    const Cplx<T> v = act_forward<A, T>(re[S * i] + br, im[S * i] + bi, ab);
    y[2 * i] = v.re;
    y[2 * i + 1] = v.im;
  }
}

// One row of Gauss's forward: the three real convs' outputs -> Re z = k1 - k3, Im z = k1 + k2 ->
// interleaved y = act(z + b), writing the planes of z (the backward's saved) only with an activation.
template <Activation A, typename T>
__attribute__((always_inline)) inline void fwd_gauss_row(const T* __restrict k1, const T* __restrict k2,
                                                         const T* __restrict k3, T* __restrict y, T* __restrict zre,
                                                         T* __restrict zim, index_t n, T br, T bi, T ab) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) {
    const T re = k1[i] - k3[i], im = k1[i] + k2[i];
    if (A != Activation::kNone) {
      zre[i] = re;
      zim[i] = im;
    }
    const Cplx<T> v = act_forward<A, T>(re + br, im + bi, ab);
    y[2 * i] = v.re;
    y[2 * i + 1] = v.im;
  }
}

// One row: interleaved grad_y, z (bias not added; element stride S as in fwd_row) -> dL/dz with
// the same stride (and, with Sum, Re + Im dL/dz: Gauss's dk1); accumulates the row sums.
template <Activation A, bool Sum, int S, typename T>
__attribute__((always_inline)) inline void bwd_loop(const T* __restrict g, const T* __restrict re,
                                                    const T* __restrict im, T* __restrict gre, T* __restrict gim,
                                                    T* __restrict gsum, index_t n, T br, T bi, T ab, T* sums) {
  T sr = T(0), si = T(0), sb = T(0);
#pragma omp simd reduction(+ : sr, si, sb)
  for (index_t i = 0; i < n; ++i) {
    T local = T(0);
    // Without an activation z is not read (nor saved: re / im are null).
    const T zr = A != Activation::kNone ? re[S * i] + br : T(0), zi = A != Activation::kNone ? im[S * i] + bi : T(0);
    const Cplx<T> v = act_backward<A, T>(g[2 * i], g[2 * i + 1], zr, zi, ab, &local);
    gre[S * i] = v.re;
    gim[S * i] = v.im;
    if (Sum) gsum[i] = v.re + v.im;
    sr += v.re;
    si += v.im;
    sb += local;
  }
  sums[0] = sr;
  sums[1] = si;
  sums[2] = sb;
}

template <Activation A, typename T>
__attribute__((always_inline)) inline void bwd_row(const T* g, const T* re, const T* im, T* gre, T* gim, T* gsum,
                                                   index_t n, T br, T bi, T ab, T* sums) {
  if (gsum == nullptr) {
    bwd_loop<A, false, 1, T>(g, re, im, gre, gim, gsum, n, br, bi, ab, sums);
  } else {
    bwd_loop<A, true, 1, T>(g, re, im, gre, gim, gsum, n, br, bi, ab, sums);
  }
}

// Non-template entry points so that target_clones applies (GCC does not clone templates).
#define BK_CONV_ROW_FNS(A, T, SUFFIX)                                                                       \
  BK_CLONES void cfwd_##SUFFIX(const T* re, const T* im, T* y, index_t n, T br, T bi, T ab) {                \
    fwd_row<A, 1, T>(re, im, y, n, br, bi, ab);                                                             \
  }                                                                                                         \
  BK_CLONES void cbwd_##SUFFIX(const T* g, const T* re, const T* im, T* gre, T* gim, T* gsum, index_t n, T br, \
                               T bi, T ab, T* sums) {                                                       \
    bwd_row<A, T>(g, re, im, gre, gim, gsum, n, br, bi, ab, sums);                                          \
  }                                                                                                         \
  BK_CLONES void cfwd_gauss_##SUFFIX(const T* k1, const T* k2, const T* k3, T* y, T* zre, T* zim, index_t n,  \
                                     T br, T bi, T ab) {                                                    \
    fwd_gauss_row<A, T>(k1, k2, k3, y, zre, zim, n, br, bi, ab);                                            \
  }                                                                                                         \
  BK_CLONES void cfwd_il_##SUFFIX(const T* re, const T* im, T* y, index_t n, T br, T bi, T ab) {             \
    fwd_row<A, 2, T>(re, im, y, n, br, bi, ab);                                                             \
  }                                                                                                         \
  BK_CLONES void cbwd_il_##SUFFIX(const T* g, const T* re, const T* im, T* gre, T* gim, T* gsum, index_t n,   \
                                  T br, T bi, T ab, T* sums) {                                              \
    bwd_loop<A, false, 2, T>(g, re, im, gre, gim, gsum, n, br, bi, ab, sums);                               \
  }
#define BK_CONV_ROW_FNS_T(T, S)                       \
  BK_CONV_ROW_FNS(Activation::kNone, T, none_##S)      \
  BK_CONV_ROW_FNS(Activation::kCReLU, T, crelu_##S)    \
  BK_CONV_ROW_FNS(Activation::kZReLU, T, zrelu_##S)    \
  BK_CONV_ROW_FNS(Activation::kModReLU, T, modrelu_##S) \
  BK_CONV_ROW_FNS(Activation::kCardioid, T, cardioid_##S)
BK_CONV_ROW_FNS_T(float, f)
BK_CONV_ROW_FNS_T(double, d)
#undef BK_CONV_ROW_FNS_T
#undef BK_CONV_ROW_FNS

template <typename T>
struct ConvRowFns {
  using Fwd = void (*)(const T*, const T*, T*, index_t, T, T, T);
  using Bwd = void (*)(const T*, const T*, const T*, T*, T*, T*, index_t, T, T, T, T*);
  using FwdGauss = void (*)(const T*, const T*, const T*, T*, T*, T*, index_t, T, T, T);
  Fwd fwd, fwd_il;  // z as planes / interleaved
  Bwd bwd, bwd_il;
  FwdGauss fwd_gauss;
};

#define BK_ROW(A, S) {cfwd_##A##_##S, cfwd_il_##A##_##S, cbwd_##A##_##S, cbwd_il_##A##_##S, cfwd_gauss_##A##_##S}
#define BK_PICK(S)                                             \
  switch (a) {                                                 \
    case Activation::kNone: return BK_ROW(none, S);            \
    case Activation::kCReLU: return BK_ROW(crelu, S);          \
    case Activation::kZReLU: return BK_ROW(zrelu, S);          \
    case Activation::kModReLU: return BK_ROW(modrelu, S);      \
    default: return BK_ROW(cardioid, S);                       \
  }
ConvRowFns<float> conv_row_fns(Activation a, float) { BK_PICK(f) }
ConvRowFns<double> conv_row_fns(Activation a, double) { BK_PICK(d) }
#undef BK_PICK
#undef BK_ROW

// Rows are small (Ho * Wo); parallelize over rows only when there is enough work.
constexpr index_t kConvEpilogueGrain = 16384;

}  // namespace

// fn(r, n, o, plane, br, bi, ab) for each row r = (n, o): its planar offset and its biases.
template <typename T, typename Fn>
void for_rows(const ConvEpilogueParams<T>& p, Fn&& fn) {
  const index_t rows = p.batch * p.channels;
  if (rows * p.inner == 0) return;
#pragma omp parallel for schedule(static) num_threads(p.num_threads) if (rows > 1 && rows * p.inner > kConvEpilogueGrain)
  for (index_t r = 0; r < rows; ++r) {
    const index_t n = r / p.channels, o = r % p.channels;
    const T br = p.bias ? p.bias[2 * o] : T(0), bi = p.bias ? p.bias[2 * o + 1] : T(0);
    fn(r, n, o, (n * 2 * p.channels + 2 * o) * p.inner, br, bi, p.act_bias ? p.act_bias[o] : T(0));
  }
}

template <typename T>
void conv_epilogue_forward(const ConvEpilogueParams<T>& p) {
  const ConvRowFns<T> fns = conv_row_fns(p.act, T(0));
  for_rows(p, [&](index_t r, index_t, index_t, index_t plane, T br, T bi, T ab) {
    if (p.k1) {  // Gauss: z from the three conv outputs; z's planes written only with an activation
      const index_t off = r * p.inner;
      T* zre = p.z_out ? p.z_out + plane : nullptr;
      fns.fwd_gauss(p.k1 + off, p.k2 + off, p.k3 + off, p.out + 2 * r * p.inner, zre, zre ? zre + p.inner : nullptr,
                    p.inner, br, bi, ab);
    } else if (p.z_interleaved) {
      const T* z = p.planar + 2 * r * p.inner;
      fns.fwd_il(z, z + 1, p.out + 2 * r * p.inner, p.inner, br, bi, ab);
    } else {
      fns.fwd(p.planar + plane, p.planar + plane + p.inner, p.out + 2 * r * p.inner, p.inner, br, bi, ab);
    }
  });
}

template <typename T>
void conv_epilogue_backward(const ConvEpilogueParams<T>& p) {
  const ConvRowFns<T> fns = conv_row_fns(p.act, T(0));
  for_rows(p, [&](index_t r, index_t n, index_t o, index_t plane, T br, T bi, T ab) {
    if (p.z_interleaved) {  // dL/dz interleaved, in z's layout
      const T* z = p.planar ? p.planar + 2 * r * p.inner : nullptr;
      T* dz = p.out + 2 * r * p.inner;
      fns.bwd_il(p.grad_out + 2 * r * p.inner, z, z ? z + 1 : nullptr, dz, dz + 1, nullptr, p.inner, br, bi, ab,
                 p.row_sums + 3 * r);
      return;
    }
    T* base = p.out + n * p.out_batch + o * p.out_channel;
    const T* zre = p.planar ? p.planar + plane : nullptr;  // null without an activation (not read)
    fns.bwd(p.grad_out + 2 * r * p.inner, zre, zre ? zre + p.inner : nullptr, base + p.out_re, base + p.out_im, p.out_sum >= 0 ? base + p.out_sum : nullptr, p.inner, br, bi, ab, p.row_sums + 3 * r);
  });
}

// Elementwise, memory-bound: chunks of kGaussGrain elements per thread.
constexpr index_t kGaussGrain = 1 << 15;

namespace {
template <typename T>
__attribute__((always_inline)) inline void combine_chunk(const T* __restrict dx1, const T* __restrict dx2, const T* __restrict dx3,
                                T* __restrict out, index_t n) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) {
    out[2 * i] = dx2[i] + dx1[i];
    out[2 * i + 1] = dx1[i] - dx3[i];
  }
}
template <typename T>
__attribute__((always_inline)) inline void split_chunk(const T* __restrict x, T* __restrict re, T* __restrict im, T* __restrict sum, index_t n) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) {
    re[i] = x[2 * i];
    im[i] = x[2 * i + 1];
    sum[i] = x[2 * i] + x[2 * i + 1];
  }
}
BK_CLONES void combine_f(const float* a, const float* b, const float* c, float* o, index_t n) { combine_chunk(a, b, c, o, n); }
BK_CLONES void combine_d(const double* a, const double* b, const double* c, double* o, index_t n) { combine_chunk(a, b, c, o, n); }
BK_CLONES void split_f(const float* x, float* r, float* i, float* s, index_t n) { split_chunk(x, r, i, s, n); }
BK_CLONES void split_d(const double* x, double* r, double* i, double* s, index_t n) { split_chunk(x, r, i, s, n); }
inline void combine(const float* a, const float* b, const float* c, float* o, index_t n) { combine_f(a, b, c, o, n); }
inline void combine(const double* a, const double* b, const double* c, double* o, index_t n) { combine_d(a, b, c, o, n); }
inline void split(const float* x, float* r, float* i, float* s, index_t n) { split_f(x, r, i, s, n); }
inline void split(const double* x, double* r, double* i, double* s, index_t n) { split_d(x, r, i, s, n); }
}  // namespace

// fn(lo, n) over [0, size) in chunks of kGaussGrain, OpenMP over chunks.
template <typename Fn>
void for_chunks(index_t size, int num_threads, Fn&& fn) {
  const index_t chunks = (size + kGaussGrain - 1) / kGaussGrain;
#pragma omp parallel for schedule(static) num_threads(num_threads) if (chunks > 1)
  for (index_t c = 0; c < chunks; ++c) fn(c * kGaussGrain, std::min(kGaussGrain, size - c * kGaussGrain));
}

template <typename T>
void gauss_combine(const GaussCombineParams<T>& p) {
  for_chunks(p.size, p.num_threads,
             [&](index_t lo, index_t n) { combine(p.dx1 + lo, p.dx2 + lo, p.dx3 + lo, p.out + 2 * lo, n); });
}

template <typename T>
void gauss_split(const GaussSplitParams<T>& p) {
  for_chunks(p.size, p.num_threads,
             [&](index_t lo, index_t n) { split(p.x + 2 * lo, p.re + lo, p.im + lo, p.sum + lo, n); });
}

template void gauss_combine<float>(const GaussCombineParams<float>&);
template void gauss_combine<double>(const GaussCombineParams<double>&);
template void gauss_split<float>(const GaussSplitParams<float>&);
template void gauss_split<double>(const GaussSplitParams<double>&);
template void conv_epilogue_forward<float>(const ConvEpilogueParams<float>&);
template void conv_epilogue_forward<double>(const ConvEpilogueParams<double>&);
template void conv_epilogue_backward<float>(const ConvEpilogueParams<float>&);
template void conv_epilogue_backward<double>(const ConvEpilogueParams<double>&);

}  // namespace cpu
}  // namespace beamkernels
