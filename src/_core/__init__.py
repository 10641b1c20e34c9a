"""norbert's compiled core (Cython, OpenMP). Private: use the functions of `norbert`."""

from norbert._core._common import Estimate, Status, max_threads, openmp_enabled

__all__ = ["Estimate", "Status", "max_threads", "openmp_enabled"]
