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
from norbert._core._stats import MAX_ELEMENTS
from norbert._validation import (
    PrecisionOverflow,
    allocate,
    check_positive_int,
    raise_for_status,
    real_dtype,
)

__all__ = ["EMState", "contiguous_block", "default_frames_per_block", "mixture_scales"]

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

    A batch of E independent problems (x with leading axes) runs in the same passes: each
    kernel call covers one element's frames, or several whole elements at once (one
    parallel region over elements x bins), and every element keeps its own sums, R and
    scales, so its results are bitwise those of a run on it alone.

    Parameters
    ----------
    x : np.ndarray [shape=(..., nb_frames, nb_bins, nb_channels)], complex
    nb_sources : int
    cdtype : complex dtype the run computes in (x's precision)
    eps : float
    n_threads : int
    frames_per_block : int
    P : np.ndarray [shape=(E * nb_frames, nb_bins, nb_sources)] or None
        storage for the PSDs, elements one after the other (allocated when None).
    filter_only : bool
        the state only serves SOFTMASK or PHASE filter passes, which read neither PSDs nor
        R: neither is allocated (and P is ignored).
    offset : (int, int)
        (frame, bin) of x[0, 0] in the whole track, added to the index that errors report
        (the Dask driver runs one EMState per chunk).
    """

    def __init__(self, x, nb_sources, cdtype, eps, n_threads, frames_per_block,
                 progress=None, total_passes=1, P=None, filter_only=False, offset=(0, 0)):
        T, F, C = x.shape[-3:]
        self.batch = x.shape[:-3]
        E = self.E = int(np.prod(self.batch, dtype=np.int64))
        self.T = T
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
            buffer = allocate((E * T * nb_sources * F,), self.rdtype, "the PSDs", n_threads)
            P = psd_storage(E * T, F, nb_sources, self.rdtype, buffer)
        self.P = P
        # the filter kernel checks R's shape only in MODEL mode, so 0 bins do there
        R_bins = 0 if filter_only else E * F
        self.Rnum = np.zeros((R_bins, nb_sources, C, C, 2))
        self.weight = np.zeros((R_bins, nb_sources))
        self.R = np.zeros((R_bins, nb_sources, C, C, 2))
        self.work = make_work(n_threads, C, nb_sources)
        self._no_v = np.empty((0, 0, 0, 0), self.rdtype)
        self._no_y = np.empty((0, 0, 0, 0), self.cdtype)
        self.progress = _Progress(progress, total_passes * E * T)

    # the run's _steer.Steering (given R, mu, the monitor sums), set by run_em; None: none
    steer = None

    def _steer_args(self, mode):
        return {} if self.steer is None else self.steer.kernel_args(mode)

    # -- passes ------------------------------------------------------------------------
    def _segments(self, *inputs):
        """(e0, e1, t0, t1): the kernel calls of one pass, elements e0..e1, frames t0..t1.

        Inputs that the kernels can read in place (C-contiguous, native, of the run's
        dtype) go to the kernels a segment of many blocks at a time: each call is one
        parallel region in which threads take (element, block, range of bins) items, so a
        thread descheduled by a busy machine delays a pass once, not once per block.
        Segments end every SEGMENT_BYTES of output to keep Ctrl-C and progress responsive;
        short elements of a batch are grouped whole into one segment (at most MAX_ELEMENTS,
        the kernels' limit). Other inputs are converted one block of one element at a time
        (O(block) temporaries).
        """
        E, T, step = self.E, self.T, self.fpb
        if all(a is None or _kernel_ready(a, dt) for a, dt in inputs):
            per_frame = max(1, self.x.shape[-2] * self.x.shape[-1] * self.J
                            * self.cdtype.itemsize)
            step = self.fpb * max(1, SEGMENT_BYTES // (per_frame * self.fpb))
            group = min(MAX_ELEMENTS, max(1, step // max(1, T)))
            if E > 1 and group > 1:
                return [(e0, min(e0 + group, E), 0, T) for e0 in range(0, E, group)]
        return [(e, e + 1, t0, min(t0 + step, T)) for e in range(E) for t0 in range(0, T, step)]

    def _part(self, a, dtype, segment, core_ndim):
        """The frames of `segment` of input `a` (..., frames, *core) for a kernel call.

        Several whole elements: a view of the flattened input (kernel-ready, see
        _segments); frames of one element: a view, or an O(block) converted copy.
        """
        e0, e1, t0, t1 = segment
        if e1 - e0 > 1:
            flat = a.reshape((self.E * self.T,) + a.shape[a.ndim - core_ndim + 1:])
            return flat[e0 * self.T + t0:(e1 - 1) * self.T + t1]
        element = a[np.unravel_index(e0, self.batch)] if self.batch else a
        return contiguous_block(element, slice(t0, t1), dtype)

    def _scales(self, scale):
        return np.broadcast_to(np.asarray(scale, dtype=np.float64), (self.E,))

    def statistics(self, mode, scale, v=None, y=None, logit=-1.0, func="wiener"):
        """One statistics pass; leaves R (and P) describing the estimate of `mode`.

        scale: a float, or one per element of the batch.
        """
        self.Rnum.fill(0.0)
        self.weight.fill(0.0)
        scales = self._scales(scale)
        F = self.x.shape[-2]
        for seg in self._segments((self.x, self.cdtype), (v, self.rdtype), (y, self.cdtype)):
            e0, e1, t0, t1 = seg
            g0, g1 = e0 * self.T + t0, (e1 - 1) * self.T + t1
            bins = slice(e0 * F, e1 * F)
            xb = self._part(self.x, self.cdtype, seg, 3)
            vb = self._no_v if v is None else self._part(v, self.rdtype, seg, 4)
            yb = self._no_y if y is None else self._part(y, self.cdtype, seg, 4)
            R = self.R[bins] if mode == Estimate.MODEL else self.R
            status = _stats.accumulate(
                mode, xb, vb, yb, self.P[g0:g1], R, scales[e0:e1], self.eps, logit, SLOPE,
                self.Rnum[bins], self.weight[bins], self.work, self.n_threads, self.fpb,
                **self._steer_args(mode),
            )
            self._check(status, func, v, y)
            self.progress.advance(g1 - g0)
        status = _stats.finalize_covariance(self.Rnum, self.weight, self.eps, self.R)
        self._check(status, func, v, y)

    def filter(self, mode, scale, out, out_scale=1.0, v=None, logit=-1.0, func="wiener",
               split=False):
        """One filter pass writing source images into out (..., frames, bins, C, J).

        scale, out_scale: floats, or one per element of the batch. split: each TF point's
        images in out's bytes as (C, 2, J) reals (open-unmix's layout) instead of (C, J)
        complex numbers.
        When the PSDs live inside `out` (psd_in_output, one element), writing y overwrites
        the PSDs of later frames near the end of the track: the frames from `_safe_frames`
        on are filtered from a copy of their PSDs (a few blocks), taken before any y is
        written, and threads keep within MAX_LEAD blocks of each other before them.
        """
        T, F = self.T, self.x.shape[-2]
        scales, out_scales = self._scales(scale), self._scales(out_scale)
        out = out.reshape((self.E * T,) + out.shape[-3:])     # C-contiguous: a view
        t_copy = T
        tail = self.P
        if mode == Estimate.MODEL:
            t_copy = _safe_frames(out, self.P, self.fpb, MAX_LEAD)
            if t_copy < len(self.P):
                if self.E != 1:   # the PSDs of a batch are never kept in its output
                    raise RuntimeError("internal error: a batch's PSDs overlap its output")
                tail = psd_storage(T - t_copy, *self.P.shape[1:], self.P.dtype)
                tail[...] = self.P[t_copy:]
        lead = MAX_LEAD if t_copy < T else 0
        # an output of another precision (see run_em) is written through O(block) buffers
        direct = out.dtype == self.cdtype
        for seg in self._segments((self.x, self.cdtype), (v, self.rdtype), (out, self.cdtype)):
            e0, e1, t0, t1 = seg
            bins = slice(e0 * F, e1 * F)
            R = self.R[bins] if mode == Estimate.MODEL else self.R
            # (frames of the element, their PSD storage, its first frame, lead bound)
            for part, P, P0, bound in ((slice(t0, min(t1, t_copy)), self.P, 0, lead),
                                       (slice(max(t0, t_copy), t1), tail, t_copy, 0)):
                if part.start >= part.stop:
                    continue
                if e1 - e0 == 1:
                    seg = (e0, e1, part.start, part.stop)
                g0, g1 = e0 * T + part.start, (e1 - 1) * T + part.stop
                xb = self._part(self.x, self.cdtype, seg, 3)
                vb = self._no_v if v is None else self._part(v, self.rdtype, seg, 4)
                Pb = P[g0 - P0:g1 - P0] if mode == Estimate.MODEL else self._no_P
                yb = out[g0:g1] if direct else np.empty(out[g0:g1].shape, self.cdtype)
                status = _filter.apply_estimate(
                    mode, xb, vb, Pb, R, scales[e0:e1], self.eps, logit, SLOPE,
                    out_scales[e0:e1], yb, self.work, self.n_threads, self.fpb, bound, split,
                    **self._steer_args(mode),
                )
                self._check(status, func, v, None)
                if not direct:
                    out[g0:g1] = yb
            self.progress.advance((e1 - 1 - e0) * T + t1 - t0)

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
        """R as documented: (..., nb_bins, nb_channels, nb_channels, nb_sources), x's precision."""
        R = covariance_to_user(self.R, self.cdtype)
        return R.reshape(self.batch + (self.x.shape[-2],) + R.shape[1:])

    def psds(self):
        """The PSDs as documented: (..., nb_frames, nb_bins, nb_sources), C-contiguous."""
        P = psd_to_user(self.P)
        return P.reshape(self.batch + (self.T,) + P.shape[1:])


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


def mixture_scales(x, cdtype, n_threads=1):
    """Each element's 1 / max(1, max|x| / 10): upstream's scale for a loud mixture.

    x: (..., nb_frames, nb_bins, nb_channels); returns one scale per element of the batch
    (one for an unbatched x). The EM runs on x * scale and its result is divided by it.
    """
    batch = x.shape[:-3]
    E = int(np.prod(batch, dtype=np.int64))
    if x.size == 0:
        return np.ones(E)
    if E > 1 and _kernel_ready(x, cdtype):
        T = x.shape[-3]
        m = _filter.max_abs2_elements(x.reshape((E * T,) + x.shape[-2:]), E, n_threads)
    else:
        m = np.zeros(E)
        # block-wise, so a strided or byte-swapped x needs no full-size copy
        step = max(1, (1 << 22) // max(1, x.shape[-2] * x.shape[-1]))
        for e in range(E):
            element = x[np.unravel_index(e, batch)] if batch else x
            for t0 in range(0, element.shape[0], step):
                block = contiguous_block(element, slice(t0, t0 + step), cdtype)
                m[e] = max(m[e], _filter.max_abs2(block, n_threads))
    if not np.all(np.isfinite(m)):
        raise_for_status(Status.NOT_FINITE, "wiener", [("x", x, False)])
    return 1.0 / np.maximum(1.0, np.sqrt(m) / 10.0)


def run_em(x, cdtype, iterations, eps, n_threads, frames_per_block, out, init_mode,
           v=None, y=None, scale=1.0, logit=-1.0, progress=None, func="wiener", P=None,
           split=False, steer=None):
    """iterations >= 1 EM rounds from an initial estimate; writes y into out.

    The initial estimate is `init_mode` (GIVEN: y; SOFTMASK/PHASE: from v and x), computed
    on x * scale (a float, or one per element of a batch: see mixture_scales); the result
    is multiplied by 1 / scale. P: PSD storage (default: a new array; `psd_in_output(out)`
    when the caller does not need the PSDs and x is one problem); split: out's layout
    (see EMState.filter). steer: the _steer.Steering of the call (one problem), or None.
    With its tol, the EM ends after the iteration that follows the first one whose
    log-likelihood barely moved: the statistics of that iteration's images are taken in
    the pass that measures it, so the next filter is the cheapest last one.

    A complex64 run whose finite inputs overflow float32 on the way (the PSDs of an
    initial estimate far above the mixture: |v|^2 past 3.4e38) runs again in double, its
    output written block by block into `out`: finite inputs give finite sources. Its
    progress (and a steered run's records) then count again from the start.
    Returns the EMState (its P and R are the last parameter estimate, in double when the
    run fell back to it).
    """
    def em(cdtype, P):
        state = EMState(x, out.shape[-1], cdtype, eps, n_threads, frames_per_block,
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
                state.progress.total = (last + 1) * state.E * state.T
                break
        state.filter(Estimate.MODEL, scale, out, out_scale=1.0 / scale, func=func, split=split)
        if steer is not None:
            steer.iteration_done(state, last, scale)
        return state

    try:
        return em(cdtype, P)
    except PrecisionOverflow:
        if np.dtype(cdtype) != np.complex64:
            raise
    return em(np.complex128, None)
