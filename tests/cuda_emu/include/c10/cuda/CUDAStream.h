// Emulator shim (tests/cuda_emu): the "current stream" is a null stream; launches run at once.
#pragma once
#include <c10/core/Device.h>

#include "../../bk_cuda_emu.h"

namespace c10 {
namespace cuda {
struct CUDAStream {
  cudaStream_t stream() const { return nullptr; }
  operator cudaStream_t() const { return nullptr; }
};
inline CUDAStream getCurrentCUDAStream(c10::DeviceIndex = -1) { return {}; }
}  // namespace cuda
}  // namespace c10
