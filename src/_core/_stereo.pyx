"""The two-channel row kernels, compiled per instruction set, and the one picked at import.

_stereo_isa.h builds the kernels of _stereo_impl.h for AVX-512, AVX2 and the baseline (GCC
on x86-64; the baseline elsewhere) and this module picks one table of them, once, when it
is imported: the best the CPU runs, or a lower one if the environment variable
NORBERT_ISA is "base" or "avx2". Every variant runs the same IEEE operations on every
bin, so the choice changes the speed, never the bits. The passes of _stats.pyx and
_filter.pyx fetch the table with stereo_ops() and call its members.
"""

from norbert._core._common cimport Status

cdef extern from "_stereo_isa.h" nogil:
    const stereo_ops_t* stereo_pick "norbert_stereo_pick"()

# The kernels report problems as Status bits that C spells out: hold them to Status.
if NOT_FINITE_BIT != 1 << Status.NOT_FINITE or NEGATIVE_BIT != 1 << Status.NEGATIVE:
    raise ImportError("norbert._core: _stereo.h's status bits disagree with Status")

cdef const stereo_ops_t* _ops = stereo_pick()


cdef const stereo_ops_t* stereo_ops() noexcept nogil:
    return _ops


def isa():
    """Return the instruction set of the two-channel kernels: "avx512", "avx2" or "base"."""
    return _ops.isa.decode("ascii")
