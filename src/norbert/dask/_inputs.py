"""The arguments of the Dask functions: Dask arrays held to norbert's own rules, at call time.

Shapes and dtypes are checked on a zero-stride stand-in with the in-memory checks, so the
two drivers refuse the same inputs with the same messages; values (NaN, negative power)
can only be checked by the tasks that read them.
"""

import dask.array as da
import numpy as np

from norbert._validation import check_mixture, check_sources, check_spectrograms, resolve_workers
from norbert.dask._files import as_dask


def _standin(a):
    """A zero-stride numpy array of a's shape and dtype, for norbert's own checks."""
    return np.broadcast_to(np.zeros((), a.dtype), a.shape)


def check_x(x):
    x = as_dask(x, "x")
    _, cdtype = check_mixture(_standin(x))
    return x, cdtype


def check_v(v, x):
    v = as_dask(v, "v")
    check_spectrograms(_standin(v), _standin(x))
    return v


def check_y(y, x):
    y = as_dask(y, "y")
    check_sources(_standin(y), _standin(x))
    return y


def check_workers(workers):
    resolve_workers(workers)  # raises on 0 or a non-integer, here rather than in a task
    return workers


def merged_channels(x):
    """x with its channels in one chunk: the chunks of frames and bins every pass uses."""
    return x.rechunk({2: -1}) if x.numblocks[2] > 1 else x


def aligned(template, *inputs):
    """Dask inputs chunked like template along frames and bins and whole along their other
    axes; files (read by the tasks) and None as they are."""
    out = []
    for a in inputs:
        if isinstance(a, da.Array):
            chunks = template.chunks[:2] + tuple((n,) for n in a.shape[2:])
            a = a if a.chunks == chunks else a.rechunk(chunks)
        out.append(a)
    return out


def indices(x):
    """Frame and bin numbers chunked like x: each task learns where its chunk starts."""
    return (
        da.arange(x.shape[0], chunks=(x.chunks[0],)),
        da.arange(x.shape[1], chunks=(x.chunks[1],)),
    )
