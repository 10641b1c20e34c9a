"""Block loops over frames: the one place that calls the EM kernels.

An EM run with K iterations makes K + 1 passes over the track, each over blocks of frames:

    stats(initial estimate)  ->  R_1          (P: PSDs of the initial estimate)
    stats(filter with P, R_k) -> R_{k+1}      (K - 1 times; P updated in place)
    filter(P, R_K) -> y                       (written once, into the output)

so between iterations only the PSDs P (one real per TF point and source) and the per-bin
R live in memory; the output is written once. Blocks keep every temporary (dtype/layout
conversion of a strided or byte-swapped input, per-thread scratch) O(block), let Python
check for Ctrl-C between blocks, and drive progress reporting. The same functions serve
the Dask driver, chunk by chunk.
"""

import numpy as np

from norbert._core import Estimate, Status, _filter, _stats
from norbert._core._common import scratch_size
from norbert._core._mask import SLOPE
from norbert._validation import ParameterError, raise_for_status

__all__ = ["EMState", "block_slices", "contiguous_block", "default_frames_per_block"]

# Target bytes of output per block: large enough that a block's parallel region costs
# nothing, small enough that converted input blocks stay in cache-friendly sizes.
_BLOCK_BYTES = 8 << 20


def default_frames_per_block(nb_bins, nb_channels, nb_sources, itemsize):
    per_frame = max(1, nb_bins * nb_channels * nb_sources * itemsize)
    return max(1, _BLOCK_BYTES // per_frame)


def check_frames_per_block(frames_per_block, nb_bins, nb_channels, nb_sources, itemsize):
    if frames_per_block is None:
        return default_frames_per_block(nb_bins, nb_channels, nb_sources, itemsize)
    if isinstance(frames_per_block, bool) or not isinstance(frames_per_block, (int, np.integer)):
        raise TypeError(f"frames_per_block must be None or a positive integer, got {frames_per_block!r}")
    if frames_per_block < 1:
        raise ParameterError(f"frames_per_block must be >= 1, got {frames_per_block}")
    return int(frames_per_block)


def block_slices(nb_frames, frames_per_block):
    for t0 in range(0, nb_frames, frames_per_block):
        yield slice(t0, min(t0 + frames_per_block, nb_frames))


def contiguous_block(a, sl, dtype):
    """a[sl] as a C-contiguous native array of dtype: a view when it already is one."""
    return np.ascontiguousarray(a[sl], dtype=dtype)


def make_work(n_threads, nb_channels, nb_sources):
    """Per-thread scratch rows for the kernels (one row per thread)."""
    return np.empty((max(1, n_threads), scratch_size(nb_channels, nb_sources)), dtype=np.float64)


def covariance_to_user(R, dtype):
    """(bins, J, C, C, 2) doubles -> (bins, C, C, J) complex of dtype."""
    return np.ascontiguousarray(
        R.view(np.complex128)[..., 0].transpose(0, 2, 3, 1), dtype=dtype
    )


class _Progress:
    def __init__(self, callback, total):
        self.callback = callback
        self.total = total
        self.done = 0

    def advance(self, n):
        self.done += n
        if self.callback is not None:
            self.callback(self.done, self.total)


class EMState:
    """Everything one EM run keeps between passes: PSDs P, R sums, R, scratch.

    Parameters
    ----------
    x : np.ndarray [shape=(nb_frames, nb_bins, nb_channels)], complex
    nb_sources : int
    cdtype : complex dtype the run computes in (x's precision)
    eps : float
    n_threads : int
    frames_per_block : int
    P : np.ndarray [shape=(nb_frames, nb_bins, nb_sources)] or None
        storage for the PSDs (allocated when None).
    """

    def __init__(self, x, nb_sources, cdtype, eps, n_threads, frames_per_block,
                 progress=None, total_passes=1, P=None):
        T, F, C = x.shape
        self.x = x
        self.cdtype = np.dtype(cdtype)
        self.rdtype = np.empty(0, self.cdtype).real.dtype
        self.eps = float(eps)
        self.n_threads = n_threads
        self.fpb = frames_per_block
        self.J = nb_sources
        self.P = np.empty((T, F, nb_sources), self.rdtype) if P is None else P
        self.Rnum = np.zeros((F, nb_sources, C, C, 2))
        self.weight = np.zeros((F, nb_sources))
        self.R = np.zeros((F, nb_sources, C, C, 2))
        self.work = make_work(n_threads, C, nb_sources)
        self._no_v = np.empty((0, 0, 0, 0), self.rdtype)
        self._no_y = np.empty((0, 0, 0, 0), self.cdtype)
        self.progress = _Progress(progress, total_passes * T)

    # -- passes ------------------------------------------------------------------------
    def statistics(self, mode, scale, v=None, y=None, logit=-1.0, func="wiener"):
        """One statistics pass; leaves R (and P) describing the estimate of `mode`."""
        self.Rnum.fill(0.0)
        self.weight.fill(0.0)
        for sl in block_slices(self.x.shape[0], self.fpb):
            xb = contiguous_block(self.x, sl, self.cdtype)
            vb = self._no_v if v is None else contiguous_block(v, sl, self.rdtype)
            yb = self._no_y if y is None else contiguous_block(y, sl, self.cdtype)
            status = _stats.accumulate(
                mode, xb, vb, yb, self.P[sl], self.R, scale, self.eps, logit, SLOPE,
                self.Rnum, self.weight, self.work, self.n_threads,
            )
            self._check(status, func, v, y)
            self.progress.advance(sl.stop - sl.start)
        status = _stats.finalize_covariance(self.Rnum, self.weight, self.eps, self.R)
        self._check(status, func, v, y)

    def filter(self, mode, scale, out, out_scale=1.0, v=None, logit=-1.0, func="wiener"):
        """One filter pass writing source images into out (frames, bins, C, J)."""
        for sl in block_slices(self.x.shape[0], self.fpb):
            xb = contiguous_block(self.x, sl, self.cdtype)
            vb = self._no_v if v is None else contiguous_block(v, sl, self.rdtype)
            Pb = self.P[sl] if mode == Estimate.MODEL else self._no_P
            status = _filter.apply_estimate(
                mode, xb, vb, Pb, self.R, scale, self.eps, logit, SLOPE, out_scale,
                out[sl], self.work, self.n_threads,
            )
            self._check(status, func, v, None)
            self.progress.advance(sl.stop - sl.start)

    @property
    def _no_P(self):
        return np.empty((0, 0, 0), self.rdtype)

    def _check(self, status, func, v, y):
        if status != Status.OK:
            raise_for_status(
                status, func, [("x", self.x, False), ("v", v, True), ("y", y, False)]
            )

    def covariance(self):
        """R as documented: (nb_bins, nb_channels, nb_channels, nb_sources), x's precision."""
        return covariance_to_user(self.R, self.cdtype)


def psd_in_output(out):
    """PSD storage (frames, bins, J) inside the output array (frames, bins, C, J).

    Until the last pass writes y, each TF point's slot of the output (2 C J reals) is free;
    its first J reals hold that point's PSDs. Every pass reads a point's PSDs before it
    writes that point's slot, and no pass writes another point's slot, so the EM of
    `wiener` needs no full-size array but its output (and an `out=` memmap keeps the
    anonymous memory of a call O(block)).
    """
    T, F, C, J = out.shape
    rdtype = out.real.dtype
    return out.view(rdtype).reshape(T, F, 2 * C * J)[:, :, :J]


def run_em(x, cdtype, iterations, eps, n_threads, frames_per_block, out, init_mode,
           v=None, y=None, scale=1.0, logit=-1.0, progress=None, func="wiener", P=None):
    """iterations >= 1 EM rounds from an initial estimate; writes y into out.

    The initial estimate is `init_mode` (GIVEN: y; SOFTMASK/PHASE: from v and x), computed
    on x * scale; the result is multiplied by 1 / scale. P: PSD storage (default: a new
    array; `psd_in_output(out)` when the caller does not need the PSDs).
    Returns the EMState (its P and R are the last parameter estimate).
    """
    state = EMState(x, out.shape[3], cdtype, eps, n_threads, frames_per_block,
                    progress=progress, total_passes=iterations + 1, P=P)
    state.statistics(init_mode, scale, v=v, y=y, logit=logit, func=func)
    for _ in range(iterations - 1):
        state.statistics(Estimate.MODEL, scale, func=func)
    state.filter(Estimate.MODEL, scale, out, out_scale=1.0 / scale, func=func)
    return state
