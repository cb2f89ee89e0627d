// Torch glue shared by the CPU and CUDA max-pool glue: argument checks and MaxPoolParams setup
// (the same rules and output size as torch.nn.MaxPool2d and beamkernels/reference/pool.py).
#pragma once
#include <torch/extension.h>

#include "glue.h"
#include "pool.h"

namespace beamkernels {

inline int64_t pool_output_size(int64_t size, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t num = size + 2 * p - d * (k - 1) - 1;
  int64_t out = (num + (ceil_mode ? s - 1 : 0)) / s + 1;
  if (num + (ceil_mode ? s - 1 : 0) < 0) out = 0;  // floor division of a negative numerator
  if (ceil_mode && out > 0 && (out - 1) * s >= size + p) --out;
  return out;
}

inline void check_pair(at::IntArrayRef v, const char* arg, int64_t minimum) {
  TORCH_CHECK(v.size() == 2, "beamkernels.complex_max_pool2d: argument '", arg, "' must have 2 values, got ", v);
  TORCH_CHECK(v[0] >= minimum && v[1] >= minimum, "beamkernels.complex_max_pool2d: argument '", arg,
              "' must be >= ", minimum, ", got ", v);
}

// Validates x [N, C, H, W] and the window arguments; returns params with sizes filled.
template <typename T>
MaxPoolParams<T> make_pool_params(const at::Tensor& x, at::IntArrayRef k, at::IntArrayRef s, at::IntArrayRef p,
                                  at::IntArrayRef d, bool ceil_mode) {
  const char* op = "complex_max_pool2d";
  check_complex(x, op, "x");
  TORCH_CHECK(x.dim() == 4, "beamkernels.", op, ": argument 'x' must be [N, C, H, W], got shape ", x.sizes());
  TORCH_CHECK(x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0, "beamkernels.", op,
              ": argument 'x' must have nonzero C, H and W (only N may be 0), got shape ", x.sizes());
  check_pair(k, "kernel_size", 1);
  check_pair(s, "stride", 1);
  check_pair(p, "padding", 0);
  check_pair(d, "dilation", 1);
  TORCH_CHECK(p[0] <= k[0] / 2 && p[1] <= k[1] / 2, "beamkernels.", op,
              ": argument 'padding' must be at most half of kernel_size ", k, ", got ", p);
  MaxPoolParams<T> q{};
  q.planes = x.size(0) * x.size(1);
  q.height = x.size(2);
  q.width = x.size(3);
  q.out_height = pool_output_size(q.height, k[0], s[0], p[0], d[0], ceil_mode);
  q.out_width = pool_output_size(q.width, k[1], s[1], p[1], d[1], ceil_mode);
  TORCH_CHECK(q.out_height >= 1 && q.out_width >= 1, "beamkernels.", op, ": input ", q.height, "x", q.width,
              " is too small for kernel_size ", k, " with dilation ", d, " and padding ", p, ": the output would be ",
              q.out_height, "x", q.out_width);
  q.kh = k[0]; q.kw = k[1]; q.sh = s[0]; q.sw = s[1]; q.ph = p[0]; q.pw = p[1]; q.dh = d[0]; q.dw = d[1];
  return q;
}

inline void check_pool_backward(const at::Tensor& grad, const at::Tensor& indices, int64_t height, int64_t width) {
  const char* op = "complex_max_pool2d_backward";
  check_complex(grad, op, "grad");
  TORCH_CHECK(grad.dim() == 4, "beamkernels.", op, ": argument 'grad' must be [N, C, OH, OW], got shape ", grad.sizes());
  TORCH_CHECK(indices.scalar_type() == at::kLong, "beamkernels.", op, ": argument 'indices' must be int64, got ",
              indices.scalar_type());
  TORCH_CHECK(indices.sizes() == grad.sizes(), "beamkernels.", op, ": argument 'indices' has shape ", indices.sizes(),
              " but 'grad' has shape ", grad.sizes());
  TORCH_CHECK(indices.device() == grad.device(), "beamkernels.", op, ": argument 'indices' is on ", indices.device(),
              " but 'grad' is on ", grad.device());
  TORCH_CHECK(height > 0 && width > 0, "beamkernels.", op, ": height and width must be positive, got ", height, ", ",
              width);
}

// Backward params: grad [N, C, Ho, Wo] and indices (contiguous) scatter into gx [N, C, height, width].
template <typename T>
MaxPoolParams<T> make_pool_backward_params(const at::Tensor& grad, const at::Tensor& indices, int64_t height,
                                           int64_t width, at::Tensor& gx) {
  MaxPoolParams<T> p{};
  p.planes = grad.size(0) * grad.size(1);
  p.height = height;
  p.width = width;
  p.out_height = grad.size(2);
  p.out_width = grad.size(3);
  p.indices = const_cast<int64_t*>(indices.data_ptr<int64_t>());
  p.grad_out = reinterpret_cast<const T*>(grad.data_ptr());
  p.grad_x = reinterpret_cast<T*>(gx.data_ptr());
  return p;
}

}  // namespace beamkernels
