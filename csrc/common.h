// Shared, torch-free helpers for the CPU and CUDA kernels.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define BK_HD __host__ __device__ __forceinline__
#else
#define BK_HD inline
#endif

// CPU hot loops are compiled for AVX-512, AVX2+FMA and baseline x86-64 and picked at load time,
// so one binary is fast on any x86-64 (GCC's function multiversioning; it does not clone
// templates, so apply it to plain functions that inline the templated loop).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define BK_CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))
#else
#define BK_CLONES
#endif

namespace beamkernels {

// Sizes can exceed 2^31 elements: index with 64 bits everywhere.
using index_t = int64_t;

}  // namespace beamkernels
