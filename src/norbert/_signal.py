"""The signal path ``norbert refine`` and ``norbert demo`` share: STFT, inverse, levels.

Both commands transform with :func:`~norbert.cli.make_stft` and
:func:`~norbert.cli.stft`, filter with :func:`~norbert.cli.filter_stft` and
resynthesise with :func:`~norbert.cli.istft`, so the demo's SDR table
measures what ``refine`` does to files. Scripts import these names from
:mod:`norbert.cli`, which re-exports them. scipy is imported only when an STFT is
made: ``norbert --help`` does not pay for it.

Levels
------
The filter's regularisation ``sqrt(eps) I`` is absolute, not relative to the
signal, and ``eps`` defaults to the machine epsilon of the working precision:
fed a magnitude-normalised complex64 STFT (``|x| ~ 1e-4``) it dominates the
mixture covariance and every source collapses toward silence. So
:func:`~norbert.cli.filter_stft`

* scales the mixture and estimate spectrograms to ``max|x| = FILTER_PEAK = 10``
  before filtering and back afterwards: the level ``wiener`` was designed for
  (it divides louder mixtures down to it), whatever the file's level or the
  STFT's normalisation;
* passes ``eps`` = float64's machine epsilon in both precisions. The kernels
  compute in double and only store in complex64, so float32's eps
  (``sqrt(eps) = 3.5e-4`` against a peak ``|x|^2 = 100``) would throw away
  every bin more than ~55 dB below the loudest: measured on the test example,
  the EM's sources then sum to the mixture only within 3.4 % (norm) and lose
  0.1-0.3 dB SDR, while with float64's eps complex64 gives the float64 result
  (within 1e-4, same SDR) at half the memory.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FILTER_EPS",
    "FILTER_PEAK",
    "ONLINE_BLOCK",
    "PRECISIONS",
    "filter_stft",
    "istft",
    "make_stft",
    "online_filter_stft",
    "stft",
]

#: Peak magnitude of the mixture STFT handed to ``norbert.wiener`` (see "Levels" above).
FILTER_PEAK = 10.0
#: ``eps`` handed to ``norbert.wiener`` in both precisions (see "Levels" above).
FILTER_EPS = float(np.finfo(np.float64).eps)
#: Complex dtype of each ``--precision`` choice.
PRECISIONS = {"float32": np.complex64, "float64": np.complex128}


def make_stft(n_fft, hop):
    """Hann-windowed ``scipy.signal.ShortTimeFFT`` (unscaled, one-sided).

    Parameters
    ----------
    n_fft : int
        Window and FFT length in samples.
    hop : int
        Hop size in samples.

    Returns
    -------
    sft : scipy.signal.ShortTimeFFT

    Raises
    ------
    ValueError
        If the window and hop do not give an invertible transform.

    Examples
    --------
    >>> make_stft(512, 128).f_pts
    257
    """
    from scipy.signal import ShortTimeFFT
    from scipy.signal.windows import hann

    sft = ShortTimeFFT(hann(n_fft, sym=False), hop=hop, fs=1.0)
    sft.dual_win  # noqa: B018 -- raises ValueError here if the STFT is not invertible
    return sft


def stft(sft, audio, dtype=np.complex128, block_frames=512, progress=None):
    """STFT of a multichannel signal, in norbert's layout.

    Parameters
    ----------
    sft : scipy.signal.ShortTimeFFT
    audio : np.ndarray [shape=(nb_samples, nb_channels)]
    dtype : numpy dtype
        Complex dtype of the result (complex64 halves the memory).
    block_frames : int
        Frames transformed at a time: bounds scipy's complex128 temporaries.
    progress : callable or None
        ``progress(n)`` after each block of ``n`` frames.

    Returns
    -------
    x : np.ndarray [shape=(nb_frames, nb_bins, nb_channels)]
        Frames from ``sft.p_min`` to ``sft.p_max(nb_samples)``, which
        :func:`istft` inverts exactly. Bins beyond ``dtype``'s range (samples
        near float32's largest value, finite in a file) are inf or NaN,
        without a warning: callers check, as ``norbert refine`` does.
    """
    nb_samples, nb_channels = audio.shape
    signal = np.ascontiguousarray(audio.T)
    p_min = sft.p_min
    nb_frames = sft.p_max(nb_samples) - p_min
    x = np.empty((nb_frames, sft.f_pts, nb_channels), dtype=dtype)
    for k0 in range(0, nb_frames, block_frames):
        k1 = min(k0 + block_frames, nb_frames)
        with np.errstate(over="ignore", invalid="ignore"):  # huge samples: inf, for the caller
            x[k0:k1] = sft.stft(signal, p_min + k0, p_min + k1).transpose(2, 1, 0)
        if progress is not None:
            progress(k1 - k0)
    return x


def istft(sft, y, nb_samples):
    """Inverse of :func:`stft`.

    Parameters
    ----------
    sft : scipy.signal.ShortTimeFFT
    y : np.ndarray [shape=(nb_frames, nb_bins, nb_channels)]
    nb_samples : int
        Length of the signal to return.

    Returns
    -------
    audio : np.ndarray [shape=(nb_samples, nb_channels)]
    """
    return sft.istft(y, k1=nb_samples, f_axis=1, t_axis=0).T


def _peak(x, block_frames=512):
    """max |x| without a full-size temporary."""
    return max(
        (float(np.abs(x[k : k + block_frames]).max()) for k in range(0, len(x), block_frames)),
        default=0.0,
    )


def _to_filter_peak(x, v, alpha, overwrite_input):
    """``(x, v, scale)`` scaled so that ``max|x| = FILTER_PEAK``; None for a silent ``x``."""
    real = np.finfo(x.dtype).dtype
    peak = _peak(x)
    if peak == 0.0:
        return None
    scale = FILTER_PEAK / peak
    if overwrite_input and v.dtype == real:
        xs, vs = x, v
        xs *= real.type(scale)
        vs *= real.type(scale**alpha)
    else:
        xs = np.multiply(x, real.type(scale), dtype=x.dtype)
        vs = np.multiply(v, real.type(scale**alpha), dtype=real)
    return xs, vs, scale


def filter_stft(
    x,
    v,
    *,
    iterations=1,
    use_softmask=True,
    residual=False,
    autoscale=False,
    alpha=1.0,
    workers=None,
    progress=None,
    overwrite_input=False,
):
    """Run ``norbert.wiener`` at the level the filter was designed for.

    The mixture and the source spectrograms are scaled so that
    ``max|x| = FILTER_PEAK`` (``v`` by that factor to the power ``alpha``),
    filtered with the regularisation of float64 (``eps = 2.2e-16``) and the
    result is scaled back: see "Levels" above for why.

    Parameters
    ----------
    x : np.ndarray [shape=(nb_frames, nb_bins, nb_channels)]
        Complex mixture STFT, complex64 or complex128 (the working precision).
    v : np.ndarray [shape=(nb_frames, nb_bins, {1, nb_channels}, nb_sources)]
        Source spectrograms, ``|estimate STFT|^alpha`` on the scale of ``x``.
    iterations : int
        EM iterations of ``norbert.wiener`` (0: softmask only).
    use_softmask : bool
        Initialise with a ratio mask (True) or with ``v`` and the mixture's phase.
    residual : bool
        Append a residual source (``norbert.contrib.residual_model``).
    autoscale : bool
        Let the residual model rescale the sources first.
    alpha : float
        Exponent that ``v`` carries.
    workers : int or None
        Threads for the filter (None: all cores).
    progress : callable or None
        Passed to ``norbert.wiener``: ``progress(completed, total)``.
    overwrite_input : bool
        Scale ``x`` and ``v`` in place instead of copying them (saves a copy
        of each; ``v`` must then already have ``x``'s real dtype). They are
        left scaled.

    Returns
    -------
    y : np.ndarray [shape=(nb_frames, nb_bins, nb_channels, nb_sources (+ 1))]
        Source STFTs on the scale of ``x``, in ``x``'s dtype.
    """
    import norbert

    real = np.finfo(x.dtype).dtype
    nb_sources = v.shape[-1] + bool(residual)
    scaled = _to_filter_peak(x, v, alpha, overwrite_input)
    if scaled is None:  # a silent mixture has silent sources; the filter would only see eps
        return np.zeros(x.shape + (nb_sources,), dtype=x.dtype)
    xs, vs, scale = scaled
    if residual:
        vs = norbert.contrib.residual_model(vs, xs, alpha=alpha, autoscale=autoscale)
    y = norbert.wiener(
        vs, xs, iterations, use_softmask, eps=FILTER_EPS, workers=workers, progress=progress
    )
    y /= real.type(scale)
    return y


#: Frames handed to ``OnlineWiener.process`` at a time by :func:`online_filter_stft`.
ONLINE_BLOCK = 256


def online_filter_stft(
    x,
    v,
    *,
    lookahead=0,
    forget=0.99,
    use_softmask=True,
    residual=False,
    alpha=1.0,
    workers=None,
    block_frames=ONLINE_BLOCK,
    progress=None,
    overwrite_input=False,
):
    """Stream an STFT through ``norbert.OnlineWiener``, at the level of :func:`filter_stft`.

    The mixture and source spectrograms are scaled to ``max|x| = FILTER_PEAK``
    exactly as :func:`filter_stft` does (the peak of a file's STFT is known
    before it is streamed; a live stream would pass ``level=`` its expected
    peak instead, which filters at the same ``x * 10 / level``), then given to
    an ``OnlineWiener`` with ``eps = FILTER_EPS`` in blocks of `block_frames`
    frames; the frames each block completes are collected, ``flush()``
    returns the last `lookahead`, and the result is scaled back.

    Parameters
    ----------
    x, v, use_softmask, residual, alpha, workers, overwrite_input
        As in :func:`filter_stft`. The residual source (without ``autoscale``,
        which needs the whole track) is computed block by block: it is per frame.
    lookahead : int >= 0
        Frames of the future each frame's spatial statistics include.
    forget : float in (0, 1]
        Forgetting factor of the spatial statistics.
    block_frames : int
        Frames per ``process`` call.
    progress : callable or None
        ``progress(n)`` after each block of ``n`` frames given to the stream.

    Returns
    -------
    y : np.ndarray [shape=(nb_frames, nb_bins, nb_channels, nb_sources (+ 1))]
        Source STFTs on the scale of ``x``, in ``x``'s dtype.
    """
    import norbert

    real = np.finfo(x.dtype).dtype
    nb_frames, nb_bins, nb_channels = x.shape
    nb_sources = v.shape[-1] + bool(residual)
    scaled = _to_filter_peak(x, v, alpha, overwrite_input)
    if scaled is None:  # silent mixture: silent sources, as filter_stft
        return np.zeros(x.shape + (nb_sources,), dtype=x.dtype)
    xs, vs, scale = scaled
    stream = norbert.OnlineWiener(
        nb_bins,
        nb_channels,
        nb_sources,
        lookahead=lookahead,
        forget=forget,
        use_softmask=use_softmask,
        eps=FILTER_EPS,
        dtype=x.dtype,
        workers=workers,
    )
    y = np.empty(x.shape + (nb_sources,), dtype=x.dtype)
    done = 0
    for k0 in range(0, nb_frames, block_frames):
        k1 = min(k0 + block_frames, nb_frames)
        vb = vs[k0:k1]
        if residual:
            vb = norbert.contrib.residual_model(vb, xs[k0:k1], alpha=alpha)
        out = stream.process(vb, xs[k0:k1])
        y[done : done + len(out)] = out
        done += len(out)
        if progress is not None:
            progress(k1 - k0)
    y[done:] = stream.flush()
    y /= real.type(scale)
    return y
