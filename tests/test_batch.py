"""The batch axis: leading axes of x are independent problems, each computed as alone.

Every batched result must equal, bit for bit, the call on each element by itself (which the
rest of the suite compares with the loop references), whatever the leading shape, layout,
thread count, block size or grouping of elements into kernel calls.
"""

import numpy as np
import pytest

import norbert
from norbert import _drivers
from norbert._core._common import pass_info
from norbert._core._stats import MAX_ELEMENTS
from norbert.contrib import residual_model

CDTYPES = (np.complex128, np.complex64)


def _problem(rng, batch, T, F, C, J, cdtype, mono=False, loud=None):
    x = rng.standard_normal(batch + (T, F, C)) + 1j * rng.standard_normal(batch + (T, F, C))
    if loud is not None:
        # elements of very different levels: each needs its own loud-mixture scale
        x = x * np.asarray(loud).reshape(batch + (1, 1, 1))
    v = rng.random(batch + (T, F, 1 if mono else C, J)) ** 2
    return x.astype(cdtype), v.astype(x.real.dtype if cdtype == np.complex128 else np.float32)


def _elements(batch):
    return list(np.ndindex(batch))


def _assert_per_element(result, call, batch):
    for e in _elements(batch):
        alone = call(e)
        if isinstance(result, tuple):
            for got, want in zip(result, alone):
                np.testing.assert_array_equal(got[e], want, err_msg=str(e))
        else:
            np.testing.assert_array_equal(result[e], alone, err_msg=str(e))


@pytest.mark.parametrize("cdtype", CDTYPES)
@pytest.mark.parametrize("batch", [(1,), (3,), (2, 2)])
@pytest.mark.parametrize("C,mono", [(1, False), (2, False), (2, True), (3, False)])
@pytest.mark.parametrize("iterations", [0, 1, 2])
def test_wiener_batch_equals_each_element(batch, C, mono, iterations, cdtype):
    rng = np.random.default_rng(hash((batch, C, mono, iterations)) % 2**32)
    loud = np.geomspace(0.5, 300.0, int(np.prod(batch)))
    x, v = _problem(rng, batch, 9, 150, C, 3, cdtype, mono=mono, loud=loud)
    for use_softmask in (True, False):
        y = norbert.wiener(v, x, iterations=iterations, use_softmask=use_softmask,
                           frames_per_block=4)
        assert y.shape == x.shape + (3,) and y.dtype == cdtype
        _assert_per_element(
            y,
            lambda e, soft=use_softmask: norbert.wiener(
                v[e], x[e], iterations=iterations, use_softmask=soft, frames_per_block=4),
            batch,
        )


@pytest.mark.parametrize("cdtype", CDTYPES)
@pytest.mark.parametrize("batch", [(2,), (2, 3)])
def test_expectation_maximization_batch_shapes_and_bits(batch, cdtype):
    rng = np.random.default_rng(1)
    x, v = _problem(rng, batch, 11, 70, 2, 4, cdtype)
    y0 = norbert.softmask(v, x)
    for iterations in (0, 1, 2):
        y, P, R = norbert.expectation_maximization(y0, x, iterations=iterations)
        assert y.shape == x.shape + (4,)
        assert P.shape == batch + (11, 70, 4) and P.dtype == x.real.dtype
        assert R.shape == batch + (70, 2, 2, 4) and R.dtype == cdtype
        _assert_per_element(
            (y, P, R),
            lambda e, it=iterations: norbert.expectation_maximization(y0[e], x[e], iterations=it),
            batch,
        )


@pytest.mark.parametrize("cdtype", CDTYPES)
def test_softmask_and_residual_model_batch(cdtype):
    rng = np.random.default_rng(2)
    batch = (2, 3)
    x, v = _problem(rng, batch, 5, 40, 2, 3, cdtype, mono=True)
    _assert_per_element(norbert.softmask(v, x, logit=0.3), lambda e: norbert.softmask(
        v[e], x[e], logit=0.3), batch)
    for autoscale in (False, True):
        out = residual_model(v, x, alpha=2, autoscale=autoscale)
        assert out.shape == x.shape + (4,)
        _assert_per_element(out, lambda e, a=autoscale: residual_model(
            v[e], x[e], alpha=2, autoscale=a), batch)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_batch_of_windows_runs_every_thread_in_one_region_per_pass(workers):
    # 16 windows whose whole batch makes one kernel call per pass: the threads share
    # elements x ranges of bins, and the bits match a call per window on one thread
    rng = np.random.default_rng(3)
    # 16 x 12 x 700 TF points: above the one-thread threshold
    x, v = _problem(rng, (16,), 12, 700, 2, 4, np.complex128, loud=np.arange(1, 17) * 5.0)
    y = None
    most = 0
    for _ in range(20):   # on a busy machine one thread may take every item first
        before = pass_info()[1]
        y = norbert.wiener(v, x, iterations=2, workers=workers)
        opened = pass_info()[1] - before
        # the mixture scales and three passes: one region each, not one per window
        assert opened <= (4 if workers > 1 else 0), opened
        most = max(most, pass_info()[0])
        if workers == 1 or most >= 2:
            break
    assert most == 1 if workers == 1 else most >= 2
    _assert_per_element(y, lambda e: norbert.wiener(v[e], x[e], iterations=2, workers=1),
                        (16,))


def test_layouts_that_need_conversion(monkeypatch):
    # strided, byte-swapped, Fortran-ordered batches go element by element, block by
    # block; tiny segments split elements; the bits never change
    rng = np.random.default_rng(4)
    x, v = _problem(rng, (3,), 10, 60, 2, 2, np.complex128, loud=[1.0, 50.0, 900.0])
    want = norbert.wiener(v, x, iterations=2)
    wide = np.stack([x, x], axis=1)[:, 0]          # strided batch axis
    assert not wide.flags.c_contiguous
    np.testing.assert_array_equal(norbert.wiener(v, wide, iterations=2), want)
    swapped = v.astype(v.dtype.newbyteorder())
    np.testing.assert_array_equal(norbert.wiener(swapped, x, iterations=2), want)
    np.testing.assert_array_equal(norbert.wiener(np.asfortranarray(v), x, iterations=2), want)
    monkeypatch.setattr(_drivers, "SEGMENT_BYTES", 1)
    np.testing.assert_array_equal(norbert.wiener(v, x, iterations=2, frames_per_block=3), want)


def test_more_elements_than_one_call_takes():
    rng = np.random.default_rng(5)
    E = MAX_ELEMENTS + 7
    x, v = _problem(rng, (E,), 2, 5, 2, 2, np.complex64)
    y = norbert.wiener(v, x, iterations=1, workers=2)
    for e in (0, MAX_ELEMENTS - 1, MAX_ELEMENTS, E - 1):
        np.testing.assert_array_equal(y[e], norbert.wiener(v[e], x[e], iterations=1))


def test_out_with_a_batch():
    rng = np.random.default_rng(6)
    x, v = _problem(rng, (2, 2), 6, 33, 2, 3, np.complex64)
    out = np.empty(x.shape + (3,), np.complex64)
    y = norbert.wiener(v, x, iterations=1, out=out)
    assert y is out
    np.testing.assert_array_equal(out, norbert.wiener(v, x, iterations=1))
    with pytest.raises(ValueError, match="out must have shape"):
        norbert.wiener(v, x, iterations=1, out=out[0])


def test_empty_batches_and_frames():
    x = np.zeros((0, 4, 5, 2), np.complex128)
    v = np.zeros((0, 4, 5, 2, 3))
    assert norbert.wiener(v, x).shape == (0, 4, 5, 2, 3)
    y, P, R = norbert.expectation_maximization(norbert.softmask(v, x), x, iterations=1)
    assert (y.shape, P.shape, R.shape) == ((0, 4, 5, 2, 3), (0, 4, 5, 3), (0, 5, 2, 2, 3))
    x = np.zeros((3, 0, 5, 2), np.complex128)
    v = np.zeros((3, 0, 5, 2, 3))
    y, P, R = norbert.expectation_maximization(norbert.softmask(v, x), x, iterations=1)
    assert (y.shape, P.shape, R.shape) == ((3, 0, 5, 2, 3), (3, 0, 5, 3), (3, 5, 2, 2, 3))
    np.testing.assert_array_equal(R, 0)


def test_mismatched_batches_are_refused_clearly():
    rng = np.random.default_rng(7)
    x, v = _problem(rng, (2,), 4, 6, 2, 2, np.complex128)
    with pytest.raises(ValueError, match=r"v must be 5-dimensional .* x's 1 batch axes"):
        norbert.wiener(v[0], x)
    with pytest.raises(ValueError, match=r"v must have x's batch axes, nb_frames and nb_bins"):
        norbert.wiener(np.concatenate([v, v]), x)
    with pytest.raises(ValueError, match=r"y must have shape x.shape"):
        norbert.expectation_maximization(norbert.softmask(v, x)[:1], x)


def test_errors_name_the_element():
    rng = np.random.default_rng(8)
    x, v = _problem(rng, (3,), 4, 6, 2, 2, np.complex128)
    x[2, 1, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"x must be finite; found non-finite value \(nan\+0j\) at "
                                         r"index \(2, 1, 3, 0\)"):
        norbert.wiener(v, x)
    x[2, 1, 3, 0] = 0
    v[1, 3, 2, 0, 1] = -1.0
    with pytest.raises(ValueError, match=r"negative value -1.0 at index \(1, 3, 2, 0, 1\)"):
        norbert.softmask(v, x)


@pytest.mark.parametrize("option", [{"mu": 0.5}, {"callback": print}, {"tol": 1e-3},
                                    {"update_R": False}])
def test_steering_options_are_for_one_problem(option):
    rng = np.random.default_rng(9)
    x, v = _problem(rng, (2,), 4, 6, 2, 2, np.complex128)
    with pytest.raises(ValueError, match=f"{next(iter(option))} apply to one problem"):
        norbert.wiener(v, x, **option)
    with pytest.raises(ValueError, match="not to a batch"):
        norbert.expectation_maximization(norbert.softmask(v, x), x, **option)
    # verbose keeps 0.2.1's lines and no per-iteration records
    norbert.expectation_maximization(norbert.softmask(v, x), x, verbose=1)
