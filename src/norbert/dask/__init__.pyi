# Type stubs for norbert.dask (needs the [dask] extra; checked by tests/test_stubs.py).
# Dask arrays are typed Any: dask.array ships no precise array type to refer to.

import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

__all__ = ["expectation_maximization", "from_npy", "refine_files", "softmask", "to_npy", "wiener"]

_DaskArray = Any  # dask.array.Array
_Path = str | os.PathLike[str]

def wiener(
    v: Any,
    x: Any,
    iterations: int = 1,
    use_softmask: bool = True,
    eps: float | None = None,
    *,
    workers: int = 1,
    split_every: int | dict[int, int] | None = None,
) -> _DaskArray: ...
def expectation_maximization(
    y: Any,
    x: Any,
    iterations: int = 2,
    verbose: int = 0,
    eps: float | None = None,
    *,
    workers: int = 1,
    split_every: int | dict[int, int] | None = None,
) -> tuple[_DaskArray, _DaskArray, _DaskArray]: ...
def softmask(
    v: Any, x: Any, logit: float | None = None, eps: float | None = None, *, workers: int = 1
) -> _DaskArray: ...
def from_npy(file: _Path | np.memmap[Any, Any], chunks: Any = None) -> _DaskArray: ...
def to_npy(
    a: _DaskArray, path: _Path, *, compute: bool = True, **compute_kwargs: Any
) -> np.memmap[Any, Any] | Any: ...
def refine_files(
    jobs: Iterable[tuple[_Path, _Path, _Path]],
    *,
    client: Any = None,
    iterations: int = 1,
    use_softmask: bool = True,
    eps: float | None = None,
    workers: int = 1,
    frames_per_chunk: int | None = None,
    progress: bool | Callable[[int, int], object] | None = None,
) -> list[str]: ...
