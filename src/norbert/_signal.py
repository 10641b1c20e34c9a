"""The signal path ``norbert refine`` and ``norbert demo`` share: STFT, inverse, levels.

Both commands transform with :func:`~norbert.cli.make_stft` and
:func:`~norbert.cli.stft`, filter with :func:`~norbert.cli.filter_stft` and
resynthesise with :func:`~norbert.cli.istft`, so the demo's SDR table
measures what ``refine`` does to files; ``refine --online`` streams the same
transforms with :func:`stft_blocks` and :func:`istft_blocks` (the same frames
and samples, computed as the samples and frames arrive, so that its memory does
not grow with the track). Scripts import these names from
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
    "istft_blocks",
    "make_stft",
    "online_filter_stft",
    "stft",
    "stft_blocks",
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


def stft_blocks(sft, blocks, dtype=np.complex128, nb_samples=None, block_frames=512):
    """The frames of :func:`stft`, computed as the signal's samples arrive.

    Frame ``p`` of ``sft`` covers samples ``p * hop - m_num_mid`` to
    ``p * hop - m_num_mid + n_fft`` (zeros outside the signal); it is computed
    once its last sample has arrived (or the signal has ended), by ``sft.stft``
    itself on the samples held, placed with ``k_offset``, so every frame has
    the bits of the whole-signal :func:`stft`. Only the samples of one block
    of frames (and one window) are held.

    Parameters
    ----------
    sft : scipy.signal.ShortTimeFFT
    blocks : iterable of np.ndarray [shape=(n, nb_channels)]
        The signal's samples in order, in blocks of any lengths.
    dtype : numpy dtype
        Complex dtype of the frames.
    nb_samples : int or None
        Length of the signal: longer input is trimmed, shorter is padded with
        zeros (as a separator's STFT slack). None: the length of the input.
    block_frames : int
        Frames per yielded block.

    Yields
    ------
    x : np.ndarray [shape=(block_frames, nb_bins, nb_channels)]
        The next frames of ``stft(sft, signal, dtype)`` from ``sft.p_min`` on,
        `block_frames` at a time (the last block may be shorter); the blocks
        start at ``sft.p_min + k * block_frames`` whatever the input's blocks,
        so the streams of signals of one length line up.

    Raises
    ------
    ValueError
        If the signal has fewer than ``n_fft - m_num_mid`` samples (half a
        window), which ``sft`` cannot transform.
    """
    window_end = sft.m_num - sft.m_num_mid  # frame p's window ends at p * hop + window_end
    held, start, received = [], 0, 0  # pieces of the samples from `start` on
    p = sft.p_min
    for block in blocks:
        if nb_samples is not None:
            block = block[: max(nb_samples - received, 0)]
        held.append(block)
        received += len(block)
        while (p + block_frames - 1) * sft.hop + window_end <= received:
            held, start, x = _stft_frames(sft, held, start, p, p + block_frames, dtype)
            yield x
            p += block_frames
    p_end = sft.p_max(received if nb_samples is None else nb_samples)
    while p < p_end:  # the frames that reach past the samples received: zeros there
        q = min(p + block_frames, p_end)
        held, start, x = _stft_frames(sft, held, start, p, q, dtype)
        yield x
        p = q


def _stft_frames(sft, held, start, p0, p1, dtype):
    """Frames ``p0 .. p1`` from the samples ``held`` (signal index ``start`` on).

    ``sft.stft(x, p0, p1)`` accepts only frames of ``x``'s own range, so the
    frames are taken from a chunk that starts ``lead`` whole hops before frame
    ``p0``'s window (frame ``lead`` of the chunk is frame ``p0`` of the signal)
    and ends with frame ``p1 - 1``'s window, zeros where the signal has no
    samples: each frame sees the very values of the whole-signal STFT.

    Returns
    -------
    held, start
        The samples still needed (from frame ``p1``'s chunk on).
    x : np.ndarray [shape=(p1 - p0, nb_bins, nb_channels)]
    """
    lead = -(-sft.m_num_mid // sft.hop)  # hops from a window's start to its centre, rounded up
    first = (p0 - lead) * sft.hop  # signal index of the chunk's first sample
    last = (p1 - 1) * sft.hop - sft.m_num_mid + sft.m_num
    samples = held[0] if len(held) == 1 else np.concatenate(held)
    chunk = np.zeros((samples.shape[1], last - first), dtype=samples.dtype)
    lo, hi = max(first, start), min(last, start + len(samples))
    if hi > lo:
        chunk[:, lo - first : hi - first] = samples[lo - start : hi - start].T
    with np.errstate(over="ignore", invalid="ignore"):  # huge samples: inf, for the caller
        x = sft.stft(chunk, lead, lead + p1 - p0).transpose(2, 1, 0).astype(dtype)
    keep = min(max((p1 - lead) * sft.hop, start), start + len(samples))
    return [samples[keep - start :]], keep, x


def istft_blocks(sft, frame_blocks, nb_samples):
    """The samples of :func:`istft`, overlap-added as the frames arrive.

    The inverse of a one-sided ``ShortTimeFFT`` is the sum over frames of each
    frame's inverse FFT (undoing ``sft``'s phase shift) times ``sft.dual_win``,
    placed at the frame's position. The samples before the next frame's
    window are then final: they are yielded, so only one window of partial
    sums is held. Each sample's sum starts from zero and adds the frames in
    order, as ``sft.istft`` does, so the result has the same bits.

    Parameters
    ----------
    sft : scipy.signal.ShortTimeFFT
        A one-sided transform, as :func:`make_stft` makes.
    frame_blocks : iterable of np.ndarray [shape=(n, nb_bins, nb_channels)]
        The frames from ``sft.p_min`` on, in order, in blocks of any sizes.
    nb_samples : int
        Length of the signal to return.

    Yields
    ------
    audio : np.ndarray [shape=(n, nb_channels)]
        The next samples of ``istft(sft, frames, nb_samples)``, float64; they
        add up to `nb_samples` samples when the frames are all of
        ``stft(sft, signal)`` for a signal of that length.
    """
    from scipy import fft

    if sft.fft_mode != "onesided":
        raise ValueError(f"istft_blocks needs a one-sided ShortTimeFFT, not {sft.fft_mode!r}")
    hop, width = sft.hop, sft.m_num
    roll = 0 if sft.phase_shift is None else (sft.phase_shift + sft.m_num_mid) % width
    first = sft.p_min * hop - sft.m_num_mid  # signal index of `partial`'s first sample
    partial = None  # sums of the samples not yet final, (nb_channels, width - hop)
    for y in frame_blocks:
        nb_frames = len(y)
        if nb_frames == 0:
            continue
        sums = np.zeros((y.shape[2], (nb_frames - 1) * hop + width))
        if partial is not None:
            sums[:, : partial.shape[1]] = partial
        # a few frames per inverse FFT: its float64 temporaries stay ~2 MB, not the block's
        step = max(1, (1 << 18) // (y.shape[2] * width))
        for t0 in range(0, nb_frames, step):
            part = y[t0 : t0 + step].transpose(0, 2, 1)
            frames = fft.irfft(part, n=sft.mfft, axis=-1)
            frames = np.roll(frames, roll, axis=-1)[..., :width] * sft.dual_win
            for t, frame in enumerate(frames, start=t0):
                sums[:, t * hop : t * hop + width] += frame
        done = nb_frames * hop  # the next frame starts here: all before it is final
        yield from _within(sums[:, :done], first, nb_samples)
        partial = sums[:, done:]
        first += done
    if partial is not None:
        yield from _within(partial, first, nb_samples)


def _within(sums, first, nb_samples):
    """The samples of ``sums`` (from signal index ``first``) that lie in ``0 .. nb_samples``."""
    lo, hi = max(-first, 0), min(sums.shape[1], nb_samples - first)
    if hi > lo:
        yield sums[:, lo:hi].T


def _peak(x, block_frames=512):
    """max |x| without a full-size temporary."""
    return max(
        (float(np.abs(x[k : k + block_frames]).max()) for k in range(0, len(x), block_frames)),
        default=0.0,
    )


def _to_filter_peak(x, v, alpha, overwrite_input, scale=None):
    """``(x, v, scale)`` scaled so that ``max|x| = FILTER_PEAK``; None for a silent ``x``.

    A given ``scale`` (``FILTER_PEAK`` over the peak of the whole track, of
    which ``x`` is a block) is used instead of ``x``'s own peak.
    """
    real = np.finfo(x.dtype).dtype
    if scale is None:
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


class _OnlineAtPeak:
    """``OnlineWiener`` at the level of :func:`filter_stft`, block by block.

    Each block of the mixture and source spectrograms is scaled by
    ``FILTER_PEAK / peak`` (``v`` to the power ``alpha``) as
    :func:`_to_filter_peak` scales a whole track, the residual source is added
    per frame, and the frames the stream completes are scaled back: the same
    bits as scaling the whole track first. A silent mixture (``peak == 0``)
    gives silent sources, as :func:`filter_stft`.
    """

    def __init__(self, peak, nb_bins, nb_channels, nb_sources, dtype, *, lookahead, forget,
                 use_softmask, residual, alpha, workers):  # fmt: skip
        import norbert

        self.real = np.finfo(dtype).dtype
        self.dtype = np.dtype(dtype)
        self.scale = FILTER_PEAK / peak if peak > 0.0 else None
        self.residual, self.alpha = residual, alpha
        self.shape = (nb_bins, nb_channels, nb_sources + bool(residual))
        self.stream = norbert.OnlineWiener(
            *self.shape,
            lookahead=lookahead,
            forget=forget,
            use_softmask=use_softmask,
            eps=FILTER_EPS,
            dtype=dtype,
            workers=workers,
        )

    def process(self, x, v, overwrite_input=False):
        """Source STFTs of the frames completed by this block of ``x`` and ``v``."""
        import norbert

        if self.scale is None:
            return np.zeros((len(x), *self.shape), dtype=self.dtype)
        xs, vs, _ = _to_filter_peak(x, v, self.alpha, overwrite_input, self.scale)
        if self.residual:
            vs = norbert.contrib.residual_model(vs, xs, alpha=self.alpha)
        y = self.stream.process(vs, xs)
        y /= self.real.type(self.scale)
        return y

    def flush(self):
        """Source STFTs of the frames still held."""
        if self.scale is None:
            return np.zeros((0, *self.shape), dtype=self.dtype)
        y = self.stream.flush()
        y /= self.real.type(self.scale)
        return y


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
    nb_frames, nb_bins, nb_channels = x.shape
    stream = _OnlineAtPeak(
        _peak(x),
        nb_bins,
        nb_channels,
        v.shape[-1],
        x.dtype,
        lookahead=lookahead,
        forget=forget,
        use_softmask=use_softmask,
        residual=residual,
        alpha=alpha,
        workers=workers,
    )
    y = np.empty((*x.shape, stream.shape[-1]), dtype=x.dtype)
    done = 0
    for k0 in range(0, nb_frames, block_frames):
        k1 = min(k0 + block_frames, nb_frames)
        out = stream.process(x[k0:k1], v[k0:k1], overwrite_input)
        y[done : done + len(out)] = out
        done += len(out)
        if progress is not None:
            progress(k1 - k0)
    y[done:] = stream.flush()
    return y
