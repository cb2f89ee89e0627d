// Emulator shim (tests/cuda_emu): see bk_cuda_emu.h.
#pragma once
#include "bk_cuda_emu.h"
