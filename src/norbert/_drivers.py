"""Block loops over frames: the one place that calls the EM kernels.

An EM run with K iterations makes K + 1 passes over the track, each over blocks of frames:

    stats(initial estimate)  ->  R_1          (P: PSDs of the initial estimate)
    stats(filter with P, R_k) -> R_{k+1}      (K - 1 times; P updated in place)
    filter(P, R_K) -> y                       (written once, into the output)

so between iterations only the PSDs P (one real per TF point and source) and the per-bin
R live in memory; the output is written once. Inputs the kernels can read in place go to
them a segment of many blocks per call, one parallel region per call (see
EMState._segments); others are converted block by block, which keeps every temporary
O(block). Between calls Python checks for Ctrl-C and reports progress. The same functions
serve the Dask driver, chunk by chunk.
"""

import numpy as np

from norbert._core import Estimate, Status, _filter, _stats
from norbert._core._common import scratch_size
from norbert._core._mask import SLOPE
from norbert._validation import allocate, check_positive_int, raise_for_status, real_dtype

__all__ = ["EMState", "contiguous_block", "default_frames_per_block"]

# Target bytes of output per block: large enough that a block's parallel region costs
# nothing, small enough that converted input blocks stay in cache-friendly sizes.
_BLOCK_BYTES = 8 << 20

# Output bytes per kernel call when inputs need no conversion: each call is one parallel
# region (see _segments); between calls Python checks for Ctrl-C and reports progress.
SEGMENT_BYTES = 256 << 20

# How many blocks threads may drift apart in a filter pass that overwrites PSDs (see
# _safe_frames): the slack a running thread has while another one is descheduled.
MAX_LEAD = 8


def default_frames_per_block(nb_bins, nb_channels, nb_sources, itemsize):
    per_frame = max(1, nb_bins * nb_channels * nb_sources * itemsize)
    return max(1, _BLOCK_BYTES // per_frame)


def check_frames_per_block(frames_per_block, nb_bins, nb_channels, nb_sources, itemsize):
    frames_per_block = check_positive_int(frames_per_block, "frames_per_block")
    if frames_per_block is None:
        return default_frames_per_block(nb_bins, nb_channels, nb_sources, itemsize)
    return frames_per_block


def contiguous_block(a, sl, dtype):
    """a[sl] as a C-contiguous native array of dtype: a view when it already is one."""
    return np.ascontiguousarray(a[sl], dtype=dtype)


def psd_storage(nb_frames, nb_bins, nb_sources, rdtype, buffer=None):
    """PSDs P as a (frames, bins, J) view of storage laid out (frames, J, bins).

    The kernels read and write that layout in place, one contiguous row of bins per
    source (no gathers, and half the memory traffic of PSDs interleaved by source).
    `buffer`: a 1-D array of at least frames * J * bins reals to hold it (default: new).
    """
    size = nb_frames * nb_sources * nb_bins
    if buffer is None:
        buffer = np.empty(size, rdtype)
    return buffer[:size].reshape(nb_frames, nb_sources, nb_bins).transpose(0, 2, 1)


def psd_to_user(P):
    """The PSDs in the documented (frames, bins, J) C-contiguous layout, in place.

    A frame's PSDs take the same bytes in both layouts, so the storage is transposed frame
    block by frame block through an O(block) copy, and no second full-size array is made.
    """
    T, F, J = P.shape
    if J == 1 or P.flags.c_contiguous:
        return np.ascontiguousarray(P)
    storage = P.transpose(0, 2, 1)             # (T, J, F) C-contiguous
    flat = storage.reshape(T, J * F)
    step = max(1, (4 << 20) // max(1, J * F * P.itemsize))
    for t0 in range(0, T, step):
        block = storage[t0:t0 + step].copy()
        flat[t0:t0 + step] = block.transpose(0, 2, 1).reshape(block.shape[0], J * F)
    return flat.reshape(T, F, J)


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
    filter_only : bool
        the state only serves SOFTMASK or PHASE filter passes, which read neither PSDs nor
        R: neither is allocated (and P is ignored).
    offset : (int, int)
        (frame, bin) of x[0, 0] in the whole track, added to the index that errors report
        (the Dask driver runs one EMState per chunk).
    """

    def __init__(self, x, nb_sources, cdtype, eps, n_threads, frames_per_block,
                 progress=None, total_passes=1, P=None, filter_only=False, offset=(0, 0)):
        T, F, C = x.shape
        self.x = x
        self.cdtype = np.dtype(cdtype)
        self.rdtype = real_dtype(self.cdtype)
        self.eps = float(eps)
        self.n_threads = n_threads
        self.fpb = frames_per_block
        self.J = nb_sources
        self.offset = offset
        if filter_only:
            P = np.empty((0, 0, 0), self.rdtype)
        elif P is None:
            buffer = allocate((T * nb_sources * F,), self.rdtype, "the PSDs", n_threads)
            P = psd_storage(T, F, nb_sources, self.rdtype, buffer)
        self.P = P
        # the filter kernel checks R's shape only in MODEL mode, so 0 bins do there
        R_bins = 0 if filter_only else F
        self.Rnum = np.zeros((R_bins, nb_sources, C, C, 2))
        self.weight = np.zeros((R_bins, nb_sources))
        self.R = np.zeros((R_bins, nb_sources, C, C, 2))
        self.work = make_work(n_threads, C, nb_sources)
        self._no_v = np.empty((0, 0, 0, 0), self.rdtype)
        self._no_y = np.empty((0, 0, 0, 0), self.cdtype)
        self.progress = _Progress(progress, total_passes * T)

    # the run's _steer.Steering (given R, mu, the monitor sums), set by run_em; None: none
    steer = None

    def _steer_args(self, mode):
        return {} if self.steer is None else self.steer.kernel_args(mode)

    # -- passes ------------------------------------------------------------------------
    def _segments(self, *inputs):
        """Frame ranges for the kernel calls of one pass, and whether they are views.

        Inputs that the kernels can read in place (C-contiguous, native, of the run's
        dtype) go to the kernels a segment of many blocks at a time: each call is one
        parallel region in which threads take (block, range of bins) items, so a thread
        descheduled by a busy machine delays a pass once, not once per block. Segments
        end every SEGMENT_BYTES of output to keep Ctrl-C and progress responsive.
        Other inputs are converted one block at a time (O(block) temporaries).
        """
        T = self.x.shape[0]
        step = self.fpb
        if all(a is None or _kernel_ready(a, dt) for a, dt in inputs):
            per_frame = max(1, self.x.shape[1] * self.x.shape[2] * self.J * self.cdtype.itemsize)
            step = self.fpb * max(1, SEGMENT_BYTES // (per_frame * self.fpb))
        return [slice(t0, min(t0 + step, T)) for t0 in range(0, T, step)]

    def statistics(self, mode, scale, v=None, y=None, logit=-1.0, func="wiener"):
        """One statistics pass; leaves R (and P) describing the estimate of `mode`."""
        self.Rnum.fill(0.0)
        self.weight.fill(0.0)
        segments = self._segments(
            (self.x, self.cdtype), (v, self.rdtype), (y, self.cdtype)
        )
        for sl in segments:
            xb = contiguous_block(self.x, sl, self.cdtype)
            vb = self._no_v if v is None else contiguous_block(v, sl, self.rdtype)
            yb = self._no_y if y is None else contiguous_block(y, sl, self.cdtype)
            status = _stats.accumulate(
                mode, xb, vb, yb, self.P[sl], self.R, scale, self.eps, logit, SLOPE,
                self.Rnum, self.weight, self.work, self.n_threads, self.fpb,
                **self._steer_args(mode),
            )
            self._check(status, func, v, y)
            self.progress.advance(sl.stop - sl.start)
        status = _stats.finalize_covariance(self.Rnum, self.weight, self.eps, self.R)
        self._check(status, func, v, y)

    def filter(self, mode, scale, out, out_scale=1.0, v=None, logit=-1.0, func="wiener"):
        """One filter pass writing source images into out (frames, bins, C, J).

        When the PSDs live inside `out` (psd_in_output), writing y overwrites the PSDs of
        later frames near the end of the track: the frames from `_safe_frames` on are
        filtered from a copy of their PSDs (a few blocks), taken before any y is written,
        and threads keep within MAX_LEAD blocks of each other before them.
        """
        T = self.x.shape[0]
        t_copy = T
        tail = self.P
        if mode == Estimate.MODEL:
            t_copy = _safe_frames(out, self.P, self.fpb, MAX_LEAD)
            if t_copy < T:
                tail = psd_storage(T - t_copy, *self.P.shape[1:], self.P.dtype)
                tail[...] = self.P[t_copy:]
        lead = MAX_LEAD if t_copy < T else 0
        for sl in self._segments((self.x, self.cdtype), (v, self.rdtype)):
            # (frames, their PSD storage, its first frame, lead bound)
            for part, P, P0, bound in ((slice(sl.start, min(sl.stop, t_copy)), self.P, 0, lead),
                                       (slice(max(sl.start, t_copy), sl.stop), tail, t_copy, 0)):
                if part.start >= part.stop:
                    continue
                xb = contiguous_block(self.x, part, self.cdtype)
                vb = self._no_v if v is None else contiguous_block(v, part, self.rdtype)
                Pb = P[part.start - P0:part.stop - P0] if mode == Estimate.MODEL else self._no_P
                status = _filter.apply_estimate(
                    mode, xb, vb, Pb, self.R, scale, self.eps, logit, SLOPE, out_scale,
                    out[part], self.work, self.n_threads, self.fpb, bound,
                    **self._steer_args(mode),
                )
                self._check(status, func, v, None)
            self.progress.advance(sl.stop - sl.start)

    @property
    def _no_P(self):
        return np.empty((0, 0, 0), self.rdtype)

    def _check(self, status, func, v, y):
        if status != Status.OK:
            raise_for_status(
                status, func, [("x", self.x, False), ("v", v, True), ("y", y, False)],
                offset=self.offset,
            )

    def covariance(self):
        """R as documented: (nb_bins, nb_channels, nb_channels, nb_sources), x's precision."""
        return covariance_to_user(self.R, self.cdtype)


def psd_in_output(out):
    """PSD storage (frames, bins, J) inside the output array (frames, bins, C, J).

    The PSDs (J reals per TF point) take the last 1 / (2 C) of the output (2 C J reals per
    TF point), laid out as psd_storage. Until the last pass, nothing else is written to
    the output; the last pass writes y frame block by frame block, front to back, and
    reaches the PSD region only near the end of the track (see EMState.filter). So the EM
    of `wiener` needs no full-size array but its output (and an `out=` memmap keeps the
    anonymous memory of a call O(block)). `out` must be C-contiguous.
    """
    T, F, C, J = out.shape
    flat = out.view(out.real.dtype).reshape(-1)
    return psd_storage(T, F, J, flat.dtype, flat[flat.size - T * J * F:])


def _kernel_ready(a, dtype):
    """Whether the kernels can read `a` as it is (no copy): C-contiguous, native dtype."""
    return a.dtype == dtype and a.flags.c_contiguous


def _safe_frames(out, P, frames_per_block, max_lead):
    """First frame whose PSDs the filter pass must read from a copy (len(P): none).

    Writing y for frames [0, t) with threads up to `max_lead` blocks apart must not reach
    the PSD storage of any frame from t - (max_lead + 1) blocks on, which may still be
    unread. Outside `out`, PSDs are never overwritten.
    """
    T = len(P)
    if P.size == 0 or out.size == 0:
        return T
    y0, p0 = out.ctypes.data, P.ctypes.data
    p_end = p0 + T * P.strides[0]
    if p_end <= y0 or y0 + T * out.strides[0] <= p0:
        return T
    behind = (max_lead + 1) * frames_per_block

    def overwrites(t):
        return y0 + t * out.strides[0] > p0 + max(0, t - behind) * P.strides[0]

    # y advances faster through memory than the PSDs it chases (2 C reals a TF point
    # against one), so `overwrites` is monotone in t: bisect for the largest safe t.
    lo, hi = 0, T
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if overwrites(mid):
            hi = mid - 1
        else:
            lo = mid
    return lo


def run_em(x, cdtype, iterations, eps, n_threads, frames_per_block, out, init_mode,
           v=None, y=None, scale=1.0, logit=-1.0, progress=None, func="wiener", P=None,
           steer=None):
    """iterations >= 1 EM rounds from an initial estimate; writes y into out.

    The initial estimate is `init_mode` (GIVEN: y; SOFTMASK/PHASE: from v and x), computed
    on x * scale; the result is multiplied by 1 / scale. P: PSD storage (default: a new
    array; `psd_in_output(out)` when the caller does not need the PSDs). steer: the
    _steer.Steering of the call, or None. With its tol, the EM ends after the iteration
    that follows the first one whose log-likelihood barely moved: the statistics of that
    iteration's images are taken in the pass that measures it, so the next filter is the
    cheapest last one.
    Returns the EMState (its P and R are the last parameter estimate).
    """
    state = EMState(x, out.shape[3], cdtype, eps, n_threads, frames_per_block,
                    progress=progress, total_passes=iterations + 1, P=P)
    state.steer = steer
    state.statistics(init_mode, scale, v=v, y=y, logit=logit, func=func)
    if steer is not None:
        steer.start(state)
    last = iterations
    for k in range(1, iterations):
        state.statistics(Estimate.MODEL, scale, func=func)
        if steer is not None and steer.iteration_done(state, k, scale):
            last = k + 1
            state.progress.total = (last + 1) * x.shape[0]
            break
    state.filter(Estimate.MODEL, scale, out, out_scale=1.0 / scale, func=func)
    if steer is not None:
        steer.iteration_done(state, last, scale)
    return state
