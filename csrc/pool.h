// Max-pool by magnitude: the comparison key and the params struct, shared by the CPU and CUDA
// kernels. Torch-free. Spec: beamkernels/reference/pool.py.
//
// Each output is the ORIGINAL complex element with the largest |z| in its window, compared by
// the key re*re + im*im (orders like |z|, no sqrt; each product rounded, then the sum, exactly
// as the reference computes it). The scan is row-major and takes an element only if its key is
// strictly greater, so ties go to the first; a NaN key wins once and stays (as torch.argmax).
// Padding is never read (it counts as -inf). Indices are per plane: h * W + w.
#pragma once
#include "common.h"

namespace beamkernels {

// true if a candidate with key `k` replaces the current best key `best`.
// (k > best) || (k is NaN && best is not NaN), written with two compares that vectorize.
template <typename T>
BK_HD bool pool_takes(T k, T best) {
  return !(k <= best) & (best == best);  // '&', not '&&': no branch, so loops vectorize
}

template <typename T>
struct MaxPoolParams {
  index_t planes;                  // N * C
  index_t height, width;           // input plane H, W
  index_t out_height, out_width;   // OH, OW
  index_t kh, kw, sh, sw, ph, pw, dh, dw;
  const T* x;                      // forward: interleaved complex [planes, H, W]
  T* out;                          // forward: interleaved complex [planes, OH, OW]
  int64_t* indices;                // forward output / backward input: [planes, OH, OW]
  const T* grad_out;               // backward: interleaved complex [planes, OH, OW]
  T* grad_x;                       // backward: interleaved complex [planes, H, W] (CPU zeroes it; CUDA: caller)
  int num_threads;                 // CPU only
};

}  // namespace beamkernels
