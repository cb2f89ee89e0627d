// Emulator shim (tests/cuda_emu): C10_CUDA_CHECK as c10's, on the emulated runtime's errors.
#pragma once
#include <c10/util/Exception.h>

#include "../../bk_cuda_emu.h"

#define C10_CUDA_CHECK(EXPR)                                                                   \
  do {                                                                                         \
    const cudaError_t bk_emu_err = (EXPR);                                                     \
    TORCH_CHECK(bk_emu_err == cudaSuccess, "CUDA error: ", cudaGetErrorString(bk_emu_err));     \
  } while (0)
