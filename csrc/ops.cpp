// The one place where every beamkernels op schema is defined (TORCH_LIBRARY). Each backend
// registers kernels for these schemas with TORCH_LIBRARY_IMPL in its own glue file
// (csrc/cpu/*_glue.cpp, csrc/cuda/*_glue.cpp). Autograd and fake (meta) kernels are registered
// from Python (beamkernels/ops/). Triton kernels are separate ops (beamkernels::triton_*),
// defined by torch.library.triton_op in beamkernels/ops/.
//
// This file also builds the pybind11 module beamkernels._C, which reports build facts.
#include <torch/extension.h>
#include <torch/library.h>

#include "cpu/conv_cpu.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef BEAMKERNELS_VERSION
#define BEAMKERNELS_VERSION "unknown"
#endif

TORCH_LIBRARY(beamkernels, m) {
  // ---- activations (issue 2): x complex [N, C, ...]; modrelu's bias real [C] ----
  m.def("crelu(Tensor x) -> Tensor");
  m.def("crelu_backward(Tensor grad, Tensor x) -> Tensor");
  m.def("zrelu(Tensor x) -> Tensor");
  m.def("zrelu_backward(Tensor grad, Tensor x) -> Tensor");
  m.def("modrelu(Tensor x, Tensor bias) -> Tensor");
  m.def("modrelu_backward(Tensor grad, Tensor x, Tensor bias) -> (Tensor, Tensor)");
  m.def("cardioid(Tensor x) -> Tensor");
  m.def("cardioid_backward(Tensor grad, Tensor x) -> Tensor");

  // ---- convolution (issue 3) ----
  // Fused activation(conv2d(x, weight) + bias) on complex x [N, C_in, H, W], weight
  // [C_out, C_in / groups, kh, kw], bias [C_out] complex; activation code as enum Activation
  // (0 none, 1 crelu, 2 zrelu, 3 modrelu, 4 cardioid); activation_bias real [C_out] (modReLU only).
  // Returns (y, saved): saved is the pre-activation buffer that the backward needs, on CPU and
  // CUDA the planar real [N, 2 C_out, Ho, Wo] conv output without bias (Re z at channel 2o,
  // Im z at 2o + 1; the CPU's 1x1 path keeps z interleaved in that shape). Without an activation
  // the backward needs no z: saved is an empty real tensor [0] (the buffer is not kept alive); nor
  // with save_z=False (no backward will run: inference), which spares writing z.
  m.def("complex_conv2d(Tensor x, Tensor weight, Tensor? bias, int[] stride, int[] padding, int[] dilation, "
        "int groups, int activation, Tensor? activation_bias, bool save_z=True) -> (Tensor, Tensor)");
  // output_mask = which of (grad_x, grad_weight, grad_bias, grad_activation_bias) to compute;
  // the others come back as empty tensors.
  m.def("complex_conv2d_backward(Tensor grad, Tensor x, Tensor weight, Tensor? bias, Tensor saved, int[] stride, "
        "int[] padding, int[] dilation, int groups, int activation, Tensor? activation_bias, bool[4] output_mask) "
        "-> (Tensor, Tensor, Tensor, Tensor)");


  // ---- normalization (issue 4) ----
  // Whitening batch-norm (Trabelsi et al. 2018), x complex [N, C, *]; all others real of x's real
  // dtype: mean [C, 2] (re, im), cov [C, 3] (Vrr, Vri, Vii; biased, eps not included),
  // weight [C, 3] (g_rr, g_ri, g_ii), bias [C, 2]. mean/cov None = training (batch statistics,
  // returned); given = eval (used, and returned as copies).
  m.def("complex_batch_norm(Tensor x, Tensor? mean, Tensor? cov, Tensor? weight, Tensor? bias, float eps) -> (Tensor, Tensor, Tensor)");
  // -> (grad_x, grad_weight [C, 3], grad_bias [C, 2]); training: gradient through the batch statistics.
  m.def("complex_batch_norm_backward(Tensor grad, Tensor x, Tensor mean, Tensor cov, Tensor? weight, bool training, float eps) -> (Tensor, Tensor, Tensor)");


  // ---- pooling (issue 4): max-pool by magnitude; x complex [N, C, H, W]; indices int64 per
  // plane (h * W + w), as torch.nn.MaxPool2d's ----
  m.def("complex_max_pool2d(Tensor x, int[2] kernel_size, int[2] stride, int[2] padding, int[2] dilation, "
        "bool ceil_mode) -> (Tensor, Tensor)");
  m.def("complex_max_pool2d_backward(Tensor grad, Tensor indices, SymInt height, SymInt width) -> Tensor");


  // ---- other layers (issue 4) ----

}

namespace {

pybind11::dict build_info() {
  pybind11::dict d;
  d["version"] = BEAMKERNELS_VERSION;
  pybind11::list backends;
  backends.append("cpu");
#ifdef BEAMKERNELS_WITH_CUDA
  backends.append("cuda");
#ifdef BEAMKERNELS_CUDA_ARCHS
  d["cuda_archs"] = BEAMKERNELS_CUDA_ARCHS;
#endif
#else
  d["cuda_archs"] = "";
#endif
  d["compiled_backends"] = backends;
#ifdef _OPENMP
  d["openmp"] = true;
  d["openmp_max_threads"] = omp_get_max_threads();
#else
  d["openmp"] = false;
  d["openmp_max_threads"] = 1;
#endif
  d["torch_version_built"] = TORCH_VERSION;
  d["cpu_winograd_lanes"] = beamkernels::cpu::conv_winograd_max_lanes();
  return d;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "beamkernels compiled kernels (CPU C++ and, when built, CUDA)";
  m.def("build_info", &build_info, "Build facts: version, compiled backends, CUDA archs, OpenMP threads");
}
