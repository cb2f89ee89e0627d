// Torch glue for the CUDA whitening batch-norm kernels: validate, allocate the workspace, fill
// BatchNormParams, launch on the current stream. Compiled only when CUDA is built.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "cuda/norm_cuda.h"
#include "glue.h"
#include "norm_checks.h"

namespace beamkernels {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> complex_batch_norm_cuda(const at::Tensor& x_in,
                                                                       const std::optional<at::Tensor>& mean,
                                                                       const std::optional<at::Tensor>& cov,
                                                                       const std::optional<at::Tensor>& weight,
                                                                       const std::optional<at::Tensor>& bias,
                                                                       double eps) {
  const char* op = "complex_batch_norm";
  const bool training = bn_check_forward(x_in, mean, cov, weight, bias, eps, op);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const int64_t C = x.size(1);
  at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
  auto ropt = x.options().dtype(real_dtype(x));
  at::Tensor mean_out = training ? at::zeros({C, 2}, ropt) : mean->contiguous().clone();
  at::Tensor cov_out = training ? at::zeros({C, 3}, ropt) : cov->contiguous().clone();
  const at::Tensor w = weight ? weight->contiguous() : at::Tensor();
  const at::Tensor b = bias ? bias->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_complex_batch_norm_cuda", [&] {
    auto p = bn_forward_params<scalar_t>(x, y, mean_out, cov_out, w, b, eps, training);
    const int blocks = cuda::bn_blocks_per_channel(p.outer * p.inner);
    at::Tensor partials = at::empty({std::max<int64_t>(C, 1) * blocks * 6}, x.options().dtype(at::kDouble));
    at::Tensor coefs = at::empty({std::max<int64_t>(C, 1) * 11}, ropt);
    C10_CUDA_CHECK(cuda::batch_norm_forward<scalar_t>(p, partials.data_ptr<double>(), coefs.data_ptr<scalar_t>(),
                                                      c10::cuda::getCurrentCUDAStream()));
  });
  return {y, mean_out, cov_out};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> complex_batch_norm_backward_cuda(
    const at::Tensor& grad_in, const at::Tensor& x_in, const at::Tensor& mean_in, const at::Tensor& cov_in,
    const std::optional<at::Tensor>& weight, bool training, double eps) {
  const char* op = "complex_batch_norm_backward";
  bn_check_backward(grad_in, x_in, mean_in, cov_in, weight, eps, op);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), grad = grad_in.contiguous();
  const at::Tensor mean = mean_in.contiguous(), cov = cov_in.contiguous();
  const at::Tensor w = weight ? weight->contiguous() : at::Tensor();
  const int64_t C = x.size(1);
  at::Tensor gx = at::empty_like(x, at::MemoryFormat::Contiguous);
  auto ropt = x.options().dtype(real_dtype(x));
  at::Tensor gw = at::zeros({C, 3}, ropt), gb = at::zeros({C, 2}, ropt);
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_complex_batch_norm_backward_cuda", [&] {
    auto p = bn_backward_params<scalar_t>(x, grad, gx, mean, cov, w, gw, gb, eps, training);
    const int blocks = cuda::bn_blocks_per_channel(p.outer * p.inner);
    at::Tensor partials = at::empty({std::max<int64_t>(C, 1) * blocks * 6}, x.options().dtype(at::kDouble));
    at::Tensor coefs = at::empty({std::max<int64_t>(C, 1) * 11}, ropt);
    C10_CUDA_CHECK(cuda::batch_norm_backward<scalar_t>(p, partials.data_ptr<double>(), coefs.data_ptr<scalar_t>(),
                                                       c10::cuda::getCurrentCUDAStream()));
  });
  return {gx, gw, gb};
}

}  // namespace

TORCH_LIBRARY_IMPL(beamkernels, CUDA, m) {
  m.impl("complex_batch_norm", &complex_batch_norm_cuda);
  m.impl("complex_batch_norm_backward", &complex_batch_norm_backward_cuda);
}

}  // namespace beamkernels
