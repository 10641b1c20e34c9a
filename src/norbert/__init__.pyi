# Type stubs for norbert's public API (PEP 561: shipped with py.typed).
# Arrays in, arrays out: inputs take anything numpy.asarray accepts; outputs are ndarrays
# whose precision follows x (complex64 -> complex64, complex128 -> complex128).
# CPU torch.Tensors are accepted as arrays too; the results are then tensors (docs/torch.rst),
# which these stubs do not spell out (torch is not a dependency).
# tests/test_stubs.py checks every signature here against inspect.signature at run time.

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from norbert import contrib as contrib
from norbert.contrib import compress_filter as compress_filter
from norbert.contrib import reduce_interferences as reduce_interferences
from norbert.contrib import residual_model as residual_model
from norbert.contrib import smooth as smooth

__version__: str
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

_Complex = npt.NDArray[np.complexfloating[Any, Any]]
_Real = npt.NDArray[np.floating[Any]]
_Progress = Callable[[int, int], object]

class ParameterError(ValueError): ...

class EMRecord:
    iteration: int
    log_likelihood: float
    consistency: float
    def __init__(self, iteration: int, log_likelihood: float, consistency: float) -> None: ...

_Callback = Callable[[EMRecord], object]

class OnlineWiener:
    nb_bins: int
    nb_channels: int
    nb_sources: int
    lookahead: int
    forget: float
    use_softmask: bool
    eps: float
    dtype: np.dtype[Any]
    level: float | None
    frames_in: int
    frames_out: int
    def __init__(
        self,
        nb_bins: int,
        nb_channels: int,
        nb_sources: int,
        *,
        lookahead: int = 0,
        forget: float = 0.99,
        use_softmask: bool = True,
        eps: float | None = None,
        dtype: npt.DTypeLike = ...,
        level: float | None = None,
        workers: int | None = None,
    ) -> None: ...
    @property
    def held(self) -> int: ...
    def process(self, v: npt.ArrayLike, x: npt.ArrayLike) -> _Complex: ...
    def flush(self) -> _Complex: ...
    def reset(self) -> None: ...

def expectation_maximization(
    y: npt.ArrayLike,
    x: npt.ArrayLike,
    iterations: int = 2,
    verbose: int = 0,
    eps: float | None = None,
    *,
    workers: int | None = None,
    out: _Complex | None = None,
    progress: _Progress | None = None,
    frames_per_block: int | None = None,
    R: npt.ArrayLike | None = None,
    update_R: bool = True,
    mu: float = 1.0,
    callback: _Callback | None = None,
    tol: float | None = None,
) -> tuple[_Complex, _Real, _Complex]: ...
def wiener(
    v: npt.ArrayLike,
    x: npt.ArrayLike,
    iterations: int = 1,
    use_softmask: bool = True,
    eps: float | None = None,
    *,
    workers: int | None = None,
    out: _Complex | None = None,
    progress: _Progress | None = None,
    frames_per_block: int | None = None,
    R: npt.ArrayLike | None = None,
    update_R: bool = True,
    mu: float = 1.0,
    callback: _Callback | None = None,
    tol: float | None = None,
    verbose: int = 0,
) -> _Complex: ...
def softmask(
    v: npt.ArrayLike,
    x: npt.ArrayLike,
    logit: float | None = None,
    eps: float | None = None,
    *,
    workers: int | None = None,
    out: _Complex | None = None,
) -> _Complex: ...
def wiener_gain(
    v_j: npt.ArrayLike,
    R_j: npt.ArrayLike,
    inv_Cxx: npt.ArrayLike,
    *,
    workers: int | None = None,
) -> _Complex: ...
def apply_filter(
    x: npt.ArrayLike, W: npt.ArrayLike, *, workers: int | None = None
) -> _Complex: ...
def get_mix_model(
    v: npt.ArrayLike, R: npt.ArrayLike, *, workers: int | None = None
) -> _Complex: ...
def get_local_gaussian_model(
    y_j: npt.ArrayLike, eps: float = 1.0, *, workers: int | None = None
) -> tuple[_Real, _Complex]: ...
def get_num_threads(workers: int | None = None) -> int: ...
def get_include() -> str: ...
def openmp_enabled() -> bool: ...
