"""norbert: fast multichannel Wiener filtering for audio source separation.

A compiled (Cython, OpenMP) drop-in replacement for norbert 0.2.1, whose public API it
implements: same names, arguments, defaults and shapes. Credit for the API and the
original implementation goes to upstream norbert's authors (Fabian-Robert Stöter,
Antoine Liutkus and contributors).
"""

from pathlib import Path

from norbert import _filtering, contrib
from norbert._core import openmp_enabled
from norbert._online import OnlineWiener
from norbert._steer import EMRecord
from norbert._torch import accepts_tensors
from norbert._validation import ParameterError, resolve_workers

# CPU torch tensors in, tensors out (no copies; torch is never imported by norbert itself).
# contrib's functions are wrapped where they live, so norbert.contrib.smooth is norbert.smooth.
for _name in contrib.__all__:
    setattr(contrib, _name, accepts_tensors(getattr(contrib, _name)))
apply_filter = accepts_tensors(_filtering.apply_filter)
expectation_maximization = accepts_tensors(_filtering.expectation_maximization)
get_local_gaussian_model = accepts_tensors(_filtering.get_local_gaussian_model)
get_mix_model = accepts_tensors(_filtering.get_mix_model)
softmask = accepts_tensors(_filtering.softmask)
wiener = accepts_tensors(_filtering.wiener)
wiener_gain = accepts_tensors(_filtering.wiener_gain)
from norbert.contrib import (  # noqa: E402 (the wrapped functions)
    compress_filter,
    reduce_interferences,
    residual_model,
    smooth,
)

__version__ = "0.3.0"

__all__ = [
    "EMRecord",
    "OnlineWiener",
    "ParameterError",
    "apply_filter",
    "compress_filter",
    "contrib",
    "expectation_maximization",
    "get_include",
    "get_local_gaussian_model",
    "get_mix_model",
    "get_num_threads",
    "openmp_enabled",
    "reduce_interferences",
    "residual_model",
    "smooth",
    "softmask",
    "wiener",
    "wiener_gain",
]


def __getattr__(name):
    # norbert.compat (adapters for torch-based separators) is imported on first use
    if name == "compat":
        import importlib

        return importlib.import_module("norbert.compat")
    raise AttributeError(f"module 'norbert' has no attribute {name!r}")


def get_num_threads(workers=None):
    """Number of threads a call with this `workers` value uses.

    Parameters
    ----------
    workers : int or None
        as the `workers` keyword of the filters: None for OpenMP's limit (all cores unless
        ``OMP_NUM_THREADS`` or threadpoolctl say otherwise), -1 for every core, a negative
        -k for every core but k - 1, a positive count as it is. In a child process made by
        ``fork``, always 1.

    Returns
    -------
    n_threads : int
        threads the kernels will use (small calls may use fewer).

    Examples
    --------
    >>> import norbert
    >>> norbert.get_num_threads(1)
    1
    """
    return resolve_workers(workers)


def get_include():
    """Directory to add to a downstream build's include path to ``cimport norbert._core``.

    Like ``numpy.get_include()``: the returned directory holds the ``norbert`` package
    with its ``.pxd`` files.

    Returns
    -------
    path : str
        the directory to pass as ``include_path=[...]`` to ``cythonize``.

    Examples
    --------
    >>> import os, norbert
    >>> os.path.isdir(os.path.join(norbert.get_include(), "norbert", "_core"))
    True
    """
    return str(Path(__file__).resolve().parent.parent)
