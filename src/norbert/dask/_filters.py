"""wiener, expectation_maximization and softmask on Dask arrays: checks, then one graph."""

import dask.array as da
import numpy as np

from norbert._core import Estimate
from norbert._validation import check_iterations, check_logit, real_dtype, resolve_eps
from norbert.dask._graph import Run, em_graph, mixture_scale
from norbert.dask._inputs import aligned, check_v, check_workers, check_x, check_y, merged_channels
from norbert.dask._tasks import to_user_task


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
    x, cdtype = check_x(x)
    v = check_v(v, x)
    iterations = check_iterations(iterations)
    eps = resolve_eps(eps, real_dtype(cdtype))
    workers = check_workers(workers)
    mode = Estimate.SOFTMASK if use_softmask else Estimate.PHASE
    run = Run("wiener", mode, cdtype, eps, workers, iterations=iterations, split_every=split_every)
    scale = mixture_scale(x, cdtype, split_every) if iterations else None
    y, _, _ = em_graph(x, v, None, run, scale)
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
    x, cdtype = check_x(x)
    y = check_y(y, x)
    iterations = check_iterations(iterations)
    rdtype = real_dtype(cdtype)
    eps = resolve_eps(eps, rdtype)
    workers = check_workers(workers)
    T, F, C = x.shape
    J = y.shape[3]
    if verbose:
        print("Number of iterations: ", iterations)
    if iterations == 0:
        # as upstream: the initial estimate and zeros
        x = merged_channels(x)
        (y,) = aligned(x, y)
        return (
            y.astype(cdtype),
            da.zeros((T, F, J), dtype=rdtype, chunks=x.chunks[:2] + ((J,),)),
            da.zeros((F, C, C, J), dtype=cdtype, chunks=(x.chunks[1], (C,), (C,), (J,))),
        )
    run = Run(
        "expectation_maximization",
        Estimate.GIVEN,
        cdtype,
        eps,
        workers,
        iterations=iterations,
        split_every=split_every,
    )
    y_out, P, Rs = em_graph(x, None, y, run, with_psd=True)
    R = Rs[-1].map_blocks(
        to_user_task,
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
    x, cdtype = check_x(x)
    v = check_v(v, x)
    eps = resolve_eps(eps, real_dtype(cdtype))
    logit = check_logit(logit)
    run = Run("softmask", Estimate.SOFTMASK, cdtype, eps, check_workers(workers), logit)
    y, _, _ = em_graph(x, v, None, run)
    return y
