// Torch-free CPU kernels for the complex activations: one pass over interleaved complex data,
// OpenMP over (outer, channel) rows, SIMD over the row. Multiversioned for AVX-512 / AVX2 so the
// same binary runs on any x86-64 (and on other CPUs through the default clone).
#include "cpu/activation_cpu.h"

#include <omp.h>

#include <algorithm>

namespace beamkernels {
namespace cpu {
namespace {

// The row loops: `n` complex elements, one bias value for the whole row. modReLU and cardioid
// run a pass without to_polar's rescaling that also flags any element needing it, and redo the
// row scaled only then (tiny or huge |z|: rare), which keeps the common case cheap.
template <Activation A, typename T, bool kScaled>
__attribute__((always_inline)) inline int fwd_pass(const T* __restrict x, T* __restrict y, index_t n, T bias) {
  int bad = 0;
#pragma omp simd reduction(| : bad)
  for (index_t i = 0; i < n; ++i) {
    const Cplx<T> v = act_forward<A, T, kScaled>(x[2 * i], x[2 * i + 1], bias);
    y[2 * i] = v.re;
    y[2 * i + 1] = v.im;
    if (!kScaled) bad |= static_cast<int>(needs_scaling<A, T>(x[2 * i], x[2 * i + 1]));
  }
  return bad;
}

template <Activation A, typename T>
__attribute__((always_inline)) inline void fwd_row(const T* __restrict x, T* __restrict y, index_t n, T bias) {
  if (fwd_pass<A, T, false>(x, y, n, bias)) fwd_pass<A, T, true>(x, y, n, bias);
}

template <Activation A, typename T, bool kScaled>
__attribute__((always_inline)) inline int bwd_pass(const T* __restrict g, const T* __restrict x, T* __restrict gx,
                                                  index_t n, T bias, T* gb_out) {
  T gb = T(0);
  int bad = 0;
#pragma omp simd reduction(+ : gb) reduction(| : bad)
  for (index_t i = 0; i < n; ++i) {
    T local = T(0);
    const Cplx<T> v = act_backward<A, T, kScaled>(g[2 * i], g[2 * i + 1], x[2 * i], x[2 * i + 1], bias, &local);
    gx[2 * i] = v.re;
    gx[2 * i + 1] = v.im;
    gb += local;
    if (!kScaled) bad |= static_cast<int>(needs_scaling<A, T>(x[2 * i], x[2 * i + 1]));
  }
  *gb_out = gb;
  return bad;
}

template <Activation A, typename T>
__attribute__((always_inline)) inline T bwd_row(const T* __restrict g, const T* __restrict x, T* __restrict gx,
                                                index_t n, T bias) {
  T gb = T(0);
  if (bwd_pass<A, T, false>(g, x, gx, n, bias, &gb)) bwd_pass<A, T, true>(g, x, gx, n, bias, &gb);
  return gb;
}

// Non-template entry points so that target_clones applies (GCC does not clone templates).
#define BK_ROW_FNS(A, T, SUFFIX)                                                                        \
  BK_CLONES void fwd_##SUFFIX(const T* x, T* y, index_t n, T bias) { fwd_row<A, T>(x, y, n, bias); }     \
  BK_CLONES T bwd_##SUFFIX(const T* g, const T* x, T* gx, index_t n, T bias) {                           \
    return bwd_row<A, T>(g, x, gx, n, bias);                                                            \
  }
BK_ROW_FNS(Activation::kCReLU, float, crelu_f)
BK_ROW_FNS(Activation::kCReLU, double, crelu_d)
BK_ROW_FNS(Activation::kZReLU, float, zrelu_f)
BK_ROW_FNS(Activation::kZReLU, double, zrelu_d)
BK_ROW_FNS(Activation::kModReLU, float, modrelu_f)
BK_ROW_FNS(Activation::kModReLU, double, modrelu_d)
BK_ROW_FNS(Activation::kCardioid, float, cardioid_f)
BK_ROW_FNS(Activation::kCardioid, double, cardioid_d)
#undef BK_ROW_FNS

template <typename T>
struct RowFns {
  void (*fwd)(const T*, T*, index_t, T);
  T (*bwd)(const T*, const T*, T*, index_t, T);
};

RowFns<float> row_fns(Activation a, float) {
  switch (a) {
    case Activation::kCReLU: return {fwd_crelu_f, bwd_crelu_f};
    case Activation::kZReLU: return {fwd_zrelu_f, bwd_zrelu_f};
    case Activation::kModReLU: return {fwd_modrelu_f, bwd_modrelu_f};
    default: return {fwd_cardioid_f, bwd_cardioid_f};
  }
}
RowFns<double> row_fns(Activation a, double) {
  switch (a) {
    case Activation::kCReLU: return {fwd_crelu_d, bwd_crelu_d};
    case Activation::kZReLU: return {fwd_zrelu_d, bwd_zrelu_d};
    case Activation::kModReLU: return {fwd_modrelu_d, bwd_modrelu_d};
    default: return {fwd_cardioid_d, bwd_cardioid_d};
  }
}

// Each (outer, channel) row is split into chunks of at most kActivationGrain elements so that
// large rows spread over threads and small tensors skip the thread start-up.
template <typename T, typename F>
void for_each_chunk(const ActivationParams<T>& p, F&& body) {
  const index_t rows = p.outer * p.channels;
  const index_t chunks_per_row = activation_chunks_per_row(p.inner);
  const index_t total = rows * chunks_per_row;
  const index_t chunk = (p.inner + chunks_per_row - 1) / chunks_per_row;
#pragma omp parallel for schedule(static) num_threads(p.num_threads) if (total > 1 && rows * p.inner > kActivationGrain)
  for (index_t t = 0; t < total; ++t) {
    const index_t row = t / chunks_per_row;
    const index_t begin = (t % chunks_per_row) * chunk;
    const index_t len = std::min(chunk, p.inner - begin);
    if (len > 0) body(row, row % p.channels, begin, len, t);
  }
}

}  // namespace

template <typename T>
void activation_forward(const ActivationParams<T>& p) {
  if (p.outer * p.channels * p.inner == 0) return;
  const RowFns<T> fns = row_fns(p.act, T(0));
  for_each_chunk(p, [&](index_t row, index_t c, index_t begin, index_t len, index_t) {
    const index_t off = 2 * (row * p.inner + begin);
    fns.fwd(p.x + off, p.out + off, len, p.bias ? p.bias[c] : T(0));
  });
}

// grad_bias_partial (modReLU) receives one partial sum per chunk: [rows * chunks_per_row];
// the glue sizes it with activation_backward_partials() and reduces it (deterministic).
template <typename T>
void activation_backward(const ActivationParams<T>& p) {
  if (p.outer * p.channels * p.inner == 0) return;
  const RowFns<T> fns = row_fns(p.act, T(0));
  for_each_chunk(p, [&](index_t row, index_t c, index_t begin, index_t len, index_t t) {
    const index_t off = 2 * (row * p.inner + begin);
    const T gb = fns.bwd(p.grad_out + off, p.x + off, p.out + off, len, p.bias ? p.bias[c] : T(0));
    if (p.grad_bias_partial) p.grad_bias_partial[t] = gb;
  });
}

template void activation_forward<float>(const ActivationParams<float>&);
template void activation_forward<double>(const ActivationParams<double>&);
template void activation_backward<float>(const ActivationParams<float>&);
template void activation_backward<double>(const ActivationParams<double>&);

}  // namespace cpu
}  // namespace beamkernels
