"""Whether Triton ops are registered in this process, and the shared launch helpers."""

from beamkernels._backend import TRITON_INSTALLED

ENABLED = TRITON_INSTALLED
if ENABLED:
    try:
        import triton  # noqa: F401
        from torch.library import triton_op, wrap_triton  # noqa: F401
    except Exception:  # a broken triton install must not break `import beamkernels`
        ENABLED = False


def cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b
