"""Dtype handling of the complex layers: construction, conversion, and the input check.

Conversion of layers that hold real tensors next to complex ones (norm statistics and weights,
modReLU biases): torch's Module.to(torch.complex128) would make the real ones complex, and
.double() / .float() leave complex tensors alone, so a converted layer would not run. Here the
real tensors take the real counterpart of a complex target dtype, and the complex tensors follow
a float32 / float64 target of the real ones (complex64 / complex128). A real target never goes
through torch's complex -> real cast (which drops the imaginary part): a complex tensor converts
directly to the complex target. Other targets (.half(), .bfloat16(), .to(torch.complex32), ...)
are refused before anything is converted: the layers run in complex64 / complex128 only."""

from __future__ import annotations

import torch
from torch import Tensor

COMPLEX_DTYPES = (torch.complex64, torch.complex128)
_REAL_DTYPES = (torch.float32, torch.float64)
_LAYER_DTYPE = {torch.float32: torch.complex64, torch.float64: torch.complex128,
                torch.complex64: torch.complex64, torch.complex128: torch.complex128}
_SUPPORTED = ("complex64 / complex128 (convert with .float(), .to(torch.float32) or .to(torch.complex64); "
              ".double(), .to(torch.float64) or .to(torch.complex128))")


def complex_dtype(name: str, dtype, allow_real: bool = False) -> torch.dtype:
    """The layer's complex dtype for a constructor's ``dtype`` (None: complex64). allow_real: also
    take float32 / float64 (the layers whose own tensors are all real name them so)."""
    if dtype is None:
        return torch.complex64
    if dtype in COMPLEX_DTYPES:
        return dtype
    if allow_real and dtype in _REAL_DTYPES:
        return dtype.to_complex()
    what = ("torch.complex64 or torch.complex128 (or its real counterpart, torch.float32 / torch.float64)"
            if allow_real else "complex (torch.complex64 or torch.complex128)")
    raise TypeError(f"{name}: dtype must be {what}, got {dtype}")


class RealStateFollowsDtype:
    """Mixin for torch.nn.Module subclasses (put it first in the bases)."""

    def _own_tensor(self) -> Tensor | None:
        for group in (self._parameters, self._buffers):
            for t in group.values():
                if t is not None and (t.is_complex() or t.is_floating_point()):
                    return t
        return None

    def _check_input_dtype(self, x) -> None:
        """A complex input of the other precision than the layer's: say so (the op's own check
        would name one of the layer's tensors). Other inputs are left to the op's checks."""
        t = self._own_tensor()
        if t is None or not isinstance(x, Tensor) or x.dtype not in COMPLEX_DTYPES:
            return
        layer = _LAYER_DTYPE.get(t.dtype)  # (a dict, not dtype.to_complex(): torch.compile traces this)
        if layer is not None and x.dtype != layer:
            raise TypeError(f"{type(self).__name__}: layer is {str(layer).removeprefix('torch.')}, input is "
                            f"{str(x.dtype).removeprefix('torch.')}; convert the module with .to({x.dtype})")

    def _apply(self, fn, recurse=True):
        own = [t for t in list(self.parameters(False)) + list(self.buffers(False)) if t is not None]
        ref = next((t for t in own if t.is_floating_point()), None)
        if ref is None:
            ref = next((t for t in own if t.is_complex()), None)
        complex_target = None
        drops_imag = False
        if ref is not None:
            # What fn does to this layer's dtypes (probes on empty tensors: .double(), .float(), .to(...))
            real = ref.dtype.to_real()
            probe = fn(torch.empty(0, dtype=real, device=ref.device))
            if probe.dtype != real and probe.dtype not in _REAL_DTYPES + COMPLEX_DTYPES:
                raise TypeError(f"{type(self).__name__}: cannot convert to {probe.dtype}: beamkernels layers run in "
                                f"{_SUPPORTED}")
            if probe.dtype in _REAL_DTYPES:
                complex_target = probe.dtype.to_complex()
                cprobe = fn(torch.empty(0, dtype=real.to_complex(), device=ref.device))
                drops_imag = not cprobe.is_complex()  # .to(float64): torch's cast would drop Im

        def convert(t):
            if t.is_complex() and drops_imag:
                # fn on each part (its device, memory format, ...), never its complex -> real cast
                return torch.complex(fn(t.real), fn(t.imag)).to(complex_target)
            out = fn(t)
            if not t.is_complex() and out.is_complex():  # .to(complex dtype): keep a real tensor real
                return out.real.contiguous()
            if t.is_complex() and complex_target is not None and out.dtype != complex_target:
                return out.to(complex_target)
            return out

        return super()._apply(convert, recurse)
