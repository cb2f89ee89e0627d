// Shared input checks for the torch glue layer (the only code that includes torch).
#pragma once
#include <torch/extension.h>

#include <string>

namespace beamkernels {

inline void check_complex(const at::Tensor& t, const char* op, const char* arg) {
  TORCH_CHECK(t.is_complex(), "beamkernels.", op, ": argument '", arg,
              "' must be a complex tensor (complex64 or complex128), got dtype ", t.scalar_type());
  TORCH_CHECK(t.scalar_type() == at::kComplexFloat || t.scalar_type() == at::kComplexDouble, "beamkernels.", op,
              ": argument '", arg, "' must be complex64 or complex128, got ", t.scalar_type());
}

inline void check_same(const at::Tensor& a, const at::Tensor& b, const char* op, const char* an, const char* bn) {
  TORCH_CHECK(a.device() == b.device(), "beamkernels.", op, ": '", bn, "' is on ", b.device(), " but '", an,
              "' is on ", a.device());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "beamkernels.", op, ": '", bn, "' has dtype ", b.scalar_type(),
              " but '", an, "' has dtype ", a.scalar_type());
  TORCH_CHECK(a.sizes() == b.sizes(), "beamkernels.", op, ": '", bn, "' has shape ", b.sizes(), " but '", an,
              "' has shape ", a.sizes());
}

// Real dtype of a complex dtype (complex64 -> float32).
inline at::ScalarType real_dtype(const at::Tensor& t) { return c10::toRealValueType(t.scalar_type()); }

}  // namespace beamkernels
