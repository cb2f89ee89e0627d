// Shared torch glue of the fused complex convolution (CPU and CUDA): argument checks and the
// output geometry. Only glue files include this (it includes torch).
#pragma once
#include "conv.h"
#include "glue.h"

namespace beamkernels {

struct Geometry {
  int64_t n, cin, h, w, cout, kh, kw, ho, wo;
};

inline Geometry check_conv(const char* op, const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
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
  // (0 % groups == 0 would let zero channels through to kernels that index a channel)
  TORCH_CHECK(g.cin > 0 && g.cout > 0, "beamkernels.", op, ": x and weight need at least one channel, got ", g.cin,
              " input channels (x.shape[1]) and ", g.cout, " output channels (weight.shape[0])");
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

// The backward's grad (like y) and saved buffer (the forward's second output: planar real
// [N, 2 C_out, Ho, Wo], the pre-activation without bias, on every backend).
inline void check_conv_backward(const char* op, const Geometry& g, const at::Tensor& grad, const at::Tensor& saved,
                                const at::Tensor& x, int64_t activation) {
  TORCH_CHECK(grad.scalar_type() == x.scalar_type() && grad.device() == x.device() &&
                  grad.sizes() == at::IntArrayRef({g.n, g.cout, g.ho, g.wo}),
              "beamkernels.", op, ": 'grad' must be ", x.scalar_type(), " of shape [", g.n, ", ", g.cout, ", ", g.ho,
              ", ", g.wo, "] on ", x.device(), ", got ", grad.scalar_type(), " ", grad.sizes());
  // Without an activation the forward returns an empty saved (the backward needs no z).
  const bool empty_ok = activation == static_cast<int64_t>(Activation::kNone) && saved.numel() == 0;
  TORCH_CHECK(saved.scalar_type() == real_dtype(x) && saved.device() == x.device() &&
                  (empty_ok || saved.sizes() == at::IntArrayRef({g.n, 2 * g.cout, g.ho, g.wo})),
              "beamkernels.", op, ": 'saved' must be the second output of complex_conv2d, got ", saved.sizes());
}

}  // namespace beamkernels
