// Torch glue for the CPU activation kernels: validate, fill ActivationParams, dispatch dtype.
#include <ATen/Parallel.h>

#include "cpu/activation_cpu.h"
#include "glue.h"

namespace beamkernels {
namespace {

template <typename T>
ActivationParams<T> make_params(Activation act, const at::Tensor& x, const at::Tensor* bias) {
  ActivationParams<T> p{};
  p.act = act;
  const int64_t numel = x.numel();
  if (bias) {
    p.outer = x.size(0);
    p.channels = x.size(1);
    p.inner = p.outer * p.channels == 0 ? 0 : numel / (p.outer * p.channels);
    p.bias = bias->data_ptr<T>();
  } else {
    p.outer = 1;
    p.channels = 1;
    p.inner = numel;
  }
  p.x = reinterpret_cast<const T*>(x.data_ptr());
  p.num_threads = at::get_num_threads();
  return p;
}

void check_bias(const at::Tensor& x, const at::Tensor& bias, const char* op) {
  TORCH_CHECK(x.dim() >= 2, "beamkernels.", op, ": argument 'x' must have a channel dimension (dim 1), got shape ",
              x.sizes());
  TORCH_CHECK(!bias.is_complex(), "beamkernels.", op, ": argument 'bias' must be real (",
              c10::toRealValueType(x.scalar_type()), "), got ", bias.scalar_type());
  TORCH_CHECK(bias.scalar_type() == real_dtype(x), "beamkernels.", op, ": argument 'bias' must have dtype ",
              real_dtype(x), " to match x (", x.scalar_type(), "), got ", bias.scalar_type());
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == x.size(1), "beamkernels.", op,
              ": argument 'bias' must have shape [", x.size(1), "] (one value per channel of x), got ",
              bias.sizes());
  TORCH_CHECK(bias.device() == x.device(), "beamkernels.", op, ": argument 'bias' is on ", bias.device(),
              " but 'x' is on ", x.device());
}

at::Tensor act_forward(Activation act, const char* op, const at::Tensor& x_in, const at::Tensor* bias_in) {
  check_complex(x_in, op, "x");
  const at::Tensor x = x_in.contiguous();
  at::Tensor bias;
  if (bias_in) {
    check_bias(x, *bias_in, op);
    bias = bias_in->contiguous();
  }
  at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_activation", [&] {
    auto p = make_params<scalar_t>(act, x, bias_in ? &bias : nullptr);
    p.out = reinterpret_cast<scalar_t*>(y.data_ptr());
    cpu::activation_forward<scalar_t>(p);
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor> act_backward(Activation act, const char* op, const at::Tensor& grad_in,
                                                const at::Tensor& x_in, const at::Tensor* bias_in) {
  check_complex(x_in, op, "x");
  check_same(x_in, grad_in, op, "x", "grad");
  const at::Tensor x = x_in.contiguous();
  const at::Tensor grad = grad_in.contiguous();
  at::Tensor bias, partial, grad_bias;
  if (bias_in) {
    check_bias(x, *bias_in, op);
    bias = bias_in->contiguous();
  }
  at::Tensor gx = at::empty_like(x, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_activation", [&] {
    auto p = make_params<scalar_t>(act, x, bias_in ? &bias : nullptr);
    p.grad_out = reinterpret_cast<const scalar_t*>(grad.data_ptr());
    p.out = reinterpret_cast<scalar_t*>(gx.data_ptr());
    if (bias_in) {
      const int64_t chunks = cpu::activation_chunks_per_row(p.inner);
      partial = at::zeros({p.outer, p.channels, chunks}, bias.options());
      p.grad_bias_partial = partial.data_ptr<scalar_t>();
    }
    cpu::activation_backward<scalar_t>(p);
  });
  if (bias_in) grad_bias = partial.sum({0, 2});
  return {gx, grad_bias};
}

at::Tensor crelu(const at::Tensor& x) { return act_forward(Activation::kCReLU, "crelu", x, nullptr); }
at::Tensor zrelu(const at::Tensor& x) { return act_forward(Activation::kZReLU, "zrelu", x, nullptr); }
at::Tensor cardioid(const at::Tensor& x) { return act_forward(Activation::kCardioid, "cardioid", x, nullptr); }
at::Tensor modrelu(const at::Tensor& x, const at::Tensor& bias) {
  return act_forward(Activation::kModReLU, "modrelu", x, &bias);
}
at::Tensor crelu_backward(const at::Tensor& g, const at::Tensor& x) {
  return std::get<0>(act_backward(Activation::kCReLU, "crelu_backward", g, x, nullptr));
}
at::Tensor zrelu_backward(const at::Tensor& g, const at::Tensor& x) {
  return std::get<0>(act_backward(Activation::kZReLU, "zrelu_backward", g, x, nullptr));
}
at::Tensor cardioid_backward(const at::Tensor& g, const at::Tensor& x) {
  return std::get<0>(act_backward(Activation::kCardioid, "cardioid_backward", g, x, nullptr));
}
std::tuple<at::Tensor, at::Tensor> modrelu_backward(const at::Tensor& g, const at::Tensor& x, const at::Tensor& bias) {
  return act_backward(Activation::kModReLU, "modrelu_backward", g, x, &bias);
}

}  // namespace

TORCH_LIBRARY_IMPL(beamkernels, CPU, m) {
  m.impl("crelu", &crelu);
  m.impl("crelu_backward", &crelu_backward);
  m.impl("zrelu", &zrelu);
  m.impl("zrelu_backward", &zrelu_backward);
  m.impl("modrelu", &modrelu);
  m.impl("modrelu_backward", &modrelu_backward);
  m.impl("cardioid", &cardioid);
  m.impl("cardioid_backward", &cardioid_backward);
}

}  // namespace beamkernels
