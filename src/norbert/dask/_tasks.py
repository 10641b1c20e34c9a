"""What one task does: the in-memory driver's passes over one chunk of the track.

A task reads its chunk (from its file, or as the block Dask hands it), builds an
``EMState`` over it and runs ``EMState.statistics`` and ``EMState.filter``, the in-memory
EM's own loops over the kernels, with the track's R_1 .. R_k set before each pass that
uses them. ``run`` is the run's ``_graph.Run``; ``scale`` the 0-d array of wiener's mixture
scale, or None.
"""

import numpy as np

from norbert._core import Estimate, Status, _filter, _stats
from norbert._drivers import EMState, covariance_to_user, default_frames_per_block, psd_to_user
from norbert._validation import raise_for_status, resolve_workers
from norbert.dask._files import RawFile


def _block(a):
    """The one block of an argument whose contracted axes Dask passes as nested lists.

    The tasks use ``concatenate=False``: channel, source and matrix axes are single
    chunks, and concatenating one block would copy it.
    """
    while isinstance(a, list):
        a = a[0]
    return a


def _start(t_index, f_index):
    """(first frame, first bin) of the chunk in the whole track."""
    return tuple(int(i[0]) if len(i) else 0 for i in (t_index, f_index))


def _load(a, t_index, f_index):
    """A task's chunk: read from its file (a RawFile), or the block Dask passed."""
    if isinstance(a, RawFile):
        region = tuple(
            slice(int(i[0]), int(i[-1]) + 1) if len(i) else slice(0, 0) for i in (t_index, f_index)
        )
        return a[region]
    return _block(a)


def _scalar(a):
    """The EM's scale factor of x: a 0-d array from the graph, or None (no scaling)."""
    return 1.0 if a is None else float(np.asarray(a).reshape(-1)[0])


def _chunk_state(x, v, y, t_index, f_index, run, filter_only=False):
    """An EMState over one chunk, with the chunk's v and y as read (None when absent)."""
    x, v, y = (_load(a, t_index, f_index) for a in (x, v, y))
    x = np.ascontiguousarray(x, run.cdtype)  # once, not once per pass
    T, F, C = x.shape
    J = (v if y is None else y).shape[3]
    state = EMState(
        x,
        J,
        run.cdtype,
        run.eps,
        resolve_workers(run.workers),
        default_frames_per_block(F, C, J, run.cdtype.itemsize),
        filter_only=filter_only,
        offset=_start(t_index, f_index),
    )
    return state, v, y


def _statistics_passes(state, v, y, run, scale, Rs):
    """The initial estimate's statistics pass, then one pass per R in Rs (the track's
    R_1 .. R_k): the chunk's PSDs P and sums of the last one stay in the state."""
    state.statistics(run.mode, scale, v=v, y=y, logit=run.logit, func=run.func)
    for R in Rs:
        # statistics() leaves the R of this chunk's own sums; the model needs the track's
        state.R[...] = R
        state.statistics(Estimate.MODEL, scale, func=run.func)


def stats_task(x, v, y, t_index, f_index, scale, *Rs, run):
    """Partial sums of one chunk: (1, bins, sources, 2 C^2 + 1) doubles, Rnum then weight."""
    state, v, y = _chunk_state(x, v, y, t_index, f_index, run)
    _statistics_passes(state, v, y, run, _scalar(scale), [_block(R) for R in Rs])
    F, J = state.weight.shape
    return np.concatenate([state.Rnum.reshape(F, J, -1), state.weight[:, :, None]], axis=2)[None]


def filter_task(x, v, y, t_index, f_index, scale, *Rs, run, with_psd=False):
    """y of one chunk (and the PSDs its filter used, with_psd): Rs = R_1 .. R_K."""
    Rs = [_block(R) for R in Rs]
    state, v, y = _chunk_state(x, v, y, t_index, f_index, run, filter_only=not Rs)
    T, F, C = state.x.shape
    out = np.empty((T, F, C, state.J), run.cdtype)
    if not Rs:
        state.filter(run.mode, 1.0, out, v=v, logit=run.logit, func=run.func)
        return out
    scale = _scalar(scale)
    _statistics_passes(state, v, y, run, scale, Rs[:-1])
    state.R[...] = Rs[-1]
    state.filter(Estimate.MODEL, scale, out, out_scale=1.0 / scale, func=run.func)
    return (out, psd_to_user(state.P)) if with_psd else out


def finalize_task(sums, *, nb_channels, run):
    """R = Rnum / (eps + weight) for a range of bins: (bins, sources, C, C, 2) doubles."""
    sums = _block(sums)
    F, J, _ = sums.shape
    C = nb_channels
    Rnum = np.ascontiguousarray(sums[:, :, :-1]).reshape(F, J, C, C, 2)
    weight = np.ascontiguousarray(sums[:, :, -1])
    R = np.empty((F, J, C, C, 2))
    raise_for_status(_stats.finalize_covariance(Rnum, weight, run.eps, R), run.func)
    return R


def max_abs2_task(x, t_index, f_index, *, cdtype):
    """max |x|^2 over one chunk, as a (1, 1) array; NaN or inf raise with their index."""
    chunk = _load(x, t_index, f_index)
    m = _filter.max_abs2(np.ascontiguousarray(chunk, cdtype)) if chunk.size else 0.0
    if not np.isfinite(m):
        raise_for_status(
            Status.NOT_FINITE, "wiener", [("x", chunk, False)], offset=_start(t_index, f_index)
        )
    return np.full((1, 1), m)


def scale_task(max_abs2):
    """upstream's max(1, max|x| / 10) as the factor the EM multiplies x by, as wiener does."""
    return np.array(1.0 / max(1.0, float(np.sqrt(_scalar(max_abs2))) / 10.0))


def pick(pair, i):
    return pair[i]


def to_user_task(R, cdtype):
    return covariance_to_user(np.ascontiguousarray(R), cdtype)
