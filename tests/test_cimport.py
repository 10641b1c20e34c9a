"""The public C API: build a downstream Cython extension against the installed norbert.

tests/cython_consumer is compiled in a temporary directory with the running interpreter,
cimporting norbert._core through norbert.get_include() only (as numpy.random's and
scipy.linalg's extending tests do), and its nogil kernel loops are compared with the
Python API. It needs Cython, setuptools and a C compiler, and the .pxd files of a
non-editable install (an editable install serves src/_core, which Cython cannot find
under the name norbert/_core); without them it skips.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

import norbert

CONSUMER = Path(__file__).parent / "cython_consumer"


def _skip_reason():
    include = Path(norbert.get_include())
    if not (include / "norbert" / "_core" / "__init__.pxd").is_file():
        return (
            f"norbert.get_include() ({include}) holds no norbert/_core/__init__.pxd: "
            "an editable install; install the package (pip install .) to test the C API"
        )
    for module in ("Cython", "setuptools"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    if sys.platform != "win32":
        cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
        if shutil.which(cc) is None:
            return f"no C compiler ({cc!r} not found)"
    return None


@pytest.fixture(scope="module")
def consumer(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    build = tmp_path_factory.mktemp("cython_consumer")
    for name in ("consumer.pyx", "setup.py"):
        shutil.copy(CONSUMER / name, build / name)
    proc = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=build,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.fail(
            "building the downstream extension failed\n"
            f"--- stdout ---\n{proc.stdout[-8000:]}\n--- stderr ---\n{proc.stderr[-8000:]}"
        )
    (so,) = [
        p for p in build.iterdir() if p.name.startswith("consumer.") and p.suffix in (".so", ".pyd")
    ]
    spec = importlib.util.spec_from_file_location("consumer", so)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hermitian(rng, n, batch):
    B = rng.standard_normal((batch, n, n)) + 1j * rng.standard_normal((batch, n, n))
    return B @ B.conj().transpose(0, 2, 1) + 0.1 * np.eye(n)


def _interleaved(a):
    """A copy of a complex array as interleaved (re, im) doubles, shape a.shape + (2,)."""
    return np.array(a, dtype=np.complex128, order="C").view(np.float64).reshape(a.shape + (2,))


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_hermitian_solve_matches_numpy(consumer, rng, n):
    A = _hermitian(rng, n, batch=5)
    b = rng.standard_normal((5, n)) + 1j * rng.standard_normal((5, n))
    A_buf, b_buf = _interleaved(A), _interleaved(b)
    status = consumer.solve_batch(A_buf, b_buf)
    z = b_buf.view(np.complex128)[..., 0]
    assert status.tolist() == [0] * 5
    np.testing.assert_allclose(z, np.linalg.solve(A, b[..., None])[..., 0], rtol=1e-10)


def test_hermitian_solve_status_codes(consumer):
    # a zero matrix (every source silent) gives z = 0 and 1; NaN gives -1, never an exception
    A = np.zeros((2, 3, 3, 2))
    A[1, 0, 0, 0] = np.nan
    b = np.ones((2, 3, 2))
    status = consumer.solve_batch(A, b)
    assert status.tolist() == [1, -1]
    assert not b[0].any()


def test_kernels_report_bad_shapes_as_status(consumer):
    assert consumer.bad_shape_status() == norbert._core.Status.BAD_SHAPE


def _dtypes(dtype):
    return np.dtype(dtype), np.empty(0, dtype).real.dtype


@pytest.mark.parametrize("dtype, rtol", [(np.complex128, 1e-12), (np.complex64, 1e-5)])
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_local_gaussian_model_matches_python(consumer, rng, dtype, rtol, nb_channels):
    cdtype, rdtype = _dtypes(dtype)
    shape = (7, 5, nb_channels)
    y_j = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(cdtype)
    P = np.empty(shape[:2] + (1,), rdtype)
    R = consumer.local_gaussian_model(y_j[..., None], P, 0.5)
    v_ref, R_ref = norbert.get_local_gaussian_model(y_j, eps=0.5)
    np.testing.assert_allclose(P[..., 0], v_ref, rtol=rtol)
    R = R.view(np.complex128)[:, 0, :, :, 0]
    np.testing.assert_allclose(R, R_ref, rtol=rtol, atol=rtol * np.abs(R_ref).max())


@pytest.mark.parametrize("dtype, rtol", [(np.complex128, 1e-12), (np.complex64, 1e-5)])
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
@pytest.mark.parametrize("iterations", [1, 2])
@pytest.mark.parametrize("nb_frames, nb_bins", [(8, 6), (40, 150)])
def test_expectation_maximization_matches_python(
    consumer, rng, dtype, rtol, nb_channels, iterations, nb_frames, nb_bins
):
    # (40, 150): enough TF points for the kernels to use both threads and several bin ranges
    cdtype, rdtype = _dtypes(dtype)
    T, F, C, J = nb_frames, nb_bins, nb_channels, 3
    x = (rng.standard_normal((T, F, C)) + 1j * rng.standard_normal((T, F, C))).astype(cdtype)
    y0 = norbert.softmask(rng.random((T, F, C, J)), x)
    eps = float(np.finfo(rdtype).eps)
    P = np.empty((T, F, J), rdtype)
    y = np.empty((T, F, C, J), cdtype)
    # blocks of 3 frames and 2 threads: the kernels stream and split bins like the facade
    R = consumer.expectation_maximization(x, y0, P, y, iterations, eps, 3, 2)
    y_ref, v_ref, R_ref = norbert.expectation_maximization(y0, x, iterations=iterations)
    np.testing.assert_allclose(y, y_ref, rtol=rtol, atol=rtol * np.abs(y_ref).max())
    np.testing.assert_allclose(P, v_ref, rtol=rtol, atol=rtol * np.abs(v_ref).max())
    R = R.view(np.complex128)[..., 0].transpose(0, 2, 3, 1)
    np.testing.assert_allclose(R, R_ref, rtol=rtol, atol=rtol * np.abs(R_ref).max())


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_mix_model_and_apply_filter_match_python(consumer, rng, dtype):
    cdtype, rdtype = _dtypes(dtype)
    T, F, C, J = 4, 3, 2, 2
    v = rng.random((T, F, J)).astype(rdtype)
    R = (rng.standard_normal((F, C, C, J)) + 1j * rng.standard_normal((F, C, C, J))).astype(cdtype)
    Cxx = np.empty((T, F, C, C), cdtype)
    consumer.mix_model(v, R, Cxx)
    np.testing.assert_allclose(Cxx, norbert.get_mix_model(v, R), rtol=1e-5)
    x = (rng.standard_normal((T, F, C)) + 1j * rng.standard_normal((T, F, C))).astype(cdtype)
    y = np.empty((T, F, C), cdtype)
    consumer.apply_filter(x, Cxx, y)
    np.testing.assert_allclose(y, norbert.apply_filter(x, Cxx), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
@pytest.mark.parametrize("lookahead", [0, 3])
def test_online_kernels_match_online_wiener(consumer, rng, dtype, nb_channels, lookahead):
    cdtype, rdtype = _dtypes(dtype)
    T, F, C, J = 12, 7, nb_channels, 3
    x = (rng.standard_normal((T, F, C)) + 1j * rng.standard_normal((T, F, C))).astype(cdtype)
    v = rng.random((T, F, 1, J)).astype(rdtype)
    P_ring = np.empty((lookahead + 1, F, J), rdtype)
    y = np.empty((T, F, C, J), cdtype)
    consumer.online_stream(x, v, P_ring, y, lookahead, 0.9, float(np.finfo(rdtype).eps))
    stream = norbert.OnlineWiener(F, C, J, lookahead=lookahead, forget=0.9, dtype=cdtype)
    expected = np.concatenate([stream.process(v, x), stream.flush()])
    assert np.array_equal(y, expected)
