"""norbert's compiled core (Cython, OpenMP). Private: use the functions of `norbert`."""

from norbert._core._common import Estimate, Status, max_threads, openmp_enabled
from norbert._core._stereo import isa

__all__ = ["Estimate", "Status", "isa", "max_threads", "openmp_enabled"]
