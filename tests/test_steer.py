"""Steering and watching the EM (issue 18): given R, update_R, mu, callback, tol, verbose."""

import numpy as np
import pytest
import reference
from conftest import random_em_problem, random_problem, rel_err

import norbert

CASES = [(np.complex128, 1e-10), (np.complex64, 1e-4)]


def _covariances(rng, nb_bins, nb_channels, nb_sources, rank=None):
    """Random Hermitian PSD R (F, C, C, J), exactly Hermitian (built as A A^H, then symmetrised)."""
    rank = nb_channels if rank is None else rank
    a = rng.standard_normal((nb_bins, nb_sources, nb_channels, rank)) + 1j * rng.standard_normal(
        (nb_bins, nb_sources, nb_channels, rank)
    )
    R = a @ np.conj(np.swapaxes(a, 2, 3)) / rank
    R = (R + np.conj(np.swapaxes(R, 2, 3))) / 2
    return np.ascontiguousarray(np.moveaxis(R, 1, 3))


def _psds(y):
    return np.mean(np.abs(y.astype(np.complex128)) ** 2, axis=2)


# ------------------------------------------------------------------------ given R
@pytest.mark.parametrize("dtype, rtol", CASES)
@pytest.mark.parametrize("nb_channels", [1, 2, 3, 5])
def test_given_R_is_one_filter_pass_with_those_covariances(rng, dtype, rtol, nb_channels):
    y0, x = random_em_problem(rng, nb_frames=8, nb_bins=7, nb_channels=nb_channels, dtype=dtype)
    R = _covariances(rng, 7, nb_channels, 3)
    y, v, R_out = norbert.expectation_maximization(y0, x, iterations=1, R=R)
    eps = float(np.finfo(x.real.dtype).eps)
    y_ref = reference.sdw_filter(_psds(y0), R, x.astype(np.complex128), eps)
    assert y.dtype == dtype
    assert rel_err(y, y_ref) <= rtol
    # and it is not the estimated-R filter (the test can fail)
    assert rel_err(norbert.expectation_maximization(y0, x, iterations=1)[0], y_ref) > 1e-3
    # v and R returned are those the last filter used: here the initial PSDs and R itself
    assert rel_err(R_out, R) <= rtol and rel_err(v, _psds(y0)) <= rtol


@pytest.mark.parametrize("dtype, rtol", CASES)
@pytest.mark.parametrize("nb_channels", [1, 2, 4])
@pytest.mark.parametrize("update_R", [True, False])
def test_given_R_iterations_match_reference(rng, dtype, rtol, nb_channels, update_R):
    y0, x = random_em_problem(rng, nb_frames=8, nb_bins=7, nb_channels=nb_channels, dtype=dtype)
    # rank-1 steering plus a diffuse part, as an array user would give it
    diffuse = 0.1 * np.eye(nb_channels)[None, :, :, None]
    R = _covariances(rng, 7, nb_channels, 3, rank=1) + diffuse
    y, v, R_out = norbert.expectation_maximization(y0, x, iterations=3, R=R, update_R=update_R)
    y_ref, v_ref, R_ref, _ = reference.steered_em(y0, x, 3, R=R, update_R=update_R)
    assert rel_err(y, y_ref) <= 10 * rtol
    assert rel_err(v, v_ref) <= 10 * rtol
    assert rel_err(R_out, R_ref) <= 10 * rtol


def test_wiener_with_given_R_matches_reference(rng):
    v, x = random_problem(rng, nb_frames=8, nb_bins=7, nb_channels=3, scale=1000.0)
    R = _covariances(rng, 7, 3, 3)
    y = norbert.wiener(v, x, iterations=2, R=R)
    eps = float(np.finfo(np.float64).eps)
    s = reference.wiener_scale(x)
    y0 = reference.initial_estimate(v, x, True, eps) / s
    y_ref = reference.steered_em(y0, x / s, 2, eps, R=R)[0] * s
    assert rel_err(y, y_ref) <= 1e-10


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_update_R_false_keeps_R_bitwise(rng, dtype):
    y0, x = random_em_problem(rng, nb_frames=10, nb_bins=9, nb_channels=3, dtype=dtype)
    R = _covariances(rng, 9, 3, 3).astype(dtype)
    _, _, R_out = norbert.expectation_maximization(y0, x, iterations=4, R=R, update_R=False)
    assert R_out.dtype == dtype and np.array_equal(R_out, R)
    _, _, R_moved = norbert.expectation_maximization(y0, x, iterations=4, R=R)
    assert not np.allclose(R_moved, R)
    # without R: the estimate from the initial images, kept
    R_first = norbert.expectation_maximization(y0, x, iterations=1)[2]
    R_kept = norbert.expectation_maximization(y0, x, iterations=4, update_R=False)[2]
    assert np.array_equal(R_kept, R_first)
    # iterations=0 returns the given R, not zeros
    assert np.array_equal(norbert.expectation_maximization(y0, x, 0, R=R)[2], R)


def test_given_R_is_not_modified_and_may_be_read_only(rng):
    y0, x = random_em_problem(rng, nb_frames=6, nb_bins=5, nb_channels=2)
    R = _covariances(rng, 5, 2, 3)
    keep = R.copy()
    R.flags.writeable = False
    norbert.expectation_maximization(y0, x, iterations=2, R=R[:, ::1])
    assert np.array_equal(R, keep)


def test_R_within_rounding_is_accepted_and_used_as_its_hermitian_part(rng):
    y0, x = random_em_problem(rng, nb_frames=6, nb_bins=5, nb_channels=3)
    R = _covariances(rng, 5, 3, 3, rank=1)  # rank 1: eigenvalues -1e-17 by rounding
    noisy = R + 1e-15 * (rng.standard_normal(R.shape) + 1j * rng.standard_normal(R.shape))
    hermitian = (noisy + np.conj(np.swapaxes(noisy, 1, 2))) / 2
    y1 = norbert.expectation_maximization(y0, x, iterations=1, R=noisy)[0]
    y2 = norbert.expectation_maximization(y0, x, iterations=1, R=hermitian)[0]
    assert np.array_equal(y1, y2)
    # real symmetric R (e.g. a diffuse field) is accepted as complex
    real = np.broadcast_to(np.eye(3)[None, :, :, None], (5, 3, 3, 3))
    norbert.expectation_maximization(y0, x, iterations=1, R=real)


# ---------------------------------------------------------------------------- mu
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_mu_one_is_bitwise_todays_result(rng, nb_channels):
    v, x = random_problem(rng, nb_frames=20, nb_bins=150, nb_channels=nb_channels)
    today = norbert.wiener(v, x, iterations=2)
    for mu in (1.0, 1, np.float32(1.0)):
        assert np.array_equal(norbert.wiener(v, x, iterations=2, mu=mu), today)
    y0, x = random_em_problem(rng, nb_frames=20, nb_bins=150, nb_channels=nb_channels)
    today = norbert.expectation_maximization(y0, x, iterations=2)
    for a, b in zip(norbert.expectation_maximization(y0, x, iterations=2, mu=1.0), today):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("dtype, rtol", CASES)
@pytest.mark.parametrize("nb_channels", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("mu", [0.1, 3.0])
def test_mu_matches_reference_formula(rng, dtype, rtol, nb_channels, mu):
    y0, x = random_em_problem(rng, nb_frames=6, nb_bins=5, nb_channels=nb_channels, dtype=dtype)
    y, v, R = norbert.expectation_maximization(y0, x, iterations=2, mu=mu)
    y_ref, v_ref, R_ref, _ = reference.steered_em(y0, x, 2, mu=mu)
    assert y.dtype == dtype
    assert rel_err(y, y_ref) <= 10 * rtol
    assert rel_err(R, R_ref) <= 10 * rtol
    # mu moves the estimate (so this test can fail), and the sources no longer sum to x
    assert rel_err(y, reference.steered_em(y0, x, 2)[0]) > 1e-3


def test_mu_in_wiener_matches_reference(rng):
    v, x = random_problem(rng, nb_frames=8, nb_bins=7, nb_channels=2, scale=1000.0)
    y = norbert.wiener(v, x, iterations=2, mu=0.3)
    eps = float(np.finfo(np.float64).eps)
    s = reference.wiener_scale(x)
    y0 = reference.initial_estimate(v, x, True, eps) / s
    assert rel_err(y, reference.steered_em(y0, x / s, 2, eps, mu=0.3)[0] * s) <= 1e-10


# ----------------------------------------------------------------------- callback
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
@pytest.mark.parametrize("mu", [1.0, 0.5])
@pytest.mark.parametrize("given_R", [False, True])
def test_callback_values_match_reference(rng, nb_channels, mu, given_R):
    # 150 bins: more than one two-channel tile, so the vectorised rows are watched too
    y0, x = random_em_problem(rng, nb_frames=6, nb_bins=150, nb_channels=nb_channels)
    R = _covariances(rng, 150, nb_channels, 3) if given_R else None
    records = []
    y = norbert.expectation_maximization(
        y0, x, iterations=3, mu=mu, R=R, callback=records.append, frames_per_block=4
    )[0]
    ref = reference.steered_em(y0, x, 3, mu=mu, R=R)[3]
    assert [r.iteration for r in records] == [1, 2, 3]
    for got, (_, L, c) in zip(records, ref, strict=True):
        assert isinstance(got, norbert.EMRecord)
        assert got.log_likelihood == pytest.approx(L, rel=1e-10)
        # x - sum_j y_j is a difference of nearly equal numbers when mu = 1
        assert got.consistency == pytest.approx(c, rel=1e-5 if mu == 1.0 else 1e-10)
    # watching changes no bit of the result
    plain = norbert.expectation_maximization(y0, x, iterations=3, mu=mu, R=R)[0]
    assert np.array_equal(y, plain)


def test_callback_log_likelihood_is_the_callers_x_in_wiener(rng):
    v, x = random_problem(rng, nb_frames=8, nb_bins=7, nb_channels=2, scale=1000.0)
    records = []
    norbert.wiener(v, x, iterations=2, callback=records.append)
    eps = float(np.finfo(np.float64).eps)
    s = reference.wiener_scale(x)
    assert s > 1
    y0 = reference.initial_estimate(v, x, True, eps) / s
    ref = reference.steered_em(y0, x / s, 2, eps)[3]
    for got, (_, L, c) in zip(records, ref, strict=True):
        # the model Cxx s^2 for x: 2 C log s less than for x / s
        assert got.log_likelihood == pytest.approx(L - 2 * 2 * np.log(s), rel=1e-10)
        assert got.consistency == pytest.approx(c, rel=1e-5)


def test_records_are_frozen_and_printed_by_verbose(rng, capsys):
    y0, x = random_em_problem(rng, nb_frames=6, nb_bins=5)
    records = []
    norbert.expectation_maximization(y0, x, 2, verbose=1, callback=records.append)
    with pytest.raises(AttributeError):
        records[0].iteration = 5
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Number of iterations")
    assert out[1:3] == [str(r) for r in records]
    assert out[1].startswith("EM iteration 1: log-likelihood ")


def test_callback_exception_propagates_unchanged(rng):
    y0, x = random_em_problem(rng, nb_frames=6, nb_bins=5)

    class Stop(Exception):
        pass

    error = Stop("enough")
    calls = []

    def callback(record):
        calls.append(record.iteration)
        raise error

    with pytest.raises(Stop) as info:
        norbert.expectation_maximization(y0, x, iterations=5, callback=callback)
    assert info.value is error and calls == [1]


# ---------------------------------------------------------------------------- tol
def test_tol_stops_early_on_a_converged_problem(rng):
    v, x = random_problem(rng, nb_frames=20, nb_bins=30, nb_channels=2)
    records = []
    y = norbert.wiener(v, x, iterations=200, tol=1e-3, callback=records.append)
    n = len(records)
    assert 3 <= n < 200
    assert [r.iteration for r in records] == list(range(1, n + 1))
    L = [r.log_likelihood for r in records]
    assert abs(L[-2] - L[-3]) < 1e-3 * abs(L[-3])  # met after iteration n - 1 ...
    assert all(abs(b - a) >= 1e-3 * abs(a) for a, b in zip(L[:-3], L[1:-2]))  # ... first
    # the result is exactly that of n iterations
    assert np.array_equal(y, norbert.wiener(v, x, iterations=n))


def test_tol_never_stops_before_the_first_iterations(rng):
    v, x = random_problem(rng, nb_frames=10, nb_bins=9, nb_channels=2)
    for iterations, done in ((1, 1), (2, 2), (5, 3)):
        records = []
        y = norbert.wiener(v, x, iterations=iterations, tol=1e300, callback=records.append)
        assert len(records) == done
        assert np.array_equal(y, norbert.wiener(v, x, iterations=done))


def test_progress_ends_at_its_total_when_tol_stops(rng):
    v, x = random_problem(rng, nb_frames=10, nb_bins=9, nb_channels=2)
    calls = []
    norbert.wiener(v, x, iterations=50, tol=1e300, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1] == 4 * 10


# ------------------------------------------------------------------------- errors
def _bad_R(rng):
    good = _covariances(rng, 5, 2, 3)
    nan = good.copy()
    nan[1, 0, 0, 2] = np.nan
    skew = good.copy()
    skew[3, 0, 1, 1] += 0.5
    negative = good.copy()
    negative[2, :, :, 0] = np.diag([1.0, -0.5])
    return [
        (good[:4], ValueError, r"R must have shape .*got \(4, 2, 2, 3\)"),
        (good[..., 0], ValueError, r"R must be 4-dimensional"),
        (nan, ValueError, r"R must be finite.*index \(1, 0, 0, 2\)"),
        (skew, ValueError, r"R must be Hermitian.*R\[3, :, :, 1\] got"),
        (negative, ValueError, r"R must be positive semi-definite.*R\[2, :, :, 0\] got"),
        (good.astype(str), TypeError, r"R must be a numeric array"),
        ("R", TypeError, r"R must be an array"),
    ]


@pytest.mark.parametrize("func", ["wiener", "expectation_maximization"])
def test_bad_options_get_clear_errors(rng, func):
    if func == "wiener":
        first, x = random_problem(rng, nb_frames=6, nb_bins=5, nb_channels=2)
    else:
        first, x = random_em_problem(rng, nb_frames=6, nb_bins=5, nb_channels=2)
    call = getattr(norbert, func)
    cases = [({"R": R}, exc, match) for R, exc, match in _bad_R(rng)] + [
        ({"mu": -0.5}, ValueError, r"mu must be a finite real >= 0, got -0.5"),
        ({"mu": np.nan}, ValueError, r"mu must be .*got nan"),
        ({"mu": "1"}, TypeError, r"mu must be .*got '1'"),
        ({"mu": True}, TypeError, r"mu must be .*got True"),
        ({"tol": 0.0}, ValueError, r"tol must be None or a finite real > 0, got 0.0"),
        ({"tol": -1}, ValueError, r"tol must be .*got -1"),
        ({"tol": np.inf}, ValueError, r"tol must be .*got inf"),
        ({"tol": [1e-3]}, TypeError, r"tol must be .*got \[0.001\]"),
        ({"callback": 3}, TypeError, r"callback must be None or a callable.*got 3"),
        ({"update_R": "no"}, TypeError, r"update_R must be True or False, got 'no'"),
    ]
    for kwargs, exc, match in cases:
        with pytest.raises(exc, match=match):
            call(first, x, 1, **kwargs)


def test_dask_driver_refuses_the_options_clearly(rng):
    da = pytest.importorskip("dask.array")
    import norbert.dask as nd

    v, x = random_problem(rng, nb_frames=6, nb_bins=5, nb_channels=2)
    for kwargs in ({"mu": 0.5}, {"R": np.zeros((5, 2, 2, 3))}, {"callback": print}):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            nd.wiener(da.from_array(v), da.from_array(x), **kwargs)
