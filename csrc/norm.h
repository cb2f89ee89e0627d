// Whitening batch-norm (Trabelsi et al. 2018, sec. 3.5): the per-channel 2x2 algebra and the
// params struct, shared by the CPU and CUDA kernels. Torch-free. Spec:
// beamkernels/reference/norm.py; definitions: shared/complex-ops.md.
//
// Per channel, with d = (Re x - m_r, Im x - m_i), V = E[d d^T] + eps I, W = V^(-1/2),
// G symmetric (weight), beta (bias):   y = G W d + beta = A (x - m) + beta,  A = G W
// (x - m is formed first, in the input precision, so a large mean does not cancel A x - A m).
//
// Backward (PyTorch's convention: for complex y, grad = dL/dRe y + i dL/dIm y, a real 2-vector g
// per element), n values per channel, sums over the channel:
//   gbias = sum g;   M = sum g d^T (2x2);   dL/dG = M W, so gweight = (MW_00, MW_01 + MW_10, MW_11).
//   Eval (statistics are constants): dL/dx = K g with K = W G.
//   Training (statistics depend on x):
//     dL/dW = Ag = G M.  With S = V^(1/2), W = S^-1: dW = -W dS W and S dS + dS S = dV, so
//     dL/dV = C where S C + C S = B, B = -W Ag W. For 2x2 SPD S (det S = s = sqrt(det V),
//     tr S = t), adj(S) = s W and the Sylvester solution is C = (B + s W B W) / (2 t).
//     V = (1/n) sum d d^T, sum d = 0  =>  dL/dx = K (g - mean g) + P d,  P = (C + C^T) / n.
//   So the backward is one reduction (gbias, M) and one affine pass gx = K g + P (x - m) + q,
//   q = -K mean(g).
#pragma once
#include <cmath>

#include "common.h"

namespace beamkernels {

// x viewed as [outer = N, channels = C, inner = prod(spatial)] interleaved complex, contiguous.
// Statistics: mean [C, 2] (re, im), cov [C, 3] (Vrr, Vri, Vii, biased, without eps);
// weight [C, 3] (g_rr, g_ri, g_ii) or nullptr (G = I); bias [C, 2] or nullptr.
template <typename T>
struct BatchNormParams {
  index_t outer, channels, inner;
  const T* x;
  const T* grad_out;   // backward only
  T* out;              // forward: y; backward: grad_x
  const T* mean_in;    // eval forward / backward: the statistics used
  const T* cov_in;
  T* mean_out;         // training forward: batch statistics written here
  T* cov_out;
  const T* weight;
  const T* bias;
  T* grad_weight;      // backward: [C, 3]
  T* grad_bias;        // backward: [C, 2]
  double eps;
  bool training;       // forward: compute batch statistics; backward: include their gradient
  int num_threads;     // CPU only
};

// W = (V + eps I)^(-1/2) for V = (vrr, vri, vii); also s = sqrt(det), t = sqrt(tr + 2 s).
struct InvSqrt2x2 {
  double wrr, wri, wii, s, t;
};

BK_HD InvSqrt2x2 inv_sqrt_2x2(double vrr, double vri, double vii, double eps) {
  vrr += eps;
  vii += eps;
  double det = vrr * vii - vri * vri;
  det = det > 0.0 ? det : 0.0;  // rounding can make a singular V's det -0; eps > 0 keeps it > 0
  const double s = sqrt(det);
  const double t = sqrt(vrr + vii + 2.0 * s);
  const double inv = 1.0 / (s * t);
  return {(vii + s) * inv, -vri * inv, (vrr + s) * inv, s, t};
}

// Forward coefficients of y = A (x - m) + beta for one channel: a[0..3] = A row-major, a[4..5] = beta.
BK_HD void bn_forward_coefs(double vrr, double vri, double vii, const double* g,
                            const double* b, double eps, double* a) {
  const InvSqrt2x2 w = inv_sqrt_2x2(vrr, vri, vii, eps);
  double grr = 1.0, gri = 0.0, gii = 1.0;
  if (g) {
    grr = g[0];
    gri = g[1];
    gii = g[2];
  }
  a[0] = grr * w.wrr + gri * w.wri;
  a[1] = grr * w.wri + gri * w.wii;
  a[2] = gri * w.wrr + gii * w.wri;
  a[3] = gri * w.wri + gii * w.wii;
  a[4] = b ? b[0] : 0.0;
  a[5] = b ? b[1] : 0.0;
}

// Backward of one channel. sums = (sum g_r, sum g_i, M_rr, M_ri, M_ir, M_ii) with M = sum g d^T
// (d centred at the mean used). Writes gw[3], gb[2] and k[9]: gx = K g + P (x - m) + q with
// K = k[0..3] row-major, P = [[k4, k5], [k5, k6]] (symmetric), q = (k7, k8).
BK_HD void bn_backward_coefs(const double* sums, double n, double vrr, double vri, double vii,
                             const double* g, double eps, bool training, double* gw, double* gb, double* k) {
  const InvSqrt2x2 w = inv_sqrt_2x2(vrr, vri, vii, eps);
  double grr = 1.0, gri = 0.0, gii = 1.0;
  if (g) {
    grr = g[0];
    gri = g[1];
    gii = g[2];
  }
  const double m00 = sums[2], m01 = sums[3], m10 = sums[4], m11 = sums[5];
  gb[0] = sums[0];
  gb[1] = sums[1];
  // dL/dG = M W (W symmetric).
  const double mw00 = m00 * w.wrr + m01 * w.wri, mw01 = m00 * w.wri + m01 * w.wii;
  const double mw10 = m10 * w.wrr + m11 * w.wri, mw11 = m10 * w.wri + m11 * w.wii;
  gw[0] = mw00;
  gw[1] = mw01 + mw10;
  gw[2] = mw11;
  // K = W G.
  const double k00 = w.wrr * grr + w.wri * gri, k01 = w.wrr * gri + w.wri * gii;
  const double k10 = w.wri * grr + w.wii * gri, k11 = w.wri * gri + w.wii * gii;
  k[0] = k00;
  k[1] = k01;
  k[2] = k10;
  k[3] = k11;
  if (!training || n <= 0.0) {
    k[4] = k[5] = k[6] = k[7] = k[8] = 0.0;
    return;
  }
  // Ag = G M; B = -W Ag W; C = (B + s W B W) / (2 t); P = (C + C^T) / n.
  const double a00 = grr * m00 + gri * m10, a01 = grr * m01 + gri * m11;
  const double a10 = gri * m00 + gii * m10, a11 = gri * m01 + gii * m11;
  // T1 = W Ag
  const double t00 = w.wrr * a00 + w.wri * a10, t01 = w.wrr * a01 + w.wri * a11;
  const double t10 = w.wri * a00 + w.wii * a10, t11 = w.wri * a01 + w.wii * a11;
  // B = -T1 W
  const double b00 = -(t00 * w.wrr + t01 * w.wri), b01 = -(t00 * w.wri + t01 * w.wii);
  const double b10 = -(t10 * w.wrr + t11 * w.wri), b11 = -(t10 * w.wri + t11 * w.wii);
  // U = W B W
  const double u00_ = w.wrr * b00 + w.wri * b10, u01_ = w.wrr * b01 + w.wri * b11;
  const double u10_ = w.wri * b00 + w.wii * b10, u11_ = w.wri * b01 + w.wii * b11;
  const double u00 = u00_ * w.wrr + u01_ * w.wri, u01 = u00_ * w.wri + u01_ * w.wii;
  const double u10 = u10_ * w.wrr + u11_ * w.wri, u11 = u10_ * w.wri + u11_ * w.wii;
  const double f = 1.0 / (2.0 * w.t);
  const double c00 = (b00 + w.s * u00) * f, c01 = (b01 + w.s * u01) * f;
  const double c10 = (b10 + w.s * u10) * f, c11 = (b11 + w.s * u11) * f;
  const double p00 = 2.0 * c00 / n, p01 = (c01 + c10) / n, p11 = 2.0 * c11 / n;
  k[4] = p00;
  k[5] = p01;
  k[6] = p11;
  // q = -K mean(g).
  const double gr = sums[0] / n, gi = sums[1] / n;
  k[7] = -(k00 * gr + k01 * gi);
  k[8] = -(k10 * gr + k11 * gi);
}

}  // namespace beamkernels
