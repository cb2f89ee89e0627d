// Torch-free CPU Winograd forward and weight gradient of the fused complex convolution (3x3, stride
// 1, dilation 1, one group): F(2x2, 3x3) of Lavin & Gray (CVPR 2016) on complex data, see WinogradParams in conv.h.
//
//   V = B^T d B (d: a 4x4 complex input patch),  U = G w G^T (w: a 3x3 complex tap),
//   M = sum_c U[o, c] . V[c] (16 complex products per channel pair, 4 real FMAs each),
//   Y = A^T M A (a 2x2 output tile), y = act(Y + bias).
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1]  (cross-correlation, as torch's conv2d).
// 36 complex multiplies per 2x2 output tile and channel pair become 16. The products take 4 real
// FMAs, not Gauss's 3 (k1 = Ur (Vr + Vi), k2 = (Ui - Ur) Vr, k3 = (Ur + Ui) Vi): each FMA needs a
// broadcast weight, and AVX2 broadcasts from memory run at ~0.7 per cycle on Zen 3, so Gauss's
// 3 FMAs + 3 broadcasts per product ran 5-20% slower than 4 FMAs + 2 broadcasts (measured on the
// thesis layers L1 and L4, 1 thread, three alternating runs).
//
// Work unit: one sample and one row of output tiles (2 output rows), OpenMP over units. Its 4 input
// rows are copied once into a zero-padded scratch split by part and column parity (so that the
// patches of L consecutive tiles are L consecutive values: SIMD along tiles), V is formed for the
// whole tile row, then for each block of OB output channels the products run in registers (GCC
// vector extensions: L = 8 or 16 lanes, see WinogradParams::lanes) and the 2x2 tiles land in two output
// rows per channel that the fused epilogue's row function turns into y (and z's planes).
//
// Weight gradient (WinogradWeightGradParams in conv.h): dL/dW = G^T [sum over tiles of conj(V) .
// (A dL/dz A^T)] G, always 8 lanes. A unit is a few consecutive tile rows (>= 16 vectors of
// tiles); V and Gz = A dL/dz A^T of its tiles are formed into scratch, then per Winograd point and
// 2 x 2 block of channel pairs the tile sums run in registers along the unit's tiles and are added
// to this thread's lane sums (in T: float for complex64, 5e-7 relative error measured at batch 32,
// 36x144), which are reduced over lanes and threads in double at the end.
#include "cpu/conv_cpu.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

// Vector-extension a * b + c must become one FMA (C++17's ISO mode leaves contraction off in GCC).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#elif defined(__clang__)
#pragma clang fp contract(fast)
#endif

namespace beamkernels {
namespace cpu {
namespace {

constexpr int OB = 4;  // output channels per register block (2 OB accumulators, 2 inputs, 2 broadcasts)

// L tiles per vector (GCC vector extensions): 8 (one AVX2 register of floats) or 16 (one AVX-512
// register), picked by the caller (WinogradParams::lanes, cpu::conv_winograd_max_lanes()).
template <typename T, int L>
struct Vec {
  typedef T type __attribute__((vector_size(L * sizeof(T))));
  typedef std::conditional_t<sizeof(T) == 4, int, long long> mask_elem;
  typedef mask_elem mask __attribute__((vector_size(L * sizeof(T))));
};

// (y0[0], y1[0], y0[1], y1[1], ...): the low half (hi = false) or the high half of the interleave.
template <int L, typename V, typename Mask>
__attribute__((always_inline)) inline V interleave(const V& y0, const V& y1, bool hi) {
  if constexpr (L == 8) {
#if defined(__clang__)
    return hi ? __builtin_shufflevector(y0, y1, 4, 12, 5, 13, 6, 14, 7, 15)
              : __builtin_shufflevector(y0, y1, 0, 8, 1, 9, 2, 10, 3, 11);
#else
    return hi ? __builtin_shuffle(y0, y1, Mask{4, 12, 5, 13, 6, 14, 7, 15})
              : __builtin_shuffle(y0, y1, Mask{0, 8, 1, 9, 2, 10, 3, 11});
#endif
  } else {
    static_assert(L == 16, "8 or 16 lanes");
#if defined(__clang__)
    return hi ? __builtin_shufflevector(y0, y1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
              : __builtin_shufflevector(y0, y1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
#else
    return hi ? __builtin_shuffle(y0, y1, Mask{8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31})
              : __builtin_shuffle(y0, y1, Mask{0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23});
#endif
  }
}

template <typename V, typename T>
__attribute__((always_inline)) inline V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V, typename T>
__attribute__((always_inline)) inline void store(T* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

// Sizes of one unit's scratch (elements): the padded input rows, V of the tile row, the output rows.
struct Layout {
  index_t chunks, txp, sw;  // vectors of L tiles per tile row, their tiles, scratch row stride
  index_t in, v, out;
};
template <int L>
Layout layout(index_t cin, index_t wo) {
  Layout s{};
  const index_t tiles = (wo + 1) / 2;
  s.chunks = (tiles + L - 1) / L;
  s.txp = s.chunks * L;
  s.sw = s.txp + L;  // the patch of tile t reads parity columns t and t + 1 <= txp
  s.in = cin * 4 * 4 * s.sw;  // [C_in][4 rows][part][parity][sw]
  s.v = s.chunks * 16 * cin * 2 * L;  // [chunk][16][C_in][(Vr, Vi)][L]
  s.out = OB * 2 * 2 * 2 * s.txp;  // [OB][2 rows][part][2 txp]
  return s;
}

// U[16][C_in][C_out_padded][2] = (Ur, Ui) of G w G^T; zero for the padding channels.
template <typename T>
std::vector<T> transform_weights(const WinogradParams<T>& p, index_t cout_pad) {
  std::vector<T> u(static_cast<size_t>(16 * p.cin * cout_pad * 2), T(0));
  for (index_t o = 0; o < p.cout; ++o)
    for (index_t c = 0; c < p.cin; ++c) {
      T gw[2][4][4];
      for (int part = 0; part < 2; ++part) {
        T g[3][3], t[4][3];
        for (int i = 0; i < 3; ++i)
          for (int j = 0; j < 3; ++j) g[i][j] = p.weight[2 * (((o * p.cin + c) * 3 + i) * 3 + j) + part];
        for (int j = 0; j < 3; ++j) {  // G g
          t[0][j] = g[0][j];
          t[1][j] = T(0.5) * (g[0][j] + g[1][j] + g[2][j]);
          t[2][j] = T(0.5) * (g[0][j] - g[1][j] + g[2][j]);
          t[3][j] = g[2][j];
        }
        for (int i = 0; i < 4; ++i) {  // (G g) G^T
          gw[part][i][0] = t[i][0];
          gw[part][i][1] = T(0.5) * (t[i][0] + t[i][1] + t[i][2]);
          gw[part][i][2] = T(0.5) * (t[i][0] - t[i][1] + t[i][2]);
          gw[part][i][3] = t[i][2];
        }
      }
      for (int xi = 0; xi < 16; ++xi) {
        const T ur = gw[0][xi / 4][xi % 4], ui = gw[1][xi / 4][xi % 4];
        T* d = u.data() + ((xi * p.cin + c) * cout_pad + o) * 2;
        d[0] = ur, d[1] = ui;
      }
    }
  return u;
}

// The input side of one row of tiles (sample n, tile row ty): x's rows split by part and parity into
// `in`, then V = B^T d B (Vr, Vi vectors) into vb. Channels c_valid <= c < c_pad are
// zero (the weight gradient's register blocks pad C_in). V of chunk q, point xi, channel c goes to
// vb + (q q_stride + xi xi_stride + c) 2 L: [chunk][16][C] for the forward, [16][chunk][C] for the
// weight gradient (its tile sums then stream each point's chunks in order: power-of-two strides
// between chunks mapped them to one L1 set).
template <typename T>
struct InputRows {
  const T* x;     // interleaved, or Re planes with x_im
  const T* x_im;  // Im planes or nullptr
  index_t batch, channel, c_valid, c_pad, h, w, pad_h, pad_w;
};

template <typename T, int L>
__attribute__((always_inline)) inline void transform_input(const InputRows<T>& p, const Layout& s, index_t n,
                                                           index_t ty, T* in, T* vb, index_t q_stride,
                                                           index_t xi_stride) {
  using V = typename Vec<T, L>::type;
  const index_t sw = s.sw;
  // 1. The 4 input rows 2 ty - pad_h + r, zero-padded: in[c][r][part][parity][k] = x[c, row, 2 k + parity - pad_w].
  //    Column ix sits at padded column ix + pad_w: even ix at parity par = pad_w & 1, index pad_w / 2 + ix / 2;
  //    odd ix at parity 1 - par, index pad_w / 2 + par + ix / 2.
  const index_t par = p.pad_w & 1, base = p.pad_w >> 1;
  for (index_t c = 0; c < p.c_pad; ++c)
    for (int r = 0; r < 4; ++r) {
      T* d = in + (c * 4 + r) * 4 * sw;
      std::fill(d, d + 4 * sw, T(0));
      const index_t iy = 2 * ty - p.pad_h + r;
      if (c >= p.c_valid || iy < 0 || iy >= p.h) continue;
      T* __restrict re_e = d + par * sw + base;
      T* __restrict re_o = d + (1 - par) * sw + base + par;
      T* __restrict im_e = re_e + 2 * sw;
      T* __restrict im_o = re_o + 2 * sw;
      const index_t pairs = p.w / 2, off = n * p.batch + c * p.channel;
      if (!p.x_im) {  // interleaved: a 4-way deinterleave (GCC vectorizes the strided loads)
        const T* __restrict row = p.x + off + 2 * iy * p.w;
        for (index_t i = 0; i < pairs; ++i) {
          re_e[i] = row[4 * i];
          im_e[i] = row[4 * i + 1];
          re_o[i] = row[4 * i + 2];
          im_o[i] = row[4 * i + 3];
        }
        if (p.w & 1) re_e[pairs] = row[4 * pairs], im_e[pairs] = row[4 * pairs + 1];
      } else {  // planar: split each part's row by parity
        const T* __restrict rr = p.x + off + iy * p.w;
        const T* __restrict ri = p.x_im + off + iy * p.w;
        for (index_t i = 0; i < pairs; ++i) {
          re_e[i] = rr[2 * i];
          re_o[i] = rr[2 * i + 1];
          im_e[i] = ri[2 * i];
          im_o[i] = ri[2 * i + 1];
        }
        if (p.w & 1) re_e[pairs] = rr[2 * pairs], im_e[pairs] = ri[2 * pairs];
      }
    }
  // 2. V = B^T d B for every chunk of L tiles and every input channel.
  for (index_t q = 0; q < s.chunks; ++q)
    for (index_t c = 0; c < p.c_pad; ++c) {
      V t[2][4][4];
      for (int part = 0; part < 2; ++part) {
        V d[4][4];
        for (int r = 0; r < 4; ++r)
          for (int j = 0; j < 4; ++j)
            d[r][j] = load<V>(in + ((c * 4 + r) * 4 + 2 * part + (j & 1)) * sw + q * L + (j >> 1));
        for (int j = 0; j < 4; ++j) {  // B^T d (rows)
          const V a = d[0][j] - d[2][j], b = d[1][j] + d[2][j], e = d[2][j] - d[1][j], f = d[1][j] - d[3][j];
          d[0][j] = a, d[1][j] = b, d[2][j] = e, d[3][j] = f;
        }
        for (int i = 0; i < 4; ++i) {  // (B^T d) B (columns)
          t[part][i][0] = d[i][0] - d[i][2];
          t[part][i][1] = d[i][1] + d[i][2];
          t[part][i][2] = d[i][2] - d[i][1];
          t[part][i][3] = d[i][1] - d[i][3];
        }
      }
      T* d = vb + (q * q_stride + c) * 2 * L;
      for (int xi = 0; xi < 16; ++xi, d += xi_stride * 2 * L)
        store(d, t[0][xi / 4][xi % 4]), store(d + L, t[1][xi / 4][xi % 4]);
    }
}

// Products and output transform of one block of NB <= OB output channels from ob, for every chunk of
// the tile row: out[o - ob][2 rows][part][2 txp]. The last block of a C_out that is not a multiple of
// OB runs with NB = the remainder (no products for padding channels).
template <typename T, int L, int NB>
__attribute__((always_inline)) inline void block(const WinogradParams<T>& p, const Layout& s, const T* U,
                                                 index_t cout_pad, index_t ob, const T* vb, T* out) {
  using V = typename Vec<T, L>::type;
  using Mask = typename Vec<T, L>::mask;
  const index_t row_len = 2 * s.txp;
  for (index_t q = 0; q < s.chunks; ++q) {
    V m[16][NB][2];
    for (int xi = 0; xi < 16; ++xi) {
      V ar[NB], ai[NB];
      for (int o = 0; o < NB; ++o) ar[o] = V{}, ai[o] = V{};
      const T* v = vb + (q * 16 + xi) * p.cin * 2 * L;
      const T* u = U + (xi * p.cin * cout_pad + ob) * 2;
      for (index_t c = 0; c < p.cin; ++c) {
        const V vr = load<V>(v + 2 * c * L), vi = load<V>(v + (2 * c + 1) * L);
        const T* uc = u + c * cout_pad * 2;
#pragma GCC unroll 4
        for (int o = 0; o < NB; ++o) {
          const T ur = uc[2 * o], ui = uc[2 * o + 1];
          ar[o] += ur * vr;
          ar[o] -= ui * vi;
          ai[o] += ur * vi;
          ai[o] += ui * vr;
        }
      }
      for (int o = 0; o < NB; ++o) m[xi][o][0] = ar[o], m[xi][o][1] = ai[o];
    }
    for (int o = 0; o < NB; ++o)
      for (int part = 0; part < 2; ++part) {
        V r[2][4];
        for (int j = 0; j < 4; ++j) {  // A^T M (rows)
          r[0][j] = m[j][o][part] + m[4 + j][o][part] + m[8 + j][o][part];
          r[1][j] = m[4 + j][o][part] - m[8 + j][o][part] - m[12 + j][o][part];
        }
        for (int dy = 0; dy < 2; ++dy) {  // (A^T M) A (columns), pixels 2 t and 2 t + 1 interleaved
          const V y0 = r[dy][0] + r[dy][1] + r[dy][2], y1 = r[dy][1] - r[dy][2] - r[dy][3];
          T* d = out + ((o * 2 + dy) * 2 + part) * row_len + 2 * q * L;
          store(d, interleave<L, V, Mask>(y0, y1, false));
          store(d + L, interleave<L, V, Mask>(y0, y1, true));
        }
      }
  }
}

// One unit of the forward (sample n, tile row ty).
template <typename T, int L>
__attribute__((always_inline)) inline void unit(const WinogradParams<T>& p, const Layout& s, const T* U,
                                                index_t cout_pad, ConvForwardRowFn<T> row_fn, index_t n, index_t ty,
                                                T* in, T* vb, T* out) {
  static_assert(OB == 4, "block dispatch below");
  const InputRows<T> rows{p.x, p.x_im, p.x_batch, p.x_channel, p.cin, p.cin, p.h, p.w, p.pad_h, p.pad_w};
  transform_input<T, L>(rows, s, n, ty, in, vb, 16 * p.cin, p.cin);
  // 3. Per block of OB output channels: products, output transform, epilogue.
  const index_t row_len = 2 * s.txp;
  for (index_t ob = 0; ob < p.cout; ob += OB) {
    switch (std::min<index_t>(OB, p.cout - ob)) {
      case 1: block<T, L, 1>(p, s, U, cout_pad, ob, vb, out); break;
      case 2: block<T, L, 2>(p, s, U, cout_pad, ob, vb, out); break;
      case 3: block<T, L, 3>(p, s, U, cout_pad, ob, vb, out); break;
      default: block<T, L, 4>(p, s, U, cout_pad, ob, vb, out); break;
    }
    for (index_t o = ob; o < std::min(ob + OB, p.cout); ++o) {
      const T br = p.bias ? p.bias[2 * o] : T(0), bi = p.bias ? p.bias[2 * o + 1] : T(0);
      const T ab = p.act_bias ? p.act_bias[o] : T(0);
      for (int dy = 0; dy < 2; ++dy) {
        const index_t oy = 2 * ty + dy;
        if (oy >= p.ho) break;
        const T* re = out + (((o - ob) * 2 + dy) * 2) * row_len;
        const T* im = re + row_len;
        const index_t pix = (n * p.cout + o) * p.ho * p.wo + oy * p.wo;
        if (p.z) {
          T* zr = p.z + (n * 2 * p.cout + 2 * o) * p.ho * p.wo + oy * p.wo;
          std::memcpy(zr, re, p.wo * sizeof(T));
          std::memcpy(zr + p.ho * p.wo, im, p.wo * sizeof(T));
        }
        row_fn(re, im, p.y + 2 * pix, p.wo, br, bi, ab);
      }
    }
  }
}

// Non-template entry points, so that target_clones applies (GCC does not clone templates): 8 lanes
// cloned for AVX-512, AVX2 and baseline x86-64; 16 lanes compiled for AVX-512 only and called only
// with lanes == 16, which conv_winograd_forward runs only where conv_winograd_max_lanes() found AVX-512.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#define BK_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#else
#define BK_AVX512
#endif
#define BK_WINOGRAD_ENTRY(ATTR, NAME, T, LANES)                                                                  \
  ATTR void NAME(const WinogradParams<T>& p, const Layout& s, const T* U, index_t cout_pad,                     \
                 ConvForwardRowFn<T> row_fn, index_t n, index_t ty, T* in, T* vb, T* out) {                    \
    unit<T, LANES>(p, s, U, cout_pad, row_fn, n, ty, in, vb, out);                                               \
  }
BK_WINOGRAD_ENTRY(BK_CLONES, unit_f8, float, 8)
BK_WINOGRAD_ENTRY(BK_CLONES, unit_d8, double, 8)
BK_WINOGRAD_ENTRY(BK_AVX512, unit_f16, float, 16)
template <typename T>
using UnitFn = void (*)(const WinogradParams<T>&, const Layout&, const T*, index_t, ConvForwardRowFn<T>, index_t,
                        index_t, T*, T*, T*);
UnitFn<float> unit_fn(int lanes, float) { return lanes == 16 ? unit_f16 : unit_f8; }
UnitFn<double> unit_fn(int, double) { return unit_d8; }  // doubles: 8 lanes (WinogradParams::lanes)

// ---- Weight gradient (WinogradWeightGradParams in conv.h) ----
// Register block of the tile sums: WO output x WC input channels, 2 WO WC accumulators over the
// tiles of a unit (8 of AVX2's 16 registers), each step 2 (WO + WC) vector loads and 4 WO WC FMAs
// with no broadcasts. C_in and C_out are padded to the block with zero channels.
constexpr int WO = 2, WC = 2;

struct GradLayout {
  Layout s;               // one tile row's input side, C_in padded
  index_t cin_pad, cout_pad;
  index_t rows;           // tile rows per unit: >= 16 chunks of tiles between accumulator flushes
  index_t v, grow, gz, acc;  // V and Gz of the unit's rows, dL/dz rows of one tile row, lane sums
};
template <int L>
GradLayout grad_layout(index_t cin, index_t cout, index_t wo) {
  GradLayout g{};
  g.cin_pad = (cin + WC - 1) / WC * WC;
  g.cout_pad = (cout + WO - 1) / WO * WO;
  g.s = layout<L>(g.cin_pad, wo);
  g.rows = std::max<index_t>(1, (16 + g.s.chunks - 1) / g.s.chunks);
  g.v = g.rows * g.s.v;
  g.grow = g.cout_pad * 2 * 2 * 2 * g.s.txp;  // [C_out][2 rows][part][parity][txp]
  g.gz = g.rows * g.s.chunks * 16 * g.cout_pad * 2 * L;  // [16][chunk][C_out][(Gr, Gi)][L]
  g.acc = 16 * g.cout_pad * g.cin_pad * 2 * L;  // [16][C_out][C_in][(re, im)][L]
  return g;
}

// A dL/dz_tile A^T of one tile row (sample n, tile row ty) into gzb[16][nq_cap][C_out_pad][2][L];
// tiles past Ho / Wo and the padding channels get zeros (their products then add nothing).
template <typename T, int L>
__attribute__((always_inline)) inline void transform_grad(const WinogradWeightGradParams<T>& p, const GradLayout& g,
                                                          index_t n, index_t ty, T* grow, T* gzb, index_t nq_cap) {
  using V = typename Vec<T, L>::type;
  const index_t txp = g.s.txp, pairs = p.wo / 2;
  for (index_t o = 0; o < g.cout_pad; ++o)
    for (int dy = 0; dy < 2; ++dy)
      for (int part = 0; part < 2; ++part) {
        T* __restrict e = grow + ((o * 2 + dy) * 2 + part) * 2 * txp;  // even columns, then odd
        T* __restrict od = e + txp;
        std::fill(e, e + 2 * txp, T(0));
        const index_t oy = 2 * ty + dy;
        if (o >= p.cout || oy >= p.ho) continue;
        const T* __restrict src = (part ? p.g_im : p.g_re) + n * p.g_batch + o * p.g_channel + oy * p.wo;
        for (index_t i = 0; i < pairs; ++i) e[i] = src[2 * i], od[i] = src[2 * i + 1];
        if (p.wo & 1) e[pairs] = src[2 * pairs];
      }
  const index_t xs = nq_cap * g.cout_pad * 2 * L;  // between Winograd points in gzb
  for (index_t q = 0; q < g.s.chunks; ++q)
    for (index_t o = 0; o < g.cout_pad; ++o)
      for (int part = 0; part < 2; ++part) {
        const T* src = grow + (o * 4 + part) * 2 * txp;  // rows dy at + 4 dy txp, parity dx at + dx txp
        V d[2][2], r[4][2];
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx) d[dy][dx] = load<V>(src + (4 * dy + dx) * txp + q * L);
        for (int dx = 0; dx < 2; ++dx) {  // A d (rows), A = [1 0; 1 1; 1 -1; 0 -1]
          r[0][dx] = d[0][dx];
          r[1][dx] = d[0][dx] + d[1][dx];
          r[2][dx] = d[0][dx] - d[1][dx];
          r[3][dx] = -d[1][dx];
        }
        T* dst = gzb + (q * g.cout_pad + o) * 2 * L + part * L;
        for (int i = 0; i < 4; ++i) {  // (A d) A^T (columns), points xi = 4 i + j
          store(dst, r[i][0]), dst += xs;
          store(dst, r[i][0] + r[i][1]), dst += xs;
          store(dst, r[i][0] - r[i][1]), dst += xs;
          store(dst, -r[i][1]), dst += xs;
        }
      }
}

// One unit: `count` consecutive tile rows from flat row `first` (rows run over (n, ty)); their tile
// sums conj(V) . Gz are added to this thread's lane accumulators acc.
template <typename T, int L>
__attribute__((always_inline)) inline void grad_unit(const WinogradWeightGradParams<T>& p, const GradLayout& g,
                                                     index_t first, index_t count, T* in, T* vb, T* grow, T* gzb,
                                                     T* acc) {
  using V = typename Vec<T, L>::type;
  const index_t tiles_y = (p.ho + 1) / 2, nq_cap = g.rows * g.s.chunks;
  const InputRows<T> rows{p.x, nullptr, 2 * p.cin * p.h * p.w, 2 * p.h * p.w, p.cin, g.cin_pad,
                          p.h, p.w, p.pad_h, p.pad_w};
  for (index_t r = 0; r < count; ++r) {
    const index_t n = (first + r) / tiles_y, ty = (first + r) % tiles_y;
    transform_input<T, L>(rows, g.s, n, ty, in, vb + r * g.s.chunks * g.cin_pad * 2 * L, g.cin_pad, nq_cap * g.cin_pad);
    transform_grad<T, L>(p, g, n, ty, grow, gzb + r * g.s.chunks * g.cout_pad * 2 * L, nq_cap);
  }
  const index_t nq = count * g.s.chunks;  // the rows' chunks are consecutive in vb and gzb
  for (int xi = 0; xi < 16; ++xi)
    for (index_t o = 0; o < g.cout_pad; o += WO)
      for (index_t c = 0; c < g.cin_pad; c += WC) {
        V a[WO][WC][2];
        for (int i = 0; i < WO; ++i)
          for (int j = 0; j < WC; ++j) a[i][j][0] = V{}, a[i][j][1] = V{};
        for (index_t q = 0; q < nq; ++q) {
          const T* gp = gzb + ((xi * nq_cap + q) * g.cout_pad + o) * 2 * L;
          const T* vp = vb + ((xi * nq_cap + q) * g.cin_pad + c) * 2 * L;
          V gr[WO], gi[WO], vr[WC], vi[WC];
          for (int i = 0; i < WO; ++i) gr[i] = load<V>(gp + 2 * i * L), gi[i] = load<V>(gp + (2 * i + 1) * L);
          for (int j = 0; j < WC; ++j) vr[j] = load<V>(vp + 2 * j * L), vi[j] = load<V>(vp + (2 * j + 1) * L);
          for (int i = 0; i < WO; ++i)
            for (int j = 0; j < WC; ++j) {  // Gz conj(V)
              a[i][j][0] += gr[i] * vr[j];
              a[i][j][0] += gi[i] * vi[j];
              a[i][j][1] += gi[i] * vr[j];
              a[i][j][1] -= gr[i] * vi[j];
            }
        }
        for (int i = 0; i < WO; ++i)
          for (int j = 0; j < WC; ++j)
            for (int part = 0; part < 2; ++part) {
              T* d = acc + (((xi * g.cout_pad + o + i) * g.cin_pad + c + j) * 2 + part) * L;
              store(d, load<V>(d) + a[i][j][part]);
            }
      }
}

BK_CLONES void grad_unit_f(const WinogradWeightGradParams<float>& p, const GradLayout& g, index_t first,
                           index_t count, float* in, float* vb, float* grow, float* gzb, float* acc) {
  grad_unit<float, 8>(p, g, first, count, in, vb, grow, gzb, acc);
}
BK_CLONES void grad_unit_d(const WinogradWeightGradParams<double>& p, const GradLayout& g, index_t first,
                           index_t count, double* in, double* vb, double* grow, double* gzb, double* acc) {
  grad_unit<double, 8>(p, g, first, count, in, vb, grow, gzb, acc);
}
inline void run_grad_unit(const WinogradWeightGradParams<float>& p, const GradLayout& g, index_t first,
                          index_t count, float* in, float* vb, float* grow, float* gzb, float* acc) {
  grad_unit_f(p, g, first, count, in, vb, grow, gzb, acc);
}
inline void run_grad_unit(const WinogradWeightGradParams<double>& p, const GradLayout& g, index_t first,
                          index_t count, double* in, double* vb, double* grow, double* gzb, double* acc) {
  grad_unit_d(p, g, first, count, in, vb, grow, gzb, acc);
}

Layout layout_for(int lanes, index_t cin, index_t wo) { return lanes == 16 ? layout<16>(cin, wo) : layout<8>(cin, wo); }

}  // namespace

int conv_winograd_max_lanes() {
  static const int lanes = [] {
    bool avx512 = false;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("fma");
#endif
    // BEAMKERNELS_CPU_WINOGRAD_LANES=8 runs the 8-lane kernels on an AVX-512 CPU too (tests,
    // comparisons); beamkernels/_ext.py rejects values other than 8 and 16 at import.
    const char* env = std::getenv("BEAMKERNELS_CPU_WINOGRAD_LANES");
    if (env && std::atoi(env) == 8) return 8;
    return avx512 ? 16 : 8;
  }();
  return lanes;
}

template <typename T>
void conv_winograd_forward(const WinogradParams<T>& p) {
  const index_t tiles_y = (p.ho + 1) / 2, units = p.n * tiles_y;
  if (units == 0 || p.wo == 0 || p.cout == 0) return;
  // 16 only for float and only on an AVX-512 CPU (elsewhere its instructions would be illegal).
  const int lanes = sizeof(T) == 4 && p.lanes == 16 && conv_winograd_max_lanes() == 16 ? 16 : 8;
  const Layout s = layout_for(lanes, p.cin, p.wo);
  const UnitFn<T> run_unit = unit_fn(lanes, T(0));
  const index_t cout_pad = (p.cout + OB - 1) / OB * OB;
  const std::vector<T> U = transform_weights(p, cout_pad);
  const ConvForwardRowFn<T> row_fn = conv_forward_row_fn(p.act, T(0));
#pragma omp parallel num_threads(p.num_threads) if (units > 1)
  {
    std::vector<T> scratch(static_cast<size_t>(s.in + s.v + s.out));
    T* in = scratch.data();
#pragma omp for schedule(static)
    for (index_t r = 0; r < units; ++r)
      run_unit(p, s, U.data(), cout_pad, row_fn, r / tiles_y, r % tiles_y, in, in + s.in, in + s.in + s.v);
  }
}

index_t conv_winograd_scratch(int lanes, index_t cin, index_t wo) {
  // (the caller passes the lanes it will run: 8 for doubles)
  const Layout s = layout_for(lanes, cin, wo);
  return s.in + s.v + s.out;
}

template <typename T>
void conv_winograd_weight_grad(const WinogradWeightGradParams<T>& p) {
  constexpr int L = 8;  // 16 measured slower for the weight gradient (conv_glue.cpp: winograd_dw)
  const GradLayout g = grad_layout<L>(p.cin, p.cout, p.wo);
  const index_t tiles_y = (p.ho + 1) / 2, rows = p.n * tiles_y, units = (rows + g.rows - 1) / g.rows;
  // dU[16][C_out][C_in][(re, im)]: the threads' lane sums, reduced over threads and lanes in double.
  std::vector<double> du(static_cast<size_t>(16 * p.cout * p.cin * 2), 0.0);
  if (units > 0 && p.wo > 0) {
    const int nt = static_cast<int>(std::max<index_t>(1, std::min<index_t>(p.num_threads, units)));
    std::vector<std::vector<T>> accs(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
      std::vector<T>& acc = accs[omp_get_thread_num()];
      acc.assign(static_cast<size_t>(g.acc), T(0));
      std::vector<T> scratch(static_cast<size_t>(g.s.in + g.v + g.grow + g.gz));
      T* in = scratch.data();
      T* vb = in + g.s.in;
      T* grow = vb + g.v;
      T* gzb = grow + g.grow;
#pragma omp for schedule(static)
      for (index_t u = 0; u < units; ++u)
        run_grad_unit(p, g, u * g.rows, std::min(g.rows, rows - u * g.rows), in, vb, grow, gzb, acc.data());
    }
    for (const std::vector<T>& acc : accs) {
      if (acc.empty()) continue;  // a thread the runtime did not start
      for (int xi = 0; xi < 16; ++xi)
        for (index_t o = 0; o < p.cout; ++o)
          for (index_t c = 0; c < p.cin; ++c)
            for (int part = 0; part < 2; ++part) {
              const T* a = acc.data() + (((xi * g.cout_pad + o) * g.cin_pad + c) * 2 + part) * L;
              double sum = 0;
              for (int l = 0; l < L; ++l) sum += a[l];
              du[((xi * p.cout + o) * p.cin + c) * 2 + part] += sum;
            }
    }
  }
  // dL/dW[o, c] = G^T dU G, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
  for (index_t o = 0; o < p.cout; ++o)
    for (index_t c = 0; c < p.cin; ++c)
      for (int part = 0; part < 2; ++part) {
        double x[4][4], t[3][4];
        for (int xi = 0; xi < 16; ++xi) x[xi / 4][xi % 4] = du[((xi * p.cout + o) * p.cin + c) * 2 + part];
        for (int j = 0; j < 4; ++j) {
          t[0][j] = x[0][j] + 0.5 * (x[1][j] + x[2][j]);
          t[1][j] = 0.5 * (x[1][j] - x[2][j]);
          t[2][j] = 0.5 * (x[1][j] + x[2][j]) + x[3][j];
        }
        for (int i = 0; i < 3; ++i) {
          const double w[3] = {t[i][0] + 0.5 * (t[i][1] + t[i][2]), 0.5 * (t[i][1] - t[i][2]),
                               0.5 * (t[i][1] + t[i][2]) + t[i][3]};
          for (int j = 0; j < 3; ++j)
            p.grad_weight[2 * (((o * p.cin + c) * 3 + i) * 3 + j) + part] = static_cast<T>(w[j]);
        }
      }
}

index_t conv_winograd_weight_grad_scratch(index_t cin, index_t cout, index_t wo) {
  const GradLayout g = grad_layout<8>(cin, cout, wo);
  return g.s.in + g.v + g.grow + g.gz + g.acc;
}

template void conv_winograd_forward<float>(const WinogradParams<float>&);
template void conv_winograd_forward<double>(const WinogradParams<double>&);
template void conv_winograd_weight_grad<float>(const WinogradWeightGradParams<float>&);
template void conv_winograd_weight_grad<double>(const WinogradWeightGradParams<double>&);

}  // namespace cpu
}  // namespace beamkernels
