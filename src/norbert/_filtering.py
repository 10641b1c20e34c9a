"""The documented functions of norbert 0.2.1, computed by the compiled core."""

import numpy as np

from norbert._core import Estimate, _filter
from norbert._drivers import (
    EMState,
    check_frames_per_block,
    covariance_to_user,
    mixture_scales,
    psd_in_output,
    run_em,
)
from norbert._steer import check_steering
from norbert._validation import (
    ParameterError,
    PrecisionOverflow,
    _as_array,
    _check_ndim,
    allocate,
    check_finite,
    check_iterations,
    check_logit,
    check_mixture,
    check_out,
    check_progress,
    check_result,
    check_sources,
    check_spectrograms,
    raise_for_status,
    real_dtype,
    resolve_eps,
    resolve_workers,
)

__all__ = [
    "expectation_maximization",
    "wiener",
    "softmask",
    "wiener_gain",
    "apply_filter",
    "get_mix_model",
    "get_local_gaussian_model",
]

_REFERENCES = """
    References
    ----------
    .. [1] N.Q. Duong, E. Vincent and R. Gribonval. "Under-determined reverberant audio
       source separation using a full-rank spatial covariance model." IEEE Transactions on
       Audio, Speech, and Language Processing 18.7 (2010): 1830-1840.
    .. [2] A. Nugraha, A. Liutkus and E. Vincent. "Multichannel audio source separation
       with deep neural networks." IEEE/ACM Transactions on Audio, Speech, and Language
       Processing 24.9 (2016): 1652-1664.
"""


def _check_call(func, x, sources, *, iterations=0, progress=None, eps=None, logit=None,
                workers=None, out=None, frames_per_block=None):
    """The arguments of wiener, softmask (sources ("v", v)) or expectation_maximization
    (("y", y)), checked.

    One order for all three, so a call with several problems reports the same one
    whichever function it is: x, v or y, iterations, progress, eps, logit, workers, out
    (allocated here when None), frames_per_block. The defaults are the valid values of
    the arguments a function does not take.
    Returns x, v or y, cdtype, iterations, eps, logit (-1.0 for none), n_threads, out, fpb.
    """
    x, cdtype = check_mixture(x, batch=True)
    name, a = sources
    sources = (name, check_spectrograms(a, x) if name == "v" else check_sources(a, x))
    iterations = check_iterations(iterations)
    check_progress(progress)
    eps = resolve_eps(eps, real_dtype(cdtype))
    logit = check_logit(logit)
    T, F, C = x.shape[-3:]
    J = sources[1].shape[-1]
    n_threads = resolve_workers(workers, points=x.size // max(1, C))
    out = check_out(out, x.shape + (J,), cdtype, [("x", x), sources], what=f"{func}'s y",
                    n_threads=n_threads)
    fpb = check_frames_per_block(frames_per_block, F, C, J, np.dtype(cdtype).itemsize)
    # a block never spans more than the track; the kernels take a C Py_ssize_t
    fpb = min(fpb, max(1, T))
    return x, sources[1], cdtype, iterations, eps, logit, n_threads, out, fpb


def expectation_maximization(y, x, iterations=2, verbose=0, eps=None, *, workers=None,
                             out=None, progress=None, frames_per_block=None, R=None,
                             update_R=True, mu=1.0, callback=None, tol=None):
    """Expectation maximization algorithm, for refining source separation estimates.

    Re-estimates the sources' power spectral densities and spatial covariance matrices
    (:func:`get_local_gaussian_model`), then separates the mixture again with the
    multichannel Wiener filter they define (:func:`get_mix_model`, :func:`wiener_gain`,
    :func:`apply_filter`), `iterations` times. The filter of each TF point is
    ``y_j = v_j R_j Cxx^-1 x`` with ``Cxx = sum_j v_j R_j + sqrt(eps) I``.

    Iteration k filters with the parameters estimated from the estimate of iteration
    k - 1 (iteration 1: from `y`, or with the given `R`); see :ref:`steering` for the
    options that steer the EM (`R`, `update_R`, `mu`) and watch it (`callback`, `tol`,
    `verbose`).

    Leading axes of `x` (the same ones on `y`) are a batch of independent problems
    (e.g. windows of a track, or tracks): each element gets its own spatial covariances
    and the bits a call on that element alone gives; all threads work over the batch in one
    pass. The steering options apply to one problem (3-D `x`).

    Parameters
    ----------
    y : np.ndarray [shape=(..., nb_frames, nb_bins, nb_channels, nb_sources)]
        initial estimates for the sources (complex). Never modified.
    x : np.ndarray [shape=(..., nb_frames, nb_bins, nb_channels)]
        complex STFT of the mixture signal
    iterations : int [scalar]
        number of iterations for the EM algorithm (>= 0).
    verbose : boolean
        display some information if True: the number of iterations, then one line per
        iteration from its :class:`~norbert.EMRecord` (as `callback` receives it).
    eps : float or None [scalar]
        The epsilon value to use for regularization and filters. If None, the default
        will use the epsilon of np.real(x) dtype.
    workers : int or None, keyword-only
        number of threads (None: all cores, honouring OMP_NUM_THREADS; -1: all cores);
        calls under 131072 TF points run on one thread.
    out : np.ndarray or None, keyword-only
        C-contiguous writable array of y's shape and x's complex dtype (e.g. an
        ``np.memmap``) that receives the estimates.
    progress : callable or None, keyword-only
        called as ``progress(completed, total)`` after each block of frames; units are
        frames times passes over the track.
    frames_per_block : int or None, keyword-only
        frames per kernel call (None: about 8 MB of output per block).
    R : np.ndarray [shape=(nb_bins, nb_channels, nb_channels, nb_sources)] or None, keyword-only
        given spatial covariance matrices (real or complex; finite, Hermitian and positive
        semi-definite within rounding, each ``R[f, :, :, j]``). The first filter uses them
        with the PSDs of the initial estimate instead of estimating them from it. Their
        Hermitian part ``(R + R^H) / 2`` is used (an exactly Hermitian R as it is).
    update_R : bool, keyword-only
        False keeps R (given, or else estimated from the initial estimate) fixed for every
        iteration: only the PSDs are re-estimated, and the R returned is that R.
    mu : float >= 0, keyword-only
        speech-distortion weight: ``y_j = v_j R_j (v_j R_j + mu sum_{k != j} v_k R_k +
        sqrt(eps) I)^-1 x`` (one channel: ``+ eps`` too, as for mu = 1). 1 (the default) is
        the Wiener filter above, bit for bit; below 1 each source is less distorted, above
        1 the other sources are suppressed more, and the sources no longer sum to the
        mixture. Cost: one Hermitian solve per source and TF point instead of one per TF
        point, and two-channel calls leave their vectorised path (measured: 1.6x the time
        with 4 channels and 3 sources, 2.3-6x with 2 channels and 3-4 sources).
    callback : callable or None, keyword-only
        called as ``callback(record)`` after each iteration with an
        :class:`~norbert.EMRecord` (``iteration``, ``log_likelihood``, ``consistency``);
        record k describes iteration k's filter: the mixture model ``Cxx`` it solved and
        the estimates it produced. Computed inside the passes the EM makes anyway
        (measured: 1.1x the time of an unwatched EM with 4 channels, 1.3-1.6x with 2,
        whose filter is vectorised; with ``mu != 1`` one more solve per TF point). An
        exception it raises ends the call and propagates unchanged.
    tol : float > 0 or None, keyword-only
        stop early when the log-likelihood changes by less than ``tol`` relative to the
        iteration before (``|L_k - L_{k-1}| < tol |L_{k-1}|``, k >= 2): iteration k + 1 is
        then the last one (iteration k's statistics are taken in the pass that measures
        it), so `iterations` becomes a maximum.

    Returns
    -------
    y : np.ndarray [shape=(..., nb_frames, nb_bins, nb_channels, nb_sources)]
        estimated sources after iterations (x's complex dtype)
    v : np.ndarray [shape=(..., nb_frames, nb_bins, nb_sources)]
        estimated power spectral densities (x's real dtype)
    R : np.ndarray [shape=(..., nb_bins, nb_channels, nb_channels, nb_sources)]
        estimated spatial covariance matrices (x's complex dtype), one set per element;
        with ``update_R=False``, the fixed R (the given one when `R` is given, also with
        ``iterations=0``)

    Raises
    ------
    TypeError
        if an argument is not an array of the right kind (e.g. real x), or update_R,
        mu, callback or tol is of the wrong type.
    ValueError
        on shape mismatches, negative iterations or eps, NaN or inf in y or x, and an R
        of the wrong shape, not finite, not Hermitian or not positive semi-definite, a
        negative or non-finite mu, a tol that is not > 0.
    {references}
    Examples
    --------
    >>> import numpy as np, norbert
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((20, 5, 2)) + 1j * rng.standard_normal((20, 5, 2))
    >>> y0 = norbert.softmask(rng.random((20, 5, 2, 3)), x)
    >>> y, v, R = norbert.expectation_maximization(y0, x, iterations=1)
    >>> y.shape, v.shape, R.shape
    ((20, 5, 2, 3), (20, 5, 3), (5, 2, 2, 3))
    """
    x, y, cdtype, iterations, eps, _, n_threads, out, fpb = _check_call(
        "expectation_maximization", x, ("y", y), iterations=iterations, progress=progress, eps=eps,
        workers=workers, out=out, frames_per_block=frames_per_block)
    F, C, J = out.shape[-3:]
    steer = check_steering("expectation_maximization", R, update_R, mu, callback, tol,
                           verbose, (F, C, C, J), batch=x.ndim > 3)
    if verbose:
        print("Number of iterations: ", iterations)
    if iterations == 0:
        # as upstream: the initial estimate (a copy, never the caller's object) and zeros
        check_finite(y, "y", "expectation_maximization")
        check_finite(x, "x", "expectation_maximization")
        with np.errstate(over="ignore"):
            out[...] = y
        check_result([out], "expectation_maximization", [("y", y, False), ("x", x, False)])
        batch_frames = out.shape[:-3]     # (..., nb_frames)
        R_out = (np.zeros(batch_frames[:-1] + (F, C, C, J), cdtype)
                 if steer is None or steer.R is None else covariance_to_user(steer.R, cdtype))
        return out, np.zeros(batch_frames + (F, J), real_dtype(cdtype)), R_out
    if eps == 0.0:
        # without regularisation a silent TF point's filter is 0 and never reads x there:
        # a NaN or inf in x would pass unseen (wiener's level scan reads every x)
        check_finite(x, "x", "expectation_maximization")
    state = run_em(x, cdtype, iterations, eps, n_threads, fpb, out, Estimate.GIVEN, y=y,
                   progress=progress, func="expectation_maximization", steer=steer)
    if verbose and (steer is None or steer.tol is None):
        print(f"EM done ({iterations} iterations)")
    elif verbose and steer is not None:
        print(f"EM done ({steer.records[-1].iteration} of at most {iterations} iterations)")
    v_out, R_out = state.psds(), state.covariance()
    if v_out.dtype != real_dtype(cdtype):
        # the EM ran in double (float32 overflowed on the way, see run_em): y is finite,
        # the PSDs of y's first estimate may not fit float32
        with np.errstate(over="ignore"):
            v_out, R_out = v_out.astype(real_dtype(cdtype)), R_out.astype(cdtype)
        if not (np.all(np.isfinite(v_out)) and np.all(np.isfinite(R_out))):
            raise PrecisionOverflow(
                "expectation_maximization: the PSDs v of these estimates exceed float32's "
                "range; pass complex128 y and x to get them (or more iterations, whose "
                "PSDs follow the mixture's level)"
            )
    return out, v_out, R_out


expectation_maximization.__doc__ = expectation_maximization.__doc__.replace(
    "{references}", _REFERENCES
)


def wiener(v, x, iterations=1, use_softmask=True, eps=None, *, workers=None, out=None,
           progress=None, frames_per_block=None, R=None, update_R=True, mu=1.0,
           callback=None, tol=None, verbose=0):
    """Wiener-based separation for multichannel audio.

    An initial estimate from the spectrograms `v` (:func:`softmask`, or `v` with the
    mixture's phase) is refined by `iterations` rounds of :func:`expectation_maximization`
    on the mixture `x`. As in norbert 0.2.1, the EM runs on ``x / max(1, max|x| / 10)``
    and the result is scaled back; the caller's `x` is not modified.

    Leading axes of `x` (the same ones on `v`) are a batch of independent problems
    (e.g. windows of a track, or tracks): each element gets its own spatial covariances,
    its own loud-mixture scale and the bits a call on that element alone gives; all
    threads work over the batch in one pass.

    Parameters
    ----------
    v : np.ndarray [shape=(..., nb_frames, nb_bins, {1,nb_channels}, nb_sources)]
        spectrograms of the sources. This is a nonnegative tensor that is usually the
        output of the actual separation method of the user. The spectrograms may be mono,
        but they need to be 4-dimensional in all cases (one more axis than x).
    x : np.ndarray [complex, shape=(..., nb_frames, nb_bins, nb_channels)]
        STFT of the mixture signal.
    iterations : int [scalar]
        number of iterations for the EM algorithm
    use_softmask : boolean
        if False, then the mixture phase will directly be used with the spectrogram as
        initial estimates. if True, a softmasking strategy will be used as described in
        :func:`softmask`.
    eps : {None, float}
        Epsilon value to use for computing the separations. If None, the default value is
        taken as ``np.finfo(np.real(x[0])).eps``.
    workers, out, progress, frames_per_block : keyword-only
        as in :func:`expectation_maximization`.
    R, update_R, mu, callback, tol, verbose : keyword-only
        as in :func:`expectation_maximization` (`verbose` prints one line per iteration);
        with ``iterations=0`` only the initial estimate is computed and they do nothing.
        The log-likelihood that `callback` receives is the caller's `x`'s (see
        :class:`~norbert.EMRecord`), although the EM runs on the rescaled mixture.

    Returns
    -------
    y : np.ndarray [complex, shape=(..., nb_frames, nb_bins, nb_channels, nb_sources)]
        STFT of estimated sources (x's complex dtype)

    Raises
    ------
    TypeError
        if an argument is not an array of the right kind.
    ValueError
        on shape mismatches, bad parameter values, negative or non-finite v, non-finite x,
        a bad R (see :func:`expectation_maximization`).
    {references}
    Examples
    --------
    >>> import numpy as np, norbert
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((100, 33, 2)) + 1j * rng.standard_normal((100, 33, 2))
    >>> v = rng.random((100, 33, 1, 4))
    >>> y = norbert.wiener(v, x, iterations=2)
    >>> y.shape, y.dtype
    ((100, 33, 2, 4), dtype('complex128'))
    >>> bool(np.allclose(y.sum(axis=-1), x))
    True
    """
    return _wiener(v, x, iterations, use_softmask, eps, workers=workers, out=out,
                   progress=progress, frames_per_block=frames_per_block, R=R,
                   update_R=update_R, mu=mu, callback=callback, tol=tol, verbose=verbose)


wiener.__doc__ = wiener.__doc__.replace("{references}", _REFERENCES)


def _wiener(v, x, iterations, use_softmask, eps, *, workers=None, out=None, progress=None,
            frames_per_block=None, R=None, update_R=True, mu=1.0, callback=None, tol=None,
            verbose=0, split=False):
    """wiener; split: y's points written as (C, 2, J) reals in its bytes (open-unmix's
    layout, see norbert.compat.openunmix), so such callers need no second pass."""
    x, v, cdtype, iterations, eps, _, n_threads, out, fpb = _check_call(
        "wiener", x, ("v", v), iterations=iterations, progress=progress, eps=eps, workers=workers,
        out=out, frames_per_block=frames_per_block)
    F, C, J = out.shape[-3:]
    steer = check_steering("wiener", R, update_R, mu, callback, tol, verbose, (F, C, C, J),
                           batch=x.ndim > 3)
    init = Estimate.SOFTMASK if use_softmask else Estimate.PHASE
    if iterations == 0:
        state = EMState(x, v.shape[-1], cdtype, eps, n_threads, fpb, progress=progress,
                        filter_only=True)
        state.filter(init, 1.0, out, v=v, func="wiener", split=split)
        return out
    scale = mixture_scales(x, cdtype, n_threads)
    # one problem: the PSDs live in the output's last bytes until the last pass (no extra
    # full-size array); a batch runs its elements side by side and keeps them apart
    P = psd_in_output(out.reshape(out.shape[-4:])) if x.ndim == 3 else None
    run_em(x, cdtype, iterations, eps, n_threads, fpb, out, init, v=v, scale=scale,
           progress=progress, func="wiener", P=P, split=split, steer=steer)
    return out


def softmask(v, x, logit=None, eps=None, *, workers=None, out=None):
    """Separates a mixture with a ratio mask, using the provided sources spectrograms.

    ``y[..., c, j] = v[..., c, j] / (eps + sum_k v[..., c, k]) * x[..., c]`` (channel 0 of
    `v` for every channel when `v` is mono). With `logit`, the mask ``m`` is compressed to
    ``1 / (1 + exp(-15 (m - logit)))``: masks above the threshold move toward 1, below it
    toward 0. The filter does not take multichannel correlations into account.

    Parameters
    ----------
    v : np.ndarray [shape=(..., nb_frames, nb_bins, {1, nb_channels}, nb_sources)]
        spectrograms of the sources (non-negative)
    x : np.ndarray [shape=(..., nb_frames, nb_bins, nb_channels)]
        mixture signal (complex); leading axes, if any, are a batch (as in :func:`wiener`)
    logit : {None, float between 0 and 1}
        enable a compression of the filter. If not None, it is the threshold value for
        the logit function.
    eps : {None, float}
        added to the total energy before dividing (None: machine epsilon of x's real dtype).
    workers, out : keyword-only
        as in :func:`expectation_maximization`.

    Returns
    -------
    ndarray, shape=(..., nb_frames, nb_bins, nb_channels, nb_sources)
        estimated sources (x's complex dtype)

    Raises
    ------
    TypeError, ValueError
        on bad arrays or parameters, negative or non-finite v, non-finite x.

    References
    ----------
    .. [1] N. Wiener, "Extrapolation, Inerpolation, and Smoothing of Stationary Time
       Series." 1949.
    .. [2] A. Liutkus and R. Badeau. "Generalized Wiener filtering with fractional power
       spectrograms." ICASSP 2015.

    Examples
    --------
    >>> import numpy as np, norbert
    >>> x = np.ones((4, 3, 2), dtype=np.complex64)
    >>> v = np.stack([np.full((4, 3, 2), 3.0), np.full((4, 3, 2), 1.0)], axis=-1)
    >>> y = norbert.softmask(v, x)
    >>> y.dtype, float(y[0, 0, 0, 0].real)
    (dtype('complex64'), 0.75)
    """
    x, v, cdtype, _, eps, logit, n_threads, out, fpb = _check_call(
        "softmask", x, ("v", v), eps=eps, logit=logit, workers=workers, out=out)
    state = EMState(x, v.shape[-1], cdtype, eps, n_threads, fpb, filter_only=True)
    state.filter(Estimate.SOFTMASK, 1.0, out, v=v, logit=logit, func="softmask")
    return out


def _complex_operand(a, name, ndim, shape_doc):
    a = _as_array(a, name)
    _check_ndim(a, ndim, name, shape_doc)
    return a


def _common_complex(*arrays):
    dt = np.result_type(*[a.dtype for a in arrays], np.complex64)
    return np.dtype(np.complex64) if dt.itemsize <= 8 else np.dtype(np.complex128)


def wiener_gain(v_j, R_j, inv_Cxx, *, workers=None):
    """Compute the wiener gain for separating one source, given all parameters.

    ``G = v_j R_j inv_Cxx`` at every TF point: the matrix applied to the mix to get the
    posterior mean of the source [1]_.

    Parameters
    ----------
    v_j : np.ndarray [shape=(nb_frames, nb_bins)]
        power spectral density of the target source. (norbert 0.2.1's documentation says
        (nb_frames, nb_bins, nb_channels); the maths and its code take one PSD per TF point.)
    R_j : np.ndarray [shape=(nb_bins, nb_channels, nb_channels)]
        spatial covariance matrix of the target source
    inv_Cxx : np.ndarray [shape=(nb_frames, nb_bins, nb_channels, nb_channels)]
        inverse of the mixture covariance matrices
    workers : int or None, keyword-only
        number of threads, as in :func:`expectation_maximization` (calls under 131072
        TF points run on one).

    Returns
    -------
    G : np.ndarray [shape=(nb_frames, nb_bins, nb_channels, nb_channels)]
        wiener filtering matrices, to apply to the mix, e.g. through :func:`apply_filter`.

    Raises
    ------
    TypeError, ValueError
        on arrays of the wrong kind or shape, NaN or inf in any input, negative v_j.

    References
    ----------
    .. [1] N.Q. Duong, E. Vincent and R. Gribonval. "Under-determined reverberant audio
       source separation using a full-rank spatial covariance model." 2010.

    Examples
    --------
    >>> import numpy as np, norbert
    >>> G = norbert.wiener_gain(np.ones((2, 3)), np.ones((3, 1, 1)), np.full((2, 3, 1, 1), 0.5))
    >>> G.shape, complex(G[0, 0, 0, 0])
    ((2, 3, 1, 1), (0.5+0j))
    """
    v_j = _as_array(v_j, "v_j")
    if v_j.dtype.kind == "c":
        raise TypeError(f"v_j must be real, got {v_j.dtype}")
    _check_ndim(v_j, 2, "v_j", "(nb_frames, nb_bins)")
    R_j = _complex_operand(R_j, "R_j", 3, "(nb_bins, nb_channels, nb_channels)")
    inv_Cxx = _complex_operand(inv_Cxx, "inv_Cxx", 4,
                               "(nb_frames, nb_bins, nb_channels, nb_channels)")
    T, F = v_j.shape
    C = R_j.shape[1]
    if R_j.shape != (F, C, C):
        raise ParameterError(f"R_j must have shape (nb_bins={F}, C, C), got {R_j.shape}")
    if inv_Cxx.shape != (T, F, C, C):
        raise ParameterError(
            f"inv_Cxx must have shape (nb_frames, nb_bins, C, C) = {(T, F, C, C)}, "
            f"got {inv_Cxx.shape}"
        )
    cdtype = _common_complex(R_j, inv_Cxx)
    rdtype = real_dtype(cdtype)
    G = allocate((T, F, C, C), cdtype, "wiener_gain's G")
    check_finite(v_j, "v_j", "wiener_gain", nonnegative=True)
    check_finite(R_j, "R_j", "wiener_gain")
    check_finite(inv_Cxx, "inv_Cxx", "wiener_gain")
    status = _filter.gain(
        np.ascontiguousarray(v_j, rdtype), np.ascontiguousarray(R_j, cdtype),
        np.ascontiguousarray(inv_Cxx, cdtype), G, resolve_workers(workers, points=T * F),
    )
    raise_for_status(status, "wiener_gain")
    check_result([G], "wiener_gain")
    return G


def apply_filter(x, W, *, workers=None):
    """Applies a filter on the mixture. Just corresponds to a matrix multiplication.

    ``y_hat[t, f] = W[t, f] @ x[t, f]``.

    Parameters
    ----------
    x : np.ndarray [shape=(nb_frames, nb_bins, nb_channels)]
        STFT of the signal on which to apply the filter.
    W : np.ndarray [shape=(nb_frames, nb_bins, nb_channels, nb_channels)]
        filtering matrices, as returned, e.g. by :func:`wiener_gain`
    workers : int or None, keyword-only
        number of threads, as in :func:`expectation_maximization` (calls under 131072
        TF points run on one).

    Returns
    -------
    y_hat : np.ndarray [shape=(nb_frames, nb_bins, nb_channels)]
        filtered signal

    Raises
    ------
    TypeError, ValueError
        on arrays of the wrong kind or shape, NaN or inf in x or W.

    Examples
    --------
    >>> import numpy as np, norbert
    >>> x = np.ones((1, 1, 2), complex)
    >>> W = np.array([[[[1, 2], [0, 1j]]]])
    >>> norbert.apply_filter(x, W)[0, 0]
    array([3.+0.j, 0.+1.j])
    """
    x = _complex_operand(x, "x", 3, "(nb_frames, nb_bins, nb_channels)")
    W = _complex_operand(W, "W", 4, "(nb_frames, nb_bins, nb_channels, nb_channels)")
    T, F, C = x.shape
    if W.shape != (T, F, C, C):
        raise ParameterError(
            f"W must have shape x.shape + (nb_channels,) = {(T, F, C, C)}, got {W.shape}"
        )
    cdtype = _common_complex(x, W)
    y = allocate((T, F, C), cdtype, "apply_filter's y_hat")
    check_finite(x, "x", "apply_filter")
    check_finite(W, "W", "apply_filter")
    status = _filter.apply(np.ascontiguousarray(x, cdtype), np.ascontiguousarray(W, cdtype),
                           y, resolve_workers(workers, points=T * F))
    raise_for_status(status, "apply_filter")
    check_result([y], "apply_filter")
    return y


def get_mix_model(v, R, *, workers=None):
    """Compute the model covariance of a mixture based on local Gaussian models.

    Simply adds up all the ``v[..., j] * R[..., j]`` (no regularisation is added).

    Parameters
    ----------
    v : np.ndarray [shape=(nb_frames, nb_bins, nb_sources)]
        Power spectral densities for the sources
    R : np.ndarray [shape=(nb_bins, nb_channels, nb_channels, nb_sources)]
        Spatial covariance matrices of each sources
    workers : int or None, keyword-only
        number of threads, as in :func:`expectation_maximization` (calls under 131072
        TF points run on one).

    Returns
    -------
    Cxx : np.ndarray [shape=(nb_frames, nb_bins, nb_channels, nb_channels)]
        Covariance matrix for the mixture (R's complex dtype)

    Raises
    ------
    TypeError, ValueError
        on arrays of the wrong kind or shape, NaN or inf in v or R, negative v.

    Examples
    --------
    >>> import numpy as np, norbert
    >>> R = np.ones((3, 2, 2, 2), complex)
    >>> Cxx = norbert.get_mix_model(np.ones((4, 3, 2)), R)
    >>> Cxx.shape, complex(Cxx[0, 0, 0, 1])
    ((4, 3, 2, 2), (2+0j))
    """
    v = _as_array(v, "v")
    if v.dtype.kind == "c":
        raise TypeError(f"v must be real (PSDs), got {v.dtype}")
    _check_ndim(v, 3, "v", "(nb_frames, nb_bins, nb_sources)")
    R = _complex_operand(R, "R", 4, "(nb_bins, nb_channels, nb_channels, nb_sources)")
    T, F, J = v.shape
    C = R.shape[1]
    if R.shape != (F, C, C, J):
        raise ParameterError(
            f"R must have shape (nb_bins={F}, C, C, nb_sources={J}), got {R.shape}"
        )
    cdtype = _common_complex(R)
    Cxx = allocate((T, F, C, C), cdtype, "get_mix_model's Cxx")
    check_finite(v, "v", "get_mix_model", nonnegative=True)
    check_finite(R, "R", "get_mix_model")
    status = _filter.mix_model(np.ascontiguousarray(v, real_dtype(cdtype)),
                               np.ascontiguousarray(R, cdtype), Cxx,
                               resolve_workers(workers, points=T * F))
    raise_for_status(status, "get_mix_model")
    check_result([Cxx], "get_mix_model")
    return Cxx


def get_local_gaussian_model(y_j, eps=1.0, *, workers=None):
    """Compute the local Gaussian model [1]_ for a source given the complex STFT.

    ``v_j = mean_c |y_j|^2`` and ``R_j = sum_t y_j y_j^H / (eps + sum_t v_j)``, per bin.

    Parameters
    ----------
    y_j : np.ndarray [shape=(nb_frames, nb_bins, nb_channels)]
        complex stft of the source.
    eps : float [scalar]
        regularization term
    workers : int or None, keyword-only
        number of threads, as in :func:`expectation_maximization` (calls under 131072
        TF points run on one).

    Returns
    -------
    v_j : np.ndarray [shape=(nb_frames, nb_bins)]
        power spectral density of the source
    R_j : np.ndarray [shape=(nb_bins, nb_channels, nb_channels)]
        Spatial covariance matrix of the source (norbert 0.2.1 returned a leading axis
        of length 1)

    References
    ----------
    .. [1] N.Q. Duong, E. Vincent and R. Gribonval. "Under-determined reverberant audio
       source separation using a full-rank spatial covariance model." 2010.

    Examples
    --------
    >>> import numpy as np, norbert
    >>> v_j, R_j = norbert.get_local_gaussian_model(np.ones((10, 4, 2), complex), eps=0.0)
    >>> v_j.shape, R_j.shape, complex(R_j[0, 0, 1])
    ((10, 4), (4, 2, 2), (1+0j))
    """
    y_j, cdtype = check_mixture(y_j, name="y_j")
    eps = resolve_eps(eps, real_dtype(cdtype))
    T, F, C = y_j.shape
    n_threads = resolve_workers(workers, points=T * F)
    fpb = check_frames_per_block(None, F, C, 1, np.dtype(cdtype).itemsize)
    state = EMState(y_j, 1, cdtype, eps, n_threads, fpb)
    try:
        state.statistics(Estimate.GIVEN, 1.0, y=y_j[..., None], func="get_local_gaussian_model")
    except ValueError:
        # the driver calls the array "x"; say where the caller's y_j is not finite
        check_finite(y_j, "y_j", "get_local_gaussian_model")
        raise
    v_j, R_j = state.P[..., 0], state.covariance()[..., 0]
    check_result([v_j, R_j], "get_local_gaussian_model")
    return v_j, R_j
