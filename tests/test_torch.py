"""CPU torch tensors in, tensors out: every public function, without copies.

Skips without torch (CI installs it separately: ``pip install torch==2.13.0``).
"""

import subprocess
import sys

import numpy as np
import pytest
from conftest import random_em_problem, random_problem

import norbert
import norbert.contrib
from norbert._torch import accepts_tensors

torch = pytest.importorskip("torch")


def _problems(rng, dtype):
    """{name: (positional arrays, keywords)} for every public function, NumPy inputs."""
    v, x = random_problem(rng, nb_frames=12, nb_bins=9, nb_channels=2, nb_sources=3, dtype=dtype)
    y0, _ = random_em_problem(rng, 12, 9, 2, 3, dtype=dtype)
    _, vj, R = norbert.expectation_maximization(y0, x, iterations=1)
    Cxx = norbert.get_mix_model(vj, R)
    inv_Cxx = np.linalg.inv(Cxx + 1e-3 * np.eye(2))
    G = norbert.wiener_gain(vj[..., 0], R[..., 0], inv_Cxx)
    return {
        "wiener": ((v, x), {"iterations": 2}),
        "expectation_maximization": ((y0, x), {"iterations": 1}),
        "softmask": ((v, x), {"logit": 0.4}),
        "wiener_gain": ((vj[..., 0], R[..., 0], inv_Cxx), {}),
        "apply_filter": ((x, G), {}),
        "get_mix_model": ((vj, R), {}),
        "get_local_gaussian_model": ((y0[..., 0],), {}),
        "residual_model": ((v, x), {"alpha": 2, "autoscale": True}),
        "smooth": ((v,), {"width": 1}),
        "reduce_interferences": ((v,), {}),
        "compress_filter": ((G,), {}),
    }


NAMES = list(_problems(np.random.default_rng(0), np.complex128))
CONTRIB = ("residual_model", "smooth", "reduce_interferences", "compress_filter")


def _as_tuple(r):
    return r if isinstance(r, tuple) else (r,)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("name", NAMES)
def test_tensors_in_give_equal_tensors_out(rng, name, dtype):
    args, kwargs = _problems(rng, dtype)[name]
    func = getattr(norbert, name)
    expected = _as_tuple(func(*args, **kwargs))
    tensors = [torch.from_numpy(a) for a in args]
    got = _as_tuple(func(*tensors, **kwargs))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert isinstance(g, torch.Tensor)
        assert g.numpy().dtype == e.dtype and g.shape == e.shape
        assert np.array_equal(g.numpy(), e)  # bitwise: the same computation
    for t, a in zip(tensors, args):
        assert np.array_equal(t.numpy(), a)  # inputs unmodified


@pytest.mark.parametrize("name", NAMES)
def test_mixed_and_keyword_tensor_arguments(rng, name):
    args, kwargs = _problems(rng, np.complex128)[name]
    func = getattr(norbert, name)
    expected = _as_tuple(func(*args, **kwargs))
    # the last array as a keyword tensor, the others as NumPy arrays
    import inspect

    params = list(inspect.signature(func).parameters)
    mixed = dict(kwargs, **{params[len(args) - 1]: torch.from_numpy(args[-1])})
    got = _as_tuple(func(*args[:-1], **mixed))
    for g, e in zip(got, expected):
        assert isinstance(g, torch.Tensor) and np.array_equal(g.numpy(), e)


@pytest.mark.parametrize("name", CONTRIB)
def test_contrib_functions_are_the_wrapped_ones(name):
    assert getattr(norbert.contrib, name) is getattr(norbert, name)
    assert getattr(norbert, name).__wrapped__.__module__ == "norbert.contrib"


def test_wrapper_keeps_signature_and_docstring():
    import inspect

    from norbert import _filtering

    for name in ("wiener", "expectation_maximization", "softmask"):
        wrapped, plain = getattr(norbert, name), getattr(_filtering, name)
        assert inspect.signature(wrapped) == inspect.signature(plain)
        assert wrapped.__doc__ == plain.__doc__ and wrapped.__name__ == name


def test_no_copy_on_the_way_in_or_out():
    identity = accepts_tensors(lambda a: a)
    t = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    a = accepts_tensors(lambda a: (np.shares_memory(a, t.numpy()), a))(t)
    assert a[0]  # the function saw a view of the tensor
    assert identity(t).data_ptr() == t.data_ptr()  # and the result shares it back
    # strided views are passed as strided arrays, not copied
    s = t.transpose(0, 2)
    assert identity(s).data_ptr() == s.data_ptr()
    assert identity(s).stride() == s.stride()


def test_numpy_view_of_computing_dtype_shares_memory(rng):
    from norbert._torch import as_array

    v, x = random_problem(rng, nb_channels=2, nb_sources=2, dtype=np.complex64)
    tx, tv = torch.from_numpy(x), torch.from_numpy(v)
    assert np.shares_memory(as_array(tx), x) and np.shares_memory(as_array(tv), v)


def test_output_tensor_is_filled_and_returned(rng):
    v, x = random_problem(rng, nb_channels=2, nb_sources=3, dtype=np.complex64)
    expected = norbert.wiener(v, x)
    for func in (norbert.wiener, norbert.softmask):
        out = torch.empty(expected.shape, dtype=torch.complex64)
        ptr = out.data_ptr()
        r = func(torch.from_numpy(v), torch.from_numpy(x), out=out)
        assert r is out and out.data_ptr() == ptr
        assert np.array_equal(out.numpy(), func(v, x))
    # NumPy inputs and a tensor out: the tensor is returned as well
    out = torch.empty(expected.shape, dtype=torch.complex64)
    assert norbert.wiener(v, x, out=out) is out
    y, _, _ = norbert.expectation_maximization(torch.from_numpy(expected), x, 1, out=out)
    assert y is out


def test_conjugate_negative_and_strided_tensors(rng):
    v, x = random_problem(rng, nb_channels=2, nb_sources=3, dtype=np.complex128)
    tx = torch.from_numpy(np.conj(x)).conj()  # a lazy conjugate: the values of x
    assert tx.is_conj()
    assert np.array_equal(norbert.wiener(torch.from_numpy(v), tx).numpy(), norbert.wiener(v, x))
    tneg = torch.from_numpy(-x)._neg_view()
    assert tneg.is_neg()
    assert np.array_equal(norbert.softmask(v, tneg).numpy(), norbert.softmask(v, x))
    xf = np.asfortranarray(x)
    tf = torch.from_numpy(xf)
    assert not tf.is_contiguous()
    assert np.array_equal(norbert.wiener(v, tf).numpy(), norbert.wiener(v, x))


def test_scalar_tensor_parameters(rng):
    v, x = random_problem(rng, nb_channels=2, nb_sources=3, dtype=np.complex128)
    expected = norbert.wiener(v, x, eps=1e-10)
    got = norbert.wiener(v, x, eps=torch.tensor(1e-10, dtype=torch.float64))
    assert isinstance(got, torch.Tensor) and np.array_equal(got.numpy(), expected)


@pytest.mark.parametrize("name", NAMES)
def test_tensors_that_require_grad_are_refused(rng, name):
    args, kwargs = _problems(rng, np.complex128)[name]
    tensors = [torch.from_numpy(a).requires_grad_() for a in args]
    with pytest.raises(TypeError, match=r"not differentiable.*\.detach\(\)"):
        getattr(norbert, name)(*tensors, **kwargs)
    with torch.no_grad():  # grad mode does not change a leaf's requires_grad: still refused
        with pytest.raises(TypeError, match="not differentiable"):
            getattr(norbert, name)(*tensors, **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_tensors_on_another_device_are_refused(rng, name):
    args, kwargs = _problems(rng, np.complex128)[name]
    device = "cuda" if torch.cuda.is_available() else "meta"
    tensors = [torch.from_numpy(a).to(device) for a in args]
    with pytest.raises(TypeError, match=r"\.cpu\(\)"):
        getattr(norbert, name)(*tensors, **kwargs)


def test_unsupported_tensor_dtype_is_a_clear_type_error(rng):
    v, x = random_problem(rng, nb_channels=2, nb_sources=3, dtype=np.complex64)
    with pytest.raises(TypeError, match="bfloat16"):
        norbert.wiener(torch.from_numpy(v).to(torch.bfloat16), x)


def test_validation_errors_are_the_numpy_ones(rng):
    v, x = random_problem(rng, nb_channels=2, nb_sources=3, dtype=np.complex64)
    with pytest.raises(TypeError) as from_numpy:
        norbert.wiener(v, x.real.copy())
    with pytest.raises(TypeError) as from_torch:
        norbert.wiener(torch.from_numpy(v), torch.from_numpy(x.real.copy()))
    assert str(from_numpy.value) == str(from_torch.value)


def test_import_norbert_does_not_import_torch():
    code = (
        "import sys, numpy as np, norbert, norbert.compat, norbert.contrib\n"
        "x = np.ones((3, 4, 2), np.complex64)\n"
        "norbert.wiener(np.ones((3, 4, 2, 2), np.float32), x)\n"
        "norbert.smooth(np.ones((3, 4)))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("lazy", ["conj", "neg"])
def test_lazy_out_views_are_refused(lazy):
    # their NumPy view would be a resolved copy: results written there would be lost
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((3, 4, 2)) + 1j * rng.standard_normal((3, 4, 2)))
    v = torch.from_numpy(rng.random((3, 4, 2, 2)))
    out = torch.zeros(3, 4, 2, 2, dtype=torch.complex128)
    out = out.conj() if lazy == "conj" else torch._neg_view(out)
    with pytest.raises(TypeError, match="out is a lazy conjugate or negative view"):
        norbert.wiener(v, x, out=out)
