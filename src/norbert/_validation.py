"""Checks at the boundary: every argument is validated here, never inside the kernels.

Policies (documented in the README's "Guarantees"; tests/test_validation.py and
tests/test_robustness.py hold every case):

- Arrays: anything ``np.asarray`` turns into a numeric array is accepted (nested lists and
  tuples included, converted as NumPy converts them); ragged lists, object, string, bytes
  and boolean arrays, ``None`` and scalars are refused with a TypeError naming the argument.
- ``x`` (``y``, ``y_j``) of wiener, softmask, expectation_maximization and
  get_local_gaussian_model must be complex (an STFT). complex64 and complex128 are used as
  they are; ``clongdouble`` is computed in complex128 (the kernels work in double). The
  matrix building blocks (get_mix_model's ``R``, wiener_gain, apply_filter) and contrib
  accept real arrays as complex ones with a zero imaginary part (contrib's
  residual_model only uses ``|x|``).
- Spectrograms and PSDs (``v``, ``v_j``) must be real. float32/float64 are used as they
  are; integers, float16 and longdouble are converted to x's real dtype (longdouble loses
  its extra precision), block by block (no full-size copy). contrib computes in float32
  or float64 as given, and in float64 for integers, float16 and longdouble.
- NaN or inf in any array argument, and a negative value in a spectrogram or PSD
  (``v``, ``v_j``; negative power is rejected, never clamped), raise a ValueError that names
  the argument and gives the index of the first offending entry: NaN never spreads over a
  bin. Wiener-family kernels report it as they meet it (no extra pass); the other functions
  scan their inputs block by block after allocating their output.
- Empty inputs: 0 frames or 0 bins give an empty result of the documented shape; 0 channels
  (also in get_local_gaussian_model) or 0 sources in wiener, softmask and
  expectation_maximization raise a ParameterError; elsewhere they give empty results.
- Scalars: iterations is an int >= 0 (not bool, not float); eps None or a finite real
  >= 0; workers None or a non-zero int; progress None or a callable; logit None or in
  (0, 1); contrib's alpha > 0, width >= 0, thresh and slope finite. Unknown keywords are
  Python's own TypeError.
- An output that cannot be allocated raises MemoryError saying how many bytes it needed.
- Arrays are never written to; read-only, strided, Fortran-ordered and byte-swapped arrays
  are read through small contiguous blocks.
"""

import mmap
import numbers
import operator
import os

import numpy as np

from norbert._core import Status, max_threads
from norbert._core._common import touch_pages

__all__ = [
    "ParameterError",
    "PrecisionOverflow",
    "check_mixture",
    "check_spectrograms",
    "check_sources",
    "check_iterations",
    "check_logit",
    "check_positive_int",
    "check_out",
    "check_progress",
    "check_finite",
    "check_result",
    "allocate",
    "resolve_eps",
    "resolve_workers",
    "raise_for_status",
    "real_dtype",
]


class ParameterError(ValueError):
    """An argument has the wrong shape, dtype or value."""


class PrecisionOverflow(ValueError):
    """Finite inputs whose computation overflowed the working precision.

    The Wiener-family functions catch it in complex64 and compute in double instead.
    """


_FORKED = False


def _after_fork_in_child():
    # GNU libgomp's thread pool does not survive fork(): a child that opens a parallel
    # region can hang forever. Children therefore run every kernel on one thread.
    global _FORKED
    _FORKED = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _as_array(a, name):
    if a is None:
        raise TypeError(f"{name} must be an array, got None")
    if isinstance(a, (numbers.Number, str, bytes)):
        raise TypeError(f"{name} must be an array, got the scalar {a!r}")
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except (ValueError, TypeError) as exc:
            raise TypeError(
                f"{name} must be an array or a nested sequence NumPy converts to one, got a "
                f"{type(a).__name__} it cannot convert ({exc})"
            ) from None
    if a.dtype.kind not in "iufc":
        raise TypeError(
            f"{name} must be a numeric array, got dtype {a.dtype} "
            "(object, string and boolean arrays are not accepted)"
        )
    return a


def _check_ndim(a, ndim, name, shape_doc):
    if a.ndim != ndim:
        raise ParameterError(
            f"{name} must be {ndim}-dimensional with shape {shape_doc}, "
            f"got {a.ndim} dimension(s) with shape {a.shape}"
        )


def real_dtype(cdtype):
    """The real dtype of the complex dtype cdtype (complex64 -> float32, ...)."""
    return np.empty(0, cdtype).real.dtype


def complex_dtype_of(a, name):
    """The complex dtype used for a complex input (complex64 or complex128)."""
    if a.dtype.kind != "c":
        raise TypeError(f"{name} must be complex (an STFT), got real dtype {a.dtype}")
    return np.dtype(np.complex64) if a.dtype.itemsize == 8 else np.dtype(np.complex128)


_BATCH = "..., "


def check_mixture(x, name="x", batch=False):
    """Return x as an array (never copied) and its working complex dtype.

    batch: accept leading batch axes, (..., nb_frames, nb_bins, nb_channels).
    """
    x = _as_array(x, name)
    if not batch:
        _check_ndim(x, 3, name, "(nb_frames, nb_bins, nb_channels)")
    elif x.ndim < 3:
        raise ParameterError(
            f"{name} must have at least 3 dimensions, shape (..., nb_frames, nb_bins, "
            f"nb_channels), got {x.ndim} dimension(s) with shape {x.shape}"
        )
    if x.shape[-1] == 0:
        raise ParameterError(f"{name} must have at least one channel, got shape {x.shape}")
    return x, complex_dtype_of(x, name)


def _check_ndim_like(a, x, name, core_doc):
    """a must have x's batch axes (if any) before its own core axes."""
    if x.ndim == 3:
        _check_ndim(a, 4, name, f"({core_doc})")
    elif a.ndim != x.ndim + 1:
        raise ParameterError(
            f"{name} must be {x.ndim + 1}-dimensional with shape ({_BATCH}{core_doc}) to "
            f"match x's {x.ndim - 3} batch axes (x has shape {x.shape}), got {a.ndim} "
            f"dimension(s) with shape {a.shape}"
        )


def check_spectrograms(v, x, name="v"):
    """v: (..., nb_frames, nb_bins, {1, nb_channels}, nb_sources), real, matching x."""
    v = _as_array(v, name)
    if v.dtype.kind == "c":
        raise TypeError(f"{name} must be real and non-negative (spectrograms), got {v.dtype}")
    _check_ndim_like(v, x, name, "nb_frames, nb_bins, {1, nb_channels}, nb_sources")
    C = x.shape[-1]
    if v.shape[:-2] != x.shape[:-1]:
        where = "on axes 0 and 1" if x.ndim == 3 else f"on its first {x.ndim - 1} axes"
        what = "nb_frames and nb_bins" if x.ndim == 3 else "batch axes, nb_frames and nb_bins"
        raise ParameterError(
            f"{name} must have x's {what} {x.shape[:-1]} {where}, "
            f"got shape {v.shape} (x has shape {x.shape})"
        )
    if v.shape[-2] not in (1, C):
        raise ParameterError(
            f"{name} must have 1 or nb_channels={C} channels (axis {v.ndim - 2}), "
            f"got shape {v.shape}"
        )
    if v.shape[-1] == 0:
        raise ParameterError(
            f"{name} must have at least one source (axis {v.ndim - 1}), got shape {v.shape}"
        )
    return v


def check_sources(y, x, name="y"):
    """y: (..., nb_frames, nb_bins, nb_channels, nb_sources), complex, matching x."""
    y = _as_array(y, name)
    _check_ndim_like(y, x, name, "nb_frames, nb_bins, nb_channels, nb_sources")
    complex_dtype_of(y, name)
    if y.shape[:-1] != x.shape:
        raise ParameterError(
            f"{name} must have shape x.shape + (nb_sources,) = {x.shape} + (nb_sources,), "
            f"got {y.shape}"
        )
    if y.shape[-1] == 0:
        raise ParameterError(
            f"{name} must have at least one source (axis {y.ndim - 1}), got shape {y.shape}"
        )
    return y


def check_iterations(iterations):
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral):
        raise TypeError(f"iterations must be a non-negative integer, got {iterations!r}")
    if iterations < 0:
        raise ParameterError(f"iterations must be >= 0, got {iterations}")
    return int(iterations)


def check_positive_int(value, name, *, allow_none=True):
    """An integer >= 1 (Python or NumPy, not bool), as int; None passes when allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        none = "None or " if allow_none else ""
        raise TypeError(f"{name} must be {none}a positive integer, got {value!r}")
    if value < 1:
        raise ParameterError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_logit(logit):
    """softmask's logit threshold as the kernels take it: None becomes -1.0 (no logit).

    Only Python and NumPy reals (not bool) are accepted: anything else that float() would
    convert (strings, Fractions, 0-d arrays) is more likely a mistake than a threshold.
    """
    if logit is None:
        return -1.0
    if isinstance(logit, bool) or not isinstance(logit, (int, float, np.integer, np.floating)):
        raise TypeError(f"logit must be None or a float in (0, 1), got {logit!r}")
    if not 0.0 < float(logit) < 1.0:
        raise ParameterError(f"logit must be None or in (0, 1), got {logit!r}")
    return float(logit)


def resolve_eps(eps, dtype, name="eps"):
    """eps=None means the machine epsilon of dtype's real part."""
    if eps is None:
        return float(np.finfo(dtype).eps)
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"{name} must be None or a real number, got {eps!r}")
    eps = float(eps)
    if not np.isfinite(eps) or eps < 0:
        raise ParameterError(f"{name} must be finite and >= 0, got {eps}")
    return eps


_MAX_WORKERS = 2**31 - 1

# Calls over fewer TF points than this run on one thread. Each pass is a parallel region,
# which ends in a barrier that waits for every thread of the team; on a busy machine a
# woken thread can wait a scheduler time slice (milliseconds) for a core, more than such
# a call takes. With one or two competing processes, 2 threads took 2.5-4x the one-thread
# time on 10 frames of 2049 bins and 0.9-1.9x on 32 frames (bench_load.py --frames 10,
# 32), for a gain of 1.5x on a quiet machine; up to 64 frames, medians swung from 0.6x to
# 4.5x between runs, from 300 frames 2 threads won under load too. The kernels keep their
# own, smaller floor per block.
ONE_THREAD_POINTS = 1 << 17


def resolve_workers(workers, points=None):
    """Number of threads for a call.

    None: OpenMP's limit (honours OMP_NUM_THREADS and threadpoolctl); -1: every core;
    a negative -k: every core but k - 1, as scipy.fft's ``workers``; 0 is refused.
    `points`: the call's TF points (frames x bins, over every batch element); below
    ONE_THREAD_POINTS the call gets one thread, whatever `workers` says.
    """
    n_threads = _resolve_workers(workers)
    if points is not None and points < ONE_THREAD_POINTS:
        return 1
    return n_threads


def _resolve_workers(workers):
    if workers is None:
        return 1 if _FORKED else max(1, max_threads())
    try:
        if isinstance(workers, (bool, np.bool_)):  # as iterations: True is not a count
            raise TypeError
        workers = operator.index(workers)
    except TypeError:
        raise TypeError(f"workers must be None or an integer, got {workers!r}") from None
    if workers == 0:
        raise ParameterError("workers must be a positive or negative integer, got 0")
    if workers > _MAX_WORKERS:  # the kernels take a C int
        raise ParameterError(f"workers must be at most {_MAX_WORKERS}, got {workers}")
    if _FORKED:  # checked all the same: a bad value must not pass only in a child
        return 1
    if workers < 0:
        workers = max(1, (os.cpu_count() or 1) + 1 + workers)
    return workers


def _format_bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


# Outputs from this size on have their pages faulted in on all threads right away
# (see _common.touch_pages); below it the pages are few and cheap.
_TOUCH_BYTES = 64 << 20


def allocate(shape, dtype, what, n_threads=1):
    """np.empty(shape, dtype), or a MemoryError that says how many bytes `what` needed.

    NumPy raises ValueError ("array is too big") when the size does not even fit in an
    address; that is the same failure for users, so both become MemoryError. Large
    arrays get their pages touched on `n_threads` threads (their contents stay garbage).
    """
    dtype = np.dtype(dtype)
    try:
        a = np.empty(shape, dtype=dtype)
        if a.nbytes >= _TOUCH_BYTES:
            touch_pages(a.reshape(-1).view(np.uint8), mmap.PAGESIZE, n_threads)
        return a
    except (MemoryError, ValueError):
        nbytes = dtype.itemsize
        for n in shape:
            nbytes *= int(n)  # Python ints: the exact size, even past 2**63
        raise MemoryError(
            f"{what} needs {_format_bytes(nbytes)} ({nbytes} bytes) for shape "
            f"{tuple(int(n) for n in shape)} and dtype {dtype}, which cannot be allocated"
        ) from None


def check_progress(progress):
    if progress is not None and not callable(progress):
        raise TypeError(
            f"progress must be None or a callable progress(completed, total), got {progress!r}"
        )
    return progress


def check_out(out, shape, dtype, inputs=(), what="the output", n_threads=1):
    """A caller-provided output array: exact shape and dtype, writable, C-contiguous."""
    if out is None:
        return allocate(shape, dtype, what, n_threads)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array (or np.memmap), got {type(out).__name__}")
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ParameterError(
            f"out must have shape {tuple(shape)} and dtype {dtype}, "
            f"got shape {out.shape} and dtype {out.dtype}"
        )
    if not out.flags.writeable:
        raise ParameterError("out must be writable, got a read-only array")
    if not out.flags.c_contiguous:
        raise ParameterError(f"out must be C-contiguous, got strides {out.strides}")
    for name, a in inputs:
        if a is not None and np.may_share_memory(out, a):
            raise ParameterError(f"out must not share memory with {name}, got an overlapping array")
    return out


def _first_bad(a, negative_allowed):
    """Index of the first non-finite (or negative) entry of a, scanning by frames."""
    step = max(1, (1 << 22) // max(1, int(np.prod(a.shape[1:], dtype=np.int64))))
    for t0 in range(0, a.shape[0], step):
        block = a[t0 : t0 + step]
        bad = ~np.isfinite(block)
        if not negative_allowed:
            bad |= block < 0
        if bad.any():
            idx = np.argwhere(bad)[0]
            idx[0] += t0
            return tuple(int(i) for i in idx)
    return None


def check_finite(a, name, func, nonnegative=False, offset=(0, 0)):
    """Raise the NaN-policy ValueError if a has NaN/inf (or, if nonnegative, a value < 0).

    Scans by blocks of frames (axis 0), so a large input needs no full-size temporary.
    Used by the functions whose kernels do not check their inputs as they go, and by
    raise_for_status to say where a kernel met the bad value. offset: (frame, bin) of
    a[0, 0] in the whole track, added to the index reported (a Dask chunk's place).
    """
    if a.size == 0 or a.ndim == 0:
        return
    where = _first_bad(a, negative_allowed=not nonnegative)
    if where is not None:
        value = a[where].item()
        negative = nonnegative and bool(np.isfinite(value))
        what = "negative" if negative else "non-finite"
        hint = " (power spectrograms must be >= 0)" if negative else ""
        # zip stops at a 1-D array's one axis; where[len(offset):] then adds nothing
        where = tuple(i + int(o) for i, o in zip(where, offset)) + where[len(offset):]
        raise ValueError(
            f"{func}: {name} must be finite{' and non-negative' if nonnegative else ''}; "
            f"found {what} value {value!r} at index {where}{hint}"
        )


def check_result(results, func, arrays=()):
    """Raise the overflow ValueError if a result of finite inputs is not finite.

    For the functions whose kernels store into the working precision without checking
    it (complex64 products or |y|^2 past float32's range become inf): one block-wise pass
    over each result. arrays: as raise_for_status's, to name a non-finite input first.
    """
    for a in results:
        if a.size and _first_bad(a, negative_allowed=True) is not None:
            raise_for_status(Status.NOT_FINITE, func, arrays)


def raise_for_status(status, func, arrays=(), offset=(0, 0)):
    """Turn a kernel Status into an exception written for users.

    arrays: (name, array, is_spectrogram) checked, in the error path only, to say where the
    problem is; offset: (first frame, first bin) of those arrays within the whole track,
    added to the index reported (the Dask driver passes its chunk's place).
    """
    if status == Status.OK:
        return
    if status in (Status.NOT_FINITE, Status.NEGATIVE):
        for name, a, is_spec in arrays:
            if a is not None:
                check_finite(a, name, func, nonnegative=is_spec, offset=offset)
        raise PrecisionOverflow(
            f"{func}: the computation overflowed (inputs are finite but too large for "
            "the working precision); rescale x and v"
        )
    raise RuntimeError(f"{func}: internal error, kernel status {Status(status).name}")
