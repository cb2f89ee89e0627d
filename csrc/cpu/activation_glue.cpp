// CPU backend of the activation ops: the shared glue (csrc/activation_glue.h) over the torch-free
// OpenMP kernels (csrc/cpu/activation.cpp).
#include <ATen/Parallel.h>

#include "activation_glue.h"
#include "cpu/activation_cpu.h"

namespace beamkernels {

struct CpuActivation {
  template <typename T>
  static void forward(ActivationParams<T>& p) {
    p.num_threads = at::get_num_threads();
    cpu::activation_forward<T>(p);
  }
  template <typename T>
  static void backward(ActivationParams<T>& p) {
    p.num_threads = at::get_num_threads();
    cpu::activation_backward<T>(p);
  }
  static int64_t chunks_per_row(int64_t inner) { return cpu::activation_chunks_per_row(inner); }
};

BEAMKERNELS_REGISTER_ACTIVATIONS(CPU, CpuActivation)

}  // namespace beamkernels
