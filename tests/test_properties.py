"""Hypothesis property tests: invariants that hold for any valid input."""

import numpy as np
import reference
from conftest import random_em_problem, random_problem
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import norbert

dtypes = st.sampled_from([np.complex128, np.complex64])
seeds = st.integers(0, 2**32 - 1)


def _eps(dtype):
    return float(np.finfo(np.dtype(dtype)).eps)


@st.composite
def spectrograms_and_mixture(draw, max_channels=4, max_sources=5):
    """Arbitrary non-negative v (with exact zeros and huge values) and x."""
    dtype = draw(dtypes)
    nb_frames = draw(st.integers(1, 6))
    nb_bins = draw(st.integers(1, 5))
    nb_channels = draw(st.integers(1, max_channels))
    nb_sources = draw(st.integers(1, max_sources))
    v_channels = draw(st.sampled_from([1, nb_channels]))
    real = np.finfo(np.dtype(dtype)).dtype
    elements = st.one_of(st.just(0.0), st.floats(2.0**-20, 2.0**20, width=32))
    v = draw(hnp.arrays(real, (nb_frames, nb_bins, v_channels, nb_sources), elements=elements))
    rng = np.random.default_rng(draw(seeds))
    shape = (nb_frames, nb_bins, nb_channels)
    x = (10.0 ** rng.uniform(-3, 3, shape) * np.exp(2j * np.pi * rng.random(shape))).astype(dtype)
    return v, x


@st.composite
def structured_problems(draw, max_channels=4):
    """random_problem with drawn sizes, scale, mono v and dtype."""
    rng = np.random.default_rng(draw(seeds))
    kwargs = dict(
        nb_frames=draw(st.integers(8, 12)),
        nb_bins=draw(st.integers(1, 6)),
        nb_channels=draw(st.integers(1, max_channels)),
        nb_sources=draw(st.integers(1, 4)),
        mono_v=draw(st.booleans()),
        scale=10.0 ** draw(st.integers(-2, 4)),
    )
    kwargs["nb_frames"] = max(kwargs["nb_frames"], 2 * kwargs["nb_channels"])
    dtype = draw(dtypes)
    return random_problem(rng, dtype=dtype, **kwargs)


@given(spectrograms_and_mixture())
def test_softmask_masks_in_unit_interval_and_sum_to_one(problem):
    v, x = problem
    eps = _eps(x.dtype)
    y = norbert.softmask(v, x)
    assert np.all(np.isfinite(y))
    mask = y / x[..., None]  # |x| > 0 by construction
    tol = 10 * eps
    assert np.all(np.abs(mask.imag) <= tol)
    assert np.all(mask.real >= -tol) and np.all(mask.real <= 1 + tol)
    vb = np.broadcast_to(v, x.shape + (v.shape[-1],)).astype(np.float64)
    total = vb.sum(axis=-1)
    loud = total > 1e6 * eps
    # sum_j m_j = total / (eps + total) = 1 - O(1e-6) where total >> eps
    assert np.all(np.abs(mask.real.sum(axis=-1)[loud] - 1) <= 1e-6 + v.shape[-1] * tol)
    # silent TF points (all sources 0) give exactly 0
    assert not y[total == 0].any()


@given(spectrograms_and_mixture(), st.floats(0.05, 0.95))
def test_softmask_logit_masks_in_unit_interval(problem, thresh):
    v, x = problem
    y = norbert.softmask(v, x, logit=thresh)
    mask = y / x[..., None]
    tol = 10 * _eps(x.dtype)
    assert np.all(np.isfinite(y))
    assert np.all(mask.real >= -tol) and np.all(mask.real <= 1 + tol)


@given(spectrograms_and_mixture(max_channels=3, max_sources=3), st.integers(0, 3), st.booleans())
def test_wiener_finite_on_arbitrary_spectrograms(problem, iterations, use_softmask):
    v, x = problem
    x = x.copy()
    x[0] = 0  # a silent frame
    y = norbert.wiener(v, x, iterations=iterations, use_softmask=use_softmask)
    assert y.shape == x.shape + (v.shape[-1],) and y.dtype == x.dtype
    assert np.all(np.isfinite(y))


@given(structured_problems(), st.integers(1, 3))
def test_wiener_mixture_consistency(problem, iterations):
    v, x = problem
    y = norbert.wiener(v, x, iterations=iterations)
    residual = x.astype(np.complex128) - y.astype(np.complex128).sum(axis=-1)
    predicted = reference.wiener_mixture_residual(v, x, iterations=iterations)
    # x - sum_j y_j = reg * Cxx^-1 x (DESIGN.md), to the rounding of y
    tol = (1e-10 if x.dtype == np.complex128 else 1e-5) * np.max(np.abs(x))
    assert np.max(np.abs(residual - predicted)) <= tol


@given(structured_problems())
def test_softmask_mixture_consistency(problem):
    v, x = problem
    y = norbert.softmask(v, x)
    residual = x.astype(np.complex128) - y.astype(np.complex128).sum(axis=-1)
    predicted = reference.wiener_mixture_residual(v, x, iterations=0)
    tol = (1e-12 if x.dtype == np.complex128 else 1e-6) * np.max(np.abs(x))
    assert np.max(np.abs(residual - predicted)) <= tol


@given(structured_problems(max_channels=3), st.integers(0, 2), st.booleans())
def test_inputs_unchanged(problem, iterations, use_softmask):
    v, x = problem
    v0, x0 = v.copy(), x.copy()
    y = norbert.wiener(v, x, iterations=iterations, use_softmask=use_softmask)
    norbert.softmask(v, x)
    y_em, _, _ = norbert.expectation_maximization(y, x, iterations=iterations)
    y_copy = y.copy()
    norbert.expectation_maximization(y, x, iterations=iterations)
    assert np.array_equal(v, v0) and np.array_equal(x, x0) and np.array_equal(y, y_copy)
    assert not np.shares_memory(y_em, y)


@given(seeds, st.integers(1, 4), st.integers(1, 4), dtypes, st.integers(1, 3))
def test_expectation_maximization_finite_and_psd(seed, nb_channels, nb_sources, dtype, iterations):
    rng = np.random.default_rng(seed)
    y0, x = random_em_problem(
        rng,
        nb_frames=max(8, 2 * nb_channels),
        nb_bins=3,
        nb_channels=nb_channels,
        nb_sources=nb_sources,
        dtype=dtype,
    )
    y, v, R = norbert.expectation_maximization(y0, x, iterations=iterations)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(np.isfinite(R))
    assert np.all(v >= 0)
    # R_j[f] is Hermitian positive semi-definite with trace <= nb_channels
    Rt = np.moveaxis(R.astype(np.complex128), -1, 1)  # (F, J, C, C)
    tol = 1e-10 if dtype == np.complex128 else 1e-4
    assert np.allclose(Rt, np.conj(np.swapaxes(Rt, -1, -2)), atol=tol * max(1.0, np.abs(Rt).max()))
    eig = np.linalg.eigvalsh(Rt)
    assert np.all(eig >= -tol * max(1.0, np.abs(eig).max()))
    # trace R_j = C sum_t v_j / (eps + sum_t v_j) <= C
    assert np.all(np.trace(Rt, axis1=-2, axis2=-1).real <= nb_channels * (1 + tol))
