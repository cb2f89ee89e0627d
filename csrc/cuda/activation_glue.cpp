// CUDA backend of the activation ops: the shared glue (csrc/activation_glue.h) over the torch-free
// kernels (csrc/cuda/activation.cu), on the current stream of the input's device.
#include <c10/cuda/CUDAStream.h>

#include "activation_glue.h"
#include "cuda/activation_cuda.h"

namespace beamkernels {

struct CudaActivation {
  template <typename T>
  static void forward(ActivationParams<T>& p) {
    const cudaError_t err = cuda::launch_activation_forward<T>(p, c10::cuda::getCurrentCUDAStream().stream());
    TORCH_CHECK(err == cudaSuccess, "beamkernels: CUDA activation forward failed: ", cudaGetErrorString(err));
  }
  template <typename T>
  static void backward(ActivationParams<T>& p) {
    const cudaError_t err = cuda::launch_activation_backward<T>(p, c10::cuda::getCurrentCUDAStream().stream());
    TORCH_CHECK(err == cudaSuccess, "beamkernels: CUDA activation backward failed: ", cudaGetErrorString(err));
  }
  static int64_t chunks_per_row(int64_t inner) { return cuda::act_chunks_per_row(inner); }
};

BEAMKERNELS_REGISTER_ACTIVATIONS(CUDA, CudaActivation)

}  // namespace beamkernels
