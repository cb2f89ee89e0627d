// Complex activations: formulas and the params struct, shared by the CPU and CUDA kernels
// (and by the fused conv epilogue). Torch-free. The definitions follow shared/complex-ops.md;
// the pure-PyTorch reference in beamkernels/reference/activation.py is the specification.
//
// Gradients follow PyTorch's convention for complex autograd: for a real loss L and
// z = a + ib, y = u + iv, with upstream G = dL/du + i dL/dv, the input gradient is
//   dL/da + i dL/db = (G_r du/da + G_i dv/da) + i (G_r du/db + G_i dv/db).
#pragma once
#include <cmath>

#include "common.h"

namespace beamkernels {

enum class Activation : int { kNone = 0, kCReLU = 1, kZReLU = 2, kModReLU = 3, kCardioid = 4 };

template <typename T>
struct Cplx {
  T re, im;
};

// Forward of one element. `bias` is modReLU's real bias (ignored by the others).
// Non-differentiable points are defined once, here and in the reference:
//   crelu:    relu'(0) = 0 on each axis.
//   zrelu:    the closed quadrant Re >= 0, Im >= 0 passes (value and gradient 1).
//   modrelu:  0 (value and gradient) where |z| + b <= 0 or z = 0.
//   cardioid: value 0 at z = 0, gradient 0.5 * G there (the mean over directions).
template <Activation A, typename T>
BK_HD Cplx<T> act_forward(T a, T b, T bias) {
  if constexpr (A == Activation::kNone) {
    return {a, b};
  } else if constexpr (A == Activation::kCReLU) {
    return {a > T(0) ? a : T(0), b > T(0) ? b : T(0)};
  } else if constexpr (A == Activation::kZReLU) {
    const bool pass = (a >= T(0)) && (b >= T(0));
    return {pass ? a : T(0), pass ? b : T(0)};
  } else if constexpr (A == Activation::kModReLU) {
    // relu(|z| + b) z / |z| = (1 + b / |z|) z where active.
    const T r = std::sqrt(a * a + b * b);
    const bool active = (r > T(0)) && (r + bias > T(0));
    const T s = active ? T(1) + bias / r : T(0);
    return {s * a, s * b};
  } else {  // kCardioid: 0.5 (1 + cos arg z) z, cos arg z = Re z / |z|.
    const T r = std::sqrt(a * a + b * b);
    const T c = r > T(0) ? a / r : T(0);
    const T s = T(0.5) * (T(1) + c);
    return {s * a, s * b};
  }
}

// Backward of one element: returns dL/dz (PyTorch convention) and, for modReLU, adds the
// element's contribution to dL/dbias into *gbias (d y / d bias = z / |z|).
template <Activation A, typename T>
BK_HD Cplx<T> act_backward(T gr, T gi, T a, T b, T bias, T* gbias) {
  if constexpr (A == Activation::kNone) {
    return {gr, gi};
  } else if constexpr (A == Activation::kCReLU) {
    return {a > T(0) ? gr : T(0), b > T(0) ? gi : T(0)};
  } else if constexpr (A == Activation::kZReLU) {
    const bool pass = (a >= T(0)) && (b >= T(0));
    return {pass ? gr : T(0), pass ? gi : T(0)};
  } else if constexpr (A == Activation::kModReLU) {
    // y = s z, s = 1 + b/r:  dL/dz = s G - b z Re(conj(z) G) / r^3;  dL/db = Re(conj(z) G) / r.
    // Branch-free (selects, no early return) so that the SIMD loops vectorize.
    const T r2 = a * a + b * b;
    const bool nonzero = r2 > T(0);
    const T r = std::sqrt(nonzero ? r2 : T(1));
    const bool active = nonzero && (r + bias > T(0));
    const T inv_r = T(1) / r;
    const T s = T(1) + bias * inv_r;
    const T proj = a * gr + b * gi;  // Re(conj(z) G)
    const T k = bias * proj * inv_r * inv_r * inv_r;
    *gbias += active ? proj * inv_r : T(0);
    return {active ? s * gr - k * a : T(0), active ? s * gi - k * b : T(0)};
  } else {  // kCardioid, c = a / r, P = Re(conj(z) G) / r^3:
    // dL/da = 0.5 (1 + c) G_r + 0.5 b^2 P;  dL/db = 0.5 (1 + c) G_i - 0.5 a b P.
    const T r2 = a * a + b * b;
    const bool nonzero = r2 > T(0);
    const T inv_r = T(1) / std::sqrt(nonzero ? r2 : T(1));
    const T h = nonzero ? T(0.5) * (T(1) + a * inv_r) : T(0.5);
    const T p = nonzero ? T(0.5) * (a * gr + b * gi) * inv_r * inv_r * inv_r : T(0);
    return {h * gr + b * b * p, h * gi - a * b * p};
  }
}

// Elementwise activation over a tensor viewed as [outer, channels, inner] complex elements,
// stored interleaved (re, im) and contiguous. bias (modReLU) has `channels` reals.
template <typename T>
struct ActivationParams {
  Activation act;
  index_t outer, channels, inner;  // numel = outer * channels * inner
  const T* x;                      // interleaved complex input
  const T* grad_out;               // backward only
  const T* bias;                   // modReLU only, else nullptr
  T* out;                          // forward: y; backward: grad_x
  T* grad_bias_partial;            // backward modReLU: [outer, channels] partial sums
  int num_threads;                 // CPU only
};

}  // namespace beamkernels
