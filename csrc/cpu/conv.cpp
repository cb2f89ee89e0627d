// Torch-free CPU passes of the fused complex convolution: the bias + activation epilogue that
// turns the real conv's planar output into interleaved complex y, and the backward prologue that
// applies the activation's derivative and writes the planar gradient for the real conv's
// backward (with bias-gradient row sums). One pass each over the data; OpenMP over (n, o) rows,
// SIMD along the row; multiversioned like csrc/cpu/activation.cpp.
#include "cpu/conv_cpu.h"

#include <omp.h>

namespace beamkernels {
namespace cpu {
namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BK_CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))
#else
#define BK_CLONES
#endif

// One row: re/im planes of length n -> interleaved y = act(z + b).
template <Activation A, typename T>
__attribute__((always_inline)) inline void fwd_row(const T* __restrict re, const T* __restrict im, T* __restrict y,
                                                   index_t n, T br, T bi, T ab) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) {
    const Cplx<T> v = act_forward<A, T>(re[i] + br, im[i] + bi, ab);
    y[2 * i] = v.re;
    y[2 * i + 1] = v.im;
  }
}

// One row: interleaved grad_y, planes of z (bias not added) -> planes of dL/dz; returns sums.
template <Activation A, typename T>
__attribute__((always_inline)) inline void bwd_row(const T* __restrict g, const T* __restrict re,
                                                   const T* __restrict im, T* __restrict gre, T* __restrict gim,
                                                   index_t n, T br, T bi, T ab, T* sums) {
  T sr = T(0), si = T(0), sb = T(0);
#pragma omp simd reduction(+ : sr, si, sb)
  for (index_t i = 0; i < n; ++i) {
    T local = T(0);
    const Cplx<T> v = act_backward<A, T>(g[2 * i], g[2 * i + 1], re[i] + br, im[i] + bi, ab, &local);
    gre[i] = v.re;
    gim[i] = v.im;
    sr += v.re;
    si += v.im;
    sb += local;
  }
  sums[0] = sr;
  sums[1] = si;
  sums[2] = sb;
}

// Non-template entry points so that target_clones applies (GCC does not clone templates).
#define BK_CONV_ROW_FNS(A, T, SUFFIX)                                                                       \
  BK_CLONES void cfwd_##SUFFIX(const T* re, const T* im, T* y, index_t n, T br, T bi, T ab) {                \
    fwd_row<A, T>(re, im, y, n, br, bi, ab);                                                                \
  }                                                                                                         \
  BK_CLONES void cbwd_##SUFFIX(const T* g, const T* re, const T* im, T* gre, T* gim, index_t n, T br, T bi, T ab, \
                               T* sums) {                                                                   \
    bwd_row<A, T>(g, re, im, gre, gim, n, br, bi, ab, sums);                                                \
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
  void (*fwd)(const T*, const T*, T*, index_t, T, T, T);
  void (*bwd)(const T*, const T*, const T*, T*, T*, index_t, T, T, T, T*);
};

#define BK_PICK(S)                                                          \
  switch (a) {                                                              \
    case Activation::kNone: return {cfwd_none_##S, cbwd_none_##S};          \
    case Activation::kCReLU: return {cfwd_crelu_##S, cbwd_crelu_##S};       \
    case Activation::kZReLU: return {cfwd_zrelu_##S, cbwd_zrelu_##S};       \
    case Activation::kModReLU: return {cfwd_modrelu_##S, cbwd_modrelu_##S}; \
    default: return {cfwd_cardioid_##S, cbwd_cardioid_##S};                 \
  }
ConvRowFns<float> conv_row_fns(Activation a, float) { BK_PICK(f) }
ConvRowFns<double> conv_row_fns(Activation a, double) { BK_PICK(d) }
#undef BK_PICK

// Rows are small (Ho * Wo); parallelize over rows only when there is enough work.
constexpr index_t kConvEpilogueGrain = 16384;

}  // namespace

template <typename T>
void conv_epilogue_forward(const ConvEpilogueParams<T>& p) {
  const index_t rows = p.batch * p.channels;
  if (rows * p.inner == 0) return;
  const ConvRowFns<T> fns = conv_row_fns(p.act, T(0));
#pragma omp parallel for schedule(static) num_threads(p.num_threads) if (rows > 1 && rows * p.inner > kConvEpilogueGrain)
  for (index_t r = 0; r < rows; ++r) {
    const index_t n = r / p.channels, o = r % p.channels;
    const T* re = p.planar + (n * 2 * p.channels + 2 * o) * p.inner;
    const T br = p.bias ? p.bias[2 * o] : T(0), bi = p.bias ? p.bias[2 * o + 1] : T(0);
    const T ab = p.act_bias ? p.act_bias[o] : T(0);
    fns.fwd(re, re + p.inner, p.out + 2 * r * p.inner, p.inner, br, bi, ab);
  }
}

template <typename T>
void conv_epilogue_backward(const ConvEpilogueParams<T>& p) {
  const index_t rows = p.batch * p.channels;
  if (rows * p.inner == 0) return;
  const ConvRowFns<T> fns = conv_row_fns(p.act, T(0));
#pragma omp parallel for schedule(static) num_threads(p.num_threads) if (rows > 1 && rows * p.inner > kConvEpilogueGrain)
  for (index_t r = 0; r < rows; ++r) {
    const index_t n = r / p.channels, o = r % p.channels;
    const index_t plane = (n * 2 * p.channels + 2 * o) * p.inner;
    const T br = p.bias ? p.bias[2 * o] : T(0), bi = p.bias ? p.bias[2 * o + 1] : T(0);
    const T ab = p.act_bias ? p.act_bias[o] : T(0);
    fns.bwd(p.grad_out + 2 * r * p.inner, p.planar + plane, p.planar + plane + p.inner, p.out + plane,
            p.out + plane + p.inner, p.inner, br, bi, ab, p.row_sums + 3 * r);
  }
}

template void conv_epilogue_forward<float>(const ConvEpilogueParams<float>&);
template void conv_epilogue_forward<double>(const ConvEpilogueParams<double>&);
template void conv_epilogue_backward<float>(const ConvEpilogueParams<float>&);
template void conv_epilogue_backward<double>(const ConvEpilogueParams<double>&);

}  // namespace cpu
}  // namespace beamkernels
