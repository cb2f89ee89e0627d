// Emulator shim (tests/cuda_emu) of the WMMA API (nvcuda::wmma) for the TF32 shapes that
// csrc/cuda/conv.cu uses: m16n16k8, fp32 accumulators. Each lane holds the whole tile, in a
// scrambled element order (the lane layout of a real fragment is unspecified, so element-wise code
// cannot depend on it); every call is warp-collective (all 32 lanes, the same pointer and ldm).
// mma_sync reads only the top 19 bits (TF32) of its float inputs, as the tensor cores do, so
// an operand that skipped __float_to_tf32 is truncated instead of rounded, as on the hardware.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "bk_cuda_emu.h"

namespace nvcuda {
namespace wmma {

struct row_major {};
struct col_major {};
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K>
struct FragDims;
template <int M, int N, int K>
struct FragDims<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct FragDims<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct FragDims<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 8, "the emulator models the TF32 m16n16k8 shape only");
  static constexpr int rows = FragDims<Use, M, N, K>::rows, cols = FragDims<Use, M, N, K>::cols;
  static constexpr int num_elements = rows * cols;
  // The tile, element (r, c) at x[slot(r * cols + c)]: a scrambled order, so that code assuming
  // any particular element-to-(row, col) map (undefined in CUDA) gets wrong results here.
  float x[num_elements];
  static constexpr int slot(int i) { return (i * 37 + 11) % num_elements; }
};

inline float __float_to_tf32(float f) {
  // cvt.rna.tf32.f32: round to nearest (ties away from zero) to 10 mantissa bits.
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float tf32_truncate(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u &= 0xffffe000u;
  std::memcpy(&f, &u, 4);
  return f;
}

template <class Use, int M, int N, int K, class T, class L>
void fill_fragment(fragment<Use, M, N, K, T, L>& f, float v) {
  for (int i = 0; i < f.num_elements; ++i) f.x[i] = v;
}

// The hardware's requirements on every load / store: a 256-bit aligned pointer and a leading
// dimension that is a multiple of 16 bytes (4 floats); anything else is undefined on a GPU.
inline void check_tile_address(const float* p, unsigned ldm, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0 || ldm % 4 != 0)
    ::bk_emu::fail(std::string(what) + ": the pointer must be 32-byte aligned and ldm a multiple of 4 floats (got " +
                   std::to_string(reinterpret_cast<uintptr_t>(p) % 32) + " bytes off, ldm " + std::to_string(ldm) + ")");
}

template <class Use, int M, int N, int K, class T, class L>
void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const float* p, unsigned ldm) {
  static_assert(!std::is_same<Use, accumulator>::value, "accumulator loads take a layout");
  check_tile_address(p, ldm, "wmma::load_matrix_sync");
  ::bk_emu::warp_uniform("wmma::load_matrix_sync", reinterpret_cast<uintptr_t>(p), ldm);
  constexpr bool col = std::is_same<L, col_major>::value;
  for (int r = 0; r < f.rows; ++r)
    for (int c = 0; c < f.cols; ++c) f.x[f.slot(r * f.cols + c)] = col ? p[c * ldm + r] : p[r * ldm + c];
}

template <int M, int N, int K, class T>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
  check_tile_address(p, ldm, "wmma::store_matrix_sync");
  ::bk_emu::warp_uniform("wmma::store_matrix_sync", reinterpret_cast<uintptr_t>(p), ldm);
  for (int r = 0; r < f.rows; ++r)
    for (int c = 0; c < f.cols; ++c)
      (layout == mem_col_major ? p[c * ldm + r] : p[r * ldm + c]) = f.x[f.slot(r * f.cols + c)];
}

template <int M, int N, int K, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, precision::tf32, LA>& a,
              const fragment<matrix_b, M, N, K, precision::tf32, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
  ::bk_emu::warp_uniform("wmma::mma_sync", 0, 0);  // all 32 lanes, together
  float out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float s = c.x[c.slot(i * N + j)];
      for (int k = 0; k < K; ++k) s += tf32_truncate(a.x[a.slot(i * K + k)]) * tf32_truncate(b.x[b.slot(k * N + j)]);
      out[d.slot(i * N + j)] = s;
    }
  std::memcpy(d.x, out, sizeof(out));
}

}  // namespace wmma
}  // namespace nvcuda
