// Torch-free launch-limit helpers shared by the CUDA launchers.
#pragma once
#include <cuda_runtime.h>

namespace beamkernels {
namespace cuda {

// The current device's grid y / z limit (65535 on every GPU so far): launchers that put groups or
// channels on those dimensions split their work or loop beyond it.
inline cudaError_t grid_yz_limit(int* limit) {
  int dev = 0, y = 0, z = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&y, cudaDevAttrMaxGridDimY, dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&z, cudaDevAttrMaxGridDimZ, dev);
  *limit = y < z ? y : z;
  return err;
}

}  // namespace cuda
}  // namespace beamkernels
