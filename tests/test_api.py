"""Every public function against tests/reference.py, plus dtype, layout and
input-immutability contracts."""

import numpy as np
import pytest
import reference
from conftest import assert_close, random_em_problem, random_problem, rel_err

import norbert
import norbert.contrib

DTYPES = [pytest.param(np.complex128, 1e-10, id="c128"), pytest.param(np.complex64, 1e-4, id="c64")]
ALL_CHANNELS = [1, 2, 3, 4, 6, 8, 16]


def _real(dtype):
    return np.finfo(np.dtype(dtype)).dtype


def _frames(nb_channels):
    # R_j estimated from fewer frames than channels is singular: the problem
    # is then decided by the sqrt(eps) loading alone (cond ~ 1e10) and two
    # correct solvers disagree far above 1e-10.  Keep >= 2 frames per channel.
    return max(12, 2 * nb_channels)


def _em_parameters(rng, nb_channels, nb_sources, dtype, nb_frames=10, nb_bins=6):
    """A realistic (v, R) pair: the EM parameters of a random problem."""
    y0, x = random_em_problem(rng, nb_frames, nb_bins, nb_channels, nb_sources)
    _, v, R = reference.expectation_maximization(y0, x, iterations=1)
    return v.astype(_real(dtype)), R.astype(dtype)


# ------------------------------------------------------------------ softmask
@pytest.mark.parametrize("dtype, rtol", DTYPES)
@pytest.mark.parametrize("mono_v", [False, True])
@pytest.mark.parametrize("nb_channels, nb_sources", [(1, 1), (2, 3), (5, 2)])
@pytest.mark.parametrize("logit", [None, 0.4])
def test_softmask_matches_reference(rng, dtype, rtol, mono_v, nb_channels, nb_sources, logit):
    v, x = random_problem(
        rng, nb_channels=nb_channels, nb_sources=nb_sources, mono_v=mono_v, dtype=dtype
    )
    y = norbert.softmask(v, x, logit=logit)
    assert y.dtype == dtype
    assert y.shape == x.shape + (nb_sources,)
    assert_close(y, reference.softmask(v, x, logit=logit), rtol)


@pytest.mark.parametrize("eps", [1e-3, 10.0])
def test_softmask_explicit_eps(rng, eps):
    v, x = random_problem(rng, nb_channels=2, nb_sources=3, scale=1.0)
    assert_close(norbert.softmask(v, x, eps=eps), reference.softmask(v, x, eps=eps), 1e-10)
    # eps must matter here, or the test could not tell it was ignored
    assert rel_err(reference.softmask(v, x, eps=eps), reference.softmask(v, x)) > 1e-6


@pytest.mark.parametrize("call", ["softmask", "wiener-0-iterations"])
def test_single_filter_pass_allocates_no_em_statistics(rng, monkeypatch, call):
    """softmask and wiener(iterations=0) run one filter pass: no PSDs, R or R sums."""
    import norbert._filtering
    from norbert._drivers import EMState

    states = []

    class Recorded(EMState):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            states.append(self)

    monkeypatch.setattr(norbert._filtering, "EMState", Recorded)
    v, x = random_problem(rng, nb_channels=2, nb_sources=3)
    if call == "softmask":
        assert_close(norbert.softmask(v, x), reference.softmask(v, x), 1e-10)
    else:
        assert_close(norbert.wiener(v, x, 0), reference.wiener(v, x, 0), 1e-10)
    (state,) = states
    assert state.P.size == state.R.size == state.Rnum.size == state.weight.size == 0


# -------------------------------------------------------------------- wiener
@pytest.mark.parametrize("dtype, rtol", DTYPES)
@pytest.mark.parametrize("nb_channels, mono_v", [(1, False), (2, False), (2, True), (3, True)])
@pytest.mark.parametrize("iterations", [0, 1, 2, 3])
@pytest.mark.parametrize("use_softmask", [True, False])
def test_wiener_matches_reference(rng, dtype, rtol, nb_channels, mono_v, iterations, use_softmask):
    v, x = random_problem(rng, nb_channels=nb_channels, nb_sources=3, mono_v=mono_v, dtype=dtype)
    y = norbert.wiener(v, x, iterations=iterations, use_softmask=use_softmask)
    assert y.dtype == dtype
    assert y.shape == x.shape + (3,)
    assert_close(y, reference.wiener(v, x, iterations=iterations, use_softmask=use_softmask), rtol)


@pytest.mark.parametrize("nb_channels", ALL_CHANNELS)
@pytest.mark.parametrize("dtype, rtol", DTYPES)
def test_wiener_all_channel_counts(rng, nb_channels, dtype, rtol):
    v, x = random_problem(
        rng, nb_frames=_frames(nb_channels), nb_bins=5, nb_channels=nb_channels, nb_sources=3,
        dtype=dtype,
    )
    y = norbert.wiener(v, x, iterations=2)
    assert y.dtype == dtype
    assert_close(y, reference.wiener(v, x, iterations=2), rtol)


@pytest.mark.parametrize("nb_sources", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("mono_v", [False, True])
def test_wiener_source_counts(rng, nb_sources, mono_v):
    v, x = random_problem(rng, nb_channels=2, nb_sources=nb_sources, mono_v=mono_v)
    assert_close(norbert.wiener(v, x, iterations=1), reference.wiener(v, x, iterations=1), 1e-10)


@pytest.mark.parametrize("scale", [0.05, 5.0, 1e4])
@pytest.mark.parametrize("use_softmask", [True, False])
def test_wiener_rescaling(rng, scale, use_softmask):
    # max|x| below and above 10: upstream's max(1, max|x| / 10) scaling
    v, x = random_problem(rng, nb_channels=2, nb_sources=2, scale=scale)
    y = norbert.wiener(v, x, iterations=2, use_softmask=use_softmask)
    assert_close(y, reference.wiener(v, x, iterations=2, use_softmask=use_softmask), 1e-10)


@pytest.mark.parametrize("nb_channels", [1, 2, 3])
@pytest.mark.parametrize("eps", [1e-6, 1e-2])
def test_wiener_explicit_eps(rng, nb_channels, eps):
    v, x = random_problem(rng, nb_channels=nb_channels, nb_sources=2)
    y = norbert.wiener(v, x, iterations=2, eps=eps)
    expected = reference.wiener(v, x, iterations=2, eps=eps)
    assert_close(y, expected, 1e-10)
    assert rel_err(reference.wiener(v, x, iterations=2), expected) > 1e-8


def test_wiener_mixed_precisions(rng):
    # precision follows x, whatever v's dtype (0.2.1 returns complex128 here)
    v, x = random_problem(rng, nb_channels=2, nb_sources=2, dtype=np.complex64)
    y = norbert.wiener(v.astype(np.float64), x, iterations=1)
    assert y.dtype == np.complex64
    assert_close(y, reference.wiener(v, x, iterations=1), 1e-4)
    v, x = random_problem(rng, nb_channels=2, nb_sources=2, dtype=np.complex128)
    y = norbert.wiener(v.astype(np.float32), x, iterations=1)
    assert y.dtype == np.complex128
    assert_close(y, reference.wiener(v.astype(np.float32), x, iterations=1), 1e-10)


def test_wiener_silent_frames(rng):
    v, x = random_problem(rng, nb_channels=2, nb_sources=3)
    x[3:5] = 0
    v[3:5] = 0
    v[7, :, :, 1] = 0  # one source silent in one frame
    y = norbert.wiener(v, x, iterations=2)
    assert np.all(np.isfinite(y))
    assert np.all(y[3:5] == 0)
    assert_close(y, reference.wiener(v, x, iterations=2), 1e-10)


@pytest.mark.parametrize("nb_channels", [1, 2, 3])
@pytest.mark.parametrize("iterations", [1, 3])
def test_wiener_mixture_consistency(rng, nb_channels, iterations):
    v, x = random_problem(rng, nb_channels=nb_channels, nb_sources=3)
    y = norbert.wiener(v, x, iterations=iterations)
    # DESIGN.md: x - sum_j y_j = reg Cxx^-1 x, reg = sqrt(eps) (+ eps for 1 channel)
    predicted = reference.wiener_mixture_residual(v, x, iterations=iterations)
    residual = x - y.sum(axis=-1)
    assert np.max(np.abs(residual - predicted)) <= 1e-10 * np.max(np.abs(x))
    # every bin here carries energy, so the sources sum to the mixture
    assert np.max(np.abs(residual)) <= 1e-6 * np.max(np.abs(x))


# ------------------------------------------------------------------------ EM
def _check_em(y0, x, iterations, rtol, dtype):
    y, v, R = norbert.expectation_maximization(y0, x, iterations=iterations)
    y_ref, v_ref, R_ref = reference.expectation_maximization(y0, x, iterations=iterations)
    nb_frames, nb_bins, nb_channels, nb_sources = y0.shape
    assert y.dtype == dtype and R.dtype == dtype and v.dtype == _real(dtype)
    assert y.shape == y0.shape
    assert v.shape == (nb_frames, nb_bins, nb_sources)
    assert R.shape == (nb_bins, nb_channels, nb_channels, nb_sources)
    assert_close(y, y_ref, rtol)
    assert_close(v, v_ref, rtol)
    assert_close(R, R_ref, rtol)


@pytest.mark.parametrize("dtype, rtol", DTYPES)
@pytest.mark.parametrize("nb_channels", [1, 2, 3, 5])
@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_expectation_maximization_matches_reference(rng, dtype, rtol, nb_channels, iterations):
    y0, x = random_em_problem(rng, nb_channels=nb_channels, nb_sources=3, dtype=dtype)
    _check_em(y0, x, iterations, rtol, dtype)


@pytest.mark.parametrize("nb_channels", ALL_CHANNELS)
def test_expectation_maximization_all_channel_counts(rng, nb_channels):
    y0, x = random_em_problem(
        rng, nb_frames=_frames(nb_channels), nb_bins=4, nb_channels=nb_channels, nb_sources=2
    )
    _check_em(y0, x, 2, 1e-10, np.complex128)


@pytest.mark.parametrize("nb_sources", [1, 2, 4, 5])
def test_expectation_maximization_source_counts(rng, nb_sources):
    y0, x = random_em_problem(rng, nb_channels=3, nb_sources=nb_sources)
    _check_em(y0, x, 2, 1e-10, np.complex128)


@pytest.mark.parametrize("eps", [1e-3, 1.0])
def test_expectation_maximization_explicit_eps(rng, eps):
    y0, x = random_em_problem(rng, nb_channels=2, nb_sources=2)
    y, v, R = norbert.expectation_maximization(y0, x, iterations=2, eps=eps)
    y_ref, v_ref, R_ref = reference.expectation_maximization(y0, x, iterations=2, eps=eps)
    assert_close(y, y_ref, 1e-10)
    assert_close(R, R_ref, 1e-10)
    assert_close(v, v_ref, 1e-10)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_expectation_maximization_zero_iterations(rng, dtype):
    y0, x = random_em_problem(rng, nb_channels=2, nb_sources=3, dtype=dtype)
    y, v, R = norbert.expectation_maximization(y0, x, iterations=0)
    assert y is not y0 and not np.shares_memory(y, y0)
    assert y.dtype == dtype and np.array_equal(y, y0)
    assert v.shape == (12, 9, 3) and v.dtype == _real(dtype) and not v.any()
    assert R.shape == (9, 2, 2, 3) and R.dtype == dtype and not R.any()


def test_expectation_maximization_silent_source_eps_zero(rng):
    # eps=0: a source that is silent everywhere has zero weight; its R is
    # 0/0, defined as 0, so it gets nothing and nothing becomes NaN
    y0, x = random_em_problem(rng, nb_channels=2, nb_sources=3)
    y0[..., 2] = 0
    y, v, R = norbert.expectation_maximization(y0, x, iterations=2, eps=0.0)
    y_ref, v_ref, R_ref = reference.expectation_maximization(y0, x, iterations=2, eps=0.0)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(R))
    assert not y[..., 2].any() and not R[..., 2].any()
    assert_close(y, y_ref, 1e-10)
    assert_close(R, R_ref, 1e-10)


# --------------------------------------------------- lower-level primitives
@pytest.mark.parametrize("dtype, rtol", DTYPES)
@pytest.mark.parametrize("nb_channels", ALL_CHANNELS)
@pytest.mark.parametrize("eps", [None, 1e-3])
def test_get_local_gaussian_model_matches_reference(rng, dtype, rtol, nb_channels, eps):
    y0, _ = random_em_problem(rng, nb_channels=nb_channels, nb_sources=1, dtype=dtype)
    y_j = y0[..., 0]
    kwargs = {} if eps is None else {"eps": eps}  # None: documented default 1.0
    v_j, R_j = norbert.get_local_gaussian_model(y_j, **kwargs)
    v_ref, R_ref = reference.get_local_gaussian_model(y_j, **kwargs)
    assert v_j.shape == (12, 9) and v_j.dtype == _real(dtype)
    assert R_j.shape == (9, nb_channels, nb_channels) and R_j.dtype == dtype
    assert_close(v_j, v_ref, rtol)
    assert_close(R_j, R_ref, rtol)


def test_get_local_gaussian_model_default_eps_is_one(rng):
    y0, _ = random_em_problem(rng, nb_channels=2, nb_sources=1, scale=0.1)
    v_j, R_j = norbert.get_local_gaussian_model(y0[..., 0])
    assert_close(R_j, reference.get_local_gaussian_model(y0[..., 0], 1.0)[1], 1e-10)
    assert rel_err(R_j, reference.get_local_gaussian_model(y0[..., 0], 1e-6)[1]) > 1e-3


def test_get_local_gaussian_model_silent_eps_zero():
    y_j = np.zeros((5, 3, 2), np.complex128)
    y_j[:, 1] = 1 + 2j
    v_j, R_j = norbert.get_local_gaussian_model(y_j, eps=0.0)
    assert np.all(np.isfinite(R_j))
    assert not R_j[0].any() and not R_j[2].any()
    assert_close(R_j, reference.get_local_gaussian_model(y_j, eps=0.0)[1], 1e-12)


@pytest.mark.parametrize("dtype, rtol", DTYPES)
@pytest.mark.parametrize("nb_channels", ALL_CHANNELS)
def test_get_mix_model_matches_reference(rng, dtype, rtol, nb_channels):
    v, R = _em_parameters(rng, nb_channels, 3, dtype)
    Cxx = norbert.get_mix_model(v, R)
    assert Cxx.shape == (10, 6, nb_channels, nb_channels)
    assert Cxx.dtype == dtype
    assert_close(Cxx, reference.get_mix_model(v, R), rtol)


@pytest.mark.parametrize("dtype, rtol", DTYPES)
@pytest.mark.parametrize("nb_channels", ALL_CHANNELS)
def test_wiener_gain_matches_reference(rng, dtype, rtol, nb_channels):
    v, R = _em_parameters(rng, nb_channels, 2, dtype)
    shape = (10, 6, nb_channels, nb_channels)
    inv_Cxx = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    G = norbert.wiener_gain(v[..., 1], R[..., 1], inv_Cxx)
    assert G.shape == shape and G.dtype == dtype
    assert_close(G, reference.wiener_gain(v[..., 1], R[..., 1], inv_Cxx), rtol)


@pytest.mark.parametrize("dtype, rtol", DTYPES)
@pytest.mark.parametrize("nb_channels", ALL_CHANNELS)
def test_apply_filter_matches_reference(rng, dtype, rtol, nb_channels):
    _, x = random_problem(rng, nb_channels=nb_channels, dtype=dtype)
    shape = x.shape + (nb_channels,)
    W = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    y = norbert.apply_filter(x, W)
    assert y.shape == x.shape and y.dtype == dtype
    assert_close(y, reference.apply_filter(x, W), rtol)


@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_gain_and_filter_compose_to_one_em_step(rng, nb_channels):
    """get_mix_model + inverse + wiener_gain + apply_filter = EM filter step."""
    y0, x = random_em_problem(rng, nb_channels=nb_channels, nb_sources=2)
    eps = np.finfo(np.float64).eps
    y1, v, R = reference.expectation_maximization(y0, x, iterations=1)
    Cxx = norbert.get_mix_model(v, R)
    reg = reference.regularisation(eps, nb_channels)
    inv_Cxx = np.linalg.inv(Cxx + reg * np.eye(nb_channels))
    for j in range(2):
        y_j = norbert.apply_filter(x, norbert.wiener_gain(v[..., j], R[..., j], inv_Cxx))
        assert_close(y_j, y1[..., j], 1e-9)


# ------------------------------------------------------------------- contrib
@pytest.mark.parametrize("nb_channels", [2, 3])
@pytest.mark.parametrize("real", [True, False])
@pytest.mark.parametrize("thresh, slope", [(0.6, 15), (0.3, 5)])
def test_compress_filter_multichannel(rng, nb_channels, real, thresh, slope):
    shape = (6, 5, nb_channels, nb_channels)
    noise = 0.5 * rng.standard_normal(shape) / nb_channels
    W = noise + np.eye(nb_channels) * rng.uniform(0, 1, shape[:2] + (1, 1)) / nb_channels
    if not real:
        W = W + 0.1j * rng.standard_normal(shape)
    out = norbert.contrib.compress_filter(W, thresh=thresh, slope=slope)
    expected = reference.compress_filter(W, thresh=thresh, slope=slope)
    assert out.shape == W.shape
    assert_close(out, expected, 1e-10)
    if real:  # the formula, written out once more for real filters
        tr = np.trace(W, axis1=-2, axis2=-1)
        formula = W / (1 + np.exp(-slope * (tr - thresh)))[..., None, None]
        formula /= (np.finfo(float).eps + tr)[..., None, None]
        assert_close(out, formula, 1e-12)


@pytest.mark.parametrize("thresh, slope", [(0.6, 15), (0.3, 5)])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_compress_filter_single_channel(rng, thresh, slope, dtype, rtol):
    W = rng.uniform(0, 1, (6, 5, 1, 1)).astype(dtype)
    out = norbert.contrib.compress_filter(W, thresh=thresh, slope=slope)
    assert out.shape == W.shape
    assert_close(out, 1 / (1 + np.exp(-slope * (W.astype(float) - thresh))), rtol)


@pytest.mark.parametrize(
    "shape, width, temporal",
    [((20,), 1, False), ((20,), 2, False), ((15, 9), 1, False), ((15, 9), 3, False),
     ((15, 9, 2, 3), 1, False), ((15, 9, 2, 3), 2, False), ((15, 9, 2, 3), 1, True),
     ((15, 9, 2, 3), 3, True),
     ((15, 9), 2, True)],
)
def test_smooth_matches_reference(rng, shape, width, temporal):
    v = rng.gamma(1.0, 1.0, shape)
    out = norbert.contrib.smooth(v, width=width, temporal=temporal)
    assert out.shape == v.shape
    assert_close(out, reference.smooth(v, width=width, temporal=temporal), 1e-12)


@pytest.mark.parametrize("temporal", [False, True])
def test_smooth_does_not_mix_sources_or_channels(rng, temporal):
    v = np.zeros((15, 9, 2, 3))
    v[..., 0, 1] = rng.gamma(1.0, 1.0, (15, 9))
    out = norbert.contrib.smooth(v, width=2, temporal=temporal)
    mask = np.zeros(v.shape, bool)
    mask[..., 0, 1] = True
    assert not out[~mask].any()
    assert out[mask].min() > 0


@pytest.mark.parametrize("thresh, slope", [(0.6, 15), (0.4, 15), (0.5, 3)])
def test_reduce_interferences_matches_reference(rng, thresh, slope):
    v, _ = random_problem(rng, nb_frames=14, nb_bins=8, nb_channels=2, nb_sources=3)
    out = norbert.contrib.reduce_interferences(v, thresh=thresh, slope=slope)
    assert out.shape == v.shape
    assert_close(out, reference.reduce_interferences(v, thresh=thresh, slope=slope), 1e-10)


def test_reduce_interferences_honours_thresh_and_slope(rng):
    v, _ = random_problem(rng, nb_frames=14, nb_bins=8, nb_channels=2, nb_sources=3)
    default = norbert.contrib.reduce_interferences(v)
    assert rel_err(norbert.contrib.reduce_interferences(v, thresh=0.3), default) > 1e-3
    assert rel_err(norbert.contrib.reduce_interferences(v, slope=3), default) > 1e-3
    # a higher threshold removes more, everywhere; a steep slope binarises
    reduce_interferences = norbert.contrib.reduce_interferences
    assert np.all(reduce_interferences(v, thresh=0.8) <= reduce_interferences(v, thresh=0.3))
    steep = norbert.contrib.reduce_interferences(v, thresh=0.5, slope=1000) / v
    assert np.mean((steep < 1e-6) | (steep > 1 - 1e-6)) > 0.95


@pytest.mark.parametrize("mono_v", [False, True])
@pytest.mark.parametrize("autoscale", [False, True])
@pytest.mark.parametrize("alpha", [1, 2])
def test_residual_model_matches_reference(rng, mono_v, autoscale, alpha):
    v, x = random_problem(rng, nb_channels=2, nb_sources=2, mono_v=mono_v)
    v = 0.7 * v**alpha  # an under-estimating model, so the residual is not empty
    out = norbert.contrib.residual_model(v, x, alpha=alpha, autoscale=autoscale)
    assert out.shape == x.shape + (3,)
    expected = reference.residual_model(v, x, alpha=alpha, autoscale=autoscale)
    assert_close(out, expected, 1e-10)
    assert expected[..., -1].any()


def test_residual_model_autoscale_changes_sources(rng):
    v, x = random_problem(rng, nb_channels=2, nb_sources=2)
    plain = norbert.contrib.residual_model(3.0 * v, x)
    scaled = norbert.contrib.residual_model(3.0 * v, x, autoscale=True)
    assert np.array_equal(plain[..., :2], np.broadcast_to(3.0 * v, plain[..., :2].shape))
    assert rel_err(scaled[..., :2], plain[..., :2]) > 0.1
    # the residual is computed from the sources that are returned
    vx = np.maximum(np.finfo(v.dtype).eps, np.abs(x))
    assert_close(scaled[..., 2], np.maximum(0, vx - scaled[..., :2].sum(-1)), 1e-12)


def test_contrib_reexported_at_top_level():
    for name in ("residual_model", "smooth", "reduce_interferences", "compress_filter"):
        assert getattr(norbert, name) is getattr(norbert.contrib, name)


# ------------------------------------ inputs unmodified, any memory layout
def _inputs(name, rng):
    """(function, reference function, args, kwargs) for every public function."""
    if name in ("wiener", "softmask", "residual_model"):
        # max|x| > 10: wiener rescales
        v, x = random_problem(rng, nb_channels=2, nb_sources=3, scale=100.0)
        kwargs = {"iterations": 2} if name == "wiener" else {}
        args = (v, x)
    elif name == "expectation_maximization":
        args, kwargs = random_em_problem(rng, nb_channels=3, nb_sources=2), {"iterations": 2}
    elif name == "get_local_gaussian_model":
        y0 = random_em_problem(rng, nb_channels=2, nb_sources=1)[0]
        args, kwargs = (np.ascontiguousarray(y0[..., 0]),), {}
    elif name == "get_mix_model":
        args, kwargs = _em_parameters(rng, 3, 2, np.complex128), {}
    elif name == "wiener_gain":
        v, R = _em_parameters(rng, 2, 2, np.complex128)
        inv = np.linalg.inv(reference.get_mix_model(v, R) + 0.1 * np.eye(2))
        args, kwargs = (np.ascontiguousarray(v[..., 0]), np.ascontiguousarray(R[..., 0]), inv), {}
    elif name == "apply_filter":
        _, x = random_problem(rng, nb_channels=3)
        W = rng.standard_normal(x.shape + (3,)) + 1j * rng.standard_normal(x.shape + (3,))
        args, kwargs = (x, W), {}
    elif name in ("smooth", "reduce_interferences"):
        args, kwargs = (random_problem(rng, nb_channels=2, nb_sources=3)[0],), {}
    elif name == "compress_filter":
        W = rng.standard_normal((6, 5, 2, 2)) + 1j * rng.standard_normal((6, 5, 2, 2))
        args, kwargs = (W,), {}
    module = norbert.contrib if hasattr(norbert.contrib, name) else norbert
    return getattr(module, name), getattr(reference, name), args, kwargs


PUBLIC = [
    "wiener", "expectation_maximization", "softmask", "get_local_gaussian_model", "get_mix_model",
    "wiener_gain", "apply_filter", "residual_model", "smooth", "reduce_interferences",
    "compress_filter",
]


def _relayout(a, layout):
    if layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
    elif layout == "fortran":
        a = np.asfortranarray(a)
        assert a.ndim < 2 or not a.flags.c_contiguous
    elif layout == "noncontiguous":
        a = np.stack([a, np.zeros_like(a)], axis=-1)[..., 0]
        assert not a.flags.c_contiguous and not a.flags.f_contiguous
    elif layout == "bigendian":
        a = a.astype(a.dtype.newbyteorder(">"))
    return a


@pytest.mark.parametrize("layout", ["c", "readonly", "fortran", "noncontiguous", "bigendian"])
@pytest.mark.parametrize("name", PUBLIC)
def test_inputs_unmodified_any_layout(rng, name, layout):
    func, ref_func, args, kwargs = _inputs(name, rng)
    args = tuple(_relayout(a, layout) for a in args)
    copies = [a.copy() for a in args]
    out = func(*args, **kwargs)
    for a, c in zip(args, copies):
        assert a.dtype == c.dtype
        assert np.array_equal(a, c), f"{name} modified its input"
    expected = ref_func(*args, **kwargs)
    outs = out if isinstance(out, tuple) else (out,)
    expecteds = expected if isinstance(expected, tuple) else (expected,)
    assert len(outs) == len(expecteds)
    for o, e in zip(outs, expecteds):
        assert not any(np.shares_memory(o, a) for a in args)
        assert_close(o, e, 1e-10)


OUTPUT_KINDS = {
    "wiener": "c",
    "softmask": "c",
    "expectation_maximization": "crc",  # y, v, R
    "get_local_gaussian_model": "rc",  # v_j, R_j
}


@pytest.mark.parametrize("name", sorted(OUTPUT_KINDS))
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_output_precision_follows_x(rng, name, dtype):
    func, _, args, kwargs = _inputs(name, rng)
    args = tuple(a.astype(dtype) if np.iscomplexobj(a) else a.astype(_real(dtype)) for a in args)
    out = func(*args, **kwargs)
    outs = out if isinstance(out, tuple) else (out,)
    assert len(outs) == len(OUTPUT_KINDS[name])
    for o, kind in zip(outs, OUTPUT_KINDS[name]):
        assert o.dtype == (np.dtype(dtype) if kind == "c" else _real(dtype))
