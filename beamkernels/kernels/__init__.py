"""Kernels written in Python DSLs (Triton). The C++/CUDA kernels live in csrc/."""
