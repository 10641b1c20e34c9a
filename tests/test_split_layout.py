"""The split output layout: each TF point's (C, J) complex images written as (C, 2, J) reals.

norbert.compat.openunmix asks the kernels for open-unmix's layout directly; the values must
be exactly wiener's, rearranged, for every code path (stereo tiles, any channel count,
batches, the double fallback of complex64).
"""

import numpy as np
import pytest

import norbert
from norbert import _filtering


def _split_view(y):
    return y.view(y.real.dtype).reshape(y.shape[:-1] + (2, y.shape[-1]))


def _rearranged(y):
    """(..., C, J) complex -> (..., C, 2, J) reals, the slow obvious way."""
    return np.stack([y.real, y.imag], axis=-2)


@pytest.mark.parametrize("cdtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("C", [1, 2, 3])
@pytest.mark.parametrize("iterations", [0, 1, 2])
@pytest.mark.parametrize("use_softmask", [True, False])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_split_layout_is_wiener_rearranged(cdtype, C, iterations, use_softmask, batch):
    rng = np.random.default_rng(C * 10 + iterations)
    shape = batch + (7, 150, C)
    x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(cdtype) * 20
    v = rng.random(shape + (3,)).astype(x.real.dtype)
    want = norbert.wiener(v, x, iterations, use_softmask, frames_per_block=3)
    y = _filtering._wiener(v, x, iterations, use_softmask, None, frames_per_block=3,
                           split=True)
    np.testing.assert_array_equal(_split_view(y), _rearranged(want))


def test_split_layout_in_the_double_fallback():
    x = np.full((4, 3, 2), 1e-3 + 1e-3j, np.complex64)
    v = (np.random.default_rng(1).random((4, 3, 1, 2)) * 1e38).astype(np.float32)
    want = norbert.wiener(v, x, 1, False)
    y = _filtering._wiener(v, x, 1, False, None, split=True)
    np.testing.assert_array_equal(_split_view(y), _rearranged(want))
