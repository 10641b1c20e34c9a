# Type stubs for norbert.contrib (checked by tests/test_stubs.py).

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["residual_model", "smooth", "reduce_interferences", "compress_filter"]

def residual_model(
    v: npt.ArrayLike, x: npt.ArrayLike, alpha: float = 1, autoscale: bool = False
) -> npt.NDArray[np.floating[Any]]: ...
def smooth(
    v: npt.ArrayLike, width: float = 1, temporal: bool = False
) -> npt.NDArray[np.inexact[Any]]: ...
def reduce_interferences(
    v: npt.ArrayLike, thresh: float = 0.6, slope: float = 15
) -> npt.NDArray[np.floating[Any]]: ...
def compress_filter(
    W: npt.ArrayLike, thresh: float = 0.6, slope: float = 15
) -> npt.NDArray[np.inexact[Any]]: ...
