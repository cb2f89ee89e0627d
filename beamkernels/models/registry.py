"""The model registry: ``list_models()``, ``create(name, **config)``, ``model_info(name)``.

Every model of the zoo maps a channel H [B, K, Nr, Nt] (complex) to a precoder F [B, K, Nt, Ns]
with ||F_k||_F^2 = Ns per subcarrier and a combiner W [B, K, Nr, Ns] with unit-norm columns
(see beamkernels.models.outputs). Each class states its parameter count at the default config
in ``DOCUMENTED_PARAMS`` (checked by the tests); counts are in real numbers (a complex
parameter counts 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

DEFAULT_DIMS = dict(K=5, Nr=36, Nt=144, Ns=2)


@dataclass(frozen=True)
class _Entry:
    name: str
    cls: Callable[..., nn.Module]
    summary: str


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, summary: str):
    """Class decorator: adds a model class to the zoo under ``name``."""

    def deco(cls):
        if name in _REGISTRY:
            raise ValueError(f"beamkernels.models: a model named {name!r} is already registered")
        _REGISTRY[name] = _Entry(name, cls, summary)
        cls.registry_name = name
        return cls

    return deco


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise KeyError(f"beamkernels.models: unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name]


def create(name: str, **config) -> nn.Module:
    """Build model ``name`` with keyword ``config`` (e.g. width=8, activation="cardioid",
    K/Nr/Nt/Ns for other antenna settings, device=..., dtype=...)."""
    cls = _entry(name).cls
    try:
        return cls(**config)
    except TypeError as e:  # unknown keyword: name the model and what it accepts
        raise TypeError(f"beamkernels.models.create({name!r}): {e}. Config keys: {config_keys(name)}") from None


def config_keys(name: str) -> list[str]:
    import inspect

    sig = inspect.signature(_entry(name).cls.__init__)
    return [p for p in sig.parameters if p != "self"]


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters in real numbers (a complex parameter counts 2)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters() if p.requires_grad)


def model_info(name: str, **config) -> dict:
    """Summary, config keys, input/output shapes and parameter count of model ``name`` (built
    with ``config``, default dims K=5, Nr=36, Nt=144, Ns=2)."""
    e = _entry(name)
    try:
        with torch.device("meta"):  # counts without allocating or initializing
            m = e.cls(**config)
    except (NotImplementedError, RuntimeError):  # a layer whose init cannot run on meta
        m = e.cls(**config)
    dims = {k: getattr(m, k, v) for k, v in DEFAULT_DIMS.items()}
    K, Nr, Nt, Ns = dims["K"], dims["Nr"], dims["Nt"], dims["Ns"]
    return {
        "name": name,
        "summary": e.summary,
        "class": e.cls.__name__,
        "config_keys": config_keys(name),
        "input": {"H": [None, K, Nr, Nt], "dtype": "complex"},
        "output": {"F": [None, K, Nt, Ns], "W": [None, K, Nr, Ns], "dtype": "complex"},
        "parameters": count_parameters(m),
        "documented_parameters": getattr(e.cls, "DOCUMENTED_PARAMS", None),
    }
