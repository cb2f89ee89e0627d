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

// z = r u in polar form, |u| = 1, computed without underflow or overflow: a * a + b * b
// underflows for |z| < 1e-19 in float (and loses bits from 1e-19 down) and overflows above
// 1e19, so z is scaled by an exact power of two `up` when max(|a|, |b|) leaves [2^-50, 2^50]
// (float; [2^-450, 2^450] for double), as hypot does: rs = r up, inv = 1 / rs. nonzero: z != 0
// (else u = 0). r itself is not needed: (r + b) u = z + b u, and b / r = b up inv.
template <typename T>
struct Polar {
  T ua, ub, inv, up, rs2;  // rs2 = rs^2, 0 iff z = 0 (a T, not a bool: keeps the struct in registers)
  BK_HD bool nonzero() const { return rs2 > T(0); }
};
template <typename T>
struct PolarScale;
template <>
struct PolarScale<float> {
  static constexpr float kSmall = 0x1p-50f, kLarge = 0x1p50f, kUp = 0x1p100f, kDown = 0x1p-100f;  // 2^+-100
  static constexpr float kSmall2 = 0x1p-100f, kLarge2 = 0x1p100f;  // |z|^2 safe without scaling
};
template <>
struct PolarScale<double> {
  static constexpr double kSmall = 0x1p-450, kLarge = 0x1p450, kUp = 0x1p600, kDown = 0x1p-600;
  static constexpr double kSmall2 = 0x1p-900, kLarge2 = 0x1p900;
};

// kScaled = false skips the rescaling (up = 1): exact where needs_scaling() is false, which the CPU
// loops check for a whole row first (a cheaper pass; rows that need it are redone scaled).
template <typename T, bool kScaled = true>
BK_HD Polar<T> to_polar(T a, T b) {
  using S = PolarScale<T>;
  const T fa = a < T(0) ? -a : a, fb = b < T(0) ? -b : b;
  const T m = fa > fb ? fa : fb;
  const T up = !kScaled ? T(1) : (m < S::kSmall ? S::kUp : (m > S::kLarge ? S::kDown : T(1)));
  const T as = a * up, bs = b * up;
  const T rs2 = as * as + bs * bs;
  const T rs = std::sqrt(rs2 > T(0) ? rs2 : T(1));
  const T inv = T(1) / rs;
  return {as * inv, bs * inv, inv, up, rs2};
}

// Whether activation A at z needs to_polar's rescaling: |z|^2 outside [kSmall2, kLarge2], z != 0
// (or NaN). Always false for the activations that do not use the polar form.
template <Activation A, typename T>
BK_HD bool needs_scaling(T a, T b) {
  if constexpr (A != Activation::kModReLU && A != Activation::kCardioid) {
    return false;
  } else {
    const T r2 = a * a + b * b;
    return !((r2 >= PolarScale<T>::kSmall2 && r2 <= PolarScale<T>::kLarge2) || (a == T(0) && b == T(0)));
  }
}

// Forward of one element. `bias` is modReLU's real bias (ignored by the others).
// Non-differentiable points are defined once, here and in the reference:
//   crelu:    relu'(0) = 0 on each axis.
//   zrelu:    the closed quadrant Re >= 0, Im >= 0 passes (value and gradient 1).
//   modrelu:  0 (value and gradient) where |z| + b <= 0 or z = 0.
//   cardioid: value 0 at z = 0, gradient 0.5 * G there (the mean over directions).
// modReLU and cardioid are evaluated in polar form, y = f(r, u) u, so that no intermediate
// (b / r, 1 / r^3) overflows or cancels for small |z|.
template <Activation A, typename T, bool kScaled = true>
BK_HD Cplx<T> act_forward(T a, T b, T bias) {
  if constexpr (A == Activation::kNone) {
    return {a, b};
  } else if constexpr (A == Activation::kCReLU) {
    return {a > T(0) ? a : T(0), b > T(0) ? b : T(0)};
  } else if constexpr (A == Activation::kZReLU) {
    const bool pass = (a >= T(0)) && (b >= T(0));
    return {pass ? a : T(0), pass ? b : T(0)};
  } else if constexpr (A == Activation::kModReLU) {
    // relu(|z| + b) z / |z| = (r + b) u = z + b u where active (r + b > 0: 1 + b up inv > 0).
    const Polar<T> z = to_polar<T, kScaled>(a, b);
    const bool active = z.nonzero() && (T(1) + bias * z.up * z.inv > T(0));
    return {active ? a + bias * z.ua : T(0), active ? b + bias * z.ub : T(0)};
  } else {  // kCardioid: 0.5 (1 + cos arg z) z = 0.5 (z + Re z u) (u = 0 at z = 0).
    const Polar<T> z = to_polar<T, kScaled>(a, b);
    return {T(0.5) * (a + a * z.ua), T(0.5) * (b + a * z.ub)};
  }
}

// Backward of one element: returns dL/dz (PyTorch convention) and, for modReLU, adds the
// element's contribution to dL/dbias into *gbias (d y / d bias = u).
// For y = f(r, theta) u, split G along u: p = Re(conj(u) G) (radial), q = Im(conj(u) G)
// (tangential). Then dL/dz = u (df/dr p + i (f q + df/dtheta p) / r): no cancellation, and no
// overflow unless the true gradient overflows (modReLU's s = 1 + b / r for |z| < |b| / FLT_MAX).
template <Activation A, typename T, bool kScaled = true>
BK_HD Cplx<T> act_backward(T gr, T gi, T a, T b, T bias, T* gbias) {
  if constexpr (A == Activation::kNone) {
    return {gr, gi};
  } else if constexpr (A == Activation::kCReLU) {
    return {a > T(0) ? gr : T(0), b > T(0) ? gi : T(0)};
  } else if constexpr (A == Activation::kZReLU) {
    const bool pass = (a >= T(0)) && (b >= T(0));
    return {pass ? gr : T(0), pass ? gi : T(0)};
  } else if constexpr (A == Activation::kModReLU) {
    // f = r + b: df/dr = 1, df/dtheta = 0, so dL/dz = u (p + i s q), s = (r + b) / r;
    // dL/db = p. Branch-free (selects, no early return) so that the SIMD loops vectorize.
    const Polar<T> z = to_polar<T, kScaled>(a, b);
    const bool active = z.nonzero() && (T(1) + bias * z.up * z.inv > T(0));
    const T p = z.ua * gr + z.ub * gi;
    const T q = z.ua * gi - z.ub * gr;
    const T sq = q + (bias * z.up) * (q * z.inv);  // s q, s = 1 + b up inv (0, not NaN, where q = 0)
    *gbias += active ? p : T(0);
    return {active ? z.ua * p - z.ub * sq : T(0), active ? z.ub * p + z.ua * sq : T(0)};
  } else {  // kCardioid: f = 0.5 r (1 + cos theta): df/dr = h = 0.5 (1 + u_a),
    // df/dtheta = -0.5 r sin theta, so dL/dz = u (h p + i (h q - 0.5 u_b p)); 0.5 G at z = 0.
    const Polar<T> z = to_polar<T, kScaled>(a, b);
    const T p = z.ua * gr + z.ub * gi;
    const T q = z.ua * gi - z.ub * gr;
    const T h = T(0.5) * (T(1) + z.ua);
    const T P = h * p, Q = h * q - T(0.5) * z.ub * p;
    return {z.nonzero() ? z.ua * P - z.ub * Q : T(0.5) * gr, z.nonzero() ? z.ub * P + z.ua * Q : T(0.5) * gi};
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
