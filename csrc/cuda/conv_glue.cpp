// Torch glue for the CUDA fused complex convolution (csrc/cuda/conv.cu): validate, fill
// ConvParams, launch on the current stream. Same schemas and saved-buffer layout as the CPU glue
// (planar pre-activation without bias), so the fake kernel and autograd in
// beamkernels/ops/conv.py serve both. complex64 runs on TF32 tensor cores (sm_80+) unless
// torch.backends.cudnn.allow_tf32 is off, as torch's own convs. UNMEASURED and untested on a GPU
// (none was available): it compiles only where CUDA is built.
#include <ATen/Context.h>
#include <torch/version.h>
#include <cuda_runtime.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <array>

#include "conv_glue.h"
#include "cuda/conv_cuda.h"

namespace beamkernels {
namespace {

template <typename T>
ConvParams<T> make_params(const Geometry& g, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                          const at::Tensor& act_bias, at::IntArrayRef stride, at::IntArrayRef padding,
                          at::IntArrayRef dilation, int64_t groups, int64_t activation) {
  ConvParams<T> p{};
  p.act = static_cast<Activation>(activation);
  p.n = g.n;
  p.cin = g.cin;
  p.h = g.h;
  p.w = g.w;
  p.cout = g.cout;
  p.ho = g.ho;
  p.wo = g.wo;
  p.kh = g.kh;
  p.kw = g.kw;
  p.stride_h = static_cast<int>(stride[0]);
  p.stride_w = static_cast<int>(stride[1]);
  p.pad_h = static_cast<int>(padding[0]);
  p.pad_w = static_cast<int>(padding[1]);
  p.dil_h = static_cast<int>(dilation[0]);
  p.dil_w = static_cast<int>(dilation[1]);
  p.groups = static_cast<int>(groups);
  p.x = reinterpret_cast<const T*>(x.data_ptr());
  p.weight = reinterpret_cast<const T*>(weight.data_ptr());
  p.bias = bias.defined() ? reinterpret_cast<const T*>(bias.data_ptr()) : nullptr;
  p.act_bias = act_bias.defined() ? act_bias.data_ptr<T>() : nullptr;
  return p;
}

// TF32 tensor cores for complex64 where PyTorch's own convs use them (torch.backends.cudnn.allow_tf32 /
// torch.backends.cudnn.conv.fp32_precision, TF32 by default) and the GPU has them (sm_80+); otherwise
// exact fp32 on CUDA cores.
bool use_tf32(const at::Tensor& x) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)
  // The conv-specific flag: honours torch.backends.cudnn.conv.fp32_precision as well (the
  // operator-less query raises once the conv and RNN settings differ).
  const bool allowed = at::globalContext().allowTF32CuDNN(at::Float32Op::CONV);
#else
  const bool allowed = at::globalContext().allowTF32CuDNN();
#endif
  if (x.scalar_type() != at::kComplexFloat || !allowed) return false;
  int major = 0;
  const cudaError_t err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, x.device().index());
  TORCH_CHECK(err == cudaSuccess, "beamkernels.complex_conv2d: cannot query the GPU's compute capability: ",
              cudaGetErrorString(err));
  return major >= 8;
}

// The CUDA forward kernels (and the tensor-core dL/dx, a forward conv over C_out / groups) split the
// reduction index (channels per group x kh x kw) and index image rows / columns with 32-bit
// arithmetic (csrc/cuda/conv.cu); sizes and offsets in memory stay 64-bit.
void check_32bit_limits(const char* op, const Geometry& g, int64_t groups, at::IntArrayRef padding,
                        at::IntArrayRef dilation) {
  constexpr int64_t kMax = int64_t(1) << 30;
  const int64_t k = std::max(g.cin / groups, g.cout / groups) * g.kh * g.kw;
  TORCH_CHECK(k < kMax, "beamkernels.", op, ": argument 'weight' [", g.cout, ", ", g.cin / groups, ", ", g.kh, ", ",
              g.kw, "] with groups=", groups, " gives a reduction of ", k,
              " (channels per group x kh x kw, over C_in or C_out); the CUDA kernels take fewer than 2^30");
  // The forward's padded image, and the tensor-core dL/dx's (a forward conv over dL/dz, padded by
  // (k - 1) dilation - padding per side).
  const int64_t hp = std::max(g.h, g.ho) + 2 * std::max(padding[0], (g.kh - 1) * dilation[0]);
  const int64_t wp = std::max(g.w, g.wo) + 2 * std::max(padding[1], (g.kw - 1) * dilation[1]);
  TORCH_CHECK(hp < kMax && wp < kMax, "beamkernels.", op, ": argument 'x' has padded image size ", hp, " x ", wp,
              "; the CUDA kernels take fewer than 2^30 rows and columns");
  // Channel tiles of a group go on grid y (65535 blocks on every GPU so far; 16 channels per block on
  // the exact-fp32 path); the tensor-core dL/dx puts C_in / groups there.
  constexpr int64_t kMaxChannels = int64_t(65535) * 16;
  const int64_t per_group = std::max(g.cin, g.cout) / groups;
  TORCH_CHECK(per_group <= kMaxChannels, "beamkernels.", op, ": argument 'weight' has ", per_group,
              " channels per group (the larger of C_in, C_out over groups=", groups, "); the CUDA kernels take at most ",
              kMaxChannels);
}

std::tuple<at::Tensor, at::Tensor> complex_conv2d_cuda(const at::Tensor& x_in, const at::Tensor& weight_in,
                                                       const c10::optional<at::Tensor>& bias_in, at::IntArrayRef stride,
                                                       at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                                       int64_t activation, const c10::optional<at::Tensor>& act_bias_in,
                                                       bool save_z) {
  const char* op = "complex_conv2d";
  const Geometry g = check_conv(op, x_in, weight_in, bias_in, stride, padding, dilation, groups, activation, act_bias_in);
  check_32bit_limits(op, g, groups, padding, dilation);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), weight = weight_in.contiguous();
  const at::Tensor bias = bias_in.has_value() ? bias_in->contiguous() : at::Tensor();
  const at::Tensor act_bias = act_bias_in.has_value() ? act_bias_in->contiguous() : at::Tensor();
  at::Tensor y = at::empty({g.n, g.cout, g.ho, g.wo}, x.options());
  // The backward reads z (with an activation), unless no backward will run.
  const bool need_z = save_z && activation != static_cast<int64_t>(Activation::kNone);
  at::Tensor saved = at::empty(need_z ? at::IntArrayRef({g.n, 2 * g.cout, g.ho, g.wo}) : at::IntArrayRef({0}),
                               x.options().dtype(real_dtype(x)));
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_complex_conv2d_cuda", [&] {
    auto p = make_params<scalar_t>(g, x, weight, bias, act_bias, stride, padding, dilation, groups, activation);
    p.y = reinterpret_cast<scalar_t*>(y.data_ptr());
    p.z = need_z ? saved.data_ptr<scalar_t>() : nullptr;
    p.tf32 = use_tf32(x);
    const cudaError_t err = cuda::conv2d_forward<scalar_t>(p, c10::cuda::getCurrentCUDAStream());
    TORCH_CHECK(err == cudaSuccess, "beamkernels.", op, ": CUDA launch failed: ", cudaGetErrorString(err));
  });
  return {y, saved};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> complex_conv2d_backward_cuda(
    const at::Tensor& grad_in, const at::Tensor& x_in, const at::Tensor& weight_in,
    const c10::optional<at::Tensor>& bias_in, const at::Tensor& saved_in, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, int64_t activation,
    const c10::optional<at::Tensor>& act_bias_in, std::array<bool, 4> output_mask) {
  const char* op = "complex_conv2d_backward";
  const Geometry g = check_conv(op, x_in, weight_in, bias_in, stride, padding, dilation, groups, activation, act_bias_in);
  check_conv_backward(op, g, grad_in, saved_in, x_in, activation);
  check_32bit_limits(op, g, groups, padding, dilation);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), weight = weight_in.contiguous(), grad = grad_in.contiguous();
  const at::Tensor saved = saved_in.contiguous();
  const at::Tensor bias = bias_in.has_value() ? bias_in->contiguous() : at::Tensor();
  const at::Tensor act_bias = act_bias_in.has_value() ? act_bias_in->contiguous() : at::Tensor();
  at::Tensor grad_z = at::empty_like(grad, at::MemoryFormat::Contiguous);
  at::Tensor row_sums = at::empty({g.n * g.cout, 3}, saved.options());
  at::Tensor gx = output_mask[0] ? at::empty_like(x, at::MemoryFormat::Contiguous) : at::empty({0}, x.options());
  at::Tensor gw = output_mask[1] ? at::empty_like(weight, at::MemoryFormat::Contiguous) : at::empty({0}, x.options());
  if (g.n == 0) {  // nothing to reduce: zero gradients
    if (output_mask[0]) gx.zero_();
    if (output_mask[1]) gw.zero_();
  }
  const bool tf32 = use_tf32(x);
  // Tensor-core dL/dx (stride 1): the forward conv of dL/dz with the conjugated, flipped weight whose
  // in / out channels are swapped per group: w_t[g cg + c, o, i, j] = conj(w[g og + o, c, kh-1-i, kw-1-j]).
  at::Tensor weight_t;
  if (tf32 && output_mask[0] && g.n > 0 && stride[0] == 1 && stride[1] == 1) {
    const int64_t og = g.cout / groups, cg = g.cin / groups;
    weight_t = at::conj_physical(weight.view({groups, og, cg, g.kh, g.kw}).transpose(1, 2).flip({3, 4}))
                   .contiguous()
                   .view({g.cin, og, g.kh, g.kw});
  }
  AT_DISPATCH_FLOATING_TYPES(real_dtype(x), "beamkernels_complex_conv2d_backward_cuda", [&] {
    auto p = make_params<scalar_t>(g, x, weight, bias, act_bias, stride, padding, dilation, groups, activation);
    p.z = const_cast<scalar_t*>(saved.data_ptr<scalar_t>());
    p.grad_out = reinterpret_cast<const scalar_t*>(grad.data_ptr());
    p.grad_z = reinterpret_cast<scalar_t*>(grad_z.data_ptr());
    p.row_sums = row_sums.data_ptr<scalar_t>();
    p.grad_x = output_mask[0] ? reinterpret_cast<scalar_t*>(gx.data_ptr()) : nullptr;
    p.grad_weight = output_mask[1] ? reinterpret_cast<scalar_t*>(gw.data_ptr()) : nullptr;
    p.tf32 = tf32;
    p.deterministic = at::globalContext().deterministicAlgorithms();
    p.weight_t = weight_t.defined() ? reinterpret_cast<const scalar_t*>(weight_t.data_ptr()) : nullptr;
    const cudaError_t err = cuda::conv2d_backward<scalar_t>(p, c10::cuda::getCurrentCUDAStream());
    TORCH_CHECK(err == cudaSuccess, "beamkernels.", op, ": CUDA launch failed: ", cudaGetErrorString(err));
  });
  at::Tensor gb = at::empty({0}, x.options()), gab = at::empty({0}, saved.options());
  const at::Tensor sums = row_sums.view({g.n, g.cout, 3}).sum(0);
  if (output_mask[2] && bias.defined()) gb = at::complex(sums.select(1, 0), sums.select(1, 1));
  if (output_mask[3] && act_bias.defined()) gab = sums.select(1, 2).contiguous();
  return {gx, gw, gb, gab};
}

}  // namespace

TORCH_LIBRARY_IMPL(beamkernels, CUDA, m) {
  m.impl("complex_conv2d", &complex_conv2d_cuda);
  m.impl("complex_conv2d_backward", &complex_conv2d_backward_cuda);
}

}  // namespace beamkernels
