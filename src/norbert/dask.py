"""norbert on Dask arrays: the whole-track multichannel Wiener filter, chunk by chunk.

``pip install norbert[dask]``. `wiener`, `expectation_maximization` and `softmask` take
``dask.array`` inputs chunked along frames (and optionally bins) and return lazy Dask
arrays chunked like `x`; they equal the functions of :mod:`norbert` on the same data
(relative error ~1e-15 in float64) for any chunking, and give the same bits on every run
with the same chunking. `from_npy`, `to_npy` and `refine_files` keep tracks larger than
a worker's memory on disk.

How the EM maps onto Dask
-------------------------
The spatial covariances R_j are estimated over the whole track, as the in-memory
function does (open-unmix and demucs estimate them per window). Each EM iteration is a
map-reduce with a barrier between its halves::

    stats pass k     blockwise: per chunk, per bin, sums of y_j y_j^H and of v_j (double),
                     packed as (1, bins, sources, 2 C^2 + 1) partials
    reduction        a tree sum of the partials over chunks, in chunk order (fixed
                     order: same bits on every run), then R_{k+1} = sums / (eps + weight)
    filter pass      blockwise: y_j = v_j R_j Cxx^-1 x, with the small R (bins x sources x
                     C x C) sent to every task

The kernels are the in-memory driver's (``_stats.accumulate``, ``finalize_covariance``,
``_filter.apply_estimate``), called on one chunk at a time with an explicit thread count
(`workers`; Dask's worker processes set OMP_NUM_THREADS=1).

The PSDs P between iterations: recomputed, not stored. The in-memory EM keeps P_k (one
real per TF point and source) between passes, with P_k at a TF point a function of
P_{k-1}, x and R_k. Here every task recomputes the chain P_0 -> ... -> P_{k-1} of its own
chunk from (v, x, R_1..R_{k-1}). Carrying P as a chunked array would have to hold it --
half the size of a stereo v -- across each whole-track barrier (in worker memory, or
spilled to disk by Dask), because no filter task can start before every statistics task
has finished. Recomputing keeps the memory of a run at a few chunks per worker thread
whatever the track length, keeps every task a pure function of files on disk (a lost
worker costs only its own chunks), and costs extra kernel passes: K iterations make
K (K + 3) / 2 + 1 passes over each chunk instead of K + 1 (3 instead of 2 for the
default K = 1, 6 instead of 3 for K = 2). The extra passes are compute, not I/O: the
kernels run at memory speed, and each pass reads x and v again anyway.

Each pass reads its inputs afresh, so that a chunk read by a statistics pass is released
at once instead of being held, with every other chunk, until the filter pass after the
barrier can use it. Files (`from_npy`, ``np.memmap``) are read by the pass's own tasks,
which then hold nothing but their chunk; other inputs get new keys per pass
(``dask.graph_manipulation.bind``), so inputs computed rather than read (e.g. an STFT in
the same graph) are computed again by each pass -- ``persist()`` them first if they fit
in the cluster's memory. Graphs that Dask cannot copy (a ``rechunk`` in dask >=
2024.12) are shared between passes and held, with a warning when they are large.
"""

import mmap
import numbers
import os
import warnings

import numpy as np

try:
    import dask
    import dask.array as da
    from dask.base import tokenize
    from dask.blockwise import Blockwise
    from dask.graph_manipulation import bind
    from dask.highlevelgraph import MaterializedLayer
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "norbert.dask needs dask[array] (and dask.distributed for refine_files); "
        "install the extra: pip install 'norbert[dask]'"
    ) from exc

from norbert._core import Estimate, Status, _filter, _stats
from norbert._core._mask import SLOPE
from norbert._drivers import covariance_to_user, make_work, psd_storage, psd_to_user
from norbert._validation import (
    ParameterError,
    _first_bad,
    check_iterations,
    check_mixture,
    check_sources,
    check_spectrograms,
    raise_for_status,
    resolve_eps,
    resolve_workers,
)

__all__ = [
    "expectation_maximization",
    "from_npy",
    "refine_files",
    "softmask",
    "to_npy",
    "wiener",
]

# Bytes of x per chunk when norbert chooses the chunks (from_npy, numpy inputs). A task
# holds about (1 + nb_sources) times this (x, v, the PSDs and its share of y).
_CHUNK_BYTES = 8 << 20
# Inputs that must be held between passes (see _pass_inputs) warn above this size.
_HELD_WARNING_BYTES = 256 << 20


# -- inputs ------------------------------------------------------------------------------
def _real_dtype(cdtype):
    return np.empty(0, cdtype).real.dtype


def _standin(a):
    """A zero-stride numpy array of a's shape and dtype, for norbert's own checks."""
    return np.broadcast_to(np.zeros((), a.dtype), a.shape)


def _frame_chunks(shape, itemsize, chunk_bytes=_CHUNK_BYTES):
    per_frame = max(1, int(np.prod(shape[1:], dtype=np.int64)) * itemsize)
    return (max(1, chunk_bytes // per_frame),) + tuple(-1 for _ in shape[1:])


def _as_dask(a, name):
    if isinstance(a, da.Array):
        if any(np.isnan(n) for n in a.shape):
            raise ParameterError(
                f"{name} has unknown chunk sizes (shape {a.shape}); call "
                f"{name}.compute_chunk_sizes() first"
            )
        return a
    if isinstance(a, np.memmap):
        return from_npy(a)
    if a is None:
        raise TypeError(f"{name} must be a dask array, got None")
    a = np.asarray(a)
    if a.ndim == 0:
        raise TypeError(f"{name} must be an array, got the scalar {a!r}")
    return da.from_array(a, chunks=_frame_chunks(a.shape, a.dtype.itemsize))


# from_npy arrays by name (a token of the file, its dtype, shape, offset, mtime and the
# chunks): the tasks of a pass read their region of these files themselves.
_FILES = {}
_FILES_MAX = 4096


def _file_source(a):
    """The _RawFile that a (a from_npy array, untouched since) reads, or None."""
    if not isinstance(a, da.Array):
        return None
    source = _FILES.get(a.name)
    return source if source is not None and source.shape == a.shape else None


def _region(t_index, f_index):
    """The (frames, bins) slices of the chunk whose frame and bin numbers these are."""
    return tuple(
        slice(int(i[0]), int(i[-1]) + 1) if len(i) else slice(0, 0) for i in (t_index, f_index)
    )


def _load(a, t_index, f_index):
    """A task's chunk: read from its file (a _RawFile), or the block Dask passed."""
    if isinstance(a, _RawFile):
        return a[_region(t_index, f_index)]
    return _block(a)


def _check_x(x):
    x = _as_dask(x, "x")
    _, cdtype = check_mixture(_standin(x))
    return x, cdtype


def _check_v(v, x):
    v = _as_dask(v, "v")
    check_spectrograms(_standin(v), _standin(x))
    return v


def _merged_channels(x):
    """x with its channels in one chunk: the chunks of frames and bins every pass uses."""
    return x.rechunk({2: -1}) if x.numblocks[2] > 1 else x


def _aligned(template, *inputs):
    """Dask inputs chunked like template along frames and bins and whole along their other
    axes; files (read by the tasks) and None as they are."""
    out = []
    for a in inputs:
        if isinstance(a, da.Array):
            chunks = template.chunks[:2] + tuple((n,) for n in a.shape[2:])
            a = a if a.chunks == chunks else a.rechunk(chunks)
        out.append(a)
    return out


def _check_workers(workers):
    resolve_workers(workers)  # raises on 0 or a non-integer, here rather than in a task
    return workers


def _check_logit(logit):
    if logit is None:
        return -1.0
    if isinstance(logit, bool) or not isinstance(logit, numbers.Real):
        raise TypeError(f"logit must be None or a float in (0, 1), got {logit!r}")
    if not 0.0 < float(logit) < 1.0:
        raise ParameterError(f"logit must be None or in (0, 1), got {logit!r}")
    return float(logit)


def _indices(x):
    """Frame and bin numbers chunked like x: each task learns where its chunk starts."""
    return (
        da.arange(x.shape[0], chunks=(x.chunks[0],)),
        da.arange(x.shape[1], chunks=(x.chunks[1],)),
    )


# -- what one task does ----------------------------------------------------------------
_NO_R = np.empty((0, 0, 0, 0, 0))


def _raise(status, func, t0, f0, arrays):
    """raise_for_status, with indices into the whole track rather than the chunk."""
    if status in (Status.NOT_FINITE, Status.NEGATIVE):
        for name, a, is_spec in arrays:
            where = None if a is None else _first_bad(a, negative_allowed=not is_spec)
            if where is not None:
                value = a[where]
                where = (where[0] + t0, where[1] + f0) + where[2:]
                what = "negative" if is_spec and np.isfinite(value) else "non-finite"
                hint = " (power spectrograms must be >= 0)" if what == "negative" else ""
                raise ValueError(
                    f"{func}: {name} must be finite{' and non-negative' if is_spec else ''}; "
                    f"found {what} value {value!r} at index {where}{hint}"
                )
    raise_for_status(status, func)


class _Chunk:
    """One chunk of the track, in the layout and precision the kernels take."""

    def __init__(self, x, v, y, t_index, f_index, cdtype, eps, logit, workers, func):
        x, v, y = (_load(a, t_index, f_index) for a in (x, v, y))
        self.cdtype = np.dtype(cdtype)
        self.rdtype = _real_dtype(self.cdtype)
        self.x = np.ascontiguousarray(x, self.cdtype)
        self.v = (
            np.empty((0, 0, 0, 0), self.rdtype)
            if v is None
            else np.ascontiguousarray(v, self.rdtype)
        )
        self.y = (
            np.empty((0, 0, 0, 0), self.cdtype)
            if y is None
            else np.ascontiguousarray(y, self.cdtype)
        )
        self.nb_sources = (v if y is None else y).shape[3]
        self.t0 = int(t_index[0]) if len(t_index) else 0
        self.f0 = int(f_index[0]) if len(f_index) else 0
        self.eps = eps
        self.logit = logit
        self.func = func
        self.n_threads = resolve_workers(workers)
        self.work = make_work(self.n_threads, self.x.shape[2], self.nb_sources)
        self._v_in = v
        self._y_in = y

    def check(self, status):
        if status != Status.OK:
            _raise(
                status,
                self.func,
                self.t0,
                self.f0,
                [("x", self.x, False), ("v", self._v_in, True), ("y", self._y_in, False)],
            )

    def psd_chain(self, mode, scale, Rs):
        """P after the initial estimate and len(Rs) EM statistics passes, with the sums
        (Rnum, weight) of the last pass: the in-memory EM's passes, on this chunk."""
        T, F, C = self.x.shape
        J = self.nb_sources
        P = psd_storage(T, F, J, self.rdtype)
        Rnum = np.zeros((F, J, C, C, 2))
        weight = np.zeros((F, J))
        self.check(
            _stats.accumulate(
                mode,
                self.x,
                self.v,
                self.y,
                P,
                _NO_R,
                scale,
                self.eps,
                self.logit,
                SLOPE,
                Rnum,
                weight,
                self.work,
                self.n_threads,
            )
        )
        for R in Rs:
            Rnum.fill(0.0)
            weight.fill(0.0)
            self.check(
                _stats.accumulate(
                    Estimate.MODEL,
                    self.x,
                    self.v[:0],
                    self.y[:0],
                    P,
                    R,
                    scale,
                    self.eps,
                    -1.0,
                    SLOPE,
                    Rnum,
                    weight,
                    self.work,
                    self.n_threads,
                )
            )
        return P, Rnum, weight

    def estimate(self, mode, scale, P=None, R=_NO_R):
        T, F, C = self.x.shape
        y = np.empty((T, F, C, self.nb_sources), self.cdtype)
        if P is None:
            P = np.empty((0, 0, 0), self.rdtype)
        v = self.v if mode != Estimate.MODEL else self.v[:0]
        self.check(
            _filter.apply_estimate(
                mode,
                self.x,
                v,
                P,
                R,
                scale,
                self.eps,
                self.logit,
                SLOPE,
                1.0 / scale,
                y,
                self.work,
                self.n_threads,
            )
        )
        return y


def _block(a):
    """The one block of an argument whose contracted axes Dask passes as nested lists.

    The tasks use ``concatenate=False``: channel, source and matrix axes are single
    chunks, and concatenating one block would copy it.
    """
    while isinstance(a, list):
        a = a[0]
    return a


def _scalar(a):
    """The EM's scale factor of x: a 0-d array from the graph, or None (no scaling)."""
    return 1.0 if a is None else float(np.asarray(a).reshape(-1)[0])


def _stats_task(x, v, y, t_index, f_index, scale, *Rs, mode, cdtype, eps, logit, workers, caller):
    """Partial sums of one chunk: (1, bins, sources, 2 C^2 + 1) doubles, Rnum then weight."""
    chunk = _Chunk(x, v, y, t_index, f_index, cdtype, eps, logit, workers, caller)
    _, Rnum, weight = chunk.psd_chain(mode, _scalar(scale), [_block(R) for R in Rs])
    F, J = weight.shape
    return np.concatenate([Rnum.reshape(F, J, -1), weight[:, :, None]], axis=2)[None]


def _filter_task(
    x, v, y, t_index, f_index, scale, *Rs, mode, cdtype, eps, logit, workers, caller, with_psd=False
):
    """y of one chunk (and the PSDs its filter used, with_psd): Rs = R_1 .. R_K."""
    chunk = _Chunk(x, v, y, t_index, f_index, cdtype, eps, logit, workers, caller)
    Rs = [_block(R) for R in Rs]
    if not Rs:
        return chunk.estimate(mode, 1.0)
    scale = _scalar(scale)
    P, _, _ = chunk.psd_chain(mode, scale, Rs[:-1])
    y = chunk.estimate(Estimate.MODEL, scale, P, Rs[-1])
    return (y, psd_to_user(P)) if with_psd else y


def _finalize_task(sums, *, nb_channels, eps, caller):
    """R = Rnum / (eps + weight) for a range of bins: (bins, sources, C, C, 2) doubles."""
    sums = _block(sums)
    F, J, _ = sums.shape
    C = nb_channels
    Rnum = np.ascontiguousarray(sums[:, :, :-1]).reshape(F, J, C, C, 2)
    weight = np.ascontiguousarray(sums[:, :, -1])
    R = np.empty((F, J, C, C, 2))
    raise_for_status(_stats.finalize_covariance(Rnum, weight, eps, R), caller)
    return R


def _max_abs2_task(x, t_index, f_index, *, cdtype):
    """max |x|^2 over one chunk, as a (1, 1) array; NaN or inf raise with their index."""
    chunk = _load(x, t_index, f_index)
    m = _filter.max_abs2(np.ascontiguousarray(chunk, cdtype)) if chunk.size else 0.0
    if not np.isfinite(m):
        t0 = int(t_index[0]) if len(t_index) else 0
        f0 = int(f_index[0]) if len(f_index) else 0
        _raise(Status.NOT_FINITE, "wiener", t0, f0, [("x", chunk, False)])
    return np.full((1, 1), m)


def _scale_task(max_abs2):
    """upstream's max(1, max|x| / 10) as the factor the EM multiplies x by, as wiener does."""
    return np.array(1.0 / max(1.0, float(np.sqrt(_scalar(max_abs2))) / 10.0))


def _pick(pair, i):
    return pair[i]


def _to_user_task(R, cdtype):
    return covariance_to_user(np.ascontiguousarray(R), cdtype)


# -- the graph -------------------------------------------------------------------------
def _graph_name(kind, *args):
    return f"norbert-{kind}-{tokenize(*args)}"


def _mixture_scale(x, cdtype, split_every):
    """The scale wiener applies to x, a 0-d array: a pass over x before the EM's."""
    template = _merged_channels(x)
    t_index, f_index = _indices(template)
    source = _file_source(x)
    per_chunk = da.blockwise(
        _max_abs2_task,
        "tf",
        *((source, None) if source is not None else (template, "tfc")),
        t_index,
        "t",
        f_index,
        "f",
        adjust_chunks={"t": 1, "f": 1},
        concatenate=False,
        dtype=np.float64,
        meta=np.empty((0, 0), np.float64),
        name=_graph_name("max-abs2", x.name),
        cdtype=cdtype,
    )
    m = per_chunk.max(split_every=split_every)  # a maximum: exact in any order
    return m.map_blocks(
        _scale_task,
        dtype=np.float64,
        meta=np.empty((), np.float64),
        name=_graph_name("scale", m.name),
    )


def _task_args(x, v, y, t_index, f_index, scale, Rs):
    """blockwise's (argument, index) pairs: dask arrays by index, files and None as values."""
    args = []
    for a, index in ((x, "tfc"), (v, "tfwj"), (y, "tfcj")):
        args += [a, index] if isinstance(a, da.Array) else [a, None]
    args += [t_index, "t", f_index, "f"]
    args += [None, None] if scale is None else [scale, ()]
    for R in Rs:
        args += [R, "fjabr"]
    return args


def _new_axes(out_index, args, sizes):
    """Axes of out_index that no array argument carries (their inputs are files)."""
    present = set()
    for index in args[1::2]:
        present.update(index or ())
    return {i: sizes[i] for i in out_index if i not in present}


def _cloneable(a):
    """Whether dask.graph_manipulation can give a's graph new keys.

    It can for Blockwise layers (from_npy, da.from_array, da.from_zarr, elementwise
    operations) and for layers of data or of tasks in tuple form, but not for
    materialised layers of Task objects (e.g. a rechunk in dask >= 2024.12), whose
    references it would leave pointing to the old keys.
    """
    try:
        from dask._task_spec import GraphNode
    except ImportError:  # pragma: no cover - dask before 2024.12: every task is a tuple
        return True
    for layer in a.__dask_graph__().layers.values():
        if isinstance(layer, Blockwise):
            continue
        if isinstance(layer, MaterializedLayer) and not any(
            isinstance(value, GraphNode) and value.dependencies for value in layer.mapping.values()
        ):
            continue
        return False
    return True


def _pass_inputs(inputs, parent, seed):
    """The inputs of one pass, each read afresh by the pass where possible.

    A pass that shared its input chunks with the pass before the barrier would make Dask
    hold every chunk of x and v until after the barrier. Files (from_npy, np.memmap) are
    read by the pass's tasks themselves: no separate read task, nothing to hold. Other
    inputs get new keys bound to parent (dask.graph_manipulation.bind), so they are read or
    computed again once parent is done; those whose graph cannot be copied (_cloneable)
    are shared, and then held: read them with from_npy (or da.from_zarr), or persist them.
    """
    files = [_file_source(a) for a in inputs]
    live = [a for a, f in zip(inputs, files) if a is not None and f is None]
    fresh = live
    if parent is not None and live:
        if all(_cloneable(a) for a in live):
            fresh = bind(live, parent, seed=seed)
        else:
            nbytes = sum(a.nbytes for a in live)
            if nbytes > _HELD_WARNING_BYTES:
                warnings.warn(
                    f"norbert.dask: the inputs ({nbytes / 2**20:.0f} MiB) cannot be read "
                    "afresh by each pass (their graph has layers Dask cannot copy, e.g. a "
                    "rechunk), so their chunks are held in memory between passes; read "
                    "them with norbert.dask.from_npy or da.from_zarr in the chunks you "
                    "want, or persist them",
                    stacklevel=4,
                )
    fresh = iter(fresh)
    return [
        f if f is not None else (None if a is None else next(fresh)) for a, f in zip(inputs, files)
    ]


def _em_graph(
    x, v, y, mode, cdtype, iterations, eps, logit, workers, func, split_every, scale, with_psd
):
    """R_1 .. R_K by K map-reduce passes, then the filter pass (lazy throughout).

    x, v, y as given (y: GIVEN mode's initial estimate); each pass aligns its own copy.
    """
    C = x.shape[2]
    J = (v if y is None else y).shape[3]
    kw = {
        "mode": mode,
        "cdtype": cdtype,
        "eps": eps,
        "logit": logit,
        "workers": workers,
        "caller": func,
    }
    token = tokenize(
        x.name,
        None if v is None else v.name,
        None if y is None else y.name,
        kw,
        iterations,
        split_every,
    )
    template = _merged_channels(x)  # the chunks of frames and bins of every pass
    t_index, f_index = _indices(template)
    sizes = {"c": C, "j": J, "s": 2 * C * C + 1}
    Rs = []
    parent = scale
    for k in range(iterations + 1):
        xk, vk, yk = _pass_inputs([x, v, y], parent, seed=(token, k))
        if isinstance(xk, da.Array):
            xk = _merged_channels(xk)
        vk, yk = _aligned(template, vk, yk)
        args = _task_args(xk, vk, yk, t_index, f_index, scale, Rs)
        if k == iterations:
            break
        partial = da.blockwise(
            _stats_task,
            "tfjs",
            *args,
            new_axes=_new_axes("tfjs", args, sizes),
            adjust_chunks={"t": 1},
            concatenate=False,
            dtype=np.float64,
            meta=np.empty((0, 0, 0, 0), np.float64),
            name=_graph_name(f"stats{k}", token),
            **kw,
        )
        sums = partial.sum(axis=0, split_every=split_every)
        R = da.blockwise(
            _finalize_task,
            "fjabr",
            sums,
            "fjs",
            new_axes={"a": C, "b": C, "r": 2},
            concatenate=False,
            dtype=np.float64,
            meta=np.empty((0,) * 5, np.float64),
            name=_graph_name(f"covariance{k}", token),
            nb_channels=C,
            eps=eps,
            caller=func,
        )
        Rs.append(R)
        parent = R
    if with_psd:
        rdtype = _real_dtype(cdtype)
        pair = da.blockwise(
            _filter_task,
            "tfj",
            *args,
            new_axes=_new_axes("tfj", args, sizes),
            concatenate=False,
            dtype=rdtype,
            meta=np.empty((0, 0, 0), rdtype),
            name=_graph_name("filter-psd", token),
            with_psd=True,
            **kw,
        )
        y_out = pair.map_blocks(
            _pick,
            0,
            new_axis=2,
            chunks=template.chunks[:2] + ((C,), (J,)),
            dtype=cdtype,
            meta=np.empty((0,) * 4, cdtype),
            name=_graph_name("y", token),
        )
        P = pair.map_blocks(
            _pick, 1, dtype=rdtype, meta=np.empty((0,) * 3, rdtype), name=_graph_name("psd", token)
        )
        return y_out, P, Rs
    y_out = da.blockwise(
        _filter_task,
        "tfcj",
        *args,
        new_axes=_new_axes("tfcj", args, sizes),
        concatenate=False,
        dtype=cdtype,
        meta=np.empty((0,) * 4, cdtype),
        name=_graph_name("filter", token),
        **kw,
    )
    return y_out, None, Rs


# -- the documented functions ------------------------------------------------------------
def wiener(v, x, iterations=1, use_softmask=True, eps=None, *, workers=1, split_every=None):
    """Wiener-based separation for multichannel audio, on Dask arrays.

    :func:`norbert.wiener` computed chunk by chunk: the same initial estimate (soft mask,
    or `v` with the mixture's phase), the same `iterations` EM rounds with spatial
    covariances estimated over the whole track, the same scaling of x by
    ``1 / max(1, max|x| / 10)`` (its maximum is a Dask reduction). Nothing is computed
    until the result is.

    Parameters
    ----------
    v : dask.array.Array [shape=(nb_frames, nb_bins, {1,nb_channels}, nb_sources)]
        spectrograms of the sources (non-negative), rechunked like `x` along frames and
        bins if needed. NumPy arrays and ``np.memmap`` are wrapped (see :func:`from_npy`).
    x : dask.array.Array [complex, shape=(nb_frames, nb_bins, nb_channels)]
        STFT of the mixture signal, chunked along frames and optionally bins (channels
        are merged into one chunk).
    iterations : int [scalar]
        number of iterations for the EM algorithm
    use_softmask : boolean
        if False, then the mixture phase will directly be used with the spectrogram as
        initial estimates. if True, a softmasking strategy will be used as described in
        :func:`softmask`.
    eps : {None, float}
        Epsilon value to use for computing the separations. If None, the default value is
        taken as ``np.finfo(np.real(x[0])).eps``.
    workers : int, keyword-only
        threads each task's kernel uses (default 1: a Dask worker already runs one task
        per thread; -1: every core of the machine running the task).
    split_every : int or None, keyword-only
        fan-in of the tree reductions (None: Dask's default).

    Returns
    -------
    y : dask.array.Array [complex, shape=(nb_frames, nb_bins, nb_channels, nb_sources)]
        STFT of estimated sources (x's complex dtype), chunked like `x`. Equal to
        :func:`norbert.wiener` on the same data up to the order of the sums over frames
        (relative error ~1e-15 in float64) and identical on every run with the same
        chunking.

    Raises
    ------
    TypeError, ValueError
        at once for bad shapes, dtypes and parameters; when computed, for negative or
        non-finite `v` and non-finite `x` (with the index in the whole track).

    See Also
    --------
    norbert.wiener, to_npy, refine_files

    Notes
    -----
    Each EM iteration is a map-reduce over the chunks (module docstring): K iterations
    read x K + 2 times and v K + 1 times, and make K (K + 3) / 2 + 1 kernel passes over
    each chunk (the PSDs are recomputed, never stored). A task holds its chunk of x, v,
    the PSDs and y; inputs from :func:`from_npy` are read by the tasks themselves, so the
    memory of a run does not grow with the track.

    Examples
    --------
    >>> import dask, dask.array as da, numpy as np, norbert, norbert.dask
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((100, 33, 2)) + 1j * rng.standard_normal((100, 33, 2))
    >>> v = rng.random((100, 33, 1, 4))
    >>> y = norbert.dask.wiener(da.from_array(v, chunks=(25, 33, 1, 4)),
    ...                         da.from_array(x, chunks=(25, 33, 2)), iterations=2)
    >>> y.chunks[0], y.dtype
    ((25, 25, 25, 25), dtype('complex128'))
    >>> with dask.config.set(scheduler="synchronous"):
    ...     bool(np.allclose(y.compute(), norbert.wiener(v, x, iterations=2), rtol=1e-12))
    True
    """
    x, cdtype = _check_x(x)
    v = _check_v(v, x)
    iterations = check_iterations(iterations)
    eps = resolve_eps(eps, _real_dtype(cdtype))
    workers = _check_workers(workers)
    mode = Estimate.SOFTMASK if use_softmask else Estimate.PHASE
    if iterations == 0:
        y, _, _ = _em_graph(
            x,
            v,
            None,
            mode,
            cdtype,
            0,
            eps,
            -1.0,
            workers,
            "wiener",
            split_every,
            None,
            with_psd=False,
        )
        return y
    scale = _mixture_scale(x, cdtype, split_every)
    y, _, _ = _em_graph(
        x,
        v,
        None,
        mode,
        cdtype,
        iterations,
        eps,
        -1.0,
        workers,
        "wiener",
        split_every,
        scale,
        with_psd=False,
    )
    return y


def expectation_maximization(
    y, x, iterations=2, verbose=0, eps=None, *, workers=1, split_every=None
):
    """Expectation maximization algorithm, for refining source separation estimates, on
    Dask arrays.

    :func:`norbert.expectation_maximization` computed chunk by chunk; spatial covariances
    are estimated over the whole track.

    Parameters
    ----------
    y : dask.array.Array [shape=(nb_frames, nb_bins, nb_channels, nb_sources)]
        initial estimates for the sources (complex), rechunked like `x` if needed.
    x : dask.array.Array [shape=(nb_frames, nb_bins, nb_channels)]
        complex STFT of the mixture signal, chunked along frames (and optionally bins).
    iterations : int [scalar]
        number of iterations for the EM algorithm (>= 0).
    verbose : boolean
        display some information if True
    eps : float or None [scalar]
        The epsilon value to use for regularization and filters. If None, the default
        will use the epsilon of np.real(x) dtype.
    workers : int, keyword-only
        threads each task's kernel uses (default 1).
    split_every : int or None, keyword-only
        fan-in of the tree reductions (None: Dask's default).

    Returns
    -------
    y : dask.array.Array [shape=(nb_frames, nb_bins, nb_channels, nb_sources)]
        estimated sources after iterations (x's complex dtype), chunked like `x`
    v : dask.array.Array [shape=(nb_frames, nb_bins, nb_sources)]
        estimated power spectral densities (x's real dtype), chunked like `x`
    R : dask.array.Array [shape=(nb_bins, nb_channels, nb_channels, nb_sources)]
        estimated spatial covariance matrices (x's complex dtype), chunked like `x`'s bins

    Computing `y` and `v` together (``dask.compute(y, v)``) runs the filter once.

    Raises
    ------
    TypeError, ValueError
        at once for bad shapes, dtypes and parameters; when computed, for non-finite `y`
        or `x`.

    See Also
    --------
    norbert.expectation_maximization

    Examples
    --------
    >>> import dask, dask.array as da, numpy as np, norbert, norbert.dask
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((20, 5, 2)) + 1j * rng.standard_normal((20, 5, 2))
    >>> y0 = norbert.softmask(rng.random((20, 5, 2, 3)), x)
    >>> y, v, R = norbert.dask.expectation_maximization(
    ...     da.from_array(y0, chunks=(7, 5, 2, 3)), da.from_array(x, chunks=(7, 5, 2)))
    >>> y.shape, v.shape, R.shape
    ((20, 5, 2, 3), (20, 5, 3), (5, 2, 2, 3))
    """
    x, cdtype = _check_x(x)
    y = _as_dask(y, "y")
    check_sources(_standin(y), _standin(x))
    iterations = check_iterations(iterations)
    rdtype = _real_dtype(cdtype)
    eps = resolve_eps(eps, rdtype)
    workers = _check_workers(workers)
    T, F, C = x.shape
    J = y.shape[3]
    if verbose:
        print("Number of iterations: ", iterations)
    if iterations == 0:
        # as upstream: the initial estimate and zeros
        x = _merged_channels(x)
        (y,) = _aligned(x, y)
        return (
            y.astype(cdtype),
            da.zeros((T, F, J), dtype=rdtype, chunks=x.chunks[:2] + ((J,),)),
            da.zeros((F, C, C, J), dtype=cdtype, chunks=(x.chunks[1], (C,), (C,), (J,))),
        )
    y_out, P, Rs = _em_graph(
        x,
        None,
        y,
        Estimate.GIVEN,
        cdtype,
        iterations,
        eps,
        -1.0,
        workers,
        "expectation_maximization",
        split_every,
        None,
        with_psd=True,
    )
    R = Rs[-1].map_blocks(
        _to_user_task,
        cdtype,
        chunks=(x.chunks[1], (C,), (C,), (J,)),
        drop_axis=4,
        dtype=cdtype,
        meta=np.empty((0,) * 4, cdtype),
    )
    return y_out, P, R


def softmask(v, x, logit=None, eps=None, *, workers=1):
    """Separates a mixture with a ratio mask, on Dask arrays.

    :func:`norbert.softmask` mapped over the chunks of `x` (every TF point is
    independent).

    Parameters
    ----------
    v : dask.array.Array [shape=(nb_frames, nb_bins, {1, nb_channels}, nb_sources)]
        spectrograms of the sources (non-negative), rechunked like `x` if needed
    x : dask.array.Array [shape=(nb_frames, nb_bins, nb_channels)]
        mixture signal (complex)
    logit : {None, float between 0 and 1}
        enable a compression of the filter. If not None, it is the threshold value for
        the logit function.
    eps : {None, float}
        added to the total energy before dividing (None: machine epsilon of x's real dtype).
    workers : int, keyword-only
        threads each task's kernel uses (default 1).

    Returns
    -------
    dask.array.Array, shape=(nb_frames, nb_bins, nb_channels, nb_sources)
        estimated sources (x's complex dtype), chunked like `x`

    Raises
    ------
    TypeError, ValueError
        at once for bad shapes, dtypes and parameters; when computed, for negative or
        non-finite `v` and non-finite `x`.

    Examples
    --------
    >>> import dask.array as da, numpy as np, norbert.dask
    >>> x = da.ones((4, 3, 2), dtype=np.complex64, chunks=2)
    >>> v = da.stack([da.full((4, 3, 2), 3.0), da.full((4, 3, 2), 1.0)], axis=-1)
    >>> y = norbert.dask.softmask(v, x)
    >>> y.dtype, float(y[0, 0, 0, 0].compute().real)
    (dtype('complex64'), 0.75)
    """
    x, cdtype = _check_x(x)
    v = _check_v(v, x)
    eps = resolve_eps(eps, _real_dtype(cdtype))
    logit = _check_logit(logit)
    workers = _check_workers(workers)
    y, _, _ = _em_graph(
        x,
        v,
        None,
        Estimate.SOFTMASK,
        cdtype,
        0,
        eps,
        logit,
        workers,
        "softmask",
        None,
        None,
        with_psd=False,
    )
    return y


# -- files -------------------------------------------------------------------------------
class _RawFile:
    """An array stored raw in a file, read or written one region at a time.

    Only the path, dtype, shape, offset and order are pickled, so nothing of the data
    travels through the scheduler. A region that is one run of the file (whole frames of
    a C-ordered array) is read or written with one system call; others go through a
    memory map that is closed at once. A worker never holds more than its chunks.
    """

    def __init__(self, path, dtype, shape, offset, order):
        self.path = os.path.abspath(os.fspath(path))  # workers may not share our cwd
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(n) for n in shape)
        self.offset = int(offset)
        self.order = order

    @property
    def ndim(self):
        return len(self.shape)

    def _run(self, key):
        """(byte offset, shape) of the region key when it is one run of the file, else None."""
        if self.order != "C":
            return None
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > self.ndim or not all(isinstance(k, slice) for k in key):
            return None
        bounds = [k.indices(n) for k, n in zip(key, self.shape)]
        bounds += [(0, n, 1) for n in self.shape[len(key) :]]
        if any(step != 1 for _, _, step in bounds):
            return None
        shape = tuple(max(0, stop - start) for start, stop, _ in bounds)
        partial = [i for i, (n, b) in enumerate(zip(self.shape, bounds)) if b[:2] != (0, n)]
        if partial and any(shape[i] > 1 for i in range(partial[-1])):
            return None  # strided: more than one run
        first = np.ravel_multi_index([b[0] for b in bounds], self.shape) if all(shape) else 0
        return self.offset + int(first) * self.dtype.itemsize, shape

    def _map(self, mode):
        return np.memmap(
            self.path,
            dtype=self.dtype,
            mode=mode,
            shape=self.shape,
            offset=self.offset,
            order=self.order,
        )

    def __getitem__(self, key):
        run = self._run(key)
        if run is not None:
            offset, shape = run
            count = int(np.prod(shape, dtype=np.int64))
            if count == 0:
                return np.empty(shape, self.dtype)
            return np.fromfile(self.path, self.dtype, count, offset=offset).reshape(shape)
        m = self._map("r")
        try:
            return np.array(m[key])
        finally:
            del m  # unmap: the pages read leave the worker's resident memory

    def __setitem__(self, key, value):
        run = self._run(key)
        if run is not None:
            offset, shape = run
            with open(self.path, "r+b") as f:
                f.seek(offset)
                np.ascontiguousarray(np.broadcast_to(value, shape), self.dtype).tofile(f)
            return
        m = self._map("r+")
        try:
            m[key] = value
        finally:
            del m  # unmapping hands the dirty pages to the OS, which writes them back

    def token(self):
        st = os.stat(self.path)
        return (
            os.path.abspath(self.path),
            self.dtype.str,
            self.shape,
            self.offset,
            self.order,
            st.st_size,
            st.st_mtime_ns,
        )


def _memmap_file(a):
    """A contiguous np.memmap (or a contiguous view of one) as a _RawFile."""
    if not (a.flags.c_contiguous or a.flags.f_contiguous) or a.filename is None:
        raise ParameterError(
            "only C- or Fortran-contiguous np.memmap arrays can be read chunk by chunk; "
            "save the array with np.save and use norbert.dask.from_npy(path)"
        )
    if a.mode == "c":
        raise ParameterError(
            "a copy-on-write np.memmap (mode='c') can differ from its file; "
            "pass it as a dask array (da.from_array) instead"
        )
    mm = a._mmap
    start = a.offset - a.offset % mmap.ALLOCATIONGRANULARITY  # where np.memmap mapped
    base = np.frombuffer(mm, np.uint8).ctypes.data
    offset = start + (a.ctypes.data - base)
    order = "C" if a.flags.c_contiguous else "F"
    return _RawFile(a.filename, a.dtype, a.shape, offset, order)


def from_npy(file, chunks=None):
    """A Dask array that reads a ``.npy`` file (or an ``np.memmap``) chunk by chunk.

    Each task reads its own chunk (one read for chunks of whole frames); only the file's
    name travels through the graph, so this works on a ``dask.distributed`` cluster whose
    workers see the same file system (``da.from_array(np.load(path, mmap_mode="r"))``
    would send the whole array through the scheduler). The functions of this module read
    such arrays inside their own tasks, pass after pass, and hold nothing in between.

    Parameters
    ----------
    file : str, os.PathLike or np.memmap
        a ``.npy`` file, or a C- or Fortran-contiguous ``np.memmap``.
    chunks : Dask chunks or None
        None: chunks of whole frames (the first axis) of about 8 MB. A tuple shorter than
        the array's dimensions leaves the other axes whole: ``(240,)`` is 240 frames a chunk.

    Returns
    -------
    dask.array.Array
        the array, with the file's shape and dtype

    Examples
    --------
    >>> import numpy as np, norbert.dask, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.arange(12.0).reshape(6, 2))
    >>> a = norbert.dask.from_npy(path, chunks=(4, 2))
    >>> a.chunks, float(a.sum().compute())
    (((4, 2), (2,)), 66.0)
    """
    if isinstance(file, np.memmap):
        source = _memmap_file(file)
    else:
        m = np.load(os.fspath(file), mmap_mode="r")
        if not isinstance(m, np.memmap):
            raise ParameterError(f"{file!r} is not a .npy file of a numeric array")
        order = "C" if m.flags.c_contiguous else "F"
        source = _RawFile(file, m.dtype, m.shape, m.offset, order)
        del m
    if chunks is None:
        chunks = _frame_chunks(source.shape, source.dtype.itemsize)
    elif isinstance(chunks, tuple) and len(chunks) < source.ndim:
        chunks = chunks + (-1,) * (source.ndim - len(chunks))
    chunks = da.core.normalize_chunks(chunks, source.shape, dtype=source.dtype)
    a = da.from_array(
        source,
        chunks=chunks,
        name=_graph_name("npy", source.token(), chunks),
        lock=False,
        asarray=False,
        fancy=False,
        meta=np.empty((0,) * source.ndim, source.dtype),
    )
    if len(_FILES) >= _FILES_MAX:
        _FILES.pop(next(iter(_FILES)))
    _FILES[a.name] = source
    return a


def to_npy(a, path, *, compute=True, **compute_kwargs):
    """Store a Dask array into a new ``.npy`` file, each task writing its own chunk.

    The file is created (sparse) with its header first; each task then writes its chunk
    into it (one write for chunks of whole frames, else through a memory map), so nothing
    larger than a chunk is ever in memory and the result travels through no scheduler.
    Workers must see the file at the same path.

    Parameters
    ----------
    a : dask.array.Array
        e.g. the result of :func:`wiener`.
    path : str or os.PathLike
        where to write (overwritten).
    compute : bool, keyword-only
        False: return a ``dask.delayed`` object that writes when computed (e.g. with
        ``client.compute``).
    **compute_kwargs
        passed to ``dask.compute`` (e.g. ``scheduler="synchronous"``).

    Returns
    -------
    np.memmap or dask.delayed.Delayed
        the stored array, opened read-only (compute=True), or the delayed write.

    Examples
    --------
    >>> import dask.array as da, norbert.dask, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "y.npy")
    >>> out = norbert.dask.to_npy(da.ones((6, 2), chunks=(4, 2)), path)
    >>> out.shape, float(out.sum())
    ((6, 2), 12.0)
    """
    a = _as_dask(a, "a")
    path = os.fspath(path)
    header = np.lib.format.open_memmap(path, mode="w+", dtype=a.dtype, shape=a.shape)
    target = _RawFile(path, a.dtype, a.shape, header.offset, "C")
    del header
    stored = da.store(a, target, lock=False, compute=False)
    if not compute:
        return stored
    dask.compute(stored, **compute_kwargs)
    return np.load(path, mmap_mode="r")


def refine_files(
    jobs,
    *,
    client=None,
    iterations=1,
    use_softmask=True,
    eps=None,
    workers=1,
    frames_per_chunk=None,
    progress=None,
):
    """Refine many tracks stored as ``.npy`` files on a ``dask.distributed`` cluster.

    Each job is one track, ``(mixture, estimates, output)``: the mixture STFT `x`, the
    spectrograms `v` of the sources, and where to write ``y = wiener(v, x, ...)``.
    Every track is computed by :func:`wiener` over chunks of frames read with
    :func:`from_npy` and written with :func:`to_npy`, so a worker holds a few chunks at a
    time however long the tracks are; the tracks are submitted together as futures and
    the cluster interleaves their chunks.

    Parameters
    ----------
    jobs : iterable of (path, path, path)
        ``(mixture, estimates, output)``: `x` as a ``.npy`` of shape
        (nb_frames, nb_bins, nb_channels), complex; `v` as a ``.npy`` of shape
        (nb_frames, nb_bins, {1, nb_channels}, nb_sources); the ``.npy`` file to write `y`
        into (nb_frames, nb_bins, nb_channels, nb_sources), x's complex dtype. The client
        and the workers must see these paths.
    client : distributed.Client or None, keyword-only
        the cluster to use (None: the current client).
    iterations, use_softmask, eps, workers : keyword-only
        as in :func:`wiener`.
    frames_per_chunk : int or None, keyword-only
        frames per task (None: about 8 MB of x per chunk).
    progress : None, True or callable, keyword-only
        called as ``progress(completed, total)`` each time a track is done; True prints
        a line per track.

    Returns
    -------
    list of str
        the output paths, in the order of `jobs`.

    Raises
    ------
    RuntimeError
        after every track has finished, if some failed: it names them, and chains the
        first error.

    Examples
    --------
    >>> from distributed import Client, LocalCluster          # doctest: +SKIP
    >>> with LocalCluster(n_workers=4, threads_per_worker=1) as cluster, \\
    ...         Client(cluster) as client:                    # doctest: +SKIP
    ...     norbert.dask.refine_files(
    ...         [("song1_x.npy", "song1_v.npy", "song1_y.npy"),
    ...          ("song2_x.npy", "song2_v.npy", "song2_y.npy")],
    ...         client=client, iterations=1, progress=True)
    """
    try:
        from distributed import as_completed, get_client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "norbert.dask.refine_files needs dask.distributed; "
            "install the extra: pip install 'norbert[dask]'"
        ) from exc
    jobs = [tuple(job) for job in jobs]
    for job in jobs:
        if len(job) != 3:
            raise ParameterError(f"each job must be (mixture, estimates, output), got {job!r}")
    if frames_per_chunk is not None and (
        isinstance(frames_per_chunk, bool)
        or not isinstance(frames_per_chunk, numbers.Integral)
        or frames_per_chunk < 1
    ):
        raise ParameterError(f"frames_per_chunk must be None or >= 1, got {frames_per_chunk!r}")
    if progress is True:

        def progress(done, total):
            print(f"norbert: {done}/{total} tracks refined", flush=True)

    client = get_client() if client is None else client
    futures = {}
    for i, (x_path, v_path, y_path) in enumerate(jobs):
        # v read in x's chunks of frames: no rechunk between file and kernel
        x = from_npy(x_path, chunks=None if frames_per_chunk is None else (frames_per_chunk,))
        y = wiener(
            from_npy(v_path, chunks=x.chunks[:1]),
            x,
            iterations=iterations,
            use_softmask=use_softmask,
            eps=eps,
            workers=workers,
        )
        futures[client.compute(to_npy(y, y_path, compute=False))] = i
    failed = []
    for done, future in enumerate(as_completed(list(futures), loop=client.loop), 1):
        if future.status != "finished":
            failed.append((futures[future], future.exception()))
        if progress is not None:
            progress(done, len(jobs))
    if failed:
        failed.sort(key=lambda item: item[0])
        names = ", ".join(repr(jobs[i][0]) for i, _ in failed)
        raise RuntimeError(
            f"refine_files: {len(failed)} of {len(jobs)} tracks failed: {names}"
        ) from failed[0][1]
    return [os.fspath(job[2]) for job in jobs]
