# Stubs for norbert._core._stats (Cython): Python entries of stats_kernel and
# finalize_covariance_kernel (_stats.pxd). Each returns an int Status.

from typing import Any

import numpy as np
import numpy.typing as npt

_Complex = npt.NDArray[np.complexfloating[Any, Any]]
_Real = npt.NDArray[np.floating[Any]]
_Double = npt.NDArray[np.float64]

MAX_ELEMENTS: int  # elements of a batch one accumulate call takes at most

def accumulate(
    mode: int,
    x: _Complex,  # const complex_t[:, :, ::1]        (E * frames, bins, C)
    v: _Real,  # const floating[:, :, :, ::1]         (E * frames, bins, {1, C}, J) or empty
    y_in: _Complex,  # const complex_t[:, :, :, ::1]  (E * frames, bins, C, J) or empty
    P: _Real,  # floating[:, :, :]   INOUT (E * frames, bins, J): sources or bins contiguous
    R: _Double,  # const double[:, :, :, :, ::1]      (E * bins, J, C, C, 2)
    scale: float | npt.ArrayLike,  # double, or (E,) doubles: a batch of E problems
    eps: float,  # double
    logit: float,  # double
    slope: float,  # double
    Rnum: _Double,  # double[:, :, :, :, ::1]         INOUT (E * bins, J, C, C, 2)
    weight: _Double,  # double[:, ::1]                INOUT (E * bins, J)
    work: _Double,  # double[:, ::1]                  scratch (threads, work size)
    n_threads: int,  # int
    block_frames: int = 0,  # Py_ssize_t  frames per work item (0: a default)
    max_lead: int = 0,  # Py_ssize_t      blocks threads may drift apart (0: no bound)
    mu: float = 1.0,  # double             MODEL: != 1 takes the SDW filter
    monitor: _Double | None = None,  # double[:, ::1]  INOUT (3, bins) sums, or None
) -> int: ...
def finalize_covariance(
    Rnum: _Double,  # const double[:, :, :, :, ::1]   (bins, J, C, C, 2)
    weight: _Double,  # const double[:, ::1]          (bins, J)
    eps: float,  # double
    R_out: _Double,  # double[:, :, :, :, ::1]        OUT (bins, J, C, C, 2)
) -> int: ...
