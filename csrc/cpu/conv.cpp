// Torch-free CPU passes of the fused complex convolution: the bias + activation epilogue that
// turns the real convs' output (planar, or Gauss's three channels-last planes) into interleaved
// complex y, the backward prologue that applies the activation's derivative and writes dL/dz for
// the real convs' backward (with bias-gradient partial sums), and Gauss's split of x into
// channels-last planes and combine of the data gradients. One pass each over the data; OpenMP over
// rows or pixel tiles, SIMD along rows (multiversioned like csrc/cpu/activation.cpp), 8 x 8 AVX2
// register transposes between the interleaved NCHW tensors and the channels-last planes.
#include "cpu/conv_cpu.h"

#include <omp.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <vector>

namespace beamkernels {
namespace cpu {
namespace {

// One row: re/im parts of z (element stride S: 1 for planes, 2 for interleaved z) of length n ->
// interleaved y = act(z + b).
// Each loop first runs without the polar form's rescaling and redoes the row with it only when an
// element needs it (tiny or huge |z|; csrc/activation.h needs_scaling): `bad` flags that.
template <Activation A, int S, typename T, bool kScaled>
__attribute__((always_inline)) inline int fwd_row_pass(const T* __restrict re, const T* __restrict im,
                                                      T* __restrict y, index_t n, T br, T bi, T ab) {
  int bad = 0;
#pragma omp simd reduction(| : bad)
  for (index_t i = 0; i < n; ++i) {
    const T zr = re[S * i] + br, zi = im[S * i] + bi;
    const Cplx<T> v = act_forward<A, T, kScaled>(zr, zi, ab);
    y[2 * i] = v.re;
    y[2 * i + 1] = v.im;
    if (!kScaled) bad |= static_cast<int>(needs_scaling<A, T>(zr, zi));
  }
  return bad;
}

template <Activation A, int S, typename T>
__attribute__((always_inline)) inline void fwd_row(const T* __restrict re, const T* __restrict im, T* __restrict y,
                                                   index_t n, T br, T bi, T ab) {
  if (fwd_row_pass<A, S, T, false>(re, im, y, n, br, bi, ab)) fwd_row_pass<A, S, T, true>(re, im, y, n, br, bi, ab);
}

// One row of Gauss's forward: the three real convs' outputs -> Re z = k1 - k3, Im z = k1 + k2 ->
// interleaved y = act(z + b), writing the planes of z (the backward's saved) with Z.
template <Activation A, bool Z, typename T, bool kScaled>
__attribute__((always_inline)) inline int fwd_gauss_row_pass(const T* __restrict k1, const T* __restrict k2,
                                                            const T* __restrict k3, T* __restrict y,
                                                            T* __restrict zre, T* __restrict zim, index_t n, T br,
                                                            T bi, T ab) {
  int bad = 0;
#pragma omp simd reduction(| : bad)
  for (index_t i = 0; i < n; ++i) {
    const T re = k1[i] - k3[i], im = k1[i] + k2[i];
    if (Z) {
      zre[i] = re;
      zim[i] = im;
    }
    const Cplx<T> v = act_forward<A, T, kScaled>(re + br, im + bi, ab);
    y[2 * i] = v.re;
    y[2 * i + 1] = v.im;
    if (!kScaled) bad |= static_cast<int>(needs_scaling<A, T>(re + br, im + bi));
  }
  return bad;
}

template <Activation A, bool Z, typename T>
__attribute__((always_inline)) inline void fwd_gauss_row(const T* __restrict k1, const T* __restrict k2,
                                                         const T* __restrict k3, T* __restrict y, T* __restrict zre,
                                                         T* __restrict zim, index_t n, T br, T bi, T ab) {
  if (fwd_gauss_row_pass<A, Z, T, false>(k1, k2, k3, y, zre, zim, n, br, bi, ab))
    fwd_gauss_row_pass<A, false, T, true>(k1, k2, k3, y, zre, zim, n, br, bi, ab);  // z is written already
}

// One row: interleaved grad_y, z (bias not added; element stride S as in fwd_row) -> dL/dz with
// the same stride (and, with Sum, Re + Im dL/dz: Gauss's dk1); accumulates the row sums.
template <Activation A, bool Sum, int S, typename T, bool kScaled>
__attribute__((always_inline)) inline int bwd_loop_pass(const T* __restrict g, const T* __restrict re,
                                                       const T* __restrict im, T* __restrict gre, T* __restrict gim,
                                                       T* __restrict gsum, index_t n, T br, T bi, T ab, T* sums) {
  T sr = T(0), si = T(0), sb = T(0);
  int bad = 0;
#pragma omp simd reduction(+ : sr, si, sb) reduction(| : bad)
  for (index_t i = 0; i < n; ++i) {
    T local = T(0);
    // Without an activation z is not read (nor saved: re / im are null).
    const T zr = A != Activation::kNone ? re[S * i] + br : T(0), zi = A != Activation::kNone ? im[S * i] + bi : T(0);
    const Cplx<T> v = act_backward<A, T, kScaled>(g[2 * i], g[2 * i + 1], zr, zi, ab, &local);
    gre[S * i] = v.re;
    gim[S * i] = v.im;
    if (Sum) gsum[i] = v.re + v.im;
    sr += v.re;
    si += v.im;
    sb += local;
    if (!kScaled) bad |= static_cast<int>(needs_scaling<A, T>(zr, zi));
  }
  sums[0] = sr;
  sums[1] = si;
  sums[2] = sb;
  return bad;
}

template <Activation A, bool Sum, int S, typename T>
__attribute__((always_inline)) inline void bwd_loop(const T* __restrict g, const T* __restrict re,
                                                    const T* __restrict im, T* __restrict gre, T* __restrict gim,
                                                    T* __restrict gsum, index_t n, T br, T bi, T ab, T* sums) {
  if (bwd_loop_pass<A, Sum, S, T, false>(g, re, im, gre, gim, gsum, n, br, bi, ab, sums))
    bwd_loop_pass<A, Sum, S, T, true>(g, re, im, gre, gim, gsum, n, br, bi, ab, sums);
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
    if (zre) fwd_gauss_row<A, true, T>(k1, k2, k3, y, zre, zim, n, br, bi, ab);                              \
    else fwd_gauss_row<A, false, T>(k1, k2, k3, y, zre, zim, n, br, bi, ab);                                 \
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

}  // namespace

ConvForwardRowFn<float> conv_forward_row_fn(Activation a, float) { return conv_row_fns(a, 0.f).fwd; }
ConvForwardRowFn<double> conv_forward_row_fn(Activation a, double) { return conv_row_fns(a, 0.0).fwd; }

namespace {

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

// ---- Channels-last (nhwc) Gauss planes, in tiles of kConvNhwcTile pixels. The epilogue and the
// prologue transpose each tile through a per-thread scratch [3][C][kConvNhwcTile] so that the row
// functions above run unchanged on contiguous rows; split and combine transpose 8 x 8 blocks in
// registers (AVX2; scalar for double and at the edges).
namespace {

// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols.
template <typename T>
inline void transpose_scalar(const T* __restrict src, index_t lds, T* __restrict dst, index_t ldd, index_t rows,
                             index_t cols) {
  constexpr index_t B = 8;  // 8 x 8 blocks: both sides touch 8 cache lines at a time
  for (index_t i0 = 0; i0 < rows; i0 += B)
    for (index_t j0 = 0; j0 < cols; j0 += B)
      for (index_t i = i0; i < std::min(rows, i0 + B); ++i)
        for (index_t j = j0; j < std::min(cols, j0 + B); ++j) dst[j * ldd + i] = src[i * lds + j];
}

#if defined(__x86_64__) && defined(__GNUC__)
// In-register 8 x 8 float transpose (rows r[0..7] -> columns).
__attribute__((target("avx2"), always_inline)) inline void transpose8(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]),
               t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]),
               t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]),
               t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
               u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
               u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
               u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20), r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20), r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31), r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31), r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Strided 8 x 8 blocks through transpose8; scalar edges.
__attribute__((target("avx2"))) void transpose_f32_avx2(const float* src, index_t lds, float* dst, index_t ldd,
                                                        index_t rows, index_t cols) {
  const index_t r8 = rows & ~index_t(7), c8 = cols & ~index_t(7);
  for (index_t i = 0; i < r8; i += 8)
    for (index_t j = 0; j < c8; j += 8) {
      __m256 r[8];
      for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(src + (i + k) * lds + j);
      transpose8(r);
      for (int k = 0; k < 8; ++k) _mm256_storeu_ps(dst + (j + k) * ldd + i, r[k]);
    }
  if (c8 < cols) transpose_scalar(src + c8, lds, dst + c8 * ldd, ldd, r8, cols - c8);  // right edge
  if (r8 < rows) transpose_scalar(src + r8 * lds, lds, dst + r8, ldd, rows - r8, cols);  // bottom edge
}
#endif

inline void transpose(const float* src, index_t lds, float* dst, index_t ldd, index_t rows, index_t cols) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return transpose_f32_avx2(src, lds, dst, ldd, rows, cols);
#endif
  transpose_scalar(src, lds, dst, ldd, rows, cols);
}
inline void transpose(const double* src, index_t lds, double* dst, index_t ldd, index_t rows, index_t cols) {
  transpose_scalar(src, lds, dst, ldd, rows, cols);
}

// Fused split / combine for one tile (no scratch): x / out interleaved rows of sample n starting
// at pixel lo (row c at 2 c inner), planes pixel-major starting at pixel lo (pixel p at p C).
// Elements [c0, c1) x [p0, p1) of the tile, scalar (edges, double).
template <typename T>
inline void split_tile_scalar(const T* x, index_t inner, T* re, T* im, T* sum, index_t C, index_t c0, index_t c1,
                              index_t p0, index_t p1) {
  for (index_t c = c0; c < c1; ++c)
    for (index_t q = p0; q < p1; ++q) {
      const T a = x[2 * (c * inner + q)], b = x[2 * (c * inner + q) + 1];
      re[q * C + c] = a, im[q * C + c] = b, sum[q * C + c] = a + b;
    }
}
template <typename T>
inline void combine_tile_scalar(const T* dx1, const T* dx2, const T* dx3, T* out, index_t inner, index_t C, index_t c0,
                                index_t c1, index_t p0, index_t p1) {
  for (index_t c = c0; c < c1; ++c)
    for (index_t q = p0; q < p1; ++q) {
      out[2 * (c * inner + q)] = dx2[q * C + c] + dx1[q * C + c];
      out[2 * (c * inner + q) + 1] = dx1[q * C + c] - dx3[q * C + c];
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
// 8 channels x 8 pixels per block: deinterleave each channel's 8 complex values, transpose the
// re / im / re + im blocks, store 8 channels per pixel.
__attribute__((target("avx2"))) void split_tile_f32_avx2(const float* x, index_t inner, float* re, float* im,
                                                         float* sum, index_t C, index_t len) {
  const index_t c8 = C & ~index_t(7), l8 = len & ~index_t(7);
  for (index_t c = 0; c < c8; c += 8)
    for (index_t q = 0; q < l8; q += 8) {
      __m256 vr[8], vi[8], vs[8];
      for (int k = 0; k < 8; ++k) {
        const float* row = x + 2 * ((c + k) * inner + q);
        const __m256 a = _mm256_loadu_ps(row), b = _mm256_loadu_ps(row + 8);
        // shuffle gives 64-bit pairs (0,1)(4,5)(2,3)(6,7); permute4x64 0xD8 restores pixel order
        vr[k] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
        vi[k] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
        vs[k] = _mm256_add_ps(vr[k], vi[k]);
      }
      transpose8(vr), transpose8(vi), transpose8(vs);
      for (int k = 0; k < 8; ++k) {
        const index_t o = (q + k) * C + c;
        _mm256_storeu_ps(re + o, vr[k]), _mm256_storeu_ps(im + o, vi[k]), _mm256_storeu_ps(sum + o, vs[k]);
      }
    }
  split_tile_scalar(x, inner, re, im, sum, C, 0, c8, l8, len);  // pixel edge
  split_tile_scalar(x, inner, re, im, sum, C, c8, C, 0, len);   // channel edge
}

// Inverse: transpose 8 pixels x 8 channels of each dx plane, combine, interleave re / im.
__attribute__((target("avx2"))) void combine_tile_f32_avx2(const float* dx1, const float* dx2, const float* dx3,
                                                           float* out, index_t inner, index_t C, index_t len) {
  const index_t c8 = C & ~index_t(7), l8 = len & ~index_t(7);
  for (index_t c = 0; c < c8; c += 8)
    for (index_t q = 0; q < l8; q += 8) {
      __m256 a[8], b[8], d[8];
      for (int k = 0; k < 8; ++k) {
        const index_t o = (q + k) * C + c;
        a[k] = _mm256_loadu_ps(dx1 + o), b[k] = _mm256_loadu_ps(dx2 + o), d[k] = _mm256_loadu_ps(dx3 + o);
      }
      transpose8(a), transpose8(b), transpose8(d);
      for (int k = 0; k < 8; ++k) {
        const __m256 vr = _mm256_add_ps(b[k], a[k]), vi = _mm256_sub_ps(a[k], d[k]);
        const __m256 lo = _mm256_unpacklo_ps(vr, vi), hi = _mm256_unpackhi_ps(vr, vi);
        float* row = out + 2 * ((c + k) * inner + q);
        _mm256_storeu_ps(row, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(row + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
      }
    }
  combine_tile_scalar(dx1, dx2, dx3, out, inner, C, 0, c8, l8, len);
  combine_tile_scalar(dx1, dx2, dx3, out, inner, C, c8, C, 0, len);
}
#endif

inline void split_tile(const float* x, index_t inner, float* re, float* im, float* sum, index_t C, index_t len) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return split_tile_f32_avx2(x, inner, re, im, sum, C, len);
#endif
  split_tile_scalar(x, inner, re, im, sum, C, 0, C, 0, len);
}
inline void split_tile(const double* x, index_t inner, double* re, double* im, double* sum, index_t C, index_t len) {
  split_tile_scalar(x, inner, re, im, sum, C, 0, C, 0, len);
}
inline void combine_tile(const float* dx1, const float* dx2, const float* dx3, float* out, index_t inner, index_t C,
                         index_t len) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return combine_tile_f32_avx2(dx1, dx2, dx3, out, inner, C, len);
#endif
  combine_tile_scalar(dx1, dx2, dx3, out, inner, C, 0, C, 0, len);
}
inline void combine_tile(const double* dx1, const double* dx2, const double* dx3, double* out, index_t inner,
                         index_t C, index_t len) {
  combine_tile_scalar(dx1, dx2, dx3, out, inner, C, 0, C, 0, len);
}

}  // namespace

// fn(n, t, lo, len, scratch) for each pixel tile t = [lo, lo + len) of each sample n, OpenMP over
// (n, t); scratch: this thread's planes * channels * kConvNhwcTile elements.
template <typename T, typename Fn>
void for_tiles(index_t batch, index_t inner, index_t channels, int planes, int num_threads, index_t grain, Fn&& fn) {
  const index_t tiles = (inner + kConvNhwcTile - 1) / kConvNhwcTile, total = batch * tiles;
  if (total == 0 || channels == 0) return;
#pragma omp parallel num_threads(num_threads) if (total > 1 && total * kConvNhwcTile * channels > grain)
  {
    std::vector<T> scratch(static_cast<size_t>(planes * channels * kConvNhwcTile));
#pragma omp for schedule(static)
    for (index_t r = 0; r < total; ++r) {
      const index_t n = r / tiles, t = r % tiles, lo = t * kConvNhwcTile;
      fn(n, t, lo, std::min(kConvNhwcTile, inner - lo), scratch.data());
    }
  }
}

template <typename T>
void conv_epilogue_forward(const ConvEpilogueParams<T>& p) {
  const ConvRowFns<T> fns = conv_row_fns(p.act, T(0));
  if (p.k1 && p.nhwc) {  // Gauss, k1..k3 channels-last: transpose a tile of each, then the rows as
                         // usual; z's planes written only with an activation
    const index_t C = p.channels, L = kConvNhwcTile;
    for_tiles<T>(p.batch, p.inner, C, 3, p.num_threads, kConvEpilogueGrain,
                 [&](index_t n, index_t, index_t lo, index_t len, T* s) {
      const index_t src = (n * p.inner + lo) * C;
      transpose(p.k1 + src, C, s, L, len, C);
      transpose(p.k2 + src, C, s + C * L, L, len, C);
      transpose(p.k3 + src, C, s + 2 * C * L, L, len, C);
      for (index_t o = 0; o < C; ++o) {
        const T br = p.bias ? p.bias[2 * o] : T(0), bi = p.bias ? p.bias[2 * o + 1] : T(0);
        T* zre = p.z_out ? p.z_out + (n * 2 * C + 2 * o) * p.inner + lo : nullptr;
        fns.fwd_gauss(s + o * L, s + (C + o) * L, s + (2 * C + o) * L, p.out + 2 * ((n * C + o) * p.inner + lo), zre,
                      zre ? zre + p.inner : nullptr, len, br, bi, p.act_bias ? p.act_bias[o] : T(0));
      }
    });
    return;
  }
  for_rows(p, [&](index_t r, index_t, index_t, index_t plane, T br, T bi, T ab) {
    if (p.k1) {  // Gauss on [N, C_out, inner] planes
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
  if (p.nhwc) {  // Gauss, dL/dz planes channels-last: the rows into scratch, then transpose each plane
    const index_t C = p.channels, L = kConvNhwcTile, tiles = (p.inner + L - 1) / L;
    for_tiles<T>(p.batch, p.inner, C, 3, p.num_threads, kConvEpilogueGrain,
                 [&](index_t n, index_t t, index_t lo, index_t len, T* s) {
      for (index_t o = 0; o < C; ++o) {
        const T br = p.bias ? p.bias[2 * o] : T(0), bi = p.bias ? p.bias[2 * o + 1] : T(0);
        const T* zre = p.planar ? p.planar + (n * 2 * C + 2 * o) * p.inner + lo : nullptr;
        // scratch planes in the output's order: (sum, im, re) at out_sum < out_im < out_re
        fns.bwd(p.grad_out + 2 * ((n * C + o) * p.inner + lo), zre, zre ? zre + p.inner : nullptr, s + (2 * C + o) * L,
                s + (C + o) * L, s + o * L, len, br, bi, p.act_bias ? p.act_bias[o] : T(0),
                p.row_sums + 3 * ((n * tiles + t) * C + o));
      }
      T* dst = p.out + (n * p.inner + lo) * C;
      transpose(s, L, dst + p.out_sum, C, C, len);
      transpose(s + C * L, L, dst + p.out_im, C, C, len);
      transpose(s + 2 * C * L, L, dst + p.out_re, C, C, len);
    });
    return;
  }
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

// Split / combine are memory-bound: parallel only with enough elements per thread.
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
  const index_t C = p.channels;
  if (!p.nhwc) {
    for_chunks(p.batch * C * p.inner, p.num_threads,
               [&](index_t lo, index_t n) { combine(p.dx1 + lo, p.dx2 + lo, p.dx3 + lo, p.out + 2 * lo, n); });
    return;
  }
  for_tiles<T>(p.batch, p.inner, C, 0, p.num_threads, kGaussGrain, [&](index_t n, index_t, index_t lo, index_t len, T*) {
    const index_t src = (n * p.inner + lo) * C;
    combine_tile(p.dx1 + src, p.dx2 + src, p.dx3 + src, p.out + 2 * (n * C * p.inner + lo), p.inner, C, len);
  });
}

template <typename T>
void gauss_split(const GaussSplitParams<T>& p) {
  const index_t C = p.channels;
  if (!p.nhwc) {
    const index_t size = p.batch * C * p.inner;
    for_chunks(size, p.num_threads, [&](index_t lo, index_t n) { split(p.x + 2 * lo, p.re + lo, p.im + lo, p.sum + lo, n); });
    return;
  }
  for_tiles<T>(p.batch, p.inner, C, 0, p.num_threads, kGaussGrain, [&](index_t n, index_t, index_t lo, index_t len, T*) {
    const index_t dst = (n * p.inner + lo) * C;
    split_tile(p.x + 2 * (n * C * p.inner + lo), p.inner, p.re + dst, p.im + dst, p.sum + dst, C, len);
  });
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
