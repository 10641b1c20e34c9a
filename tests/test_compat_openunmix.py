"""norbert.compat.openunmix against open-unmix 1.3's own filtering.py, and patched().

Skips without torch and open-unmix. CI installs them separately, pinned:
``pip install torch==2.13.0`` and ``pip install openunmix==1.3.0 --no-deps`` (open-unmix's
``__init__`` imports torchaudio, which is stubbed here when missing: the filter, the
models and the Separator's torch STFT do not use it).
"""

import ast
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("openunmix") is None:
    pytest.skip("open-unmix is not installed", allow_module_level=True)

from norbert.compat import openunmix as nc  # noqa: E402 (after the skips)

OPENUNMIX_DIR = Path(importlib.util.find_spec("openunmix").submodule_search_locations[0])
# normwise relative tolerances of the issue: open-unmix computes in the tensors' precision
RTOL = {torch.float32: 1e-5, torch.float64: 1e-6}


def _load_reference_filtering():
    """open-unmix's filtering.py as a private module: never the one patch() replaces."""
    spec = importlib.util.spec_from_file_location(
        "_openunmix_filtering_reference", OPENUNMIX_DIR / "filtering.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_reference_filtering()


@pytest.fixture(scope="module")
def openunmix_package():
    """The installed openunmix package (with a stub torchaudio when it is missing)."""
    stubbed = False
    try:
        import torchaudio  # noqa: F401
    except ImportError:
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
        stubbed = True
    try:
        import openunmix.filtering
        import openunmix.model

        yield openunmix
    finally:
        nc.unpatch()
        if stubbed:
            sys.modules.pop("torchaudio", None)


def rel(actual, expected):
    diff = torch.linalg.vector_norm((actual - expected).double())
    return float(diff / torch.linalg.vector_norm(expected.double()))


def _problem(nb_channels, dtype, nb_sources=3, seed=0, level=30.0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(80, 33, nb_channels, 2, generator=g) * level
    spectrograms = torch.rand(80, 33, nb_channels, nb_sources, generator=g) * level
    return spectrograms.to(dtype), mix.to(dtype)


# -- the filter ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("nb_channels", [1, 2])
@pytest.mark.parametrize("iterations", [0, 1, 2])
@pytest.mark.parametrize("softmask", [False, True])
@pytest.mark.parametrize("residual", [False, True])
def test_wiener_matches_openunmix(dtype, nb_channels, iterations, softmask, residual):
    v, mix = _problem(nb_channels, dtype)
    expected = reference.wiener(
        v.clone(), mix.clone(), iterations, softmask=softmask, residual=residual
    )
    v_before, mix_before = v.clone(), mix.clone()
    got = nc.wiener(v, mix, iterations, softmask=softmask, residual=residual)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert rel(got, expected) < RTOL[dtype]
    assert torch.equal(v, v_before) and torch.equal(mix, mix_before)  # inputs unmodified


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale_factor", [0.5, 10.0, 1000.0])
def test_wiener_scale_factor_and_eps(dtype, scale_factor):
    v, mix = _problem(2, dtype, seed=1)
    for eps, residual in ((1e-10, True), (1e-4, False)):
        kwargs = dict(scale_factor=scale_factor, eps=eps, residual=residual)
        expected = reference.wiener(v.clone(), mix.clone(), 1, **kwargs)
        assert rel(nc.wiener(v, mix, 1, **kwargs), expected) < RTOL[dtype]


def test_wiener_mono_spectrograms_with_stereo_mixture():
    v, mix = _problem(2, torch.float64, seed=2)
    v = v[..., :1, :]
    for softmask in (False, True):
        expected = reference.wiener(v.clone(), mix.clone(), 1, softmask=softmask)
        assert rel(nc.wiener(v, mix, 1, softmask=softmask), expected) < 1e-6


def test_wiener_strided_mixture_as_the_separator_passes_it():
    # Separator permutes (C, F, T, 2) into (T, F, C, 2): not contiguous, still a view
    v, mix = _problem(2, torch.float32, seed=3)
    strided = mix.permute(2, 1, 0, 3).contiguous().permute(2, 1, 0, 3)
    assert not strided.is_contiguous()
    assert torch.equal(nc.wiener(v, strided), nc.wiener(v, mix))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("nb_channels", [1, 2])
@pytest.mark.parametrize("iterations", [0, 1, 2])
def test_expectation_maximization_matches_openunmix(dtype, nb_channels, iterations):
    v, mix = _problem(nb_channels, dtype, seed=4, level=1.0)
    y0 = reference.wiener(v, mix.clone(), 0, softmask=True)
    y, vv, R = reference.expectation_maximization(y0.clone(), mix.clone(), iterations)
    y0_before = y0.clone()
    got_y, got_v, got_R = nc.expectation_maximization(y0, mix, iterations)
    assert torch.equal(y0, y0_before)  # open-unmix overwrites y; norbert does not
    assert got_y.shape == y.shape and got_v.shape == vv.shape and got_y.dtype == y.dtype
    assert isinstance(got_R, list) and len(got_R) == len(R)
    assert rel(got_y, y) < RTOL[dtype]
    if iterations:
        assert rel(got_v, vv) < RTOL[dtype]
        for a, b in zip(got_R, R):
            assert a.shape == b.shape and rel(a, b) < RTOL[dtype]
    else:
        assert not got_v.any() and not any(r.any() for r in got_R)


def test_signatures_and_defaults_are_openunmix():
    import inspect

    for name in ("wiener", "expectation_maximization"):
        ours = inspect.signature(getattr(nc, name))
        theirs = inspect.signature(getattr(reference, name))
        assert [(p.name, p.default) for p in ours.parameters.values()] == [
            (p.name, p.default) for p in theirs.parameters.values()
        ]


def test_gradients_are_refused():
    v, mix = _problem(2, torch.float32)
    with pytest.raises(TypeError, match=r"not differentiable.*\.detach\(\)"):
        nc.wiener(v.requires_grad_(), mix)


def test_bad_layout_is_refused():
    v, mix = _problem(2, torch.float32)
    with pytest.raises(ValueError, match="length 2"):
        nc.wiener(v, mix[..., :1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors_are_filtered_on_the_cpu_and_moved_back():
    v, mix = _problem(2, torch.float32)
    got = nc.wiener(v.cuda(), mix.cuda())
    assert got.device.type == "cuda" and torch.equal(got.cpu(), nc.wiener(v, mix))


def test_stub_matches_runtime():
    from test_stubs import _runtime_parameters, _same_parameters, _stub_parameters

    for module_name in ("norbert.compat", "norbert.compat.openunmix"):
        module = importlib.import_module(module_name)
        origin = Path(module.__file__)
        tree = ast.parse(origin.with_suffix(".pyi").read_text(encoding="utf-8"))
        functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        for node in functions:
            runtime = _runtime_parameters(getattr(module, node.name))
            assert _same_parameters(_stub_parameters(node), runtime), node.name
        stub_all = [
            n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "__all__"
        ]
        assert sorted(ast.literal_eval(stub_all[0].value)) == sorted(module.__all__)
        assert {n.name for n in functions} | {"openunmix"} >= set(module.__all__)


# -- patch, unpatch, patched -------------------------------------------------------------


def _filters(openunmix):
    return (
        openunmix.model.wiener,
        openunmix.filtering.wiener,
        openunmix.filtering.expectation_maximization,
    )


def test_patched_replaces_and_restores(openunmix_package):
    ou = openunmix_package
    originals = _filters(ou)
    with nc.patched() as replaced:
        assert _filters(ou) == (nc.wiener, nc.wiener, nc.expectation_maximization)
        assert "openunmix.model.wiener" in replaced
    assert _filters(ou) == originals


def test_patched_restores_after_an_exception(openunmix_package):
    ou = openunmix_package
    originals = _filters(ou)
    with pytest.raises(RuntimeError, match="boom"):
        with nc.patched():
            assert ou.model.wiener is nc.wiener
            raise RuntimeError("boom")
    assert _filters(ou) == originals


def test_patch_unpatch_and_nesting(openunmix_package):
    ou = openunmix_package
    originals = _filters(ou)
    try:
        assert "openunmix.model.wiener" in nc.patch()
        assert nc.patch() == []  # twice is harmless: the originals are kept
        with nc.patched() as inner:
            assert inner == []
        assert ou.model.wiener is nc.wiener  # the inner block did not undo the outer patch
    finally:
        nc.unpatch()
    assert _filters(ou) == originals


def test_patch_reaches_demucs(openunmix_package, monkeypatch):
    # demucs' HDemucs and HTDemucs call the wiener they imported from openunmix.filtering
    for name in ("demucs", "demucs.hdemucs", "demucs.htdemucs"):
        module = types.ModuleType(name)
        module.wiener = openunmix_package.filtering.wiener
        monkeypatch.setitem(sys.modules, name, module)
    original = sys.modules["demucs.hdemucs"].wiener
    with nc.patched() as replaced:
        assert {"demucs.hdemucs.wiener", "demucs.htdemucs.wiener"} <= set(replaced)
        assert sys.modules["demucs.hdemucs"].wiener is nc.wiener
    assert sys.modules["demucs.hdemucs"].wiener is original
    assert sys.modules["demucs.htdemucs"].wiener is original


def test_patch_without_openunmix_or_demucs(monkeypatch):
    for name in (
        "openunmix",
        "openunmix.filtering",
        "openunmix.model",
        "demucs",
        "demucs.hdemucs",
        "demucs.htdemucs",
    ):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    with pytest.raises(ImportError, match="neither open-unmix nor demucs"):
        nc.patch()


@pytest.mark.parametrize("residual, softmask, niter", [(False, False, 1), (True, True, 2)])
def test_separator_under_patched_is_close_to_openunmix(
    openunmix_package, residual, softmask, niter
):
    from openunmix.model import OpenUnmix, Separator

    torch.manual_seed(0)
    n_fft, n_hop = 512, 128
    models = {
        name: OpenUnmix(nb_bins=n_fft // 2 + 1, nb_channels=2, hidden_size=16).eval()
        for name in ("vocals", "drums", "bass")
    }
    separator = Separator(
        models,
        niter=niter,
        softmask=softmask,
        residual=residual,
        n_fft=n_fft,
        n_hop=n_hop,
        wiener_win_len=100,
    ).eval()
    audio = torch.randn(1, 2, 44100 // 2)
    with torch.no_grad():
        expected = separator(audio)
        calls = []
        with nc.patched():
            original = openunmix_package.model.wiener
            openunmix_package.model.wiener = lambda *a, **k: calls.append(1) or original(*a, **k)
            got = separator(audio)
    assert calls, "the Separator did not call norbert's filter"
    assert got.shape == expected.shape
    assert rel(got, expected) < 1e-5


@pytest.mark.parametrize("scale", [1.0, 3.5])
def test_layout_change_over_several_blocks_and_threads(scale):
    # 4 MB blocks: 300 frames of 513 bins x 2 channels x 4 sources (complex64) are 3 blocks
    rng = np.random.default_rng(0)
    shape = (300, 513, 2, 4)
    y = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    expected = np.stack([y.real * np.float32(scale), y.imag * np.float32(scale)], axis=-2)
    got = nc._to_openunmix_layout(y.copy(), scale)
    assert got.shape == (300, 513, 2, 2, 4) and np.array_equal(got.numpy(), expected)
