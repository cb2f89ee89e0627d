// Torch glue for the CUDA max-pool-by-magnitude kernels: validate, fill MaxPoolParams, launch on
// the current stream. Built only when CUDA is (setup.py).
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "cuda/pool_cuda.h"
#include "pool_args.h"

namespace beamkernels {
namespace {

std::tuple<at::Tensor, at::Tensor> complex_max_pool2d_cuda(const at::Tensor& x_in, at::IntArrayRef kernel_size,
                                                           at::IntArrayRef stride, at::IntArrayRef padding,
                                                           at::IntArrayRef dilation, bool ceil_mode) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  at::Tensor out, indices;
  AT_DISPATCH_FLOATING_TYPES(x_in.is_complex() ? real_dtype(x_in) : at::kFloat, "complex_max_pool2d_cuda", [&] {
    auto p = make_pool_params<scalar_t>(x_in, kernel_size, stride, padding, dilation, ceil_mode);
    const at::Tensor x = x_in.contiguous();
    out = at::empty({x.size(0), x.size(1), p.out_height, p.out_width}, x.options());
    indices = at::empty(out.sizes(), x.options().dtype(at::kLong));
    p.x = reinterpret_cast<const scalar_t*>(x.data_ptr());
    p.out = reinterpret_cast<scalar_t*>(out.data_ptr());
    p.indices = indices.data_ptr<int64_t>();
    const cudaError_t err = cuda::max_pool2d_forward<scalar_t>(p, c10::cuda::getCurrentCUDAStream());
    TORCH_CHECK(err == cudaSuccess, "beamkernels.complex_max_pool2d: CUDA launch failed: ", cudaGetErrorString(err));
  });
  return {out, indices};
}

at::Tensor complex_max_pool2d_backward_cuda(const at::Tensor& grad_in, const at::Tensor& indices_in, int64_t height,
                                            int64_t width) {
  check_pool_backward(grad_in, indices_in, height, width);
  // atomicAdd: overlapping windows that share an argmax sum in any order (as torch's max-pool).
  at::globalContext().alertNotDeterministic("beamkernels.complex_max_pool2d_backward (CUDA)");
  const c10::cuda::CUDAGuard guard(grad_in.device());
  const at::Tensor grad = grad_in.contiguous();
  const at::Tensor indices = indices_in.contiguous();
  at::Tensor gx = at::zeros({grad.size(0), grad.size(1), height, width}, grad.options());
  AT_DISPATCH_FLOATING_TYPES(real_dtype(grad), "complex_max_pool2d_backward_cuda", [&] {
    auto p = make_pool_backward_params<scalar_t>(grad, indices, height, width, gx);
    const cudaError_t err = cuda::max_pool2d_backward<scalar_t>(p, c10::cuda::getCurrentCUDAStream());
    TORCH_CHECK(err == cudaSuccess, "beamkernels.complex_max_pool2d_backward: CUDA launch failed: ",
                cudaGetErrorString(err));
  });
  return gx;
}

}  // namespace

TORCH_LIBRARY_IMPL(beamkernels, CUDA, m) {
  m.impl("complex_max_pool2d", &complex_max_pool2d_cuda);
  m.impl("complex_max_pool2d_backward", &complex_max_pool2d_backward_cuda);
}

}  // namespace beamkernels
