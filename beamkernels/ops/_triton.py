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


def flat_grid(op: str, *tiles: int) -> tuple[int]:
    """A launch grid with every tile on axis 0: CUDA's grid y and z stop at 65535 (a depthwise conv's
    groups go beyond it), axis 0 at 2^31 - 1. The kernel unflattens its program id."""
    total = 1
    for t in tiles:
        total *= t
    if total >= 2**31:
        raise ValueError(f"beamkernels.{op} (triton backend): {' x '.join(map(str, tiles))} = {total} tiles exceed "
                         "CUDA's grid (2^31 - 1 programs). Use beamkernels.use_backend('cuda') for this layer.")
    return (total,)
