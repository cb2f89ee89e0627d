"""Shared helpers of the emulator tests."""

import torch


def guarded(t: torch.Tensor, pad: int = 4096) -> torch.Tensor:
    """t's values in a contiguous view inside a NaN-filled buffer (the glue takes it as is, no
    copy): a read past either end of the tensor turns into NaN in the results."""
    nan = complex(float("nan"), float("nan")) if t.is_complex() else float("nan")
    buf = torch.full((t.numel() + 2 * pad,), nan, dtype=t.dtype)
    v = buf[pad:pad + t.numel()].view(t.shape)
    v.copy_(t.detach())
    return v.requires_grad_(t.requires_grad)


def tf32_round(t: torch.Tensor) -> torch.Tensor:
    """complex64 -> the values TF32 keeps (10 mantissa bits, round to nearest, ties away)."""
    r = torch.view_as_real(t.detach()).contiguous().view(torch.int32)
    finite = (r & 0x7F800000) != 0x7F800000
    r = torch.where(finite, (r + 0x1000) & -0x2000, r)
    return torch.view_as_complex(r.view(torch.float32))
