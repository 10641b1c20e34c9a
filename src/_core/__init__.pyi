# Stubs for norbert._core, the compiled core (private: use the functions of `norbert`).
# Its C-level API is __init__.pxd; this is only the Python-visible part.

from norbert._core._common import Estimate as Estimate
from norbert._core._common import Status as Status
from norbert._core._common import max_threads as max_threads
from norbert._core._common import openmp_enabled as openmp_enabled
from norbert._core._stereo import isa as isa

__all__ = ["Estimate", "Status", "isa", "max_threads", "openmp_enabled"]
