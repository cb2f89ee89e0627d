// Torch glue for the activation kernels, shared by the CPU and CUDA backends: validation, params,
// dtype dispatch, the modReLU bias-gradient reduction. A backend supplies
//   struct Backend { template <class T> static void forward(ActivationParams<T>&);
//                    template <class T> static void backward(ActivationParams<T>&);
//                    static int64_t chunks_per_row(int64_t inner); };
#pragma once
#include <ATen/DeviceGuard.h>

#include "activation.h"
#include "glue.h"

namespace beamkernels {

inline void check_activation_bias(const at::Tensor& x, const at::Tensor& bias, const char* op) {
  TORCH_CHECK(x.dim() >= 2, "beamkernels.", op, ": argument 'x' must have a channel dimension (dim 1), got shape ",
              x.sizes());
  TORCH_CHECK(bias.scalar_type() == real_dtype(x), "beamkernels.", op, ": argument 'bias' must be a real tensor of dtype ",
              real_dtype(x), " to match x (", x.scalar_type(), "), got ", bias.scalar_type());
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == x.size(1), "beamkernels.", op,
              ": argument 'bias' must have shape [", x.size(1), "] (one value per channel of x), got ", bias.sizes());
  TORCH_CHECK(bias.device() == x.device(), "beamkernels.", op, ": argument 'bias' is on ", bias.device(),
              " but 'x' is on ", x.device());
}

// x viewed as [outer, channels, inner]: per-channel bias (modReLU) needs the channel axis, the
// others treat x as one flat row.
template <typename T>
ActivationParams<T> activation_params(Activation act, const at::Tensor& x, const at::Tensor* bias) {
  ActivationParams<T> p{};
  p.act = act;
  if (bias) {
    p.outer = x.size(0);
    p.channels = x.size(1);
    p.inner = p.outer * p.channels == 0 ? 0 : x.numel() / (p.outer * p.channels);
    p.bias = bias->data_ptr<T>();
  } else {
    p.outer = 1;
    p.channels = 1;
    p.inner = x.numel();
  }
  p.x = reinterpret_cast<const T*>(x.data_ptr());
  return p;
}

template <typename Backend>
at::Tensor activation_forward_glue(Activation act, const char* op, const at::Tensor& x_in, const at::Tensor* bias_in) {
  check_complex(x_in, op, "x");
  const at::OptionalDeviceGuard guard(at::device_of(x_in));
  const at::Tensor x = x_in.contiguous();
  at::Tensor bias;
  if (bias_in) {
    check_activation_bias(x, *bias_in, op);
    bias = bias_in->contiguous();
  }
  at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_activation_forward", [&] {
    auto p = activation_params<scalar_t>(act, x, bias_in ? &bias : nullptr);
    p.out = reinterpret_cast<scalar_t*>(y.data_ptr());
    Backend::template forward<scalar_t>(p);
  });
  return y;
}

template <typename Backend>
std::tuple<at::Tensor, at::Tensor> activation_backward_glue(Activation act, const char* op, const at::Tensor& grad_in,
                                                            const at::Tensor& x_in, const at::Tensor* bias_in) {
  check_complex(x_in, op, "x");
  check_same(x_in, grad_in, op, "x", "grad");
  const at::OptionalDeviceGuard guard(at::device_of(x_in));
  const at::Tensor x = x_in.contiguous();
  const at::Tensor grad = grad_in.contiguous();
  at::Tensor bias, partial, grad_bias;
  if (bias_in) {
    check_activation_bias(x, *bias_in, op);
    bias = bias_in->contiguous();
  }
  at::Tensor gx = at::empty_like(x, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_activation_backward", [&] {
    auto p = activation_params<scalar_t>(act, x, bias_in ? &bias : nullptr);
    p.grad_out = reinterpret_cast<const scalar_t*>(grad.data_ptr());
    p.out = reinterpret_cast<scalar_t*>(gx.data_ptr());
    if (bias_in) {
      // One partial sum per (row, chunk), reduced here: deterministic, no atomics.
      partial = at::zeros({p.outer, p.channels, std::max<int64_t>(1, Backend::chunks_per_row(p.inner))}, bias.options());
      p.grad_bias_partial = partial.data_ptr<scalar_t>();
    }
    Backend::template backward<scalar_t>(p);
  });
  if (bias_in) grad_bias = partial.sum({0, 2});
  return {gx, grad_bias};
}

// Defines the eight op functions for a backend and registers them for `KEY` (CPU or CUDA).
#define BEAMKERNELS_REGISTER_ACTIVATIONS(KEY, Backend)                                                         \
  namespace {                                                                                                   \
  at::Tensor crelu_##KEY(const at::Tensor& x) {                                                                 \
    return activation_forward_glue<Backend>(Activation::kCReLU, "crelu", x, nullptr);                          \
  }                                                                                                             \
  at::Tensor zrelu_##KEY(const at::Tensor& x) {                                                                 \
    return activation_forward_glue<Backend>(Activation::kZReLU, "zrelu", x, nullptr);                          \
  }                                                                                                             \
  at::Tensor cardioid_##KEY(const at::Tensor& x) {                                                              \
    return activation_forward_glue<Backend>(Activation::kCardioid, "cardioid", x, nullptr);                    \
  }                                                                                                             \
  at::Tensor modrelu_##KEY(const at::Tensor& x, const at::Tensor& b) {                                          \
    return activation_forward_glue<Backend>(Activation::kModReLU, "modrelu", x, &b);                           \
  }                                                                                                             \
  at::Tensor crelu_backward_##KEY(const at::Tensor& g, const at::Tensor& x) {                                   \
    return std::get<0>(activation_backward_glue<Backend>(Activation::kCReLU, "crelu_backward", g, x, nullptr)); \
  }                                                                                                             \
  at::Tensor zrelu_backward_##KEY(const at::Tensor& g, const at::Tensor& x) {                                   \
    return std::get<0>(activation_backward_glue<Backend>(Activation::kZReLU, "zrelu_backward", g, x, nullptr)); \
  }                                                                                                             \
  at::Tensor cardioid_backward_##KEY(const at::Tensor& g, const at::Tensor& x) {                                \
    return std::get<0>(                                                                                         \
        activation_backward_glue<Backend>(Activation::kCardioid, "cardioid_backward", g, x, nullptr));        \
  }                                                                                                             \
  std::tuple<at::Tensor, at::Tensor> modrelu_backward_##KEY(const at::Tensor& g, const at::Tensor& x,          \
                                                            const at::Tensor& b) {                              \
    return activation_backward_glue<Backend>(Activation::kModReLU, "modrelu_backward", g, x, &b);              \
  }                                                                                                             \
  }                                                                                                             \
  TORCH_LIBRARY_IMPL(beamkernels, KEY, m) {                                                                     \
    m.impl("crelu", &crelu_##KEY);                                                                              \
    m.impl("crelu_backward", &crelu_backward_##KEY);                                                            \
    m.impl("zrelu", &zrelu_##KEY);                                                                              \
    m.impl("zrelu_backward", &zrelu_backward_##KEY);                                                            \
    m.impl("modrelu", &modrelu_##KEY);                                                                          \
    m.impl("modrelu_backward", &modrelu_backward_##KEY);                                                        \
    m.impl("cardioid", &cardioid_##KEY);                                                                        \
    m.impl("cardioid_backward", &cardioid_backward_##KEY);                                                      \
  }

}  // namespace beamkernels
