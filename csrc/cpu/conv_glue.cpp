// Torch glue for the CPU fused complex convolution.
//
// Formulation (measured fastest on CPU for the thesis layers, see README): x's interleaved real
// view [N, C_in, H, 2W] convolved by ONE real conv (ATen's optimized conv: mkldnn / im2col+GEMM)
// with stride (s_h, 2 s_w), padding (p_h, 2 p_w), dilation (d_h, 1) and the real weight
// [2 C_out, C_in / g, kh, 2 d_w (kw - 1) + 2] whose row 2o holds the taps (Wr, -Wi) and row 2o + 1
// the taps (Wi, Wr) at columns 2 d_w j + {0, 1} (zeros between for d_w > 1). Its planar output
// (Re z at channel 2o, Im z at 2o + 1) goes through our fused bias + activation epilogue
// (csrc/cpu/conv.cpp) straight into interleaved y: no layout copy of x or y. Output channels are
// ordered (o, part) so that a group of the real conv is exactly a group of the complex conv.
// Backward: our prologue applies the activation's derivative and writes the planar dL/dz, then
// ATen's real conv backward gives dL/dx directly in x's interleaved layout (it is the transposed
// conv with the conjugated complex weight) and the real weight gradient, folded back to
// dL/dW = dL/dWr + i dL/dWi.
#include <ATen/Parallel.h>

#include <array>

#include "cpu/conv_cpu.h"
#include "glue.h"

namespace beamkernels {
namespace {

struct Geometry {
  int64_t n, cin, h, w, cout, kh, kw, ho, wo;
};

Geometry check_conv(const char* op, const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                    int64_t activation, const c10::optional<at::Tensor>& act_bias) {
  check_complex(x, op, "x");
  check_complex(weight, op, "weight");
  TORCH_CHECK(x.dim() == 4, "beamkernels.", op, ": argument 'x' must have 4 dims [N, C, H, W], got shape ", x.sizes());
  TORCH_CHECK(weight.dim() == 4, "beamkernels.", op,
              ": argument 'weight' must have 4 dims [C_out, C_in / groups, kh, kw], got shape ", weight.sizes());
  TORCH_CHECK(weight.scalar_type() == x.scalar_type() && weight.device() == x.device(), "beamkernels.", op,
              ": 'weight' (", weight.scalar_type(), " on ", weight.device(), ") must match 'x' (", x.scalar_type(),
              " on ", x.device(), ")");
  TORCH_CHECK(stride.size() == 2 && padding.size() == 2 && dilation.size() == 2, "beamkernels.", op,
              ": stride, padding and dilation must have 2 values each");
  for (int i = 0; i < 2; ++i) {
    TORCH_CHECK(stride[i] >= 1 && dilation[i] >= 1 && padding[i] >= 0, "beamkernels.", op,
                ": stride and dilation must be >= 1 and padding >= 0, got stride=", stride, " padding=", padding,
                " dilation=", dilation);
  }
  Geometry g{x.size(0), x.size(1), x.size(2), x.size(3), weight.size(0), weight.size(2), weight.size(3), 0, 0};
  TORCH_CHECK(groups >= 1 && g.cin % groups == 0 && g.cout % groups == 0, "beamkernels.", op, ": groups=", groups,
              " must divide both the input channels (", g.cin, ") and the output channels (", g.cout, ")");
  TORCH_CHECK(weight.size(1) * groups == g.cin, "beamkernels.", op, ": x has ", g.cin, " channels but weight.shape[1] * groups = ",
              weight.size(1) * groups);
  if (bias.has_value()) {
    check_complex(*bias, op, "bias");
    TORCH_CHECK(bias->scalar_type() == x.scalar_type() && bias->device() == x.device(), "beamkernels.", op,
                ": 'bias' must match x's dtype and device");
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == g.cout, "beamkernels.", op, ": argument 'bias' must have shape [",
                g.cout, "], got ", bias->sizes());
  }
  TORCH_CHECK(activation >= 0 && activation <= 4, "beamkernels.", op, ": activation code must be 0..4, got ", activation);
  TORCH_CHECK(act_bias.has_value() == (activation == static_cast<int64_t>(Activation::kModReLU)), "beamkernels.", op,
              ": 'activation_bias' must be given exactly when the activation is modReLU (code 3)");
  if (act_bias.has_value()) {
    TORCH_CHECK(!act_bias->is_complex() && act_bias->scalar_type() == real_dtype(x), "beamkernels.", op,
                ": argument 'activation_bias' must be a real tensor of dtype ", real_dtype(x), ", got ",
                act_bias->scalar_type());
    TORCH_CHECK(act_bias->dim() == 1 && act_bias->size(0) == g.cout, "beamkernels.", op,
                ": argument 'activation_bias' must have shape [", g.cout, "], got ", act_bias->sizes());
    TORCH_CHECK(act_bias->device() == x.device(), "beamkernels.", op, ": 'activation_bias' is on ", act_bias->device(),
                " but 'x' is on ", x.device());
  }
  const int64_t span_h = dilation[0] * (g.kh - 1) + 1, span_w = dilation[1] * (g.kw - 1) + 1;
  TORCH_CHECK(g.h + 2 * padding[0] >= span_h && g.w + 2 * padding[1] >= span_w, "beamkernels.", op,
              ": the kernel is bigger than the padded input");
  g.ho = (g.h + 2 * padding[0] - span_h) / stride[0] + 1;
  g.wo = (g.w + 2 * padding[1] - span_w) / stride[1] + 1;
  return g;
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

// Backward-data choice (measured, README): with few input channels the strided transposed conv
// that the interleaved formulation needs is ~2x slower in ATen than a stride-1 block-real one
// plus one interleaving copy of dL/dx; with many channels (small images) the interleaved one wins.
bool block_real_dgrad(const Geometry& g, int64_t groups) { return g.cin / groups < 16; }

at::Tensor real_view(const at::Tensor& x) {  // contiguous complex [N, C, H, W] -> real [N, C, H, 2W]
  return at::view_as_real(x).reshape({x.size(0), x.size(1), x.size(2), 2 * x.size(3)});
}

std::tuple<at::Tensor, at::Tensor> complex_conv2d(const at::Tensor& x_in, const at::Tensor& weight,
                                                  const c10::optional<at::Tensor>& bias_in, at::IntArrayRef stride,
                                                  at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                                  int64_t activation, const c10::optional<at::Tensor>& act_bias_in) {
  const char* op = "complex_conv2d";
  const Geometry g = check_conv(op, x_in, weight, bias_in, stride, padding, dilation, groups, activation, act_bias_in);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor real_w = real_weight(weight, dilation[1]);
  at::Tensor planar;
  if (g.n == 0) {
    planar = at::empty({0, 2 * g.cout, g.ho, g.wo}, real_w.options());
  } else {
    planar = at::convolution(real_view(x), real_w, c10::nullopt, {stride[0], 2 * stride[1]}, {padding[0], 2 * padding[1]},
                             {dilation[0], 1}, false, {0, 0}, groups)
                 .contiguous();
  }
  at::Tensor y = at::empty({g.n, g.cout, g.ho, g.wo}, x.options());
  const at::Tensor bias = bias_in.has_value() ? bias_in->contiguous() : at::Tensor();
  const at::Tensor act_bias = act_bias_in.has_value() ? act_bias_in->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_complex_conv2d", [&] {
    ConvEpilogueParams<scalar_t> p{};
    p.act = static_cast<Activation>(activation);
    p.batch = g.n;
    p.channels = g.cout;
    p.inner = g.ho * g.wo;
    p.planar = planar.data_ptr<scalar_t>();
    p.bias = bias.defined() ? reinterpret_cast<const scalar_t*>(bias.data_ptr()) : nullptr;
    p.act_bias = act_bias.defined() ? act_bias.data_ptr<scalar_t>() : nullptr;
    p.out = reinterpret_cast<scalar_t*>(y.data_ptr());
    p.num_threads = at::get_num_threads();
    cpu::conv_epilogue_forward<scalar_t>(p);
  });
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
  TORCH_CHECK(grad_in.scalar_type() == x_in.scalar_type() && grad_in.sizes() == at::IntArrayRef({g.n, g.cout, g.ho, g.wo}),
              "beamkernels.", op, ": 'grad' must be ", x_in.scalar_type(), " of shape [", g.n, ", ", g.cout, ", ", g.ho,
              ", ", g.wo, "], got ", grad_in.scalar_type(), " ", grad_in.sizes());
  TORCH_CHECK(saved.scalar_type() == real_dtype(x_in) && saved.sizes() == at::IntArrayRef({g.n, 2 * g.cout, g.ho, g.wo}),
              "beamkernels.", op, ": 'saved' must be the second output of complex_conv2d, got ", saved.sizes());
  const at::Tensor x = x_in.contiguous(), grad = grad_in.contiguous(), planar = saved.contiguous();
  const at::Tensor bias = bias_in.has_value() ? bias_in->contiguous() : at::Tensor();
  const at::Tensor act_bias = act_bias_in.has_value() ? act_bias_in->contiguous() : at::Tensor();
  at::Tensor grad_planar = at::empty_like(planar);
  at::Tensor row_sums = at::empty({g.n * g.cout, 3}, planar.options());
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_complex_conv2d_backward", [&] {
    ConvEpilogueParams<scalar_t> p{};
    p.act = static_cast<Activation>(activation);
    p.batch = g.n;
    p.channels = g.cout;
    p.inner = g.ho * g.wo;
    p.planar = planar.data_ptr<scalar_t>();
    p.bias = bias.defined() ? reinterpret_cast<const scalar_t*>(bias.data_ptr()) : nullptr;
    p.act_bias = act_bias.defined() ? act_bias.data_ptr<scalar_t>() : nullptr;
    p.grad_out = reinterpret_cast<const scalar_t*>(grad.data_ptr());
    p.out = grad_planar.data_ptr<scalar_t>();
    p.row_sums = row_sums.data_ptr<scalar_t>();
    p.num_threads = at::get_num_threads();
    cpu::conv_epilogue_backward<scalar_t>(p);
  });
  at::Tensor gx = at::empty({0}, x.options()), gw = at::empty({0}, x.options());
  at::Tensor gb = at::empty({0}, x.options()), gab = at::empty({0}, planar.options());
  // dL/dbias = sum over (n, p) of dL/dz; modReLU's dL/dactivation_bias likewise: reduce the rows.
  const at::Tensor sums = row_sums.view({g.n, g.cout, 3}).sum(0);  // [C_out, 3]; zeros when N = 0
  if (output_mask[2] && bias.defined()) gb = at::complex(sums.select(1, 0), sums.select(1, 1));
  if (output_mask[3] && act_bias.defined()) gab = sums.select(1, 2).contiguous();
  if (output_mask[0] || output_mask[1]) {
    const at::Tensor real_w = real_weight(weight, dilation[1]);
    if (g.n == 0) {
      if (output_mask[0]) gx = at::zeros_like(x);
      if (output_mask[1]) gw = at::zeros_like(weight, at::MemoryFormat::Contiguous);
    } else {
      const bool dgrad_block = output_mask[0] && block_real_dgrad(g, groups);
      auto grads = at::convolution_backward(grad_planar, real_view(x), real_w, c10::nullopt, {stride[0], 2 * stride[1]},
                                            {padding[0], 2 * padding[1]}, {dilation[0], 1}, false, {0, 0}, groups,
                                            {output_mask[0] && !dgrad_block, output_mask[1], false});
      if (dgrad_block) {
        // Only the input's shape matters for the data gradient: an uninitialized placeholder.
        const at::Tensor shape_only = at::empty({g.n, 2 * g.cin, g.h, g.w}, planar.options());
        const at::Tensor gxb = std::get<0>(at::convolution_backward(
            grad_planar, shape_only, block_real_weight(weight), c10::nullopt, stride, padding, dilation, false, {0, 0},
            groups, {true, false, false}));
        // planar [N, C_in, 2, H, W] -> interleaved complex [N, C_in, H, W]: one copy.
        gx = at::view_as_complex(gxb.view({g.n, g.cin, 2, g.h, g.w}).permute({0, 1, 3, 4, 2}).contiguous());
      } else if (output_mask[0]) {
        gx = at::view_as_complex(std::get<0>(grads).contiguous().view({g.n, g.cin, g.h, g.w, 2}));
      }
      if (output_mask[1]) gw = complex_weight_grad(std::get<1>(grads), weight, dilation[1]);
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
