"""OnlineWiener: the multichannel Wiener filter on a stream, frame by frame.

The pass diagram of one ``process`` call with lookahead L (kernel: _core/_online.pyx)::

    frames t0 .. t0+n-1 ──► checked (x, v finite, v >= 0) ── refused: state unchanged
                              │
             per bin, frames in order (threads own ranges of bins)
                              │
       y0(t) initial estimate ─► P(t), Rnum <- forget Rnum + y0 y0^H, weight <- forget weight + P
                              │    x(t), P(t) kept in a ring of L + 1 frames
       frame s = t - L  ◄─────┘    R = Rnum / (eps + weight) now; y(s) = P(s) R Cxx^-1 x(s)
                              │
                   returned: the frames that frame t0+n-1 completed
"""

import numbers

import numpy as np

from norbert._core import Estimate, Status, _online
from norbert._validation import (
    ParameterError,
    check_mixture,
    check_positive_int,
    check_spectrograms,
    raise_for_status,
    real_dtype,
    resolve_eps,
    resolve_workers,
)

__all__ = ["OnlineWiener"]


def _check_forget(forget):
    if isinstance(forget, bool) or not isinstance(forget, numbers.Real):
        raise TypeError(f"forget must be a real number in (0, 1], got {forget!r}")
    forget = float(forget)
    if not 0.0 < forget <= 1.0:
        raise ParameterError(f"forget must be in (0, 1], got {forget!r}")
    return forget


def _check_lookahead(lookahead):
    if isinstance(lookahead, bool) or not isinstance(lookahead, (int, np.integer)):
        raise TypeError(f"lookahead must be a non-negative integer, got {lookahead!r}")
    if lookahead < 0:
        raise ParameterError(f"lookahead must be >= 0, got {lookahead}")
    return int(lookahead)


def _check_level(level):
    if level is None:
        return None
    if isinstance(level, bool) or not isinstance(level, numbers.Real):
        raise TypeError(f"level must be None or a positive real number, got {level!r}")
    level = float(level)
    if not (np.isfinite(level) and level > 0.0):
        raise ParameterError(f"level must be None or finite and > 0, got {level!r}")
    return level


def _check_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be np.complex64 or np.complex128, got {dtype!r}") from None
    if dtype not in (np.complex64, np.complex128):
        raise TypeError(f"dtype must be np.complex64 or np.complex128, got {dtype}")
    return dtype


class OnlineWiener:
    """Causal multichannel Wiener filter with a bounded lookahead, for streams of frames.

    The online counterpart of ``wiener(v, x, iterations=1)``: frames arrive in blocks of
    any size, and frame ``t`` is returned as soon as frame ``t + lookahead`` has been
    given, so the latency is ``lookahead`` hops (plus the STFT's own). Per frequency bin
    f and source j, with frames in order:

    - ``y0_j(t)``: the initial estimate, the soft mask :func:`softmask` of ``v(t)`` on
      ``x(t)`` (or ``v_j(t) exp(i angle(x(t)))`` when `use_softmask` is False), as
      :func:`wiener` computes it;
    - ``P_j(t) = mean_c |y0_j(t)_c|^2``, the PSD of that estimate;
    - ``Rnum_j <- forget * Rnum_j + y0_j(t) y0_j(t)^H`` and
      ``weight_j <- forget * weight_j + P_j(t)``, sums with exponential forgetting (kept
      in double precision);
    - frame ``t`` is filtered once frames ``0 .. t + lookahead`` have been accumulated,
      with ``R_j = Rnum_j / (eps + weight_j)`` at that moment and its own PSDs:
      ``y_j(t) = P_j(t) R_j (sum_k P_k(t) R_k + sqrt(eps) I)^-1 x(t)``; with one
      channel eps is added once more to the 1x1 ``Cxx``, as in :func:`wiener`.

    With ``forget=1`` and ``lookahead >= nb_frames`` (every frame then comes out of
    :meth:`flush`) the result is ``wiener(v, x, iterations=1, use_softmask=...)`` for
    mixtures with ``max|x| <= 10``, or for any mixture with ``level=max|x|``.
    ``forget`` sets the memory of the spatial statistics: about ``1 / (1 - forget)``
    frames (0.99 at a hop of 1024 samples and 44.1 kHz: 2.3 s).

    Parameters
    ----------
    nb_bins, nb_channels, nb_sources : int
        the shape of every frame of the stream (>= 1).
    lookahead : int >= 0, keyword-only
        frames of the future each frame's spatial statistics include.
    forget : float in (0, 1], keyword-only
        forgetting factor of the spatial statistics (1: remember every frame).
    use_softmask : bool, keyword-only
        initial estimate: soft mask (True) or spectrogram with the mixture's phase.
    eps : float or None, keyword-only
        regularisation, as in :func:`wiener` (None: machine epsilon of dtype's real type).
    dtype : np.complex64 or np.complex128, keyword-only
        precision of the stream: inputs are converted to it, outputs have it.
    level : float or None, keyword-only
        the expected peak ``|x|`` of the stream: it is filtered at ``x * 10 / level`` and
        the output scaled back, so that the absolute regularisation ``sqrt(eps) I`` weighs
        as it does in :func:`wiener` at its design level (peak 10), for loud and quiet
        streams alike (``norbert refine`` does the same with files). For ``level >= 10``
        this is what :func:`wiener` does to a track of that peak. None: no rescaling,
        which is :func:`wiener`'s behaviour for ``max|x| <= 10``.
    workers : int or None, keyword-only
        threads, as in :func:`wiener`; a frame of a few thousand bins runs on one thread
        (waking threads costs more than it saves), blocks of many frames use several.

    Attributes
    ----------
    frames_in, frames_out : int
        frames given to :meth:`process` and frames returned since the stream started.
    held : int
        frames given but not returned yet (at most `lookahead`).

    Raises
    ------
    TypeError, ValueError
        on bad shapes, dtypes or parameter values.

    Notes
    -----
    The state is bounded: the per-bin sums (``nb_bins * nb_sources * nb_channels^2``
    doubles) and a ring of ``lookahead + 1`` frames of ``x`` and ``P``. A block that is
    refused (wrong shape, NaN, negative ``v``) leaves the stream unchanged; only an
    overflow of finite inputs too large for the precision, found while computing, leaves a
    stream that must be :meth:`reset`. Separate instances may run in separate threads; one
    instance is not thread-safe.

    Examples
    --------
    >>> import numpy as np, norbert
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((50, 33, 2)) + 1j * rng.standard_normal((50, 33, 2))
    >>> v = rng.random((50, 33, 1, 3))
    >>> stream = norbert.OnlineWiener(33, 2, 3, lookahead=2, dtype=np.complex128)
    >>> first = stream.process(v[:10], x[:10])
    >>> first.shape
    (8, 33, 2, 3)
    >>> rest = stream.process(v[10:], x[10:])
    >>> y = np.concatenate([first, rest, stream.flush()])
    >>> y.shape
    (50, 33, 2, 3)
    """

    def __init__(
        self,
        nb_bins,
        nb_channels,
        nb_sources,
        *,
        lookahead=0,
        forget=0.99,
        use_softmask=True,
        eps=None,
        dtype=np.complex64,
        level=None,
        workers=None,
    ):
        self.nb_bins = check_positive_int(nb_bins, "nb_bins", allow_none=False)
        self.nb_channels = check_positive_int(nb_channels, "nb_channels", allow_none=False)
        self.nb_sources = check_positive_int(nb_sources, "nb_sources", allow_none=False)
        self.lookahead = _check_lookahead(lookahead)
        self.forget = _check_forget(forget)
        self.use_softmask = bool(use_softmask)
        self.dtype = _check_dtype(dtype)
        self._rdtype = real_dtype(self.dtype)
        self.eps = resolve_eps(eps, self._rdtype)
        self.level = _check_level(level)
        self._n_threads = resolve_workers(workers)
        self._scale = 10.0 / self.level if self.level is not None else 1.0
        self._mode = int(Estimate.SOFTMASK if self.use_softmask else Estimate.PHASE)
        F, C, J, L = self.nb_bins, self.nb_channels, self.nb_sources, self.lookahead
        tiled = _online.tiled_state(F, C, J)
        if tiled is None:
            self._Rnum = np.zeros((F, J, C, C, 2))
            self._weight = np.zeros((F, J))
            self._process, self._filter = _online.process, _online.filter_frame
        else:
            # from 3 channels the sums are kept as the tile kernels read them (no copies)
            self._Rnum = np.zeros(tiled[0])
            self._weight = np.zeros(tiled[1])
            self._process, self._filter = _online.process_tiled, _online.filter_tiled
        self._x_ring = np.zeros((L + 1, F, C), self.dtype)
        self._P_ring = np.zeros((L + 1, F, J), self._rdtype)
        self._work = np.empty((self._n_threads, _online.work_columns(C, J)))
        self.frames_in = 0
        self.frames_out = 0

    def __repr__(self):
        return (
            f"OnlineWiener(nb_bins={self.nb_bins}, nb_channels={self.nb_channels}, "
            f"nb_sources={self.nb_sources}, lookahead={self.lookahead}, forget={self.forget}, "
            f"use_softmask={self.use_softmask}, eps={self.eps}, dtype={self.dtype.name}, "
            f"level={self.level}) at frame {self.frames_in}"
        )

    @property
    def held(self):
        return self.frames_in - self.frames_out

    def _check_block(self, v, x):
        x, _ = check_mixture(x)
        if x.dtype.kind != "c":
            raise TypeError(f"x must be complex (an STFT), got real dtype {x.dtype}")
        F, C, J = self.nb_bins, self.nb_channels, self.nb_sources
        if x.shape[1:] != (F, C):
            raise ParameterError(
                f"x must have this stream's nb_bins={F} and nb_channels={C} on axes 1 and 2, "
                f"got shape {x.shape}"
            )
        v = check_spectrograms(v, x)
        if v.shape[3] != J:
            raise ParameterError(
                f"v must have this stream's nb_sources={J} on axis 3, got shape {v.shape}"
            )
        return (np.ascontiguousarray(v, self._rdtype), np.ascontiguousarray(x, self.dtype))

    def process(self, v, x):
        """Take the next frames of the stream; return the frames they complete.

        Parameters
        ----------
        v : np.ndarray [shape=(n, nb_bins, {1, nb_channels}, nb_sources)]
            spectrograms of the sources for the next n frames (non-negative, real).
        x : np.ndarray [complex, shape=(n, nb_bins, nb_channels)]
            the next n frames of the mixture STFT.

        Returns
        -------
        y : np.ndarray [shape=(m, nb_bins, nb_channels, nb_sources)]
            source images of the frames now complete, in order: frame t comes out of the
            call that gives frame ``t + lookahead``. m may be 0.

        Raises
        ------
        TypeError, ValueError
            on shapes that do not fit this stream, real x, NaN or inf in x or v, negative
            v. The stream is then unchanged.
        """
        v, x = self._check_block(v, x)
        n, F, C = x.shape
        J, L = self.nb_sources, self.lookahead
        m = max(0, self.frames_in + n - L - self.frames_out)
        y = np.empty((m, F, C, J), self.dtype)
        status = self._process(
            self._mode,
            x,
            v,
            self._scale,
            self.eps,
            self.forget,
            1.0 / self._scale,
            self.frames_in,
            self.frames_out,
            self._x_ring,
            self._P_ring,
            self._Rnum,
            self._weight,
            y,
            self._work,
            self._n_threads,
        )
        if status != Status.OK:
            # the kernel checked the inputs before touching the state
            raise_for_status(status, "OnlineWiener.process", [("x", x, False), ("v", v, True)])
        self.frames_in += n
        self.frames_out += m
        return y

    def flush(self):
        """Return the frames still held, filtered with the statistics of every frame given.

        The stream goes on: the statistics are kept, and a later :meth:`process` continues
        it (the flushed frames are not returned again).

        Returns
        -------
        y : np.ndarray [shape=(held, nb_bins, nb_channels, nb_sources)]
        """
        F, C, J, L1 = self.nb_bins, self.nb_channels, self.nb_sources, self.lookahead + 1
        y = np.empty((self.held, F, C, J), self.dtype)
        for i, s in enumerate(range(self.frames_out, self.frames_in)):
            status = self._filter(
                self._x_ring[s % L1],
                self._P_ring[s % L1],
                self._Rnum,
                self._weight,
                self._scale,
                self.eps,
                1.0 / self._scale,
                y[i],
                self._work,
                self._n_threads,
            )
            raise_for_status(status, "OnlineWiener.flush")
        self.frames_out = self.frames_in
        return y

    def reset(self):
        """Start a new stream: forget the statistics and drop the frames held."""
        self._Rnum[...] = 0.0
        self._weight[...] = 0.0
        self._x_ring[...] = 0.0
        self._P_ring[...] = 0.0
        self.frames_in = 0
        self.frames_out = 0
