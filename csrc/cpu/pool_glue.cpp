// Torch glue for the CPU max-pool-by-magnitude kernels: validate, fill MaxPoolParams, dispatch dtype.
#include <ATen/Parallel.h>

#include "cpu/pool_cpu.h"
#include "pool_args.h"

namespace beamkernels {
namespace {

std::tuple<at::Tensor, at::Tensor> complex_max_pool2d(const at::Tensor& x_in, at::IntArrayRef kernel_size,
                                                      at::IntArrayRef stride, at::IntArrayRef padding,
                                                      at::IntArrayRef dilation, bool ceil_mode) {
  at::Tensor out, indices;
  AT_DISPATCH_FLOATING_TYPES(x_in.is_complex() ? real_dtype(x_in) : at::kFloat, "complex_max_pool2d", [&] {
    auto p = make_pool_params<scalar_t>(x_in, kernel_size, stride, padding, dilation, ceil_mode);
    const at::Tensor x = x_in.contiguous();
    out = at::empty({x.size(0), x.size(1), p.out_height, p.out_width}, x.options());
    indices = at::empty(out.sizes(), x.options().dtype(at::kLong));
    p.x = reinterpret_cast<const scalar_t*>(x.data_ptr());
    p.out = reinterpret_cast<scalar_t*>(out.data_ptr());
    p.indices = indices.data_ptr<int64_t>();
    p.num_threads = at::get_num_threads();
    cpu::max_pool2d_forward<scalar_t>(p);
  });
  return {out, indices};
}

at::Tensor complex_max_pool2d_backward(const at::Tensor& grad_in, const at::Tensor& indices_in, int64_t height,
                                       int64_t width) {
  check_pool_backward(grad_in, indices_in, height, width);
  const at::Tensor grad = grad_in.contiguous();
  const at::Tensor indices = indices_in.contiguous();
  // Zeroed plane by plane inside the kernel.
  at::Tensor gx = at::empty({grad.size(0), grad.size(1), height, width}, grad.options());
  index_t bad = 0;
  AT_DISPATCH_FLOATING_TYPES(real_dtype(grad), "complex_max_pool2d_backward", [&] {
    auto p = make_pool_backward_params<scalar_t>(grad, indices, height, width, gx);
    p.num_threads = at::get_num_threads();
    bad = cpu::max_pool2d_backward<scalar_t>(p);
  });
  TORCH_CHECK(bad == 0, "beamkernels.complex_max_pool2d_backward: ", bad, " indices are outside [0, ", height * width,
              ") (height * width); indices must come from complex_max_pool2d on an input of that size");
  return gx;
}

}  // namespace

TORCH_LIBRARY_IMPL(beamkernels, CPU, m) {
  m.impl("complex_max_pool2d", &complex_max_pool2d);
  m.impl("complex_max_pool2d_backward", &complex_max_pool2d_backward);
}

}  // namespace beamkernels
