"""Dtype conversion of layers that hold real tensors next to complex ones (norm statistics and
weights, modReLU biases): torch's Module.to(torch.complex128) would make the real ones complex,
and .double() / .float() leave complex tensors alone, so a converted layer would not run. Here the
real tensors take the real counterpart of a complex target dtype, and the complex tensors follow
a float32 / float64 target of the real ones (complex64 / complex128)."""

from __future__ import annotations

import torch


class RealStateFollowsDtype:
    """Mixin for torch.nn.Module subclasses (put it first in the bases)."""

    def _apply(self, fn, recurse=True):
        own = [t for t in list(self.parameters(False)) + list(self.buffers(False)) if t is not None]
        ref = next((t for t in own if t.is_floating_point()), None)
        if ref is None:
            ref = next((t for t in own if t.is_complex()), None)
        complex_target = None
        if ref is not None:
            # What fn does to this layer's real dtype (a probe on an empty tensor: .double(), .float(), .to(...))
            real = ref.dtype.to_real()
            probe = fn(torch.empty(0, dtype=real, device=ref.device))
            if probe.dtype != real and probe.dtype in (torch.float32, torch.float64):
                complex_target = probe.dtype.to_complex()

        def convert(t):
            out = fn(t)
            if not t.is_complex() and out.is_complex():  # .to(complex dtype): keep a real tensor real
                return out.real.contiguous()
            if t.is_complex() and complex_target is not None and out.dtype != complex_target:
                return out.to(complex_target)
            return out

        return super()._apply(convert, recurse)
