// A CPU emulator of the part of the CUDA runtime and device language that csrc/cuda/*.cu use,
// so that the CUDA kernels and their torch glue run (and are tested) on a machine without a GPU.
// It checks the kernels' logic: index maps, tiling and bounds, barriers, warp shuffles, WMMA
// tiles, launch configurations. It says nothing about speed, nor about races that no order of
// whole threads between barriers exposes (README.md, "CUDA kernels without a GPU").
//
// Model: a launch runs its blocks one after the other; the threads of a block are fibers (a
// hand-written context switch on x86-64, ucontext elsewhere) on one OS thread, each running until
// it finishes or waits at a barrier (__syncthreads, or the warp-wide one inside a shuffle or a
// WMMA call), in one of four schedules (runtime.cpp). `__shared__` variables become function
// statics, poisoned at each block's start: one block runs at a time, so they are shared exactly by
// the threads of that block. A WMMA fragment holds its whole tile in every lane (mma.h).
// Used by tests/cuda_emu/build.py, which rewrites `kernel<<<grid, block, smem, stream>>>(args)`
// into `::bk_emu::launch<&kernel>(::bk_emu::LaunchCfg(grid, block, smem, stream), args)`.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__ __restrict

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) double2 {
  double x, y;
};

typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
} cudaError_t;
enum cudaDeviceAttr {
  cudaDevAttrMaxGridDimY = 6,
  cudaDevAttrMaxGridDimZ = 7,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
};
typedef struct CUstream_st* cudaStream_t;

namespace bk_emu {

// The emulated thread's coordinates (set by the scheduler before it resumes a fiber).
extern uint3 g_thread_idx, g_block_idx;
extern dim3 g_block_dim, g_grid_dim;

struct LaunchCfg {
  dim3 grid, block;
  size_t smem;
  LaunchCfg(dim3 g, dim3 b, size_t s = 0, cudaStream_t = nullptr) : grid(g), block(b), smem(s) {}
};

// The most threads a kernel's blocks may have (its __launch_bounds__), by the kernel's name
// (registered by build.py's rewrite; a launch with more fails, as on a GPU).
bool register_launch_bounds(const char* kernel, unsigned max_threads);

// Runs body once per thread of every block (see the model above); records errors for
// cudaGetLastError. name: the kernel, for messages and for launches().
void run_grid(const char* name, const LaunchCfg& cfg, const std::function<void()>& body);
void sync_block();
// Warp-wide exchange for the shuffles: every lane of the warp publishes `bytes` of v, then reads
// lane `src`'s value (its own when src is outside [0, width) of its segment).
void warp_exchange(const void* v, void* out, size_t bytes, unsigned mask, int src_lane_offset, int width);
[[noreturn]] void trap();
// Fails the running launch with this message (a device-side error: what the hardware would do).
[[noreturn]] void fail(const std::string& message);
// Called (by build.py's rewrite) right after each __shared__ declaration: the first thread of a block
// to get there fills the variable with 0xff bytes (NaN), as a GPU gives no defined contents, so a read
// before a write does not see the previous block's values.
void poison_shared(void* p, size_t bytes);
// A warp-collective call (WMMA): every lane of the warp must make it, with the same (a, b).
void warp_uniform(const char* what, uint64_t a, uint64_t b);

template <class F>
struct KernelSig;
template <class... P>
struct KernelSig<void (*)(P...)> {
  using Args = std::tuple<std::decay_t<P>...>;
};

template <auto K>
const char* kernel_name() {
  return __PRETTY_FUNCTION__;
}

template <auto K, class... A>
void launch(const LaunchCfg& cfg, A&&... a) {
  using Args = typename KernelSig<decltype(K)>::Args;
  Args args(std::forward<A>(a)...);  // converted once, as a kernel launch copies its arguments
  run_grid(kernel_name<K>(), cfg, [&args] { std::apply(K, args); });
}

}  // namespace bk_emu

#define threadIdx (static_cast<const uint3&>(::bk_emu::g_thread_idx))
#define blockIdx (static_cast<const uint3&>(::bk_emu::g_block_idx))
#define blockDim (static_cast<const dim3&>(::bk_emu::g_block_dim))
#define gridDim (static_cast<const dim3&>(::bk_emu::g_grid_dim))

inline void __syncthreads() { ::bk_emu::sync_block(); }
[[noreturn]] inline void __trap() { ::bk_emu::trap(); }

template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  T out;
  ::bk_emu::warp_exchange(&v, &out, sizeof(T), mask, static_cast<int>(delta), width);
  return out;
}

// One OS thread runs every emulated thread, so an atomic read-modify-write is a plain one.
inline float atomicAdd(float* a, float v) {
  const float old = *a;
  *a = old + v;
  return old;
}
inline double atomicAdd(double* a, double v) {
  const double old = *a;
  *a = old + v;
  return old;
}

// Round-to-nearest intrinsics: the host build does not contract (no FMA at -O2 on x86-64
// without -mfma), so the plain operations round the same way.
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaGetDevice(int* dev);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int dev);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream = nullptr);
