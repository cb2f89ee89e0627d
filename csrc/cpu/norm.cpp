// Torch-free CPU kernels for the whitening batch-norm: interleaved complex in and out, OpenMP
// over (n, c) row chunks, SIMD inner loops, statistics accumulated in double.
//
// Statistics: per-chunk sums of the values shifted by the channel's first value
// (x - x[0, c, 0]), in double: E[d d^T] = E[(x-k)(x-k)^T] - (E[x]-k)(E[x]-k)^T stays accurate
// when the mean is large against the spread (the shift is a sample, so |E[x] - k| is of the
// order of the spread); chunks are merged by plain addition (same shift), deterministic order.
#include "cpu/norm_cpu.h"

#include <omp.h>

#include <algorithm>
#include <vector>

namespace beamkernels {
namespace cpu {
namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BK_CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))
#else
#define BK_CLONES
#endif

constexpr index_t kGrain = 16384;  // complex elements per work item

inline index_t chunks_per_row(index_t inner) { return inner > kGrain ? (inner + kGrain - 1) / kGrain : 1; }

// ---- row loops (templates, instantiated in non-template clones below) ----
// Sums over blocks of kStatsBlock elements are formed in T (SIMD lanes of T: each lane adds
// kStatsBlock / lanes shifted values, error ~ that count times T's epsilon), then accumulated in
// double across blocks, so the error does not grow with the row length.
constexpr index_t kStatsBlock = 256;

template <typename T>
__attribute__((always_inline)) inline void stats_row(const T* __restrict x, index_t n, T kr, T ki, double* out) {
  double sr = 0, si = 0, srr = 0, sri = 0, sii = 0;
  for (index_t b0 = 0; b0 < n; b0 += kStatsBlock) {
    const index_t b1 = b0 + kStatsBlock < n ? b0 + kStatsBlock : n;
    T tr = 0, ti = 0, trr = 0, tri = 0, tii = 0;
#pragma omp simd reduction(+ : tr, ti, trr, tri, tii)
    for (index_t i = b0; i < b1; ++i) {
      const T a = x[2 * i] - kr, b = x[2 * i + 1] - ki;
      tr += a;
      ti += b;
      trr += a * a;
      tri += a * b;
      tii += b * b;
    }
    sr += double(tr);
    si += double(ti);
    srr += double(trr);
    sri += double(tri);
    sii += double(tii);
  }
  out[0] = sr;
  out[1] = si;
  out[2] = srr;
  out[3] = sri;
  out[4] = sii;
}

template <typename T>
__attribute__((always_inline)) inline void apply_row(const T* __restrict x, T* __restrict y, index_t n,
                                                     const T* __restrict a) {
  // m = m_hi + m_lo (two T's): x - m_hi is exact near the mean (Sterbenz), so a mean far from 0
  // against the spread loses no precision in T.
  const T a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], c0 = a[4], c1 = a[5];
  const T mr = a[6], mi = a[7], lr = a[8], li = a[9];
#pragma omp simd
  for (index_t i = 0; i < n; ++i) {
    const T xr = (x[2 * i] - mr) - lr, xi = (x[2 * i + 1] - mi) - li;
    y[2 * i] = a0 * xr + a1 * xi + c0;
    y[2 * i + 1] = a2 * xr + a3 * xi + c1;
  }
}

template <typename T>
__attribute__((always_inline)) inline void bwd_reduce_row(const T* __restrict g, const T* __restrict x, index_t n,
                                                          T mr, T mi, double* out) {
  double sgr = 0, sgi = 0, m00 = 0, m01 = 0, m10 = 0, m11 = 0;
  for (index_t b0 = 0; b0 < n; b0 += kStatsBlock) {  // T within a block, double across (as stats_row)
    const index_t b1 = b0 + kStatsBlock < n ? b0 + kStatsBlock : n;
    T tgr = 0, tgi = 0, t00 = 0, t01 = 0, t10 = 0, t11 = 0;
#pragma omp simd reduction(+ : tgr, tgi, t00, t01, t10, t11)
    for (index_t i = b0; i < b1; ++i) {
      const T gr = g[2 * i], gi = g[2 * i + 1];
      const T dr = x[2 * i] - mr, di = x[2 * i + 1] - mi;
      tgr += gr;
      tgi += gi;
      t00 += gr * dr;
      t01 += gr * di;
      t10 += gi * dr;
      t11 += gi * di;
    }
    sgr += double(tgr);
    sgi += double(tgi);
    m00 += double(t00);
    m01 += double(t01);
    m10 += double(t10);
    m11 += double(t11);
  }
  out[0] = sgr;
  out[1] = sgi;
  out[2] = m00;
  out[3] = m01;
  out[4] = m10;
  out[5] = m11;
}

template <typename T>
__attribute__((always_inline)) inline void bwd_apply_row(const T* __restrict g, const T* __restrict x,
                                                         T* __restrict gx, index_t n, const T* __restrict k) {
  const T k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], p00 = k[4], p01 = k[5], p11 = k[6], q0 = k[7], q1 = k[8];
  const T mr = k[9], mi = k[10];
#pragma omp simd
  for (index_t i = 0; i < n; ++i) {
    const T gr = g[2 * i], gi = g[2 * i + 1], xr = x[2 * i] - mr, xi = x[2 * i + 1] - mi;
    gx[2 * i] = k0 * gr + k1 * gi + p00 * xr + p01 * xi + q0;
    gx[2 * i + 1] = k2 * gr + k3 * gi + p01 * xr + p11 * xi + q1;
  }
}

#define BK_NORM_ROW_FNS(T, S)                                                                              \
  BK_CLONES void stats_##S(const T* x, index_t n, T kr, T ki, double* out) { stats_row<T>(x, n, kr, ki, out); } \
  BK_CLONES void apply_##S(const T* x, T* y, index_t n, const T* a) { apply_row<T>(x, y, n, a); }            \
  BK_CLONES void bwd_reduce_##S(const T* g, const T* x, index_t n, T mr, T mi, double* out) {                \
    bwd_reduce_row<T>(g, x, n, mr, mi, out);                                                                 \
  }                                                                                                          \
  BK_CLONES void bwd_apply_##S(const T* g, const T* x, T* gx, index_t n, const T* k) {                       \
    bwd_apply_row<T>(g, x, gx, n, k);                                                                        \
  }
BK_NORM_ROW_FNS(float, f)
BK_NORM_ROW_FNS(double, d)
#undef BK_NORM_ROW_FNS

inline void stats_fn(const float* x, index_t n, float kr, float ki, double* o) { stats_f(x, n, kr, ki, o); }
inline void stats_fn(const double* x, index_t n, double kr, double ki, double* o) { stats_d(x, n, kr, ki, o); }
inline void apply_fn(const float* x, float* y, index_t n, const float* a) { apply_f(x, y, n, a); }
inline void apply_fn(const double* x, double* y, index_t n, const double* a) { apply_d(x, y, n, a); }
inline void bwd_reduce_fn(const float* g, const float* x, index_t n, float mr, float mi, double* o) {
  bwd_reduce_f(g, x, n, mr, mi, o);
}
inline void bwd_reduce_fn(const double* g, const double* x, index_t n, double mr, double mi, double* o) {
  bwd_reduce_d(g, x, n, mr, mi, o);
}
inline void bwd_apply_fn(const float* g, const float* x, float* gx, index_t n, const float* k) {
  bwd_apply_f(g, x, gx, n, k);
}
inline void bwd_apply_fn(const double* g, const double* x, double* gx, index_t n, const double* k) {
  bwd_apply_d(g, x, gx, n, k);
}

// Calls body(row, channel, begin, len, item) for every chunk of every (n, c) row, in parallel.
template <typename T, typename F>
void for_each_chunk(const BatchNormParams<T>& p, F&& body) {
  const index_t rows = p.outer * p.channels;
  const index_t cpr = chunks_per_row(p.inner);
  const index_t total = rows * cpr;
  const index_t chunk = (p.inner + cpr - 1) / cpr;
#pragma omp parallel for schedule(dynamic, 4) num_threads(p.num_threads) if (total > 1 && rows * p.inner > kGrain)
  for (index_t t = 0; t < total; ++t) {
    const index_t row = t / cpr;
    const index_t begin = (t % cpr) * chunk;
    const index_t len = std::min(chunk, p.inner - begin);
    if (len > 0) body(row, row % p.channels, begin, len, t);
  }
}

// Sums `width` partials per item over all items of channel c (items ordered row-major (n, c, chunk)).
void reduce_channel(const std::vector<double>& part, index_t outer, index_t channels, index_t cpr, index_t c,
                    int width, double* out) {
  for (int j = 0; j < width; ++j) out[j] = 0.0;
  for (index_t nn = 0; nn < outer; ++nn) {
    const double* base = part.data() + ((nn * channels + c) * cpr) * width;
    for (index_t k = 0; k < cpr; ++k)
      for (int j = 0; j < width; ++j) out[j] += base[k * width + j];
  }
}

}  // namespace

template <typename T>
void batch_norm_forward(const BatchNormParams<T>& p) {
  const index_t C = p.channels;
  const index_t n_per_channel = p.outer * p.inner;
  std::vector<double> mean(2 * C), cov(3 * C);
  if (p.training) {
    const index_t cpr = chunks_per_row(p.inner);
    std::vector<double> part(n_per_channel > 0 ? p.outer * C * cpr * 5 : 0);
    if (n_per_channel > 0) {
      for_each_chunk(p, [&](index_t row, index_t c, index_t begin, index_t len, index_t t) {
        const T* shift = p.x + 2 * c * p.inner;  // x[0, c, 0]
        stats_fn(p.x + 2 * (row * p.inner + begin), len, shift[0], shift[1], part.data() + 5 * t);
      });
    }
    const double inv_n = n_per_channel > 0 ? 1.0 / double(n_per_channel) : 0.0;
    for (index_t c = 0; c < C; ++c) {
      double s[5] = {0, 0, 0, 0, 0};
      if (n_per_channel > 0) reduce_channel(part, p.outer, C, cpr, c, 5, s);
      const double kr = n_per_channel > 0 ? double(p.x[2 * c * p.inner]) : 0.0;
      const double ki = n_per_channel > 0 ? double(p.x[2 * c * p.inner + 1]) : 0.0;
      const double er = s[0] * inv_n, ei = s[1] * inv_n;  // E[x - k]
      mean[2 * c] = kr + er;
      mean[2 * c + 1] = ki + ei;
      cov[3 * c] = std::max(s[2] * inv_n - er * er, 0.0);
      cov[3 * c + 1] = s[3] * inv_n - er * ei;
      cov[3 * c + 2] = std::max(s[4] * inv_n - ei * ei, 0.0);
      p.mean_out[2 * c] = T(mean[2 * c]);
      p.mean_out[2 * c + 1] = T(mean[2 * c + 1]);
      for (int j = 0; j < 3; ++j) p.cov_out[3 * c + j] = T(cov[3 * c + j]);
    }
  } else {
    for (index_t c = 0; c < C; ++c) {
      for (int j = 0; j < 2; ++j) mean[2 * c + j] = double(p.mean_in[2 * c + j]);
      for (int j = 0; j < 3; ++j) cov[3 * c + j] = double(p.cov_in[3 * c + j]);
    }
  }
  if (n_per_channel == 0) return;
  constexpr int kA = 10;  // A (4), beta (2), m_hi (2), m_lo (2)
  std::vector<T> coefs(kA * C);
  for (index_t c = 0; c < C; ++c) {
    double g[3], b[2], a[6];
    if (p.weight)
      for (int j = 0; j < 3; ++j) g[j] = double(p.weight[3 * c + j]);
    if (p.bias)
      for (int j = 0; j < 2; ++j) b[j] = double(p.bias[2 * c + j]);
    bn_forward_coefs(cov[3 * c], cov[3 * c + 1], cov[3 * c + 2], p.weight ? g : nullptr,
                     p.bias ? b : nullptr, p.eps, a);
    for (int j = 0; j < 6; ++j) coefs[kA * c + j] = T(a[j]);
    for (int j = 0; j < 2; ++j) {
      const T hi = T(mean[2 * c + j]);
      coefs[kA * c + 6 + j] = hi;
      coefs[kA * c + 8 + j] = T(mean[2 * c + j] - double(hi));
    }
  }
  for_each_chunk(p, [&](index_t row, index_t c, index_t begin, index_t len, index_t) {
    const index_t off = 2 * (row * p.inner + begin);
    apply_fn(p.x + off, p.out + off, len, coefs.data() + kA * c);
  });
}

template <typename T>
void batch_norm_backward(const BatchNormParams<T>& p) {
  const index_t C = p.channels;
  const index_t n_per_channel = p.outer * p.inner;
  const index_t cpr = chunks_per_row(p.inner);
  std::vector<double> part(n_per_channel > 0 ? p.outer * C * cpr * 6 : 0);
  if (n_per_channel > 0) {
    for_each_chunk(p, [&](index_t row, index_t c, index_t begin, index_t len, index_t t) {
      const index_t off = 2 * (row * p.inner + begin);
      bwd_reduce_fn(p.grad_out + off, p.x + off, len, p.mean_in[2 * c], p.mean_in[2 * c + 1], part.data() + 6 * t);
    });
  }
  constexpr int kK = 11;  // K (4), P (3), q (2), m (2)
  std::vector<T> coefs(kK * C);
  for (index_t c = 0; c < C; ++c) {
    double s[6] = {0, 0, 0, 0, 0, 0};
    if (n_per_channel > 0) reduce_channel(part, p.outer, C, cpr, c, 6, s);
    // The centring used in the reduction is the T-rounded mean; use the same m here.
    const double mr = double(p.mean_in[2 * c]), mi = double(p.mean_in[2 * c + 1]);
    double g[3], gw[3], gb[2], k[kK];
    if (p.weight)
      for (int j = 0; j < 3; ++j) g[j] = double(p.weight[3 * c + j]);
    bn_backward_coefs(s, double(n_per_channel), double(p.cov_in[3 * c]), double(p.cov_in[3 * c + 1]),
                      double(p.cov_in[3 * c + 2]), p.weight ? g : nullptr, p.eps, p.training, gw, gb, k);
    for (int j = 0; j < 3; ++j) p.grad_weight[3 * c + j] = T(gw[j]);
    for (int j = 0; j < 2; ++j) p.grad_bias[2 * c + j] = T(gb[j]);
    k[9] = mr;
    k[10] = mi;
    for (int j = 0; j < kK; ++j) coefs[kK * c + j] = T(k[j]);
  }
  if (n_per_channel == 0) return;
  for_each_chunk(p, [&](index_t row, index_t c, index_t begin, index_t len, index_t) {
    const index_t off = 2 * (row * p.inner + begin);
    bwd_apply_fn(p.grad_out + off, p.x + off, p.out + off, len, coefs.data() + kK * c);
  });
}

template void batch_norm_forward<float>(const BatchNormParams<float>&);
template void batch_norm_forward<double>(const BatchNormParams<double>&);
template void batch_norm_backward<float>(const BatchNormParams<float>&);
template void batch_norm_backward<double>(const BatchNormParams<double>&);

}  // namespace cpu
}  // namespace beamkernels
