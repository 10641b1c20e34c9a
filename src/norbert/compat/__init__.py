"""Adapters that let torch-based separators use norbert's filter.

``norbert.compat.openunmix``: open-unmix 1.3's ``wiener`` and
``expectation_maximization`` (tensor layouts, defaults and results), computed by
norbert, and ``patched()`` to make an installed open-unmix or demucs call them.

The submodules import torch; this package does not, and loads them on first use.
"""

import importlib

__all__ = ["openunmix"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
