# Stubs for norbert._core._common (Cython); the C declarations are in _common.pxd.

import enum

import numpy as np
import numpy.typing as npt

class Status(enum.IntEnum):
    """Status codes of the kernels (cpdef enum Status)."""

    OK = 0
    BAD_SHAPE = 1
    NOT_FINITE = 2
    SMALL_WORK = 3
    NEGATIVE = 4
    BAD_MODE = 5

class Estimate(enum.IntEnum):
    """Estimators of source images at one TF point (cpdef enum Estimate)."""

    GIVEN = 0
    SOFTMASK = 1
    PHASE = 2
    MODEL = 3

def pass_info() -> tuple[int, int]: ...
def openmp_enabled() -> bool: ...
def max_threads() -> int: ...
def scratch_size(
    nb_channels: int,  # Py_ssize_t
    nb_sources: int,  # Py_ssize_t
) -> int: ...
def touch_pages(
    buf: npt.NDArray[np.uint8],  # unsigned char[::1]
    page: int,  # Py_ssize_t
    n_threads: int,  # int
) -> None: ...
