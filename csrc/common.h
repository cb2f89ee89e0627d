// Shared, torch-free helpers for the CPU and CUDA kernels.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define BK_HD __host__ __device__ __forceinline__
#else
#define BK_HD inline
#endif

namespace beamkernels {

// Sizes can exceed 2^31 elements: index with 64 bits everywhere.
using index_t = int64_t;

}  // namespace beamkernels
