// Torch-free CPU kernels for max-pool by magnitude: one pass over interleaved complex input,
// OpenMP over output rows (plane, oh). The 2x2 / stride-2 pool (the model zoo's) has an AVX2
// path for complex64 and a SIMD loop otherwise; other geometries vectorize across the outputs
// of a row. Multiversioned for AVX-512 / AVX2 like csrc/cpu/activation.cpp.
// No FMA contraction of the key: the build uses ISO C++ (-std=c++20), where GCC's default is
// -ffp-contract=off, so re*re + im*im rounds exactly as the reference.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu/pool_cpu.h"

namespace beamkernels {
namespace cpu {
namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BK_CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))
#else
#define BK_CLONES
#endif

// 2x2 window, stride 2, no padding, dilation 1: rows r0 and r1 of the input plane produce one
// output row of n elements. `first` is the per-plane index of r0[0].
template <typename T>
__attribute__((always_inline)) inline void row_2x2(const T* __restrict r0, const T* __restrict r1, T* __restrict out,
                                                   int64_t* __restrict idx, index_t n, index_t first, index_t W) {
#pragma omp simd
  for (index_t j = 0; j < n; ++j) {
    const T are = r0[4 * j], aim = r0[4 * j + 1], bre = r0[4 * j + 2], bim = r0[4 * j + 3];
    const T cre = r1[4 * j], cim = r1[4 * j + 1], dre = r1[4 * j + 2], dim = r1[4 * j + 3];
    const T ka = are * are + aim * aim, kb = bre * bre + bim * bim;
    const T kc = cre * cre + cim * cim, kd = dre * dre + dim * dim;
    T best = ka, re = are, im = aim;
    index_t off = 0;
    bool t = pool_takes(kb, best);
    best = t ? kb : best; re = t ? bre : re; im = t ? bim : im; off = t ? 1 : off;
    t = pool_takes(kc, best);
    best = t ? kc : best; re = t ? cre : re; im = t ? cim : im; off = t ? W : off;
    t = pool_takes(kd, best);
    re = t ? dre : re; im = t ? dim : im; off = t ? W + 1 : off;
    out[2 * j] = re;
    out[2 * j + 1] = im;
    idx[j] = first + 2 * j + off;
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BK_HAVE_AVX2_PATH 1
// complex64, AVX2: 8 outputs per step from 4 + 4 loads of the two input rows. Keys by one mul and
// one hadd (the products rounded, then their sum: exactly the reference's re*re + im*im); the
// even/odd elements (window columns 0/1) come out in the lane order o0 o2 o4 o6 o1 o3 o5 o7,
// the selects are done in that order and the 64-bit winners (a complex64 as one word) and the
// indices are put back in order before the stores. The scalar loop finishes the row.
__attribute__((target("avx2"))) void row_2x2_c64_avx2(const float* __restrict r0, const float* __restrict r1,
                                                      float* __restrict out, int64_t* __restrict idx, index_t n,
                                                      index_t first, index_t W) {
  const __m256i dup_lo = _mm256_setr_epi32(0, 0, 1, 1, 4, 4, 5, 5);     // -> o0 o2 o1 o3, 64-bit lanes
  const __m256i dup_hi = _mm256_setr_epi32(2, 2, 3, 3, 6, 6, 7, 7);     // -> o4 o6 o5 o7
  const __m256i to_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);    // -> o0 .. o7
  const __m256i one = _mm256_set1_epi32(1), w0 = _mm256_set1_epi32(static_cast<int>(W)),
                w1 = _mm256_set1_epi32(static_cast<int>(W + 1));
  const __m256i step = _mm256_setr_epi64x(0, 2, 4, 6);
  index_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const float* a = r0 + 4 * j;
    const float* b = r1 + 4 * j;
    __m256 k[2][2];   // [row][column]: keys in lane order o0 o2 o4 o6 o1 o3 o5 o7
    __m256d lo[2][2], hi[2][2];  // [row][column]: 64-bit values, o0 o2 o1 o3 (lo) and o4 o6 o5 o7 (hi)
    for (int r = 0; r < 2; ++r) {
      const float* src = r ? b : a;
      const __m256 v0 = _mm256_loadu_ps(src), v1 = _mm256_loadu_ps(src + 8), v2 = _mm256_loadu_ps(src + 16),
                   v3 = _mm256_loadu_ps(src + 24);
      const __m256 h01 = _mm256_hadd_ps(_mm256_mul_ps(v0, v0), _mm256_mul_ps(v1, v1));
      const __m256 h23 = _mm256_hadd_ps(_mm256_mul_ps(v2, v2), _mm256_mul_ps(v3, v3));
      k[r][0] = _mm256_shuffle_ps(h01, h23, _MM_SHUFFLE(2, 0, 2, 0));
      k[r][1] = _mm256_shuffle_ps(h01, h23, _MM_SHUFFLE(3, 1, 3, 1));
      const __m256d d0 = _mm256_castps_pd(v0), d1 = _mm256_castps_pd(v1), d2 = _mm256_castps_pd(v2),
                    d3 = _mm256_castps_pd(v3);
      lo[r][0] = _mm256_unpacklo_pd(d0, d1);
      lo[r][1] = _mm256_unpackhi_pd(d0, d1);
      hi[r][0] = _mm256_unpacklo_pd(d2, d3);
      hi[r][1] = _mm256_unpackhi_pd(d2, d3);
    }
    __m256 best = k[0][0];
    __m256d vlo = lo[0][0], vhi = hi[0][0];
    __m256i off = _mm256_setzero_si256();
    const __m256i offs[3] = {one, w0, w1};
    for (int c = 1; c < 4; ++c) {
      const int r = c >> 1, col = c & 1;
      const __m256 cand = k[r][col];
      // pool_takes: !(cand <= best) && best == best
      const __m256 t = _mm256_and_ps(_mm256_cmp_ps(cand, best, _CMP_NLE_UQ), _mm256_cmp_ps(best, best, _CMP_ORD_Q));
      best = _mm256_blendv_ps(best, cand, t);
      off = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(off), _mm256_castsi256_ps(offs[c - 1]), t));
      // 64-bit masks by duplicating each 32-bit mask (blendv_pd reads the sign bit).
      const __m256d tlo = _mm256_castps_pd(_mm256_permutevar8x32_ps(t, dup_lo));
      const __m256d thi = _mm256_castps_pd(_mm256_permutevar8x32_ps(t, dup_hi));
      vlo = _mm256_blendv_pd(vlo, lo[r][col], tlo);
      vhi = _mm256_blendv_pd(vhi, hi[r][col], thi);
    }
    _mm256_storeu_pd(reinterpret_cast<double*>(out + 2 * j), _mm256_permute4x64_pd(vlo, _MM_SHUFFLE(3, 1, 2, 0)));
    _mm256_storeu_pd(reinterpret_cast<double*>(out + 2 * j + 8), _mm256_permute4x64_pd(vhi, _MM_SHUFFLE(3, 1, 2, 0)));
    const __m256i o = _mm256_permutevar8x32_epi32(off, to_order);
    const __m256i base = _mm256_add_epi64(_mm256_set1_epi64x(first + 2 * j), step);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + j),
                        _mm256_add_epi64(base, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(o))));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + j + 4),
                        _mm256_add_epi64(_mm256_add_epi64(base, _mm256_set1_epi64x(8)),
                                         _mm256_cvtepi32_epi64(_mm256_extracti128_si256(o, 1))));
  }
  if (j < n) row_2x2<float>(r0 + 4 * j, r1 + 4 * j, out + 2 * j, idx + j, n - j, first + 2 * j, W);
}

const bool kHasAvx2 = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
#else
#define BK_HAVE_AVX2_PATH 0
#endif

BK_CLONES void row_2x2_f_generic(const float* r0, const float* r1, float* out, int64_t* idx, index_t n, index_t first,
                                 index_t W) {
  row_2x2<float>(r0, r1, out, idx, n, first, W);
}

void row_2x2_f(const float* r0, const float* r1, float* out, int64_t* idx, index_t n, index_t first, index_t W) {
#if BK_HAVE_AVX2_PATH
  if (kHasAvx2 && W < (index_t(1) << 30)) return row_2x2_c64_avx2(r0, r1, out, idx, n, first, W);
#endif
  row_2x2_f_generic(r0, r1, out, idx, n, first, W);
}
BK_CLONES void row_2x2_d(const double* r0, const double* r1, double* out, int64_t* idx, index_t n, index_t first,
                         index_t W) {
  row_2x2<double>(r0, r1, out, idx, n, first, W);
}
inline void row_2x2_dispatch(const float* r0, const float* r1, float* out, int64_t* idx, index_t n, index_t first,
                             index_t W) {
  row_2x2_f(r0, r1, out, idx, n, first, W);
}
inline void row_2x2_dispatch(const double* r0, const double* r1, double* out, int64_t* idx, index_t n,
                             index_t first, index_t W) {
  row_2x2_d(r0, r1, out, idx, n, first, W);
}

// Any geometry, row oh of one plane. Vectorized ACROSS outputs: for each window position (i, j)
// in row-major order, one SIMD loop over a chunk of outputs updates their running best (a scan
// inside one window would be a serial compare-select chain). Keys start at -inf, which any
// in-bounds element (key >= 0 or NaN) replaces; for each window position only the outputs whose
// column is in bounds are updated, and window rows outside the plane are skipped. Params are copied to locals
// so that the int64 index stores cannot alias them.
constexpr index_t kGeneralChunk = 128;

// Running-best update of outputs q in [qa, qb) with the candidate at column w0 + q * stride of
// the input row `src` (all in bounds). SW > 0 makes the stride a compile-time constant (1 and 2: the common pools),
// so the loop vectorizes with shuffles instead of gathers; SW = 0 takes the stride at run time.
template <typename T, int SW>
__attribute__((always_inline)) inline void update_run(const T* __restrict src, index_t w0, T* __restrict best,
                                                      T* __restrict re, T* __restrict im, index_t* __restrict arg,
                                                      index_t row, index_t qa, index_t qb, index_t stride = SW) {
  const index_t st = SW > 0 ? index_t(SW) : stride;
#pragma omp simd
  for (index_t q = qa; q < qb; ++q) {
    const index_t w = w0 + st * q;
    const T a = src[2 * w], b = src[2 * w + 1];
    const T k = a * a + b * b;
    const bool t = pool_takes(k, best[q]);
    best[q] = t ? k : best[q];
    re[q] = t ? a : re[q];
    im[q] = t ? b : im[q];
    arg[q] = t ? row + w : arg[q];
  }
}

template <typename T>
__attribute__((always_inline)) inline void row_general(const MaxPoolParams<T>& p, const T* __restrict plane,
                                                       T* __restrict out, int64_t* __restrict idx, index_t oh) {
  const index_t H = p.height, W = p.width, OW = p.out_width, kh = p.kh, kw = p.kw, sw = p.sw, pw = p.pw,
                dh = p.dh, dw = p.dw;
  const index_t h0 = oh * p.sh - p.ph;
  const index_t i_lo = h0 < 0 ? (-h0 + dh - 1) / dh : 0;  // window rows inside [0, H): [i_lo, i_hi)
  const index_t i_hi = std::min(kh, h0 < H ? (H - 1 - h0) / dh + 1 : index_t(0));
  T best[kGeneralChunk], re[kGeneralChunk], im[kGeneralChunk];
  index_t arg[kGeneralChunk];
  for (index_t c = 0; c < OW; c += kGeneralChunk) {
    const index_t m = std::min(kGeneralChunk, OW - c);
    for (index_t q = 0; q < m; ++q) {
      best[q] = -std::numeric_limits<T>::infinity();
      re[q] = im[q] = T(0);
      arg[q] = 0;
    }
    for (index_t i = i_lo; i < i_hi; ++i) {
      const index_t row = (h0 + i * dh) * W;
      const T* __restrict src = plane + 2 * row;
      for (index_t j = 0; j < kw; ++j) {
        const index_t wj = c * sw - pw + j * dw;  // input column of output q: wj + q * sw
        // Outputs whose column is inside [0, W): q in [qa, qb); the others skip this position.
        const index_t qa = wj < 0 ? std::min(m, (-wj + sw - 1) / sw) : 0;
        const index_t qb = wj <= W - 1 ? std::min(m, (W - 1 - wj) / sw + 1) : 0;
        if (qa >= qb) continue;
        if (sw == 1) {
          update_run<T, 1>(src, wj, best, re, im, arg, row, qa, qb);
        } else if (sw == 2) {
          update_run<T, 2>(src, wj, best, re, im, arg, row, qa, qb);
        } else {
          update_run<T, 0>(src, wj, best, re, im, arg, row, qa, qb, sw);
        }
      }
    }
    for (index_t q = 0; q < m; ++q) {
      out[2 * (c + q)] = re[q];
      out[2 * (c + q) + 1] = im[q];
      idx[c + q] = arg[q];
    }
  }
}

BK_CLONES void row_general_f(const MaxPoolParams<float>& p, const float* plane, float* out, int64_t* idx, index_t oh) {
  row_general<float>(p, plane, out, idx, oh);
}
BK_CLONES void row_general_d(const MaxPoolParams<double>& p, const double* plane, double* out, int64_t* idx,
                             index_t oh) {
  row_general<double>(p, plane, out, idx, oh);
}
inline void row_general_dispatch(const MaxPoolParams<float>& p, const float* plane, float* out, int64_t* idx,
                                 index_t oh) {
  row_general_f(p, plane, out, idx, oh);
}
inline void row_general_dispatch(const MaxPoolParams<double>& p, const double* plane, double* out, int64_t* idx,
                                 index_t oh) {
  row_general_d(p, plane, out, idx, oh);
}

constexpr index_t kPoolGrain = 4096;  // outputs below which one thread does it all

}  // namespace

template <typename T>
void max_pool2d_forward(const MaxPoolParams<T>& p) {
  const index_t rows = p.planes * p.out_height;
  if (rows == 0 || p.out_width == 0) return;
  // The fast path needs every window fully inside the plane (ceil_mode on odd sizes makes a
  // partial last window, which the general path handles).
  const bool fast = p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 && p.ph == 0 && p.pw == 0 && p.dh == 1 &&
                    p.dw == 1 && 2 * p.out_height <= p.height && 2 * p.out_width <= p.width;
  const index_t plane_in = p.height * p.width, plane_out = p.out_height * p.out_width;
#pragma omp parallel for schedule(static) num_threads(p.num_threads) if (rows * p.out_width > kPoolGrain)
  for (index_t r = 0; r < rows; ++r) {
    const index_t plane = r / p.out_height, oh = r % p.out_height;
    const T* in = p.x + 2 * plane * plane_in;
    T* out = p.out + 2 * (plane * plane_out + oh * p.out_width);
    int64_t* idx = p.indices + plane * plane_out + oh * p.out_width;
    if (fast) {
      const index_t first = 2 * oh * p.width;
      row_2x2_dispatch(in + 2 * first, in + 2 * (first + p.width), out, idx, p.out_width, first, p.width);
    } else {
      row_general_dispatch(p, in, out, idx, oh);
    }
  }
}

// One thread per plane owns that plane of grad_x, so the += of overlapping windows is race-free
// and the summation order is fixed (deterministic). grad_x need not be zeroed by the caller.
template <typename T>
index_t max_pool2d_backward(const MaxPoolParams<T>& p) {
  const index_t plane_in = p.height * p.width, plane_out = p.out_height * p.out_width;
  if (p.planes == 0 || plane_out == 0) return 0;
  index_t bad = 0;
#pragma omp parallel for schedule(static) num_threads(p.num_threads) reduction(+ : bad) if (p.planes * plane_out > kPoolGrain)
  for (index_t plane = 0; plane < p.planes; ++plane) {
    const T* g = p.grad_out + 2 * plane * plane_out;
    const int64_t* idx = p.indices + plane * plane_out;
    T* gx = p.grad_x + 2 * plane * plane_in;
    // Zero the plane here (not in a separate pass): it is still in cache for the scatter.
    std::fill(gx, gx + 2 * plane_in, T(0));
    for (index_t o = 0; o < plane_out; ++o) {
      const index_t i = idx[o];
      if (i < 0 || i >= plane_in) {
        ++bad;
        continue;
      }
      gx[2 * i] += g[2 * o];
      gx[2 * i + 1] += g[2 * o + 1];
    }
  }
  return bad;
}

template void max_pool2d_forward<float>(const MaxPoolParams<float>&);
template void max_pool2d_forward<double>(const MaxPoolParams<double>&);
template index_t max_pool2d_backward<float>(const MaxPoolParams<float>&);
template index_t max_pool2d_backward<double>(const MaxPoolParams<double>&);

}  // namespace cpu
}  // namespace beamkernels
