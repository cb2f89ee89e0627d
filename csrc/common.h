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
// templates, so apply it to plain functions that inline the templated loop). The levels are named
// as x86-64-v4 (AVX-512 F/BW/DQ/VL) and x86-64-v3 (AVX2 + FMA): a list "avx2,fma" makes two clones,
// AVX2 without FMA and FMA without AVX2, and an AVX2 machine runs the first (no fused multiply-add).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && __GNUC__ >= 12
#define BK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define BK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BK_CLONES
#endif

namespace beamkernels {

// Sizes can exceed 2^31 elements: index with 64 bits everywhere.
using index_t = int64_t;

}  // namespace beamkernels
