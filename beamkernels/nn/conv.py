"""Complex convolution layers (torch.nn signatures) with an optional fused activation."""

from __future__ import annotations

import torch
import torch.nn.functional as TF
from torch import Tensor, nn

from beamkernels import functional as F
from beamkernels._checks import check_complex
from beamkernels.nn._dtype import RealStateFollowsDtype, complex_dtype
from beamkernels.nn import init as cinit

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_INITS = ("kaiming", "xavier")


def _ntuple(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


class _ComplexConvNd(RealStateFollowsDtype, nn.Module):
    """Shared parameters of the complex conv layers.

    Parameters: ``weight`` (complex, torch's conv weight shape, so a state_dict of
    ``torch.nn.ConvNd(..., dtype=torch.complex64)`` loads), ``bias`` (complex [C_out], init 0, or
    None) and, with ``activation='modrelu'``, ``activation_bias`` (real [C_out], init
    ``activation_bias_init``). Weight init: complex He (``init='kaiming'``, the default) or
    Glorot (``'xavier'``), see beamkernels.nn.init.
    """

    def __init__(self, nd, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, transposed, output_padding, activation, activation_bias_init, init, device, dtype):
        super().__init__()
        name = type(self).__name__
        dtype = complex_dtype(name, dtype)
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"{name}: in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels ({in_channels}) and out_channels "
                             f"({out_channels})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if transposed and padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported for transposed convolutions")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"{name}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
        if activation not in (None, "crelu", "zrelu", "modrelu", "cardioid"):
            raise ValueError(f"{name}: activation must be None, 'crelu', 'zrelu', 'modrelu' or 'cardioid', "
                             f"got {activation!r}")
        if init not in _INITS:
            raise ValueError(f"{name}: init must be one of {_INITS}, got {init!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _ntuple(kernel_size, nd)
        self.stride = _ntuple(stride, nd)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, nd)
        if padding == "same" and any(st != 1 for st in self.stride):
            raise ValueError(f"{name}: padding='same' is not supported for strided convolutions (as in torch), "
                             f"got stride={self.stride}")
        self.dilation = _ntuple(dilation, nd)
        self.output_padding = _ntuple(output_padding, nd)
        self.groups, self.padding_mode, self.transposed = groups, padding_mode, transposed
        self.activation, self.init = activation, init
        factory = dict(device=device, dtype=dtype)
        shape = ((in_channels, out_channels // groups) if transposed else (out_channels, in_channels // groups))
        self.weight = nn.Parameter(torch.empty(shape + self.kernel_size, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        if activation == "modrelu":
            self.activation_bias = nn.Parameter(
                torch.full((out_channels,), float(activation_bias_init), device=device, dtype=dtype.to_real()))
        else:
            self.register_parameter("activation_bias", None)
        self._activation_bias_init = float(activation_bias_init)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        (cinit.complex_kaiming_ if self.init == "kaiming" else cinit.complex_xavier_)(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        if self.activation_bias is not None:
            nn.init.constant_(self.activation_bias, self._activation_bias_init)

    _op = ""  # the functional op's name, for the input checks' messages

    def _check_input(self, x) -> None:
        """Before any padding: a non-complex input gets the op's message (not one from the pad);
        a complex input of the other precision says which conversion the layer needs."""
        check_complex(x, self._op, "x")
        self._check_input_dtype(x)

    def _pad_input(self, x: Tensor) -> tuple[Tensor, object]:
        """For padding_mode != 'zeros': pad x with that mode and convolve with padding 0 (as torch)."""
        if self.padding_mode == "zeros" or self.padding == "valid":
            return x, self.padding
        if self.padding == "same":  # as torch: total d (k - 1) per dim, the odd one on the right
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            sides = [(t // 2, t - t // 2) for t in totals]
        else:
            sides = [(p, p) for p in self.padding]
        pad = []
        for lo, hi in reversed(sides):
            pad += [lo, hi]
        if self.padding_mode == "reflect" or self.padding_mode == "replicate":
            # torch's reflect/replicate pad has no complex kernel: pad both parts.
            x = torch.complex(TF.pad(x.real, pad, mode=self.padding_mode), TF.pad(x.imag, pad, mode=self.padding_mode))
        else:
            x = TF.pad(x, pad, mode=self.padding_mode)
        return x, 0

    def _unbatched(self, x: Tensor) -> bool:
        """torch.nn's conv layers also take one sample without the batch dim ([C, *spatial])."""
        return isinstance(x, Tensor) and x.dim() == len(self.kernel_size) + 1

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * len(self.kernel_size):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.transposed and self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        if self.activation is not None:
            s += f", activation={self.activation}"
        return s


class ComplexConv1d(_ComplexConvNd):
    """Complex 1-D convolution ``activation(conv1d(x, weight) + bias)`` on [N, C_in, L] complex input
    (torch.nn.Conv1d's signature plus ``activation``, ``activation_bias_init`` and ``init``)."""

    _op = "complex_conv1d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None,
                 activation: str | None = None, activation_bias_init: float = 0.0, init: str = "kaiming"):
        super().__init__(1, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, False, 0, activation, activation_bias_init, init, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if self._unbatched(x):
            return self.forward(x.unsqueeze(0)).squeeze(0)
        x, padding = self._pad_input(x)
        return F.complex_conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups,
                                self.activation, self.activation_bias)


class ComplexConv2d(_ComplexConvNd):
    """Complex 2-D convolution ``activation(conv2d(x, weight) + bias)`` on [N, C_in, H, W] complex input
    (torch.nn.Conv2d's signature plus ``activation``, ``activation_bias_init`` and ``init``).

    Equivalent to: ``act(torch.nn.Conv2d(..., dtype=torch.complex64)(x))`` with bias init 0 and
    complex He weight init.
    """

    _op = "complex_conv2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None,
                 activation: str | None = None, activation_bias_init: float = 0.0, init: str = "kaiming"):
        super().__init__(2, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, False, 0, activation, activation_bias_init, init, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if self._unbatched(x):
            return self.forward(x.unsqueeze(0)).squeeze(0)
        x, padding = self._pad_input(x)
        return F.complex_conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups,
                                self.activation, self.activation_bias)


class ComplexConvTranspose2d(_ComplexConvNd):
    """Complex transposed 2-D convolution ``activation(conv_transpose2d(x, weight) + bias)``
    (torch.nn.ConvTranspose2d's signature plus ``activation``, ``activation_bias_init``, ``init``);
    weight [C_in, C_out / groups, kh, kw]."""

    _op = "complex_conv_transpose2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None, activation: str | None = None, activation_bias_init: float = 0.0,
                 init: str = "kaiming"):
        super().__init__(2, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, True, output_padding, activation, activation_bias_init, init, device, dtype)

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        """``output_size`` (as torch.nn.ConvTranspose2d): the wanted output's (H, W), or its full
        size; it picks the output_padding (which stride alone leaves ambiguous)."""
        self._check_input(x)
        if self._unbatched(x):
            return self.forward(x.unsqueeze(0), output_size).squeeze(0)
        return F.complex_conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                          self._output_padding(x, output_size), self.groups, self.dilation,
                                          self.activation, self.activation_bias)

    def _output_padding(self, x: Tensor, output_size) -> tuple:
        if output_size is None:
            return self.output_padding
        size = [int(v) for v in output_size]
        if len(size) in (3, 4):  # torch also takes [N, C, H, W] or [C, H, W]
            size = size[-2:]
        if len(size) != 2:
            raise ValueError(f"ComplexConvTranspose2d: output_size must be (H, W) or the full output size, got "
                             f"{list(output_size)}")
        pad = []
        for d in range(2):
            lo = ((x.shape[2 + d] - 1) * self.stride[d] - 2 * self.padding[d]
                  + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            hi = lo + self.stride[d] - 1
            if not lo <= size[d] <= hi:
                raise ValueError(f"ComplexConvTranspose2d: output_size {list(output_size)} is not reachable from an input "
                                 f"of size {list(x.shape[2:])}: dim {d} must be in [{lo}, {hi}], got {size[d]}")
            pad.append(size[d] - lo)
        return tuple(pad)
