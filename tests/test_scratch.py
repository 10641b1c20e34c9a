"""The per-thread scratch `work` holds what the passes lay out in it, and no more.

The kernels write raw pointers into `work`, where bounds checks cannot see them: each pass
runs here on a row of exactly scratch_size columns followed by guard columns, which must
come back untouched. The two-channel passes' layouts and the size come from one place
(_stereo.h); the largest layout must reach the row's last column, so that the size is
not merely generous.
"""

import numpy as np
import pytest

from norbert._core import Estimate, Status
from norbert._core._common import scratch_size
from norbert._core._filter import apply_estimate
from norbert._core._stats import accumulate, finalize_covariance

GUARD = 256
SENTINEL = -1234.5
NB_FRAMES, NB_BINS = 5, 150  # two full 64-bin tiles and a partial one


def _work(C, J):
    """(buffer, work): work is one row of scratch_size columns, guard columns after it."""
    n = scratch_size(C, J)
    buffer = np.full((1, n + GUARD), SENTINEL)
    return buffer, buffer[:, :n]


def _problem(rng, C, J, dtype):
    rdtype = np.empty(0, dtype).real.dtype
    shape = (NB_FRAMES, NB_BINS, C)
    x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    v = rng.random(shape + (J,)).astype(rdtype)
    y = (rng.standard_normal(shape + (J,)) + 1j * rng.standard_normal(shape + (J,))).astype(dtype)
    return x, v, y


def _psd(rdtype, J, bins_contiguous):
    """PSD storage of either layout the passes take: (frames, J, bins) seen transposed, or
    C-contiguous (frames, bins, J)."""
    if bins_contiguous:
        return np.ones((NB_FRAMES, J, NB_BINS), rdtype).transpose(0, 2, 1)
    return np.ones((NB_FRAMES, NB_BINS, J), rdtype)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("bins_contiguous", [True, False])
@pytest.mark.parametrize("nb_sources", [1, 3, 4])
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_passes_stay_inside_scratch_size(rng, dtype, bins_contiguous, nb_sources, nb_channels):
    C, J = nb_channels, nb_sources
    x, v, y = _problem(rng, C, J, dtype)
    rdtype = v.dtype
    no_v = np.empty((0, 0, 0, 0), rdtype)
    no_y = np.empty((0, 0, 0, 0), dtype)
    R = np.zeros((NB_BINS, J, C, C, 2))
    last_column_written = False

    def check(buffer, status):
        nonlocal last_column_written
        assert status == Status.OK
        assert np.all(buffer[:, -GUARD:] == SENTINEL), "a pass wrote past scratch_size"
        last_column_written |= bool(buffer[0, -GUARD - 1] != SENTINEL)

    # the statistics pass of every estimator (R from the first one, for MODEL)
    for mode in (Estimate.GIVEN, Estimate.SOFTMASK, Estimate.MODEL):
        Rnum, weight = np.zeros((NB_BINS, J, C, C, 2)), np.zeros((NB_BINS, J))
        P = _psd(rdtype, J, bins_contiguous)
        buffer, work = _work(C, J)
        status = accumulate(
            mode,
            x,
            v if mode == Estimate.SOFTMASK else no_v,
            y if mode == Estimate.GIVEN else no_y,
            P,
            R,
            1.0,
            1e-6,
            -1.0,
            15.0,
            Rnum,
            weight,
            work,
            1,
        )
        check(buffer, status)
        if mode == Estimate.GIVEN:
            assert finalize_covariance(Rnum, weight, 1e-6, R) == Status.OK
    # the filter pass of every estimator
    for mode in (Estimate.SOFTMASK, Estimate.MODEL):
        y_out = np.empty(x.shape + (J,), dtype)
        buffer, work = _work(C, J)
        status = apply_estimate(
            mode,
            x,
            v if mode == Estimate.SOFTMASK else no_v,
            _psd(rdtype, J, bins_contiguous),
            R,
            1.0,
            1e-6,
            -1.0,
            15.0,
            1.0,
            y_out,
            work,
            1,
        )
        check(buffer, status)
    if nb_channels == 2:
        assert last_column_written, "scratch_size is larger than any two-channel pass needs"
