"""Ops: registration of the beamkernels::* custom ops (fake kernels, autograd, Triton ops) and
the typed public functions that pick a backend and call them. One module per op family."""
