# Stubs for norbert._core._online (Cython): Python entries of the kernels of _online.pxd.
# Each kernel entry returns an int Status.

from typing import Any

import numpy as np
import numpy.typing as npt

_Complex = npt.NDArray[np.complexfloating[Any, Any]]
_Real = npt.NDArray[np.floating[Any]]
_Double = npt.NDArray[np.float64]

def parallel_threshold(work: int = -1) -> int: ...
def process(
    mode: int,
    x: _Complex,  # const complex_t[:, :, ::1]        (n, bins, C)
    v: _Real,  # const floating[:, :, :, ::1]         (n, bins, {1, C}, J)
    scale: float,  # double
    eps: float,  # double
    forget: float,  # double
    out_scale: float,  # double
    frames_in: int,  # Py_ssize_t
    frames_out: int,  # Py_ssize_t
    x_ring: _Complex,  # complex_t[:, :, ::1]         INOUT (L + 1, bins, C)
    P_ring: _Real,  # floating[:, :, ::1]             INOUT (L + 1, bins, J)
    Rnum: _Double,  # double[:, :, :, :, ::1]         INOUT (bins, J, C, C, 2)
    weight: _Double,  # double[:, ::1]                INOUT (bins, J)
    y_out: _Complex,  # complex_t[:, :, :, ::1]       OUT (m, bins, C, J)
    work: _Double,  # double[:, ::1]                  scratch (threads, work_columns)
    n_threads: int,  # int
) -> int: ...
def accumulate_frame(
    mode: int,
    x: _Complex,  # const complex_t[:, ::1]           (bins, C)
    v: _Real,  # const floating[:, :, ::1]            (bins, {1, C}, J)
    scale: float,  # double
    eps: float,  # double
    forget: float,  # double
    P_out: _Real,  # floating[:, ::1]                 OUT (bins, J)
    Rnum: _Double,  # double[:, :, :, :, ::1]         INOUT (bins, J, C, C, 2)
    weight: _Double,  # double[:, ::1]                INOUT (bins, J)
    work: _Double,  # double[:, ::1]                  scratch (threads, work_columns)
    n_threads: int,  # int
) -> int: ...
def filter_frame(
    x: _Complex,  # const complex_t[:, ::1]           (bins, C)
    P: _Real,  # const floating[:, ::1]               (bins, J)
    Rnum: _Double,  # const double[:, :, :, :, ::1]   (bins, J, C, C, 2)
    weight: _Double,  # const double[:, ::1]          (bins, J)
    scale: float,  # double
    eps: float,  # double
    out_scale: float,  # double
    y_out: _Complex,  # complex_t[:, :, ::1]          OUT (bins, C, J)
    work: _Double,  # double[:, ::1]                  scratch (threads, work_columns)
    n_threads: int,  # int
) -> int: ...
def work_columns(nb_channels: int, nb_sources: int) -> int: ...
def isa() -> str: ...
def process_tiled(
    mode: int,
    x: _Complex,  # const complex_t[:, :, ::1]        (n, bins, C)
    v: _Real,  # const floating[:, :, :, ::1]         (n, bins, {1, C}, J)
    scale: float,  # double
    eps: float,  # double
    forget: float,  # double
    out_scale: float,  # double
    frames_in: int,  # Py_ssize_t
    frames_out: int,  # Py_ssize_t
    x_ring: _Complex,  # complex_t[:, :, ::1]         INOUT (L + 1, bins, C)
    P_ring: _Real,  # floating[:, :, ::1]             INOUT (L + 1, bins, J)
    Rnum: _Double,  # double[:, :, :, :, ::1]         INOUT (tiles, J, NP, 2, TILE_BINS)
    weight: _Double,  # double[:, :, ::1]             INOUT (tiles, J, TILE_BINS)
    y_out: _Complex,  # complex_t[:, :, :, ::1]       OUT (m, bins, C, J)
    work: _Double,  # double[:, ::1]                  scratch (threads, work_columns)
    n_threads: int,  # int
) -> int: ...
def filter_tiled(
    x: _Complex,  # const complex_t[:, ::1]           (bins, C)
    P: _Real,  # const floating[:, ::1]               (bins, J)
    Rnum: _Double,  # const double[:, :, :, :, ::1]   (tiles, J, NP, 2, TILE_BINS)
    weight: _Double,  # const double[:, :, ::1]       (tiles, J, TILE_BINS)
    scale: float,  # double
    eps: float,  # double
    out_scale: float,  # double
    y_out: _Complex,  # complex_t[:, :, ::1]          OUT (bins, C, J)
    work: _Double,  # double[:, ::1]                  scratch (threads, work_columns)
    n_threads: int,  # int
) -> int: ...
def tiled_state(
    nb_bins: int, nb_channels: int, nb_sources: int
) -> tuple[tuple[int, int, int, int, int], tuple[int, int, int]] | None: ...

TILE_BINS: int
