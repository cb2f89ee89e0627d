// Fused complex convolution: params structs shared by the CPU and CUDA kernels. Torch-free.
//
// y[n, o, p] = act( sum_{c, i, j} w[o, c, i, j] x[n, g(o) c, s p + d (i, j) - pad] + b[o] )
// on interleaved complex tensors (no conjugation: what torch.nn.functional.conv2d computes).
#pragma once
#include "activation.h"
#include "common.h"

namespace beamkernels {

// CPU formulations (csrc/cpu/conv_glue.cpp): the complex conv is ONE real conv on x's interleaved
// real view [N, C_in, H, 2W] with stride (s_h, 2 s_w), whose planar output [N, 2 C_out, Ho, Wo]
// holds Re z at channel 2o and Im z at channel 2o + 1; or Gauss's three real convs on
// channels-last planes. These passes turn the real convs' outputs into the result:
//   forward:  y = act(z + bias), written interleaved;
//   backward: dL/dz = act'(z)^* grad_y, written for the real convs' backward, with the partial
//             sums of dL/dbias (complex) and of modReLU's dL/dactivation_bias.
template <typename T>
struct ConvEpilogueParams {
  Activation act;
  index_t batch, channels, inner;  // N, C_out, Ho * Wo
  const T* planar;                 // [N, 2 C_out, inner] real, Re at 2o, Im at 2o + 1 (bias not added);
                                   // with z_interleaved: interleaved complex z [N, C_out, inner]
  bool z_interleaved;              // CPU pointwise path: z, and the backward's dL/dz at out, interleaved
  // CPU Gauss forward (k1 non-null): z = (k1 - k3) + i (k1 + k2) from the three real convs' outputs
  // [N, C_out, inner] (or channels-last, see nhwc) instead of planar; z_out (planar layout) receives
  // z when non-null.
  const T* k1;
  const T* k2;
  const T* k3;
  T* z_out;
  const T* bias;                   // interleaved complex [C_out] or nullptr
  const T* act_bias;               // modReLU's real bias [C_out] or nullptr
  const T* grad_out;               // backward: interleaved complex [N, C_out, inner]
  T* out;                          // forward: y interleaved [N, C_out, inner]; backward: dL/dz planes
  T* row_sums;                     // backward: [N * C_out, 3] = (sum Re dL/dz, sum Im dL/dz, dL/dact_bias)
  // backward: where row (n, o)'s planes go, in elements from out: base = n * out_batch + o * out_channel;
  // Re dL/dz at base + out_re, Im at base + out_im, and (out_sum >= 0) Re + Im at base + out_sum.
  // Planar (interleaved formulation): out_batch = 2 C_out inner, out_channel = 2 inner, re 0, im inner.
  // Gauss: three [N, C_out, inner] (or channels-last) planes dk1 = Re + Im, dk2 = Im, dk3' = Re one
  // after the other (out_sum = 0, out_im = plane, out_re = 2 plane).
  index_t out_batch, out_channel, out_re, out_im, out_sum;
  // CPU Gauss on channels-last planes (nhwc): k1..k3 (forward) and the backward's dL/dz planes (at
  // out + out_sum / out_im / out_re; out_batch / out_channel unused) are [N, inner, C_out], and
  // row_sums is [N * tiles * C_out, 3], tiles = ceil(inner / kConvNhwcTile) (sums per pixel tile).
  bool nhwc;
  int num_threads;                 // CPU only
};

// Pixels per tile of the channels-last (nhwc) Gauss passes: each pass transposes a [tile, C] block
// of every plane, which stays in L1/L2 while it is read across channels.
constexpr index_t kConvNhwcTile = 64;

// Gauss backward's dL/dx (CPU): from the data gradients dx1, dx2, dx3' of the 3 real convs (each
// [N, C_in, inner], or channels-last [N, inner, C_in] with nhwc; dk3' = +Re dL/dz, so dx3' = -dx3)
// to interleaved complex dL/dx = (dx2 + dx1) + i (dx1 - dx3') [N, C_in, inner].
template <typename T>
struct GaussCombineParams {
  index_t batch, channels, inner;  // N, C_in, H * W
  bool nhwc;
  const T* dx1;
  const T* dx2;
  const T* dx3;
  T* out;
  int num_threads;
};

// Gauss forward / backward input planes (CPU): interleaved complex x [N, C_in, inner] -> xr, xi,
// xr + xi, each [N, C_in, inner] or, with nhwc, channels-last [N, inner, C_in] (oneDNN's native
// layout: no reorders in its convs).
template <typename T>
struct GaussSplitParams {
  index_t batch, channels, inner;  // N, C_in, H * W
  bool nhwc;
  const T* x;
  T* re;
  T* im;
  T* sum;
  int num_threads;
};

// CPU Winograd forward (csrc/cpu/conv_winograd.cpp): 3x3 kernel, stride 1, dilation 1, one group.
// Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", CVPR 2016): per 2x2 output tile Y = A^T [sum_c (G w G^T) . (B^T d B)] A, 16 complex
// products per input channel instead of 36; the bias and activation epilogue is fused, y written
// interleaved and z (when non-null) as planes.
template <typename T>
struct WinogradParams {
  // Output tiles per SIMD vector (tiles run along the output's width): 8 (an AVX2 register of
  // floats), or 16 for float where cpu::conv_winograd_max_lanes() is 16 (an AVX-512 register).
  // Doubles always run 8 (one zmm register; 16 doubles measured 7-13x slower).
  int lanes;
  Activation act;
  index_t n, cin, h, w, cout, ho, wo;  // ho = h + 2 pad_h - 2, wo = w + 2 pad_w - 2
  index_t pad_h, pad_w;
  // Input channel c of sample n starts at x + n * x_batch + c * x_channel (elements of T): interleaved
  // complex rows of W values (x_im null; the forward's x), or planar (Re rows at x, Im rows at x_im
  // with the same offsets; the backward's dL/dz planes, for dL/dx).
  const T* x;
  const T* x_im;
  index_t x_batch, x_channel;
  const T* weight;    // interleaved complex [C_out, C_in, 3, 3], contiguous
  const T* bias;      // interleaved complex [C_out] or nullptr
  const T* act_bias;  // modReLU's real bias [C_out] or nullptr
  T* y;               // interleaved complex [N, C_out, Ho, Wo]
  T* z;               // planar pre-activation (bias not added) [N, 2 C_out, Ho, Wo] (ConvEpilogueParams::planar) or nullptr
  int num_threads;
};

// CPU Winograd weight gradient of the same convs (3x3, stride 1, dilation 1, one group). The forward
// z_tile = A^T [(G w G^T) . V] A is complex-linear in w, so its adjoint gives (conjugate Wirtinger)
//   dL/dW[o, c] = G^T [ sum over tiles of conj(V[c]) . (A dL/dz_tile[o] A^T) ] G,
// 16 complex products per tile and channel pair, like the forward; the tile sums run in 8 SIMD lanes.
template <typename T>
struct WinogradWeightGradParams {
  index_t n, cin, h, w, cout, ho, wo;  // ho = h + 2 pad_h - 2, wo = w + 2 pad_w - 2
  index_t pad_h, pad_w;
  const T* x;  // interleaved complex [N, C_in, H, W], contiguous
  // dL/dz planes: Re / Im rows of channel o of sample n at g_re / g_im + n * g_batch + o * g_channel
  // (rows of Wo values).
  const T* g_re;
  const T* g_im;
  index_t g_batch, g_channel;
  T* grad_weight;  // interleaved complex [C_out, C_in, 3, 3], written (not accumulated)
  int num_threads;
};

// Direct implicit-GEMM kernels (CUDA): all sizes and strides in elements of the complex tensor
// (a complex element = 2 reals). x [N, C_in, H, W], w [C_out, C_in / groups, kh, kw], y [N, C_out, Ho, Wo].
template <typename T>
struct ConvParams {
  Activation act;
  index_t n, cin, h, w, cout, ho, wo, kh, kw;
  int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
  // 1: the forward GEMM on TF32 tensor cores (float only, sm_80+; PyTorch's default for convs,
  // torch.backends.cudnn.allow_tf32); 0: exact fp32 / fp64 on CUDA cores.
  int tf32;
  const T* x;         // interleaved complex, contiguous
  const T* weight;    // interleaved complex, contiguous
  const T* bias;      // interleaved complex [C_out] or nullptr
  const T* act_bias;  // real [C_out] or nullptr
  T* y;               // forward output (interleaved complex)
  T* z;               // forward: pre-activation output saved for backward (or nullptr)
  // backward
  const T* grad_out;  // dL/dy, interleaved complex [N, C_out, Ho, Wo]
  T* grad_z;          // dL/dz, interleaved complex [N, C_out, Ho, Wo]
  T* grad_x;          // [N, C_in, H, W] or nullptr
  T* grad_weight;     // [C_out, C_in / groups, kh, kw] or nullptr
  T* row_sums;        // [N * C_out, 3] as ConvEpilogueParams
  // backward with tf32 and stride 1: dL/dx is the forward conv of dL/dz with this weight (the
  // conjugated, spatially flipped weight with in/out channels swapped per group, [C_in, C_out /
  // groups, kh, kw]) and padding (k - 1) d - pad, on the tensor-core forward kernel; or nullptr.
  const T* weight_t;
  // backward with tf32: 1 = dL/dW without split-K atomics, bitwise reproducible
  // (torch.use_deterministic_algorithms(True)), 0 = split the reduction for a fuller GPU.
  int deterministic;
};

}  // namespace beamkernels
