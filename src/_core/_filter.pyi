# Stubs for norbert._core._filter (Cython): Python entries of the kernels of _filter.pxd.
# Each kernel entry returns an int Status.

from typing import Any

import numpy as np
import numpy.typing as npt

_Complex = npt.NDArray[np.complexfloating[Any, Any]]
_Real = npt.NDArray[np.floating[Any]]
_Double = npt.NDArray[np.float64]

def apply_estimate(
    mode: int,
    x: _Complex,  # const complex_t[:, :, ::1]        (E * frames, bins, C)
    v: _Real,  # const floating[:, :, :, ::1]         (E * frames, bins, {1, C}, J) or empty
    P: _Real,  # const floating[:, :, :]   (E * frames, bins, J): sources or bins contiguous
    R: _Double,  # const double[:, :, :, :, ::1]      (E * bins, J, C, C, 2)
    scale: float | npt.ArrayLike,  # double, or (E,) doubles: a batch of E problems
    eps: float,  # double
    logit: float,  # double
    slope: float,  # double
    out_scale: float | npt.ArrayLike,  # double, or (E,) doubles
    y_out: _Complex,  # complex_t[:, :, :, ::1]       OUT (E * frames, bins, C, J)
    work: _Double,  # double[:, ::1]                  scratch (threads, work size)
    n_threads: int,  # int
    block_frames: int = 0,  # Py_ssize_t  frames per work item (0: a default)
    max_lead: int = 0,  # Py_ssize_t      blocks threads may drift apart (0: no bound)
    split: bool = False,  # bint          y_out's points as (C, 2, J) reals (open-unmix)
    mu: float = 1.0,  # double             MODEL: != 1 takes the SDW filter
    monitor: _Double | None = None,  # double[:, ::1]  INOUT (3, E * bins) sums, or None
) -> int: ...
def mix_model(
    v: _Real,  # const floating[:, :, ::1]            (frames, bins, J)
    R: _Complex,  # const complex_t[:, :, :, ::1]     (bins, C, C, J)
    Cxx_out: _Complex,  # complex_t[:, :, :, ::1]     OUT (frames, bins, C, C)
    n_threads: int,  # int
) -> int: ...
def gain(
    v_j: _Real,  # const floating[:, ::1]             (frames, bins)
    R_j: _Complex,  # const complex_t[:, :, ::1]      (bins, C, C)
    inv_Cxx: _Complex,  # const complex_t[:, :, :, ::1]  (frames, bins, C, C)
    G_out: _Complex,  # complex_t[:, :, :, ::1]       OUT (frames, bins, C, C)
    n_threads: int,  # int
) -> int: ...
def apply(
    x: _Complex,  # const complex_t[:, :, ::1]        (frames, bins, C)
    W: _Complex,  # const complex_t[:, :, :, ::1]     (frames, bins, C, C)
    y_out: _Complex,  # complex_t[:, :, ::1]          OUT (frames, bins, C)
    n_threads: int,  # int
) -> int: ...
def max_abs2(
    x: _Complex,  # const complex_t[:, :, ::1]
    n_threads: int = ...,
) -> float: ...
def max_abs2_elements(
    x: _Complex,  # const complex_t[:, :, ::1]        (E * frames, bins, C)
    n_elements: int,  # Py_ssize_t                    E
    n_threads: int = ...,
) -> npt.NDArray[np.float64]: ...  # (E,)
