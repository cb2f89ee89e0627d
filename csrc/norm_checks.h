// Input checks of the whitening batch-norm ops, shared by the CPU and CUDA glue (torch).
#pragma once
#include <optional>

#include "glue.h"
#include "norm.h"

namespace beamkernels {

inline void bn_check_param(const at::Tensor& x, const at::Tensor& t, int64_t cols, const char* op, const char* arg) {
  TORCH_CHECK(!t.is_complex() && t.scalar_type() == real_dtype(x), "beamkernels.", op, ": argument '", arg,
              "' must be a real tensor of dtype ", real_dtype(x), " (x is ", x.scalar_type(), "), got ",
              t.scalar_type());
  TORCH_CHECK(t.dim() == 2 && t.size(0) == x.size(1) && t.size(1) == cols, "beamkernels.", op, ": argument '", arg,
              "' must have shape [", x.size(1), ", ", cols, "], got ", t.sizes());
  TORCH_CHECK(t.device() == x.device(), "beamkernels.", op, ": argument '", arg, "' is on ", t.device(),
              " but 'x' is on ", x.device());
}

inline void bn_check_x(const at::Tensor& x, double eps, const char* op) {
  check_complex(x, op, "x");
  TORCH_CHECK(x.dim() >= 2, "beamkernels.", op, ": argument 'x' must have at least 2 dims ([N, C, *]), got shape ",
              x.sizes());
  TORCH_CHECK(eps >= 0.0, "beamkernels.", op, ": eps must be >= 0, got ", eps);
}

// Returns true for training (no statistics given: batch statistics are computed).
inline bool bn_check_forward(const at::Tensor& x, const std::optional<at::Tensor>& mean,
                             const std::optional<at::Tensor>& cov, const std::optional<at::Tensor>& weight,
                             const std::optional<at::Tensor>& bias, double eps, const char* op) {
  bn_check_x(x, eps, op);
  TORCH_CHECK(mean.has_value() == cov.has_value(), "beamkernels.", op,
              ": give both 'mean' and 'cov' (eval) or neither (training)");
  if (mean) {
    bn_check_param(x, *mean, 2, op, "mean");
    bn_check_param(x, *cov, 3, op, "cov");
  }
  if (weight) bn_check_param(x, *weight, 3, op, "weight");
  if (bias) bn_check_param(x, *bias, 2, op, "bias");
  return !mean.has_value();
}

inline void bn_check_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& mean,
                              const at::Tensor& cov, const std::optional<at::Tensor>& weight, double eps,
                              const char* op) {
  bn_check_x(x, eps, op);
  check_same(x, grad, op, "x", "grad");
  bn_check_param(x, mean, 2, op, "mean");
  bn_check_param(x, cov, 3, op, "cov");
  if (weight) bn_check_param(x, *weight, 3, op, "weight");
}

// x [N, C, *] contiguous -> [outer, channels, inner].
template <typename T>
void bn_fill_shape(BatchNormParams<T>& p, const at::Tensor& x) {
  p.outer = x.size(0);
  p.channels = x.size(1);
  p.inner = p.outer * p.channels == 0 ? 0 : x.numel() / (p.outer * p.channels);
  if (p.outer * p.channels == 0) {
    p.inner = 1;
    for (int64_t d = 2; d < x.dim(); ++d) p.inner *= x.size(d);
  }
}

// Forward params. Training: the statistics are written to mean_out/cov_out (then read by the
// apply pass); eval: mean_out/cov_out hold the running statistics to apply.
template <typename T>
BatchNormParams<T> bn_forward_params(const at::Tensor& x, at::Tensor& y, at::Tensor& mean_out, at::Tensor& cov_out,
                                     const at::Tensor& w, const at::Tensor& b, double eps, bool training) {
  BatchNormParams<T> p{};
  bn_fill_shape(p, x);
  p.x = reinterpret_cast<const T*>(x.data_ptr());
  p.out = reinterpret_cast<T*>(y.data_ptr());
  p.mean_in = mean_out.data_ptr<T>();
  p.cov_in = cov_out.data_ptr<T>();
  p.mean_out = mean_out.data_ptr<T>();
  p.cov_out = cov_out.data_ptr<T>();
  p.weight = w.defined() ? w.data_ptr<T>() : nullptr;
  p.bias = b.defined() ? b.data_ptr<T>() : nullptr;
  p.eps = eps;
  p.training = training;
  return p;
}

// Backward params: (grad, x, saved mean/cov, weight) -> grad_x (gx), grad_weight (gw), grad_bias (gb).
template <typename T>
BatchNormParams<T> bn_backward_params(const at::Tensor& x, const at::Tensor& grad, at::Tensor& gx,
                                      const at::Tensor& mean, const at::Tensor& cov, const at::Tensor& w,
                                      at::Tensor& gw, at::Tensor& gb, double eps, bool training) {
  BatchNormParams<T> p{};
  bn_fill_shape(p, x);
  p.x = reinterpret_cast<const T*>(x.data_ptr());
  p.grad_out = reinterpret_cast<const T*>(grad.data_ptr());
  p.out = reinterpret_cast<T*>(gx.data_ptr());
  p.mean_in = mean.data_ptr<T>();
  p.cov_in = cov.data_ptr<T>();
  p.weight = w.defined() ? w.data_ptr<T>() : nullptr;
  p.grad_weight = gw.data_ptr<T>();
  p.grad_bias = gb.data_ptr<T>();
  p.eps = eps;
  p.training = training;
  return p;
}

}  // namespace beamkernels
