// Torch glue for the CPU fused complex convolution. Four formulations, by shape (see winograd,
// use_gauss, gauss_nhwc and pointwise below, and the README's conv section):
// - Winograd (forward of 3x3, stride-1, one-group convs on wide enough maps): our own kernel,
//   csrc/cpu/conv_winograd.cpp, with the epilogue fused; its backward is the interleaved or Gauss
//   one, whose dL/dx (for such convs, from the prologue's planar dL/dz) runs on the same kernel and
//   whose dL/dW runs on the Winograd weight-gradient kernel for 4 <= C_in < 16; when those cover
//   every gradient asked for, no real conv runs.
// - Interleaved: x's interleaved real view [N, C_in, H, 2W] convolved by ONE real conv (ATen's
//   optimized conv: oneDNN / im2col+GEMM) with stride (s_h, 2 s_w), padding (p_h, 2 p_w), dilation
//   (d_h, 1) and the real weight [2 C_out, C_in / g, kh, 2 d_w (kw - 1) + 2] whose row 2o holds the
//   taps (Wr, -Wi) and row 2o + 1 the taps (Wi, Wr) at columns 2 d_w j + {0, 1} (zeros between for
//   d_w > 1). Its planar output (Re z at channel 2o, Im z at 2o + 1) goes through our fused bias +
//   activation epilogue (csrc/cpu/conv.cpp) straight into interleaved y: no layout copy of x or y.
//   Output channels are ordered (o, part) so that a group of the real conv is exactly a group of
//   the complex conv. Backward: our prologue applies the activation's derivative and writes the
//   planar dL/dz, then ATen's real conv backward gives the real weight gradient, folded back to
//   dL/dW = dL/dWr + i dL/dWi, and dL/dx (the transposed conv with the conjugated complex weight)
//   from the stride-1 block-real form of the same conv, interleaved by one copy.
// - Gauss (compute-bound layers): three real convs, 3 real MACs per complex MAC, on planes of x
//   written by our split pass, channels-last on large feature maps; backward: our prologue writes
//   Gauss's three dL/dz planes, ATen's real conv backward gives the data and weight gradients, our
//   combine pass interleaves dL/dx.
// - Pointwise (1x1, stride 1, no padding, one group): one batched complex GEMM.
#include <ATen/Parallel.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <array>
#include <cstdint>

#include "conv_glue.h"
#include "cpu/conv_cpu.h"

namespace beamkernels {
namespace {

// A fresh CPU buffer that asks for transparent huge pages before its first touch (THP "madvise"
// mode, the usual default): the large buffers of a conv would otherwise take one page fault per
// 4 KB page on every call (glibc hands out fresh mmap'ed memory above its mmap threshold).
// Measured on L1 with dL/dx (1 thread, batch 32): 6.3k instead of 15.5k minor faults per
// forward+backward, 80-92 instead of 100 ms CPU time.
at::Tensor empty_huge(at::IntArrayRef sizes, const at::TensorOptions& opts) {
  at::Tensor t = at::empty(sizes, opts);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const uintptr_t p = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t lo = (p + kHuge - 1) & ~(kHuge - 1), hi = (p + t.nbytes()) & ~(kHuge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);  // advice only: errors ignored
#endif
  return t;
}

// The fused epilogue's params (forward and backward share them): planar [N, 2 C_out, Ho*Wo]
// pre-activation, complex bias, real modReLU bias.
template <typename T>
ConvEpilogueParams<T> epilogue_params(const Geometry& g, int64_t activation, const at::Tensor& planar,
                                      const at::Tensor& bias, const at::Tensor& act_bias) {
  ConvEpilogueParams<T> p{};
  p.act = static_cast<Activation>(activation);
  p.batch = g.n;
  p.channels = g.cout;
  p.inner = g.ho * g.wo;
  p.planar = planar.numel() > 0 ? planar.data_ptr<T>() : nullptr;  // empty: no activation (z not saved)
  p.bias = bias.defined() ? reinterpret_cast<const T*>(bias.data_ptr()) : nullptr;
  p.act_bias = act_bias.defined() ? act_bias.data_ptr<T>() : nullptr;
  return p;
}

// Complex weight [C_out, Cg, kh, kw] -> real weight of the interleaved formulation (see top).
at::Tensor real_weight(const at::Tensor& weight, int64_t dil_w) {
  const at::Tensor wr = at::real(weight), wi = at::imag(weight);
  at::Tensor re_row = at::stack({wr, -wi}, -1), im_row = at::stack({wi, wr}, -1);  // [C_out, Cg, kh, kw, 2]
  at::Tensor w = at::stack({re_row, im_row}, 1);                                    // [C_out, 2, Cg, kh, kw, 2]
  const int64_t cout = weight.size(0), cg = weight.size(1), kh = weight.size(2), kw = weight.size(3);
  if (dil_w == 1) return w.reshape({2 * cout, cg, kh, 2 * kw}).contiguous();
  at::Tensor big = at::zeros({cout, 2, cg, kh, kw, dil_w, 2}, w.options());
  big.select(5, 0).copy_(w);
  return big.reshape({2 * cout, cg, kh, kw * dil_w * 2}).narrow(3, 0, 2 * dil_w * (kw - 1) + 2).contiguous();
}

// Gradient of the real weight -> dL/dW = dL/dWr + i dL/dWi (chain rule through real_weight).
at::Tensor complex_weight_grad(const at::Tensor& g, const at::Tensor& weight, int64_t dil_w) {
  const int64_t cout = weight.size(0), cg = weight.size(1), kh = weight.size(2), kw = weight.size(3);
  at::Tensor t;
  if (dil_w == 1) {
    t = g.reshape({cout, 2, cg, kh, kw, 2});
  } else {
    t = at::constant_pad_nd(g, {0, kw * dil_w * 2 - g.size(3)}).reshape({cout, 2, cg, kh, kw, dil_w, 2}).select(5, 0);
  }
  const at::Tensor re_row = t.select(1, 0), im_row = t.select(1, 1);
  const at::Tensor gr = re_row.select(-1, 0) + im_row.select(-1, 1);
  const at::Tensor gi = im_row.select(-1, 0) - re_row.select(-1, 1);
  return at::complex(gr, gi);
}

// The same real weight in the block-real layout [2 C_out, 2 Cg, kh, kw] (input channel 2c + q
// for part q of input channel c), for a conv on planar inputs.
at::Tensor block_real_weight(const at::Tensor& weight) {
  const at::Tensor wr = at::real(weight), wi = at::imag(weight);
  at::Tensor re_row = at::stack({wr, -wi}, 2), im_row = at::stack({wi, wr}, 2);  // [C_out, Cg, 2, kh, kw]
  return at::stack({re_row, im_row}, 1).reshape({2 * weight.size(0), 2 * weight.size(1), weight.size(2), weight.size(3)});
}

at::Tensor real_view(const at::Tensor& x) {  // contiguous complex [N, C, H, W] -> real [N, C, H, 2W]
  return at::view_as_real(x).reshape({x.size(0), x.size(1), x.size(2), 2 * x.size(3)});
}

// Formulation by shape. Interleaved: ONE real conv, 4 real MACs per complex MAC, no copy of x.
// Gauss: 3 real convs (3 real MACs per complex MAC) on Re/Im planes split out of x. Measured per
// pass (1 thread, page faults excluded; thesis/U-Net layers at batch 32, AMD EPYC Zen 3): the forward
// is as fast interleaved up to 16 input channels per group (16 -> 16 at 36x144: 37 vs 43 ms) and
// slower from 32; the backward is 5-9% faster with Gauss from 16 (16 -> 16 at 36x144: 119 vs 128 ms
// fwd+bwd) and ties at 5 (L1).
bool use_gauss(const Geometry& g, int64_t groups, bool backward) {
  return g.cin / groups >= (backward ? 16 : 32);
}

// Gauss's planes channels-last (oneDNN's native layout: its convs then reorder neither inputs nor
// outputs, and its NHWC kernels are faster by themselves) on large feature maps; on small ones the
// tile transposes of our passes cost more than they save. Measured fwd+bwd, batch 32, 2 threads,
// AMD EPYC Zen 4 (AVX-512): 16 -> 16 at 36x144 54 vs 68-98 ms, 32 -> 16 at 36x144 75 vs 102-114 ms;
// 18x72 ties; 9x36 and 4x18 ~5% slower channels-last.
constexpr int64_t kNhwcMinPixels = 2048;
bool gauss_nhwc(const Geometry& g) { return g.h * g.w >= kNhwcMinPixels; }

// 1x1 kernel, stride 1, no padding, one group: the conv is a complex matrix product per sample,
// z[n] = W x[n] ([C_out, C_in] @ [C_in, H W]), done as one batched complex GEMM (BLAS cgemm) on the
// interleaved data: no plane split, no layout copy, no real-conv reorders. Measured on the
// complex-unet heads (16 -> 10 channels at 36x144, batch 32, 2 threads): see README (conv table).
bool pointwise(const Geometry& g, at::IntArrayRef stride, at::IntArrayRef padding, int64_t groups) {
  return g.kh == 1 && g.kw == 1 && stride[0] == 1 && stride[1] == 1 && padding[0] == 0 && padding[1] == 0 &&
         groups == 1;
}

// Winograd F(2x2, 3x3) forward (csrc/cpu/conv_winograd.cpp): 3x3, stride 1, dilation 1, one group,
// when a row of 2x2 output tiles fills at least 2/3 of its SIMD vectors: of 16 tiles where the CPU
// has AVX-512 (cpu::conv_winograd_max_lanes()), else of 8. Returns the lanes, 0 for another
// formulation. Its per-thread scratch (input rows and V of one row of tiles, ~100 B x C_in x W_out
// in float) is capped at 2 MB (L2 / L3 sized; the thesis and U-Net layers take 80-460 KB): wider or
// deeper layers keep oneDNN's convs.
// AVX2, 8 lanes, measured forward (modReLU and none, batch 32, 2 threads, steady heap, AMD EPYC Zen 3,
// two alternating runs): thesis L1 5 -> 16 at 36x144 (72 tiles per row: all lanes used) 7.3-9.6 vs
// 11.9-15.3 ms, L2 16 -> 32 at 18x72 (36 of 40 lanes) 8.0-9.3 vs 14.8-18.8 ms, L3 32 -> 64 at 9x36 (18
// of 24) 10.3-11.0 vs 11.3-15.8 ms; L4 64 -> 128 at 4x18 (9 of 16) 11.0-12.8 vs 9.5-13.1 ms: no gain.
// AVX-512 (Intel Xeon, batch 32, 2 threads, steady heap, 12 alternating calls, ms, no activation):
// with 16 lanes, forward / dL/dx against the other formulations 5 -> 16 at 36x144 3.9 / 10.5 vs 5.2 /
// 11.4, 16 -> 16 11.9 / 15.1 vs 16.0 / 16.4, 16 -> 10 9.5 / 10.0 vs 17.0 / 10.9, 32 -> 16 24.8 / 24.0
// vs 28.7 / 26.9; 16 -> 32 at 18x72 5.9 / 8.7 vs 7.6 / 8.0, 32 -> 32 11.7 / 13.2 vs 12.2 / 12.1, 64 -> 32
// 22.5 / 21.7 vs 22.3 / 22.1; and against the 8-lane kernel there (two runs, with modReLU) 1.10-1.24x
// faster forward, 1.00-1.18x dL/dx. Rows that fill 8-lane but not 16-lane vectors lost there with 8
// lanes: 32 -> 64 at 9x36 (18 tiles) 8.2 / 10.3 vs 5.9 / 6.5, 64 -> 64 16.0 / 17.1 vs 10.3 / 11.0,
// 32 -> 32 at 18x40 (20 tiles) 8.1 / 9.1 vs 6.5 / 7.9; so AVX-512 CPUs take no 8-lane fallback.
constexpr int64_t kWinogradMaxScratchBytes = int64_t(2) << 20;
// The fill rule at `lanes` tiles per vector.
bool winograd_fill(const Geometry& g, at::IntArrayRef stride, at::IntArrayRef dilation, int64_t groups, int lanes) {
  if (g.kh != 3 || g.kw != 3 || stride[0] != 1 || stride[1] != 1 || dilation[0] != 1 || dilation[1] != 1 ||
      groups != 1)
    return false;
  const int64_t tiles = (g.wo + 1) / 2;
  return 3 * tiles >= 2 * ((tiles + lanes - 1) / lanes * lanes);
}
int winograd(const Geometry& g, at::IntArrayRef stride, at::IntArrayRef dilation, int64_t groups,
             int64_t elem_bytes) {
  const int l = elem_bytes == 4 ? cpu::conv_winograd_max_lanes() : 8;  // doubles: 8 (WinogradParams::lanes)
  return winograd_fill(g, stride, dilation, groups, l) &&
                 cpu::conv_winograd_scratch(l, g.cin, g.wo) * elem_bytes <= kWinogradMaxScratchBytes
             ? l
             : 0;
}

// dL/dx of such a conv (padding <= 2) is the forward conv of dL/dz with w_t[c, o, i, j] =
// conj(w[o, c, 2 - i, 2 - j]) and padding 2 - pad (the identity tests/ops/test_conv.py checks), run
// on the Winograd kernel straight from the backward prologue's planes when the same rule admits
// that conv (C_out -> C_in channels, output width W) and its transformed weights (16 C_in C_out
// complex) stay within 512 KB in float (C_in C_out <= 4096). Measured (the backward op with dL/dx
// only, batch 32, 2 threads, steady heap, three alternating runs, ms, Winograd vs ATen's convs):
// 5 -> 16 at 36x144 15.5-18.4 vs 20.9-30.6; 16 -> 32 at 18x72 11.5-14.8 vs 16.2-22.6; 32 -> 32 17.9-18.9
// vs 23.7-35.9; 64 -> 32 31.2-33.6 vs 42.8-48.6; at 9x36 32 -> 64 11.8-12.8 vs 12.9-14.4, 64 -> 64
// 20.9-21.5 vs 19.6-33.1, 128 -> 64 (8192 pairs, excluded) 39.2-41.0 vs 35.9-39.1.
constexpr int64_t kWinogradDxMaxChannelPairs = 4096;
int winograd_dx(const Geometry& g, at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                int64_t groups, int64_t elem_bytes) {
  if (padding[0] > 2 || padding[1] > 2 || g.cin * g.cout > kWinogradDxMaxChannelPairs) return 0;
  const Geometry d{g.n, g.cout, g.ho, g.wo, g.cin, g.kh, g.kw, g.h, g.w};
  return winograd(d, stride, dilation, groups, elem_bytes);
}

// dL/dx [N, C_in, H, W] interleaved from dL/dz's real and imaginary planes (rows of Wo values; channel o
// of sample n at n * batch + o * channel elements from re / im).
at::Tensor winograd_dx_from_planes(const at::Tensor& planes, int64_t re_off, int64_t im_off, int64_t batch,
                                   int64_t channel, const at::Tensor& x, const at::Tensor& weight, const Geometry& g,
                                   at::IntArrayRef padding, int lanes) {
  at::Tensor gx = empty_huge({g.n, g.cin, g.h, g.w}, x.options());
  const at::Tensor wt = at::conj_physical(weight.transpose(0, 1).flip({2, 3})).contiguous();  // [C_in, C_out, 3, 3]
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_complex_conv2d_winograd_dx", [&] {
    WinogradParams<scalar_t> p{};
    p.lanes = lanes;
    p.act = Activation::kNone;
    p.n = g.n, p.cin = g.cout, p.h = g.ho, p.w = g.wo, p.cout = g.cin, p.ho = g.h, p.wo = g.w;
    p.pad_h = 2 - padding[0], p.pad_w = 2 - padding[1];
    p.x = planes.data_ptr<scalar_t>() + re_off;
    p.x_im = planes.data_ptr<scalar_t>() + im_off;
    p.x_batch = batch, p.x_channel = channel;
    p.weight = reinterpret_cast<const scalar_t*>(wt.data_ptr());
    p.y = reinterpret_cast<scalar_t*>(gx.data_ptr());
    p.num_threads = at::get_num_threads();
    cpu::conv_winograd_forward<scalar_t>(p);
  });
  return gx;
}

// dL/dW of the same convs on the Winograd weight-gradient kernel (WinogradWeightGradParams in
// csrc/conv.h), from the backward prologue's planes and x, under the forward's fill rule at 8 lanes, in place
// of the interleaved formulation's real conv for 4 <= C_in < 16, with its per-thread scratch (the
// lane sums of 16 C_in C_out products dominate) within the same 2 MB. Measured (the backward op
// with dL/dW only, batch 32, 2 threads, steady heap, Intel Xeon AVX-512, two alternating runs, ms,
// Winograd vs ATen's convs): at 36x144 5 -> 16 8.0-9.1 vs 14.5-14.7, 8 -> 16 10.0-10.1 vs 14.8,
// 8 -> 8 4.9-5.0 vs 7.7, 4 -> 8 3.5-3.6 vs 7.4-7.6, 4 -> 4 2.1 vs 3.3, 8 -> 4 3.4-3.5 vs 3.5; 5 -> 16
// at 18x72 2.0-2.2 vs 3.0-3.1; 12 -> 24 at 18x72 5.8-6.4 vs 8.2-8.6. Below 4 input channels oneDNN
// was faster (3 -> 16 at 36x144 7.7 vs 4.3, 2 -> 8 2.0-2.1 vs 1.7); from 16, where the backward runs
// Gauss's three real convs, those were as fast or faster (after the point-major layout: 16 -> 16 at
// 36x144 15.3-21.8 vs 15.1-23.4, 16 -> 32 at 18x72 9.9-11.7 vs 6.5-8.8, 32 -> 32 at 18x72 11.3-11.7 vs
// 11.3-11.7). Always 8 lanes: 16 measured
// slower (5 -> 16 at 36x144 12.7 vs 9.3-9.5, 8 -> 16 15.1-16.1 vs 10.9-11.7, 4 -> 8 5.2-5.3 vs 3.7-4.2;
// 12 -> 24 at 18x72 6.6-6.7 vs 6.1-6.3).
constexpr int64_t kWinogradDwMinChannels = 4;
bool winograd_dw(const Geometry& g, at::IntArrayRef stride, at::IntArrayRef dilation, int64_t groups,
                 int64_t elem_bytes) {
  if (g.cin < kWinogradDwMinChannels || use_gauss(g, groups, true)) return false;
  return winograd_fill(g, stride, dilation, groups, 8) &&
         cpu::conv_winograd_weight_grad_scratch(g.cin, g.cout, g.wo) * elem_bytes <= kWinogradMaxScratchBytes;
}

// dL/dW [C_out, C_in, 3, 3] from dL/dz's real and imaginary planes (as winograd_dx_from_planes) and x.
at::Tensor winograd_dw_from_planes(const at::Tensor& planes, int64_t re_off, int64_t im_off, int64_t batch,
                                   int64_t channel, const at::Tensor& x, const at::Tensor& weight, const Geometry& g,
                                   at::IntArrayRef padding) {
  at::Tensor gw = at::empty(weight.sizes(), weight.options().memory_format(at::MemoryFormat::Contiguous));
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_complex_conv2d_winograd_dw", [&] {
    WinogradWeightGradParams<scalar_t> p{};
    p.n = g.n, p.cin = g.cin, p.h = g.h, p.w = g.w, p.cout = g.cout, p.ho = g.ho, p.wo = g.wo;
    p.pad_h = padding[0], p.pad_w = padding[1];
    p.x = reinterpret_cast<const scalar_t*>(x.data_ptr());
    p.g_re = planes.data_ptr<scalar_t>() + re_off;
    p.g_im = planes.data_ptr<scalar_t>() + im_off;
    p.g_batch = batch, p.g_channel = channel;
    p.grad_weight = reinterpret_cast<scalar_t*>(gw.data_ptr());
    p.num_threads = at::get_num_threads();
    cpu::conv_winograd_weight_grad<scalar_t>(p);
  });
  return gw;
}

// [3, N, C, H, W] planes in the Gauss layout: contiguous, or channels-last per plane (physically
// [3, N, H, W, C]).
at::Tensor gauss_empty(int64_t n, int64_t c, int64_t h, int64_t w, const at::TensorOptions& opts, bool nhwc) {
  if (!nhwc) return empty_huge({3, n, c, h, w}, opts);
  return empty_huge({3, n, h, w, c}, opts).permute({0, 1, 4, 2, 3});
}
at::MemoryFormat gauss_format(bool nhwc) { return nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous; }

// x's planes for Gauss: [3, N, C_in, H, W] = (xr, xi, xr + xi), one pass over x.
at::Tensor gauss_planes(const at::Tensor& x, bool nhwc) {
  at::Tensor planes = gauss_empty(x.size(0), x.size(1), x.size(2), x.size(3), x.options().dtype(real_dtype(x)), nhwc);
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_gauss_split", [&] {
    GaussSplitParams<scalar_t> p{};
    p.batch = x.size(0), p.channels = x.size(1), p.inner = x.size(2) * x.size(3);
    p.nhwc = nhwc;
    p.x = reinterpret_cast<const scalar_t*>(x.data_ptr());
    p.re = planes.data_ptr<scalar_t>();  // the permuted view starts at the storage's start
    p.im = p.re + x.numel();
    p.sum = p.im + x.numel();
    p.num_threads = at::get_num_threads();
    cpu::gauss_split<scalar_t>(p);
  });
  return planes;
}

// Gauss: k1 = conv(xr + xi, Wr), k2 = conv(xr, Wi - Wr), k3 = conv(xi, Wr + Wi), each [N, C_out, Ho, Wo];
// Re z = k1 - k3, Im z = k1 + k2 is formed by the fused epilogue (conv_epilogue_forward with k1..k3).
std::array<at::Tensor, 3> gauss_forward(const at::Tensor& x, const at::Tensor& weight, at::IntArrayRef stride,
                                        at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, bool nhwc) {
  const at::Tensor planes = gauss_planes(x, nhwc);
  const at::MemoryFormat fmt = gauss_format(nhwc);
  const at::Tensor wr = at::real(weight), wi = at::imag(weight);
  auto conv = [&](const at::Tensor& a, const at::Tensor& w) {
    return at::convolution(a, w.contiguous(fmt), c10::nullopt, stride, padding, dilation, false, {0, 0}, groups)
        .contiguous(fmt);
  };
  return {conv(planes[2], wr), conv(planes[0], wi - wr), conv(planes[1], wr + wi)};
}

// Backward of gauss_forward from dk = [3, N, C_out, Ho, Wo] = (dk1, dk2, dk3') = (gR + gI, gI, gR)
// (written by the fused prologue; dk3 = -gR enters with its sign folded in below): each real
// conv's data and weight gradients, combined to dL/dx = (dx2 + dx1) + i (dx1 - dx3') and
// dL/dW = (d1 - d2 - d3') + i (d2 - d3').
void gauss_backward(const at::Tensor& dk, const at::Tensor& x, const at::Tensor& weight, const Geometry& g,
                    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                    bool need_x, bool need_w, bool nhwc, at::Tensor& gx, at::Tensor& gw) {
  // The planes' values matter only to the weight gradients; dL/dx needs just their shape.
  const at::Tensor planes = need_w ? gauss_planes(x, nhwc)
                                   : gauss_empty(g.n, g.cin, g.h, g.w, x.options().dtype(real_dtype(x)), nhwc);
  const at::MemoryFormat fmt = gauss_format(nhwc);
  const at::Tensor wr = at::real(weight), wi = at::imag(weight);
  auto back = [&](const at::Tensor& d, const at::Tensor& a, const at::Tensor& w) {
    return at::convolution_backward(d, a, w.contiguous(fmt), c10::nullopt, stride, padding, dilation, false, {0, 0},
                                    groups, {need_x, need_w, false});
  };
  auto b1 = back(dk[0], planes[2], wr);
  auto b2 = back(dk[1], planes[0], wi - wr);
  auto b3 = back(dk[2], planes[1], wr + wi);
  if (need_x) {
    gx = empty_huge({g.n, g.cin, g.h, g.w}, x.options());
    const at::Tensor dx1 = std::get<0>(b1).contiguous(fmt), dx2 = std::get<0>(b2).contiguous(fmt),
                     dx3 = std::get<0>(b3).contiguous(fmt);
    AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_gauss_combine", [&] {
      GaussCombineParams<scalar_t> p{};
      p.batch = g.n, p.channels = g.cin, p.inner = g.h * g.w;
      p.nhwc = nhwc;
      p.dx1 = dx1.data_ptr<scalar_t>();
      p.dx2 = dx2.data_ptr<scalar_t>();
      p.dx3 = dx3.data_ptr<scalar_t>();
      p.out = reinterpret_cast<scalar_t*>(gx.data_ptr());
      p.num_threads = at::get_num_threads();
      cpu::gauss_combine<scalar_t>(p);
    });
  }
  if (need_w) {
    const at::Tensor& d1 = std::get<1>(b1);
    const at::Tensor& d2 = std::get<1>(b2);
    const at::Tensor& d3 = std::get<1>(b3);
    gw = at::complex(d1 - d2 - d3, d2 - d3).contiguous();
  }
}

std::tuple<at::Tensor, at::Tensor> complex_conv2d(const at::Tensor& x_in, const at::Tensor& weight,
                                                  const c10::optional<at::Tensor>& bias_in, at::IntArrayRef stride,
                                                  at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                                  int64_t activation, const c10::optional<at::Tensor>& act_bias_in,
                                                  bool save_z) {
  const char* op = "complex_conv2d";
  const Geometry g = check_conv(op, x_in, weight, bias_in, stride, padding, dilation, groups, activation, act_bias_in);
  const at::Tensor x = x_in.contiguous();
  // The backward reads z (with an activation), unless no backward will run.
  const bool need_z = save_z && activation != static_cast<int64_t>(Activation::kNone);
  const at::Tensor bias = bias_in.has_value() ? bias_in->contiguous() : at::Tensor();
  const at::Tensor act_bias = act_bias_in.has_value() ? act_bias_in->contiguous() : at::Tensor();
  at::Tensor planar;
  std::array<at::Tensor, 3> k;  // Gauss's three conv outputs
  const int lanes = g.n > 0 ? winograd(g, stride, dilation, groups, x.element_size() / 2) : 0;
  if (lanes) {
    at::Tensor y = empty_huge({g.n, g.cout, g.ho, g.wo}, x.options());
    at::Tensor z = need_z ? empty_huge({g.n, 2 * g.cout, g.ho, g.wo}, x.options().dtype(real_dtype(x)))
                          : at::empty({0}, x.options().dtype(real_dtype(x)));
    const at::Tensor w = weight.contiguous();
    AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_complex_conv2d_winograd", [&] {
      WinogradParams<scalar_t> p{};
      p.lanes = lanes;
      p.act = static_cast<Activation>(activation);
      p.n = g.n, p.cin = g.cin, p.h = g.h, p.w = g.w, p.cout = g.cout, p.ho = g.ho, p.wo = g.wo;
      p.pad_h = padding[0], p.pad_w = padding[1];
      p.x = reinterpret_cast<const scalar_t*>(x.data_ptr());
      p.x_batch = 2 * g.cin * g.h * g.w, p.x_channel = 2 * g.h * g.w;
      p.weight = reinterpret_cast<const scalar_t*>(w.data_ptr());
      p.bias = bias.defined() ? reinterpret_cast<const scalar_t*>(bias.data_ptr()) : nullptr;
      p.act_bias = act_bias.defined() ? act_bias.data_ptr<scalar_t>() : nullptr;
      p.y = reinterpret_cast<scalar_t*>(y.data_ptr());
      p.z = need_z ? z.data_ptr<scalar_t>() : nullptr;
      p.num_threads = at::get_num_threads();
      cpu::conv_winograd_forward<scalar_t>(p);
    });
    return {y, z};
  }
  if (g.n == 0) {
    planar = at::empty({0, 2 * g.cout, g.ho, g.wo}, x.options().dtype(real_dtype(x)));
  } else if (pointwise(g, stride, padding, groups)) {
    // z interleaved [N, C_out, H W] complex, kept in saved's real shape [N, 2 C_out, Ho, Wo].
    // bmm on the expanded (stride-0) weight: at::matmul(2-D, 3-D) folds through a transposed copy of
    // x instead (measured 5.6 vs 1.8 ms on the heads' 16 -> 10 at 36x144, batch 32).
    const at::Tensor z =
        at::bmm(weight.reshape({g.cout, g.cin}).expand({g.n, g.cout, g.cin}), x.view({g.n, g.cin, g.h * g.w}))
            .contiguous();
    planar = at::view_as_real(z).view({g.n, 2 * g.cout, g.ho, g.wo});
  } else if (use_gauss(g, groups, false)) {
    k = gauss_forward(x, weight, stride, padding, dilation, groups, gauss_nhwc(g));
    // z's planes only when saved for the backward; the epilogue writes them.
    planar = need_z ? empty_huge({g.n, 2 * g.cout, g.ho, g.wo}, k[0].options()) : at::empty({0}, k[0].options());
  } else {
    planar = at::convolution(real_view(x), real_weight(weight, dilation[1]), c10::nullopt, {stride[0], 2 * stride[1]},
                             {padding[0], 2 * padding[1]}, {dilation[0], 1}, false, {0, 0}, groups)
                 .contiguous();
  }
  at::Tensor y = empty_huge({g.n, g.cout, g.ho, g.wo}, x.options());
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_complex_conv2d", [&] {
    auto p = epilogue_params<scalar_t>(g, activation, planar, bias, act_bias);
    p.z_interleaved = g.n > 0 && pointwise(g, stride, padding, groups);
    if (k[0].defined()) {
      p.k1 = k[0].data_ptr<scalar_t>(), p.k2 = k[1].data_ptr<scalar_t>(), p.k3 = k[2].data_ptr<scalar_t>();
      p.z_out = need_z ? planar.data_ptr<scalar_t>() : nullptr;
      p.nhwc = gauss_nhwc(g);
    }
    p.out = reinterpret_cast<scalar_t*>(y.data_ptr());
    p.num_threads = at::get_num_threads();
    cpu::conv_epilogue_forward<scalar_t>(p);
  });
  // Without an activation the backward needs no z: return an empty saved, so the buffer is freed now
  // instead of living until the backward (one conv output's worth of memory per layer).
  if (!need_z) return {y, at::empty({0}, x.options().dtype(real_dtype(x)))};
  return {y, planar};
}

// Returns (grad_x, grad_weight, grad_bias, grad_activation_bias); an output not asked for in
// output_mask (or whose input is absent) is an empty tensor.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> complex_conv2d_backward(
    const at::Tensor& grad_in, const at::Tensor& x_in, const at::Tensor& weight, const c10::optional<at::Tensor>& bias_in,
    const at::Tensor& saved, at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
    int64_t activation, const c10::optional<at::Tensor>& act_bias_in, std::array<bool, 4> output_mask) {
  const char* op = "complex_conv2d_backward";
  const Geometry g = check_conv(op, x_in, weight, bias_in, stride, padding, dilation, groups, activation, act_bias_in);
  check_conv_backward(op, g, grad_in, saved, x_in, activation);
  const at::Tensor x = x_in.contiguous(), grad = grad_in.contiguous(), planar = saved.contiguous();
  const at::Tensor bias = bias_in.has_value() ? bias_in->contiguous() : at::Tensor();
  const at::Tensor act_bias = act_bias_in.has_value() ? act_bias_in->contiguous() : at::Tensor();
  // The fused prologue writes dL/dz where the convs' backward reads it: planar [N, 2 C_out, Ho, Wo]
  // for the interleaved formulation, Gauss's three planes (gR + gI, gI, gR), [N, C_out, Ho, Wo] or
  // channels-last.
  const bool point = g.n > 0 && pointwise(g, stride, padding, groups);
  const int64_t elem = x.element_size() / 2;
  // The Winograd kernels' candidates; when they cover every gradient asked for, no real conv runs
  // and the prologue writes the interleaved formulation's planes.
  // (wdx: its SIMD lanes, 0 when not taken)
  const int wdx = !point && g.n > 0 && output_mask[0] ? winograd_dx(g, stride, padding, dilation, groups, elem) : 0;
  const bool wdw = !point && g.n > 0 && output_mask[1] && winograd_dw(g, stride, dilation, groups, elem);
  const bool all_winograd = (!output_mask[0] || wdx) && (!output_mask[1] || wdw);
  const bool gauss = !point && g.n > 0 && (output_mask[0] || output_mask[1]) && !all_winograd &&
                     use_gauss(g, groups, true);
  const bool nhwc = gauss && gauss_nhwc(g);
  const int64_t inner = g.ho * g.wo;
  at::Tensor grad_planar = gauss ? gauss_empty(g.n, g.cout, g.ho, g.wo, x.options().dtype(real_dtype(x)), nhwc)
                                 : empty_huge({g.n, 2 * g.cout, g.ho, g.wo}, x.options().dtype(real_dtype(x)));
  // Partial sums per (n, o) row, or per (n, pixel tile, o) with channels-last planes.
  const int64_t sum_rows = g.n * (nhwc ? (inner + kConvNhwcTile - 1) / kConvNhwcTile : 1);
  at::Tensor row_sums = at::empty({sum_rows * g.cout, 3}, planar.options());
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_complex_conv2d_backward", [&] {
    auto p = epilogue_params<scalar_t>(g, activation, planar, bias, act_bias);
    p.grad_out = reinterpret_cast<const scalar_t*>(grad.data_ptr());
    p.out = grad_planar.data_ptr<scalar_t>();
    p.row_sums = row_sums.data_ptr<scalar_t>();
    p.z_interleaved = point;
    p.nhwc = nhwc;
    if (gauss) {
      const int64_t plane = g.n * g.cout * inner;
      p.out_batch = g.cout * inner, p.out_channel = inner, p.out_sum = 0, p.out_im = plane, p.out_re = 2 * plane;
    } else {
      p.out_batch = 2 * g.cout * inner, p.out_channel = 2 * inner, p.out_re = 0, p.out_im = inner, p.out_sum = -1;
    }
    p.num_threads = at::get_num_threads();
    cpu::conv_epilogue_backward<scalar_t>(p);
  });
  at::Tensor gx = at::empty({0}, x.options()), gw = at::empty({0}, x.options());
  at::Tensor gb = at::empty({0}, x.options()), gab = at::empty({0}, planar.options());
  // dL/dbias = sum over (n, p) of dL/dz; modReLU's dL/dactivation_bias likewise: reduce the rows.
  const at::Tensor sums = row_sums.view({sum_rows, g.cout, 3}).sum(0);  // [C_out, 3]; zeros when N = 0
  if (output_mask[2] && bias.defined()) gb = at::complex(sums.select(1, 0), sums.select(1, 1));
  if (output_mask[3] && act_bias.defined()) gab = sums.select(1, 2).contiguous();
  if (output_mask[0] || output_mask[1]) {
    if (g.n == 0) {
      if (output_mask[0]) gx = at::zeros_like(x);
      if (output_mask[1]) gw = at::zeros_like(weight, at::MemoryFormat::Contiguous);
    } else if (point) {
      // z = W x per sample: dL/dx = W^H dL/dz, dL/dW = sum_n dL/dz[n] x[n]^H (conjugate Wirtinger).
      const at::Tensor gz = at::view_as_complex(grad_planar.view({g.n, g.cout, g.ho * g.wo, 2}));
      const at::Tensor w2 = weight.reshape({g.cout, g.cin});
      if (output_mask[0]) gx = at::bmm(w2.mH().expand({g.n, g.cin, g.cout}), gz).contiguous().view({g.n, g.cin, g.h, g.w});
      if (output_mask[1]) {
        gw = at::matmul(gz, x.view({g.n, g.cin, g.h * g.w}).mH()).sum(0).view({g.cout, g.cin, 1, 1});
      }
    } else if (gauss) {
      // dL/dx on the Winograd kernel from Gauss's planes (dk3' = Re dL/dz, dk2 = Im dL/dz) unless
      // they are channels-last, or from the three real convs' data gradients; dL/dW from the latter
      // (winograd_dw leaves Gauss's channel counts to them).
      const bool gdx = output_mask[0] && !(wdx && !nhwc);
      if (output_mask[0] && !gdx) {
        const int64_t plane = g.n * g.cout * inner;
        gx = winograd_dx_from_planes(grad_planar, 2 * plane, plane, g.cout * inner, inner, x, weight, g, padding, wdx);
      }
      if (gdx || output_mask[1])
        gauss_backward(grad_planar, x, weight, g, stride, padding, dilation, groups, gdx, output_mask[1], nhwc, gx, gw);
    } else {
      // dL/dW on the Winograd kernel or from the interleaved formulation's real conv; dL/dx on the
      // Winograd kernel or from a stride-1 block-real backward-data conv (measured single-threaded: as
      // fast as the interleaved one's strided transposed conv for many channels, 1.4-2.7x faster for
      // few channels or a small batch).
      if (wdw) {
        gw = winograd_dw_from_planes(grad_planar, 0, inner, 2 * g.cout * inner, 2 * inner, x, weight, g, padding);
      } else if (output_mask[1]) {
        const at::Tensor gwr = std::get<1>(at::convolution_backward(
            grad_planar, real_view(x), real_weight(weight, dilation[1]), c10::nullopt, {stride[0], 2 * stride[1]},
            {padding[0], 2 * padding[1]}, {dilation[0], 1}, false, {0, 0}, groups, {false, true, false}));
        gw = complex_weight_grad(gwr, weight, dilation[1]);
      }
      if (wdx) {
        gx = winograd_dx_from_planes(grad_planar, 0, inner, 2 * g.cout * inner, 2 * inner, x, weight, g, padding, wdx);
      } else if (output_mask[0]) {
        // Only the input's shape matters for the data gradient: an uninitialized placeholder.
        const at::Tensor shape_only = at::empty({g.n, 2 * g.cin, g.h, g.w}, planar.options());
        const at::Tensor gxb = std::get<0>(at::convolution_backward(
            grad_planar, shape_only, block_real_weight(weight), c10::nullopt, stride, padding, dilation, false, {0, 0},
            groups, {true, false, false}));
        // planar [N, C_in, 2, H, W] -> interleaved complex [N, C_in, H, W]: one copy.
        gx = at::view_as_complex(gxb.view({g.n, g.cin, 2, g.h, g.w}).permute({0, 1, 3, 4, 2}).contiguous());
      }
    }
  }
  return {gx, gw, gb, gab};
}

}  // namespace

TORCH_LIBRARY_IMPL(beamkernels, CPU, m) {
  m.impl("complex_conv2d", &complex_conv2d);
  m.impl("complex_conv2d_backward", &complex_conv2d_backward);
}

}  // namespace beamkernels
