"""Numerical robustness: silence, extreme levels, singular covariances, empty tracks,
impossible allocations, and the NaN policy.

The policies under test are written down in norbert/_validation.py and the README's
"Guarantees": silence gives zeros for any eps >= 0, loud mixtures are rescaled by
max(1, max|x| / 10) without touching the caller's array, quiet mixtures meet the absolute
regularisation sqrt(eps) of the maths, singular mixture covariances are handled by a
relative pivot floor, NaN / inf / negative power raise a ValueError with an index.
"""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import reference
from conftest import random_em_problem, random_problem

import norbert
from norbert import contrib

DTYPES = [np.complex128, np.complex64]
CHANNELS = [1, 2, 3, 5]


def _real(dtype):
    return np.finfo(np.dtype(dtype)).dtype


def _finite(*arrays):
    return all(bool(np.all(np.isfinite(a))) for a in arrays)


# ------------------------------------------------------------------------ silence
def _silenced(rng, nb_channels, dtype):
    """A problem with a silent source (1), a silent frame (3) and a silent bin (2)."""
    v, x = random_problem(
        rng, nb_frames=10, nb_bins=7, nb_channels=nb_channels, nb_sources=3, dtype=dtype
    )
    v[..., 1] = 0
    v[3] = 0
    x[3] = 0
    v[:, 2] = 0
    x[:, 2] = 0
    return v, x


def _assert_silent_where_silenced(y):
    assert _finite(y)
    assert np.all(y[..., 1] == 0), "a silent source is not silent"
    assert np.all(y[3] == 0), "a silent frame is not silent"
    assert np.all(y[:, 2] == 0), "a silent bin is not silent"


@pytest.mark.parametrize("eps", [0.0, None, 1e-3])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nb_channels", CHANNELS)
def test_wiener_silence_gives_zeros(rng, nb_channels, dtype, eps):
    v, x = _silenced(rng, nb_channels, dtype)
    for iterations in (0, 1, 3):
        for use_softmask in (True, False):
            y = norbert.wiener(v, x, iterations=iterations, use_softmask=use_softmask, eps=eps)
            _assert_silent_where_silenced(y)
    # an all-zero mixture with all-zero spectrograms
    y = norbert.wiener(np.zeros_like(v), np.zeros_like(x), iterations=2, eps=eps)
    assert _finite(y) and not np.any(y)
    # an all-zero mixture under non-zero spectrograms
    y = norbert.wiener(v, np.zeros_like(x), iterations=2, eps=eps)
    assert _finite(y) and not np.any(y)


@pytest.mark.parametrize("eps", [0.0, None, 1e-3])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nb_channels", CHANNELS)
def test_softmask_and_em_silence_give_zeros(rng, nb_channels, dtype, eps):
    v, x = _silenced(rng, nb_channels, dtype)
    _assert_silent_where_silenced(norbert.softmask(v, x, eps=eps))
    # logit compression maps a zero mask to logistic(-15 * 0.5) > 0, as documented: only
    # silent frames and bins (x = 0) are zero there
    y = norbert.softmask(v, x, eps=eps, logit=0.5)
    assert _finite(y) and not np.any(y[3]) and not np.any(y[:, 2])
    y0 = norbert.softmask(v, x, eps=1e-3)  # initial estimates, silent where v is
    y, v_em, R = norbert.expectation_maximization(y0, x, iterations=2, eps=eps)
    _assert_silent_where_silenced(y)
    assert _finite(v_em, R)
    assert np.all(v_em[..., 1] == 0) and np.all(R[..., 1] == 0)
    zeros = np.zeros(x.shape + (3,), x.dtype)
    for iterations in (0, 1, 3):
        y, v_em, R = norbert.expectation_maximization(zeros, np.zeros_like(x), iterations, eps=eps)
        assert _finite(y, v_em, R) and not (np.any(y) or np.any(v_em) or np.any(R))


@pytest.mark.parametrize("nb_channels", CHANNELS)
def test_building_blocks_silence_gives_zeros(nb_channels):
    T, F, C, J = 4, 3, nb_channels, 2
    zeros = np.zeros((T, F, C), complex)
    v_j, R_j = norbert.get_local_gaussian_model(zeros, eps=0.0)
    assert _finite(v_j, R_j) and not (np.any(v_j) or np.any(R_j))
    Cxx = norbert.get_mix_model(np.zeros((T, F, J)), np.zeros((F, C, C, J), complex))
    assert _finite(Cxx) and not np.any(Cxx)
    G = norbert.wiener_gain(np.zeros((T, F)), R_j, np.zeros((T, F, C, C), complex))
    assert _finite(G) and not np.any(G)
    assert not np.any(norbert.apply_filter(zeros, G))
    assert not np.any(contrib.reduce_interferences(np.zeros((T, F, C, J))))
    assert not np.any(contrib.smooth(np.zeros((T, F, C, J))))
    W = contrib.compress_filter(np.zeros((T, F, C, C)))
    assert _finite(W)
    if C > 1:  # W * logistic(tr W) / (eps + tr W): zero filters stay zero
        assert not np.any(W)
    out = contrib.residual_model(np.zeros((T, F, C, J)), zeros)
    assert _finite(out) and np.all(out[..., :J] == 0)
    assert np.all(out[..., J] <= np.finfo(np.float64).eps)  # the floor max(eps, |x|)


# -------------------------------------------------------------- loud and quiet
def _normal_level(rng, nb_channels, dtype, nb_frames=20):
    """v, x at the level upstream's rescaling maps every mixture to: max|x| = 10."""
    v, x = random_problem(
        rng,
        nb_frames=nb_frames,
        nb_bins=9,
        nb_channels=nb_channels,
        nb_sources=3,
        dtype=np.complex128,
    )
    scale = 10.0 / np.abs(x).max()
    return (v * scale).astype(_real(dtype)), (x * scale).astype(dtype)


TOL = {np.complex128: 1e-10, np.complex64: 2e-5}


@pytest.mark.parametrize("level", [1e5, 1e15])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_loud_mixtures_separate_as_normal_ones(rng, nb_channels, dtype, level):
    v, x = _normal_level(rng, nb_channels, dtype)
    expected = norbert.wiener(v, x, iterations=2).astype(np.complex128)
    x_loud = (x.astype(np.complex128) * level).astype(dtype)
    v_loud = (v.astype(np.float64) * level).astype(v.dtype)
    x_copy = x_loud.copy()
    y = norbert.wiener(v_loud, x_loud, iterations=2)
    assert np.array_equal(x_loud, x_copy), "the caller's x was rescaled in place"
    assert y.dtype == dtype and _finite(y)
    err = np.abs(y / level - expected).max() / np.abs(expected).max()
    assert err < TOL[dtype], f"loud mixture separates differently: {err:.2e}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_loud_expectation_maximization_is_finite(rng, nb_channels, dtype):
    y0, x = random_em_problem(rng, nb_channels=nb_channels, dtype=dtype, scale=1e15)
    y, v, R = norbert.expectation_maximization(y0, x, iterations=2)
    assert _finite(y, v, R)
    # no rescaling in the EM (as upstream), but at this level sqrt(eps) is negligible
    assert np.abs(x - y.sum(-1)).max() <= 1e-3 * np.abs(x).max()


@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_quiet_mixtures_meet_the_absolute_eps(rng, nb_channels):
    """|x| ~ 1e-15: Cxx ~ |x|^2 is far below sqrt(eps), so the filter returns nearly
    nothing, exactly as the maths defines (documented); finite, and as the reference."""
    v, x = _normal_level(rng, nb_channels, np.complex128)
    level = 1e-16
    x_quiet, v_quiet = x * level, v * level
    y = norbert.wiener(v_quiet, x_quiet, iterations=2)
    assert _finite(y)
    expected = reference.wiener(v_quiet, x_quiet, iterations=2)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-10 * np.abs(x_quiet).max())
    residual = reference.wiener_mixture_residual(v_quiet, x_quiet, iterations=2)
    np.testing.assert_allclose(
        x_quiet - y.sum(-1), residual, rtol=0, atol=1e-10 * np.abs(x_quiet).max()
    )
    # the regularisation dominates: most of the mixture is left out
    assert np.abs(y.sum(-1)).max() < 0.5 * np.abs(x_quiet).max()


@pytest.mark.parametrize("level", [1e-15, 1e15])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_eps_zero_is_scale_free(rng, nb_channels, dtype, level):
    """With eps=0 nothing is absolute: quiet and loud mixtures separate like normal ones."""
    v, x = _normal_level(rng, nb_channels, dtype)
    expected = norbert.wiener(v, x, iterations=2, eps=0).astype(np.complex128)
    x_s = (x.astype(np.complex128) * level).astype(dtype)
    v_s = (v.astype(np.float64) * level).astype(v.dtype)
    y = norbert.wiener(v_s, x_s, iterations=2, eps=0)
    assert _finite(y)
    err = np.abs(y / level - expected).max() / np.abs(expected).max()
    assert err < 10 * TOL[dtype], f"{err:.2e}"
    y0, xe = random_em_problem(rng, nb_channels=nb_channels, dtype=dtype)
    ref = norbert.expectation_maximization(y0, xe, iterations=2, eps=0)[0].astype(np.complex128)
    ys = norbert.expectation_maximization(
        (y0 * level).astype(dtype), (xe * level).astype(dtype), iterations=2, eps=0
    )[0]
    err = np.abs(ys / level - ref).max() / np.abs(ref).max()
    assert err < 10 * TOL[dtype], f"{err:.2e}"


# ------------------------------------------------------------ ill-conditioned
def _same_spatial_image(rng, nb_channels, nb_frames=30, nb_bins=8, nb_sources=3):
    """Every source has the same spatial image a[f]: each R_j, and Cxx, has rank 1."""
    a = rng.standard_normal((nb_bins, nb_channels)) + 1j * rng.standard_normal(
        (nb_bins, nb_channels)
    )
    s = rng.standard_normal((nb_frames, nb_bins, nb_sources)) + 1j * rng.standard_normal(
        (nb_frames, nb_bins, nb_sources)
    )
    images = 5.0 * a[None, :, :, None] * s[:, :, None, :]
    return images, images.sum(-1)


def _consistency_ok(x, y, rtol):
    return np.abs(x - y.sum(-1)).max() <= rtol * np.abs(x).max()


@pytest.mark.parametrize("eps", [None, 0.0])
@pytest.mark.parametrize("nb_channels", [2, 3, 4, 6])
def test_identical_spatial_images_reconstruct_the_mixture(rng, nb_channels, eps):
    images, x = _same_spatial_image(rng, nb_channels)
    v = np.abs(images)
    for iterations in (1, 3):
        y = norbert.wiener(v, x, iterations=iterations, eps=eps)
        assert _finite(y)
        assert _consistency_ok(x, y, 1e-6), np.abs(x - y.sum(-1)).max() / np.abs(x).max()
    y, v_em, R = norbert.expectation_maximization(images, x, iterations=2, eps=eps)
    assert _finite(y, v_em, R)
    assert _consistency_ok(x, y, 1e-6)
    if eps is None:
        # cond(Cxx) ~ 1e10 here: an adjugate over a cancelling determinant was 1e-5 off
        expected = reference.expectation_maximization(images, x, iterations=2)[0]
        assert np.abs(y - expected).max() <= 1e-8 * np.abs(expected).max()


@pytest.mark.parametrize("eps", [None, 0.0])
@pytest.mark.parametrize("nb_channels", [2, 3, 4, 6, 8])
def test_rank_deficient_mixtures_give_finite_output(rng, nb_channels, eps):
    # identical spatial images
    images, x = _same_spatial_image(rng, nb_channels)
    assert _finite(norbert.wiener(np.abs(images), x, iterations=3, eps=eps))
    # one frame: each R_j = y y^H / |y|^2 has rank 1, Cxx rank <= 2 < nb_channels
    v, x1 = random_problem(rng, nb_frames=1, nb_channels=nb_channels, nb_sources=2)
    assert _finite(norbert.wiener(v, x1, iterations=3, eps=eps))
    # duplicated channels and a dead channel
    v, x2 = random_problem(rng, nb_channels=nb_channels, nb_sources=3)
    x2[..., 1:] = x2[..., :1]
    x2[..., -1] = 0
    y = norbert.wiener(v, x2, iterations=3, eps=eps)
    assert _finite(y)
    # the EM's R of an estimate with identical images is Hermitian PSD
    y, v_em, R = norbert.expectation_maximization(images, x, iterations=2, eps=eps)
    assert _finite(y, v_em, R)
    Rm = np.moveaxis(R, -1, 1)  # (bins, sources, C, C)
    np.testing.assert_allclose(Rm, np.conj(np.swapaxes(Rm, -1, -2)), atol=1e-12 * np.abs(Rm).max())
    assert np.linalg.eigvalsh(Rm).min() >= -1e-10 * np.abs(Rm).max()


# --------------------------------------------------------------- empty inputs
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0, 5, 2), (6, 0, 2), (0, 0, 3)])
def test_empty_tracks_give_empty_results(dtype, shape):
    T, F, C = shape
    J = 3
    rdtype = _real(dtype)
    x = np.zeros(shape, dtype)
    v = np.zeros(shape[:2] + (1, J), rdtype)
    seen = []
    for iterations in (0, 1, 2):
        y = norbert.wiener(v, x, iterations=iterations, progress=lambda d, t: seen.append((d, t)))
        assert y.shape == (T, F, C, J) and y.dtype == dtype
        out = np.empty((T, F, C, J), dtype)
        assert norbert.wiener(v, x, iterations=iterations, out=out) is out
        y, v_em, R = norbert.expectation_maximization(np.zeros((T, F, C, J), dtype), x, iterations)
        assert (y.shape, v_em.shape, R.shape) == ((T, F, C, J), (T, F, J), (F, C, C, J))
        assert (y.dtype, v_em.dtype, R.dtype) == (dtype, rdtype, dtype)
        assert _finite(R) and not np.any(R)
    assert all(done <= total for done, total in seen)
    assert norbert.softmask(v, x, logit=0.4).shape == (T, F, C, J)
    v_j, R_j = norbert.get_local_gaussian_model(x, eps=0.0)
    assert v_j.shape == (T, F) and R_j.shape == (F, C, C) and not np.any(R_j)


# ---------------------------------------------------------------- the NaN policy
def test_nan_reports_the_first_offending_entry(rng):
    v, x = random_problem(rng, nb_frames=40, nb_bins=9, nb_channels=2, nb_sources=3)
    v[30, 4, 1, 2] = np.nan
    v[7, 5, 0, 1] = np.inf
    with pytest.raises(
        ValueError, match=r"\bv\b.*non-finite value .*inf.* at index \(7, 5, 0, 1\)"
    ):
        norbert.wiener(v, x, frames_per_block=4, workers=2)
    v[7, 5, 0, 1] = -1e-300  # tiny negative power is refused, not clamped
    with pytest.raises(ValueError, match=r"negative value .* at index \(7, 5, 0, 1\)"):
        norbert.wiener(v, x, frames_per_block=4)


@pytest.mark.parametrize("name", ["wiener", "softmask", "phase", "em"])
def test_nan_in_x_is_refused_even_under_silent_spectrograms(rng, name):
    """0 * NaN would hide the NaN: the kernels check x itself."""
    v, x = random_problem(rng, nb_channels=2, nb_sources=2)
    v[2, 3] = 0
    x[2, 3, 1] = complex(np.nan, 0)
    with pytest.raises(ValueError, match=r"\bx\b must be finite.*index \(2, 3, 1\)"):
        if name == "wiener":
            norbert.wiener(v, x, iterations=2)
        elif name == "softmask":
            norbert.softmask(v, x, eps=0)
        elif name == "phase":
            norbert.wiener(v, x, iterations=0, use_softmask=False)
        else:
            y0 = np.zeros(x.shape + (2,), x.dtype)
            norbert.expectation_maximization(y0, x, iterations=1)


def test_negative_zero_and_subnormal_power_are_accepted(rng):
    v, x = random_problem(rng, nb_channels=2, nb_sources=3)
    v[0, 0] = -0.0
    v[1, 1] = 5e-324
    for func in (norbert.wiener, norbert.softmask):
        assert _finite(func(v, x))
    assert _finite(contrib.residual_model(v, x), contrib.reduce_interferences(v))
    assert _finite(norbert.get_mix_model(v[:, :, 0], np.ones((x.shape[1], 2, 2, 3))))


def test_values_past_the_working_precision_are_computed_in_double(rng):
    """float64 v that float32 cannot hold, with complex64 x: finite input, finite output
    (the double fallback), the complex128 result rounded."""
    v, x = random_problem(rng, nb_channels=2, nb_sources=2, dtype=np.complex64)
    v = v.astype(np.float64)
    v[1, 1, 0, 0] = 1e300
    with np.errstate(over="ignore"):
        y = norbert.wiener(v, x)
    assert y.dtype == np.complex64 and np.all(np.isfinite(y))
    want = norbert.wiener(v, x.astype(np.complex128), eps=float(np.finfo(np.float32).eps))
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_nan_does_not_spread_in_contrib(rng):
    """reduce_interferences blurs over 100 frames and bins: a NaN is refused, not spread."""
    v = rng.random((50, 40, 1, 3))
    v[10, 10, 0, 0] = np.nan
    for func in (contrib.smooth, contrib.reduce_interferences):
        with pytest.raises(ValueError, match=r"\bv\b.*non-finite.*index \(10, 10, 0, 0\)"):
            func(v)


# ---------------------------------------------------------- impossible allocations
MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, re, sys
    import numpy as np
    import norbert
    from norbert import contrib

    class Unrepresentable(Exception):
        pass

    def huge(shape, dtype=np.float64):
        # a read-only zero-stride view: any size, no memory
        try:
            return np.broadcast_to(np.zeros((1,) * len(shape), dtype), shape)
        except ValueError:  # more than 2**63 bytes: no input of that size can exist
            raise Unrepresentable from None

    T, F = int(sys.argv[1]), int(sys.argv[2])
    C, J = 2, 4
    calls = {
        "wiener": lambda: norbert.wiener(huge((T, F, 1, J)), huge((T, F, C), complex)),
        "softmask": lambda: norbert.softmask(huge((T, F, 1, J)), huge((T, F, C), complex)),
        "expectation_maximization": lambda: norbert.expectation_maximization(
            huge((T, F, C, J), complex), huge((T, F, C), complex)),
        "get_local_gaussian_model": lambda: norbert.get_local_gaussian_model(
            huge((T, F, C), complex)),
        "get_mix_model": lambda: norbert.get_mix_model(
            huge((T, F, J)), huge((F, C, C, J), complex)),
        "wiener_gain": lambda: norbert.wiener_gain(huge((T, F)), huge((F, C, C), complex),
                                                   huge((T, F, C, C), complex)),
        "apply_filter": lambda: norbert.apply_filter(huge((T, F, C), complex),
                                                     huge((T, F, C, C), complex)),
        "residual_model": lambda: contrib.residual_model(
            huge((T, F, 1, J)), huge((T, F, C), complex)),
        "smooth": lambda: contrib.smooth(huge((T, F, 1, J))),
        "reduce_interferences": lambda: contrib.reduce_interferences(huge((T, F, 1, J))),
        "compress_filter": lambda: contrib.compress_filter(huge((T, F, C, C))),
    }
    for name, call in calls.items():
        try:
            call()
            result = {"raised": None}
        except Unrepresentable:
            result = {"raised": "unrepresentable input"}
        except BaseException as exc:
            result = {"raised": type(exc).__name__, "message": str(exc)}
        print(json.dumps({"name": name, **result}), flush=True)
    """
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "T, F",
    [
        (2**26, 2**26),  # every output needs >= 2**55 bytes: more than any address space
        (2**28, 2**28),  # wiener's y needs 2**63 bytes: more than NumPy can even describe
    ],
    ids=["beyond-memory", "beyond-intp"],
)
def test_impossible_allocation_raises_memory_error_with_its_size(T, F):
    # in a child: a failure here must not take the test run down, and a function that
    # starts a pass over the (virtual) input before allocating would hang, not pass
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(T), str(F)],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == 11, proc.stdout + proc.stderr[-3000:]
    for r in results:
        if r["name"] == "expectation_maximization" and T == 2**28:
            # its y input would be as large as its output
            assert r["raised"] == "unrepresentable input"
            continue
        assert r["raised"] == "MemoryError", r
        # the size that was needed, as NumPy says it ("128. TiB") or as norbert does
        assert re.search(r"\d[\d.]* ?[KMGTPE]iB", r["message"]), r


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
@pytest.mark.parametrize("channel", [0, 1])
@pytest.mark.parametrize("iterations", [0, 1])
def test_stereo_spectrograms_are_checked_in_every_channel(bad, channel, iterations):
    # the vectorised stereo statistics pass once checked only v's first channel
    x = np.ones((40, 30, 2), complex)
    v = np.ones((40, 30, 2, 2))
    v[3, 4, channel, 1] = bad
    pattern = rf"v must be finite and non-negative.*\(3, 4, {channel}, 1\)"
    with pytest.raises(ValueError, match=pattern):
        norbert.wiener(v, x, iterations=iterations)


@pytest.mark.parametrize("C", [1, 2, 3])
def test_em_without_regularisation_still_refuses_a_bad_mixture(C):
    # eps=0 and silent estimates: Cxx = 0 there, and the filter never reads x; the NaN
    # must still be reported, as wiener reports it
    x = np.zeros((2, 3, C), complex)
    x[1, 2, 0] = np.nan
    y0 = np.zeros((2, 3, C, 2), complex)
    with pytest.raises(ValueError, match=r"x must be finite.*index \(1, 2, 0\)"):
        norbert.expectation_maximization(y0, x, iterations=1, eps=0)
