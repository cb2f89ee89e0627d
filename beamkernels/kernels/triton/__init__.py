"""Triton kernels. They take torch.view_as_real views (Triton has no complex dtype) and are
registered as ops with torch.library.triton_op in beamkernels/ops/. Imported only when triton
is installed."""
