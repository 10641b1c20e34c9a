"""Property-based fuzzing of every public function: any input gives a result or a clean error.

Each test draws a call of one public function from everything a caller can pass: sizes
from 0 up (small, so examples are fast), leading batch axes (0 to 2 axes of 0 to 3
elements, for wiener, softmask, expectation_maximization and residual_model), every dtype
(complex, real, float16, integers, bool, object, lists), layouts (Fortran, strided,
negative strides, big-endian, read-only), values (zeros, subnormals, huge, NaN, inf,
negative), odd parameters and ``out=`` arrays (read-only, wrong shape or dtype,
overlapping an input). An oracle (``_expect_*``) says from the policies of
``norbert/_validation.py`` whether the call is valid. The allowed outcomes:

- a valid call returns outputs of the documented shapes and dtypes, all finite;
- any call may raise TypeError, ValueError (ParameterError) or MemoryError, but a valid
  one only when its values are huge for the working precision (results that do not fit
  it; complex64 Wiener calls whose intermediate values overflow float32 are computed in
  double instead, see test_complex64_spectrograms_far_above_the_mixture);
- an invalid call always raises one of those three;
- nothing else: no other exception, no crash or hang, and the inputs never change.

``test_tensors`` (skipped without torch) draws the same calls and passes their arrays as
CPU torch tensors: views of them (``torch.from_numpy``), non-contiguous views, lazy
conjugates and negations, some left as arrays (mixed calls), numbers as 0-d tensors, and
rarely a tensor that requires grad, which must raise a TypeError or ValueError that says
``detach``. The oracle judges what norbert's wrapper passes on (the tensors' NumPy views);
a call with a tensor returns tensors, with the exception or the bits of the NumPy call.

``NORBERT_FUZZ_EXAMPLES`` sets the examples per function (default 600, and a quarter of
that with tensors: 11 x 600 + 11 x 150 = 8250 in all, about 40 s of CPU time, mostly
on one core, so about that long on two idle cores); the search is derandomized, so a run
is reproducible.
``--hypothesis-show-statistics`` shows how often each verdict met each outcome.
"""

import copy
import fractions
import os
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import norbert
from norbert import contrib

EXAMPLES = int(os.environ.get("NORBERT_FUZZ_EXAMPLES", "600"))
FUZZ = settings(
    derandomize=True,
    deadline=None,
    max_examples=EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ALLOWED = (TypeError, ValueError, MemoryError)
OK, ERROR, EITHER = "ok", "error", "either"

# ------------------------------------------------------------------ drawing arrays
DTYPES = {
    # the dtypes a role prefers come first (hypothesis shrinks towards them)
    "stft": ["complex128", "complex64", "complex128", "complex64", "clongdouble", "float64",
             "int64", "bool", "object"],
    "spec": ["float64", "float32", "float64", "float32", "float16", "int64", "uint8", "int8",
             "longdouble", "complex128", "bool", "object"],
    "cplx": ["complex128", "complex64", "float64", "float32", "complex128", "float16", "int8",
             "clongdouble", "bool", "object"],
    "real": ["float64", "float32", "complex128", "complex64", "float16", "int64", "uint8",
             "longdouble", "bool", "object"],
}
VALID_KINDS = {"stft": "c", "spec": "iuf", "cplx": "iufc", "real": "iufc"}
LEVELS = st.sampled_from(["normal", "normal", "normal", "zero", "subnormal", "wide", "huge"])


def mostly(common, rare, odds=9):
    """Draws from `common` `odds` times out of `odds + 1`, else from `rare`: each way of
    spoiling a call is rare, so that about half the calls are valid and get computed.
    `common` and `rare` are lists or strategies."""
    common, rare = (s if isinstance(s, st.SearchStrategy) else st.sampled_from(s)
                    for s in (common, rare))
    # the two strategies are built once: hypothesis validates a new one at every draw
    pick = st.sampled_from([True] * odds + [False])
    return pick.flatmap(lambda common_one: common if common_one else rare)


def _split_dtypes(role):
    ok = [d for d in DTYPES[role] if np.dtype(d).kind in VALID_KINDS[role]]
    return mostly(ok, [d for d in DTYPES[role] if d not in ok])


DTYPE_STRATEGIES = {role: _split_dtypes(role) for role in DTYPES}
SPECIALS = mostly([None], ["nan", "inf", "-inf", "negative"])
LAYOUTS = st.sampled_from([
    "C", "C", "C", "F", "strided", "reversed", "bigendian", "readonly", "list"])
SEEDS = st.integers(0, 2**32 - 1)


def _values(rng, shape, dtype, level, special):
    """An array of `dtype` and `shape` with values of the given level."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iub":
        hi = {"huge": np.iinfo(np.int8 if dtype.kind != "u" else np.uint8).max}.get(level, 20)
        a = np.asarray(rng.integers(0, hi + 1, size=shape))
        if dtype.kind == "i" and special is not None and a.size:
            a.flat[rng.integers(a.size)] = -1
        if dtype.kind == "i" and level == "huge":
            a = a * (np.iinfo(dtype).max // 200)
        return a.astype(dtype)
    scale = {
        "normal": 1.0,
        "zero": 0.0,
        "subnormal": 5e-324 if dtype.itemsize >= 8 and dtype.kind != "c" else 1e-40,
        "wide": 1.0,
        "huge": float(rng.choice([1e30, 1e38, 1e150, 1e300])),
    }[level]
    if level == "subnormal" and dtype in (np.float16,):
        scale = 1e-7
    if level == "subnormal" and dtype == np.complex128:
        scale = 5e-324
    mag = np.asarray(rng.random(shape) * scale)
    if level == "wide":  # 24 orders of magnitude between entries
        mag = np.asarray(10.0 ** rng.uniform(-12, 12, shape))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if dtype.kind == "c":
            a = np.asarray(mag * np.exp(2j * np.pi * rng.random(shape))).astype(dtype)
        elif dtype.kind == "O":
            a = mag.astype(object)
        else:
            a = mag.astype(dtype)
    if special is not None and a.size and dtype.kind != "O":
        value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "negative": -1.0}[special]
        a.flat[rng.integers(a.size)] = value
    return a


def _relayout(a, layout):
    """The same values as `a` in another memory layout (or as nested lists)."""
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        return np.stack([a, a], axis=-1)[..., 0]
    if layout == "reversed":  # negative strides on every axis
        index = (slice(None, None, -1),) * a.ndim
        return a[index].copy()[index]
    if layout == "bigendian":
        return a.astype(a.dtype.newbyteorder(">")) if a.dtype.kind in "iufc" else a
    if layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
        return a
    if layout == "list":
        return a.tolist()
    return a


@st.composite
def arrays(draw, shape, role):
    """An array argument of `shape` (sometimes spoiled: an axis resized, added or removed)."""
    shape = list(shape)
    spoil = draw(mostly([None], ["resize", "add", "drop"], odds=19))
    if spoil == "resize" and shape:
        shape[draw(st.integers(0, len(shape) - 1))] = draw(st.integers(0, 4))
    elif spoil == "add":
        shape.insert(draw(st.integers(0, len(shape))), draw(st.integers(0, 2)))
    elif spoil == "drop" and shape:
        del shape[draw(st.integers(0, len(shape) - 1))]
    rng = np.random.default_rng(draw(SEEDS))
    a = _values(rng, tuple(shape), draw(DTYPE_STRATEGIES[role]),
                draw(LEVELS), draw(SPECIALS))
    return _relayout(a, draw(LAYOUTS))


sizes = st.integers(0, 8)
counts = mostly([1, 2, 1, 2, 3, 4], [0])  # channels, sources
# leading batch axes of wiener, softmask, expectation_maximization and residual_model
batches = mostly([()], st.lists(st.integers(0, 3), min_size=1, max_size=2).map(tuple), odds=3)


def params(*pairs):
    """A parameter drawn from (value, valid) pairs; valid is True, False or EITHER."""
    return mostly([p for p in pairs if p[1] is True], [p for p in pairs if p[1] is not True])


EPS = params((None, True), (0, True), (1e-3, True), (np.float32(1e-3), True), (1.0, True),
             (5e-324, True), (1e300, True), (fractions.Fraction(1, 3), True), (-0.0, True),
             (-1.0, False), (float("nan"), False), (float("inf"), False), ("1e-3", False),
             (True, False), ([1e-3], False), (1j, False))
WORKERS = params((None, True), (1, True), (2, True), (-1, True), (np.int64(2), True),
                 (3, True), (-1000, True), (64, True), (0, False), (1.5, False), ("2", False),
                 (True, False), (np.True_, False), (2**31 - 1, EITHER), (2**31, False),
                 (2**70, False))
ITERATIONS = params((0, True), (1, True), (2, True), (np.int64(1), True), (3, True),
                    (-1, False), (1.5, False), (True, False), ("1", False), (None, False),
                    (np.float64(1.0), False))
FRAMES = params((None, True), (1, True), (2, True), (np.int32(3), True), (10**9, True),
                (2**62, True), (2**70, True), (0, False), (-2, False), (1.5, False),
                (True, False), ("2", False))
LOGIT = params((None, True), (0.3, True), (np.float32(0.5), True), (0.999, True), (1e-300, True),
               (0, False), (1, False), (float("nan"), False), (-0.5, False), ("0.5", False),
               (True, False), ([0.5], False))
PROGRESS = params((None, True), (lambda done, total: None, True), (3, False), ("tqdm", False))
REAL = params((0.6, True), (0.0, True), (-3, True), (np.float32(0.5), True), (15, True),
              (1e300, EITHER), (-1e300, EITHER), (float("nan"), False), (float("inf"), False),
              ("0.5", False), (None, False), (True, False), (1j, False))
ALPHA = params((1, True), (2, True), (0.5, True), (np.float32(1.5), True), (1e-3, True),
               (0, False), (-1, False), (float("nan"), False), (float("inf"), False),
               ("1", False), (None, False), (True, False))
WIDTH = params((1, True), (0, True), (2.5, True), (np.int64(3), True), (0.01, True),
               (1e10, EITHER), (1e300, EITHER), (-1, False), (float("nan"), False),
               (float("inf"), False), ("1", False), (None, False), (True, False))
TEMPORAL = st.sampled_from([False, True, 0, 1, None, "yes", np.bool_(True)])
VERBOSE = st.sampled_from([0, False, None])


# ------------------------------------------------------------------ the oracle
def _asarray(a):
    try:
        return np.asarray(a)
    except (ValueError, TypeError):
        return None


def _numeric(a, kinds="iufc"):
    return a is not None and a.dtype.kind in kinds


def _finite(a, nonnegative=False):
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.isfinite(a)) and (not nonnegative or np.all(a >= 0)))


def _stft_dtype(a):
    return np.dtype(np.complex64 if a.dtype.itemsize == 8 else np.complex128)


def _common_complex(*arrays):
    dt = np.result_type(*[a.dtype for a in arrays], np.complex64)
    return np.dtype(np.complex64 if dt.itemsize <= 8 else np.complex128)


def _contrib_dtype(a):
    if a.dtype in (np.float32, np.float64, np.complex64, np.complex128):
        return a.dtype
    return np.dtype(np.complex128 if a.dtype.kind == "c" else np.float64)


def _real(cdtype):
    return np.empty(0, cdtype).real.dtype


def _huge(arrays, dtype, power=0.25):
    """Whether values are so large that products in `dtype` may overflow (then a clear
    ValueError is an allowed answer to an otherwise valid call)."""
    limit = float(np.finfo(dtype).max) ** power
    with np.errstate(invalid="ignore", over="ignore"):
        return any(a.size and float(np.max(np.abs(a.astype(np.complex128)))) > limit
                   for a in arrays)


def _verdict(valid, specs, huge=False):
    if valid is False:
        return ERROR, specs
    if valid is EITHER or huge:
        return EITHER, specs
    return OK, specs


def _params_valid(*flags):
    if False in flags:
        return False
    return EITHER if EITHER in flags else True


def _out_valid(out, shape, dtype, inputs):
    """check_out's rules; EITHER when out overlaps an input that has no elements."""
    if out is None:
        return True
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype:
        return False
    if not out.flags.writeable or not out.flags.c_contiguous:
        return False
    for a in inputs:
        if isinstance(a, np.ndarray) and np.may_share_memory(out, a):
            return False
    return True


def _expect_filter(name, kw, arrays_ok):
    """wiener, softmask, expectation_maximization: x (..., T, F, C) with any leading batch
    axes; v (..., T, F, {1, C}, J) or y (..., T, F, C, J) with x's."""
    x = _asarray(kw["x"])
    src_name = "y" if name == "expectation_maximization" else "v"
    s = _asarray(kw[src_name])
    if not (_numeric(x, "c") and x.ndim >= 3 and x.shape[-1] >= 1):
        return ERROR, None
    if not (s is not None and s.ndim == x.ndim + 1 and s.shape[-1] >= 1):
        return ERROR, None
    *batch, T, F, C = x.shape
    batch = tuple(batch)
    if src_name == "v":
        valid = _numeric(s, "iuf") and s.shape[:-2] == x.shape[:-1] and s.shape[-2] in (1, C)
    else:
        valid = _numeric(s, "c") and s.shape[:-1] == x.shape
    if not valid:
        return ERROR, None
    J = s.shape[-1]
    cdtype = _stft_dtype(x)
    specs = [(x.shape + (J,), cdtype)]
    if name == "expectation_maximization":
        specs += [(batch + (T, F, J), _real(cdtype)), (batch + (F, C, C, J), cdtype)]
    out_ok = _out_valid(kw.get("out"), x.shape + (J,), cdtype, [kw["x"], kw[src_name]])
    finite = _finite(x) and _finite(s, nonnegative=src_name == "v")
    valid = _params_valid(arrays_ok, out_ok, finite)
    return _verdict(valid, specs, _huge([x, s], _real(cdtype)))


def _expect_local_gaussian(kw, arrays_ok):
    y = _asarray(kw["y_j"])
    if not (_numeric(y, "c") and y.ndim == 3 and y.shape[2] >= 1):
        return ERROR, None
    T, F, C = y.shape
    cdtype = _stft_dtype(y)
    specs = [((T, F), _real(cdtype)), ((F, C, C), cdtype)]
    return _verdict(_params_valid(arrays_ok, _finite(y)), specs, _huge([y], _real(cdtype)))


def _expect_mix_model(kw, arrays_ok):
    v, R = _asarray(kw["v"]), _asarray(kw["R"])
    if not (_numeric(v, "iuf") and v.ndim == 3 and _numeric(R) and R.ndim == 4):
        return ERROR, None
    T, F, J = v.shape
    C = R.shape[1]
    if R.shape != (F, C, C, J):
        return ERROR, None
    cdtype = _common_complex(R)
    valid = _params_valid(arrays_ok, _finite(v, True), _finite(R))
    return _verdict(valid, [((T, F, C, C), cdtype)], _huge([v, R], _real(cdtype)))


def _expect_gain(kw, arrays_ok):
    v, R, inv = (_asarray(kw[k]) for k in ("v_j", "R_j", "inv_Cxx"))
    if not (_numeric(v, "iuf") and v.ndim == 2 and _numeric(R) and R.ndim == 3
            and _numeric(inv) and inv.ndim == 4):
        return ERROR, None
    T, F = v.shape
    C = R.shape[1]
    if R.shape != (F, C, C) or inv.shape != (T, F, C, C):
        return ERROR, None
    cdtype = _common_complex(R, inv)
    valid = _params_valid(arrays_ok, _finite(v, True), _finite(R), _finite(inv))
    return _verdict(valid, [((T, F, C, C), cdtype)], _huge([v, R, inv], _real(cdtype)))


def _expect_apply(kw, arrays_ok):
    x, W = _asarray(kw["x"]), _asarray(kw["W"])
    if not (_numeric(x) and x.ndim == 3 and _numeric(W) and W.ndim == 4):
        return ERROR, None
    T, F, C = x.shape
    if W.shape != (T, F, C, C):
        return ERROR, None
    cdtype = _common_complex(x, W)
    valid = _params_valid(arrays_ok, _finite(x), _finite(W))
    return _verdict(valid, [((T, F, C), cdtype)], _huge([x, W], _real(cdtype)))


def _expect_residual(kw, arrays_ok):
    """x (..., T, F, C) with any leading batch axes (and any number of channels, 0 too),
    v (..., T, F, {1, C}, J) with x's."""
    v, x = _asarray(kw["v"]), _asarray(kw["x"])
    if not (_numeric(v, "iuf") and _numeric(x) and x.ndim >= 3 and v.ndim == x.ndim + 1):
        return ERROR, None
    if v.shape[:-2] != x.shape[:-1] or v.shape[-2] not in (1, x.shape[-1]):
        return ERROR, None
    dtype = np.result_type(_contrib_dtype(v), np.float32)
    valid = _params_valid(arrays_ok, _finite(v, True), _finite(x))
    alpha = float(kw["alpha"]) if arrays_ok is not False else 1.0
    huge = _huge([v, x], dtype, power=0.25 / max(1.0, alpha))
    return _verdict(valid, [(x.shape + (v.shape[-1] + 1,), dtype)], huge)


def _expect_same_shape(kw, arrays_ok, arg, kinds, nonnegative, min_ndim=1, square=False):
    """smooth, reduce_interferences, compress_filter: the output is shaped as the input."""
    a = _asarray(kw[arg])
    if not (_numeric(a, kinds) and a.ndim >= min_ndim):
        return ERROR, None
    if square and a.shape[-1] != a.shape[-2]:
        return ERROR, None
    dtype = _contrib_dtype(a)
    valid = _params_valid(arrays_ok, _finite(a, nonnegative))
    return _verdict(valid, [(a.shape, dtype)], _huge([a], _real(dtype)))


# ------------------------------------------------------------------ running a call
def _is_tensor(value):
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported
    return torch is not None and isinstance(value, torch.Tensor)


def _passed_on(value):
    """What norbert's tensor wrapper passes on for `value` (as norbert._torch.as_array:
    a tensor's NumPy view, its lazy conjugate or negation resolved; a 0-d one's number)."""
    if not _is_tensor(value):
        return value
    a = value.detach().resolve_conj().resolve_neg().numpy()
    return a.item() if a.ndim == 0 else a


def _snapshot(value):
    value = _passed_on(value)
    if isinstance(value, np.ndarray):
        return value.copy()
    return copy.deepcopy(value)


def _same(before, after):
    after = _passed_on(after)
    if isinstance(before, np.ndarray):
        if before.dtype != after.dtype or before.shape != after.shape:
            return False
        if before.dtype.kind in "fc":
            return bool(np.array_equal(before, after, equal_nan=True))
        return bool(np.array_equal(before, after))
    return repr(before) == repr(after)  # lists: compare NaN-safely through their text


def _call(func, kw, expect):
    """func(**kw), or the allowed exception it raised (an OK verdict allows none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy's overflow warnings on huge values
        try:
            return func(**kw)
        except ALLOWED as exc:
            event(f"{expect} -> {type(exc).__name__}")
            assert expect != OK, f"a valid call raised {type(exc).__name__}: {exc}"
            return exc
        except Exception as exc:  # noqa: BLE001  (any other exception is the failure)
            pytest.fail(f"{type(exc).__name__} is not an allowed outcome: {exc}")


def _run(func, kw, verdict):
    """Call func(**kw) and check the outcome against the oracle's verdict. A call with a
    tensor among its arguments must return tensors; its checks read their NumPy views."""
    expect, specs = verdict
    arrays_in = {k: v for k, v in kw.items() if k != "out"}
    before = {k: _snapshot(v) for k, v in arrays_in.items()}
    result = _call(func, kw, expect)
    for k, value in arrays_in.items():
        assert _same(before[k], value), f"the input {k} was modified"
    if isinstance(result, Exception):
        return result
    event(f"{expect} -> result")
    assert expect != ERROR, "an invalid call returned a result"
    outs = result if isinstance(result, tuple) else (result,)
    tensors = any(_is_tensor(v) for v in kw.values())
    if tensors:
        assert all(_is_tensor(o) for o in outs), "a call with tensors returned arrays"
        outs = [o.numpy() for o in outs]
    assert [(o.shape, o.dtype) for o in outs] == [(tuple(s), np.dtype(d)) for s, d in specs]
    for o in outs:
        assert np.all(np.isfinite(o)), "finite inputs gave a non-finite output"
    out = kw.get("out")
    if out is not None:
        first = result[0] if isinstance(result, tuple) else result
        if _is_tensor(out) or not tensors:
            assert first is out
        else:  # an array out= in a call with tensors: a tensor over its memory
            assert out.size == 0 or np.shares_memory(outs[0], out)
    for o in outs:
        for k, value in arrays_in.items():
            value = _passed_on(value)
            if isinstance(value, np.ndarray):
                assert not np.shares_memory(o, value), f"an output shares memory with {k}"
    return result


# ------------------------------------------------------------------ the calls
@st.composite
def dims(draw):
    return draw(sizes), draw(sizes), draw(counts), draw(counts)


@st.composite
def outs(draw, kw, src):
    """out=: None or an array that is right, read-only, mis-shaped, or overlaps an input."""
    kind = draw(mostly([None, None, "exact"], ["readonly", "shape", "dtype", "fortran",
                                               "overlap-x", "overlap-src", "list"], odds=5))
    x = _asarray(kw["x"])
    s = _asarray(kw[src])
    if kind is None or not (_numeric(x, "c") and x.ndim >= 3 and s is not None
                            and s.ndim == x.ndim + 1):
        return kw
    shape = x.shape + s.shape[-1:]
    dtype = _stft_dtype(x)
    out = np.zeros(shape, dtype)
    if kind == "readonly":
        out.flags.writeable = False
    elif kind == "shape":
        out = np.zeros(shape[:-1] + (shape[-1] + 1,), dtype)
    elif kind == "dtype":
        out = np.zeros(shape, np.complex64 if dtype == np.complex128 else np.complex128)
    elif kind == "fortran":
        out = np.asfortranarray(out)
    elif kind == "list":
        out = out.tolist()
    elif kind == "overlap-x" and x.dtype == dtype and out.size >= x.size:
        # x is the first part of out's buffer
        view = out.reshape(-1)[: x.size].reshape(x.shape)
        view[...] = x
        kw = {**kw, "x": view}
    elif kind == "overlap-src" and src == "y" and s.shape == shape and s.dtype == dtype:
        out = np.array(s)  # y and out are the same array
        kw = {**kw, "y": out}
    elif kind == "overlap-src" and src == "v" and s.dtype == _real(dtype):
        flat = out.view(_real(dtype)).reshape(-1)
        if flat.size >= s.size:
            view = flat[: s.size].reshape(s.shape)
            view[...] = s
            kw = {**kw, "v": view}
    return {**kw, "out": out}


def _draw_params(draw, kw, **strategies):
    """Draws each parameter into kw; returns whether all of them are valid."""
    flags = []
    for arg, strategy in strategies.items():
        kw[arg], valid = draw(strategy)
        flags.append(valid)
    return _params_valid(*flags)


def _spectrograms_and_mixture(draw, mixture_role):
    """v (..., T, F, {1, C}, J) and x (..., T, F, C), with a batch sometimes."""
    batch, (T, F, C, J) = draw(batches), draw(dims())
    return {"v": draw(arrays(batch + (T, F, draw(st.sampled_from([1, C])), J), "spec")),
            "x": draw(arrays(batch + (T, F, C), mixture_role))}


@st.composite
def wiener_calls(draw):
    kw = _spectrograms_and_mixture(draw, "stft")
    ok = _draw_params(draw, kw, iterations=ITERATIONS, eps=EPS, workers=WORKERS,
                      frames_per_block=FRAMES, progress=PROGRESS)
    kw["use_softmask"] = draw(st.sampled_from([True, False, 0, 1, "yes", None]))
    return draw(outs(kw, "v")), ok


@st.composite
def softmask_calls(draw):
    kw = _spectrograms_and_mixture(draw, "stft")
    ok = _draw_params(draw, kw, logit=LOGIT, eps=EPS, workers=WORKERS)
    return draw(outs(kw, "v")), ok


@st.composite
def expectation_maximization_calls(draw):
    batch, (T, F, C, J) = draw(batches), draw(dims())
    kw = {"y": draw(arrays(batch + (T, F, C, J), "stft")),
          "x": draw(arrays(batch + (T, F, C), "stft"))}
    ok = _draw_params(draw, kw, iterations=ITERATIONS, eps=EPS, workers=WORKERS,
                      frames_per_block=FRAMES, progress=PROGRESS)
    kw["verbose"] = draw(VERBOSE)
    return draw(outs(kw, "y")), ok


@st.composite
def get_local_gaussian_model_calls(draw):
    T, F, C, _ = draw(dims())
    kw = {"y_j": draw(arrays((T, F, C), "stft"))}
    ok = _draw_params(draw, kw, eps=EPS, workers=WORKERS)
    if kw["eps"] is None:
        del kw["eps"]  # None is not documented here (the default is 1.0), but accepted
    return kw, ok


@st.composite
def get_mix_model_calls(draw):
    T, F, C, J = draw(dims())
    kw = {"v": draw(arrays((T, F, J), "spec")), "R": draw(arrays((F, C, C, J), "cplx"))}
    return kw, _draw_params(draw, kw, workers=WORKERS)


@st.composite
def wiener_gain_calls(draw):
    T, F, C, _ = draw(dims())
    kw = {"v_j": draw(arrays((T, F), "spec")), "R_j": draw(arrays((F, C, C), "cplx")),
          "inv_Cxx": draw(arrays((T, F, C, C), "cplx"))}
    return kw, _draw_params(draw, kw, workers=WORKERS)


@st.composite
def apply_filter_calls(draw):
    T, F, C, _ = draw(dims())
    kw = {"x": draw(arrays((T, F, C), "cplx")), "W": draw(arrays((T, F, C, C), "cplx"))}
    return kw, _draw_params(draw, kw, workers=WORKERS)


@st.composite
def residual_model_calls(draw):
    kw = _spectrograms_and_mixture(draw, "cplx")
    ok = _draw_params(draw, kw, alpha=ALPHA)
    kw["autoscale"] = draw(st.sampled_from([False, True, 0, 1, None]))
    return kw, ok


@st.composite
def any_shape(draw, min_ndim=1):
    return tuple(draw(st.lists(st.integers(0, 6), min_size=min_ndim, max_size=5)))


@st.composite
def smooth_calls(draw):
    kw = {"v": draw(arrays(draw(any_shape()), "real"))}
    ok = _draw_params(draw, kw, width=WIDTH)
    kw["temporal"] = draw(TEMPORAL)
    return kw, ok


@st.composite
def reduce_interferences_calls(draw):
    kw = {"v": draw(arrays(draw(any_shape()), "spec"))}
    return kw, _draw_params(draw, kw, thresh=REAL, slope=REAL)


@st.composite
def compress_filter_calls(draw):
    shape = draw(any_shape(min_ndim=0))
    C = draw(counts)
    kw = {"W": draw(arrays(shape[:3] + (C, C), "real"))}
    return kw, _draw_params(draw, kw, thresh=REAL, slope=REAL)


# name: (function, strategy of (keywords, whether its parameters are valid), oracle)
CALLS = {
    "wiener": (norbert.wiener, wiener_calls,
               lambda kw, ok: _expect_filter("wiener", kw, ok)),
    "softmask": (norbert.softmask, softmask_calls,
                 lambda kw, ok: _expect_filter("softmask", kw, ok)),
    "expectation_maximization": (
        norbert.expectation_maximization, expectation_maximization_calls,
        lambda kw, ok: _expect_filter("expectation_maximization", kw, ok)),
    "get_local_gaussian_model": (norbert.get_local_gaussian_model,
                                 get_local_gaussian_model_calls, _expect_local_gaussian),
    "get_mix_model": (norbert.get_mix_model, get_mix_model_calls, _expect_mix_model),
    "wiener_gain": (norbert.wiener_gain, wiener_gain_calls, _expect_gain),
    "apply_filter": (norbert.apply_filter, apply_filter_calls, _expect_apply),
    "residual_model": (contrib.residual_model, residual_model_calls, _expect_residual),
    "smooth": (contrib.smooth, smooth_calls,
               lambda kw, ok: _expect_same_shape(kw, ok, "v", "iufc", False)),
    "reduce_interferences": (contrib.reduce_interferences, reduce_interferences_calls,
                             lambda kw, ok: _expect_same_shape(kw, ok, "v", "iuf", True)),
    "compress_filter": (contrib.compress_filter, compress_filter_calls,
                        lambda kw, ok: _expect_same_shape(kw, ok, "W", "iufc", False, 2, True)),
}


def _check(name, data):
    func, calls, expect = CALLS[name]
    kw, ok = data.draw(calls(), label="keywords")
    _run(func, kw, expect(kw, ok))


# ------------------------------------------------------------------ the tests
@FUZZ
@given(st.data())
def test_wiener(data):
    _check("wiener", data)


@FUZZ
@given(st.data())
def test_softmask(data):
    _check("softmask", data)


@FUZZ
@given(st.data())
def test_expectation_maximization(data):
    _check("expectation_maximization", data)


@FUZZ
@given(st.data())
def test_get_local_gaussian_model(data):
    _check("get_local_gaussian_model", data)


@FUZZ
@given(st.data())
def test_get_mix_model(data):
    _check("get_mix_model", data)


@FUZZ
@given(st.data())
def test_wiener_gain(data):
    _check("wiener_gain", data)


@FUZZ
@given(st.data())
def test_apply_filter(data):
    _check("apply_filter", data)


@FUZZ
@given(st.data())
def test_residual_model(data):
    _check("residual_model", data)


@FUZZ
@given(st.data())
def test_smooth(data):
    _check("smooth", data)


@FUZZ
@given(st.data())
def test_reduce_interferences(data):
    _check("reduce_interferences", data)


@FUZZ
@given(st.data())
def test_compress_filter(data):
    _check("compress_filter", data)


# ------------------------------------------------------------------ tensors
# The forms of a tensor argument: from_numpy (a view of the array), a non-contiguous view
# (of a copy holding it twice), a lazy conjugate or negation of a copy (complex, float32/64),
# the array itself (a call mixing arrays and tensors) and, to spoil a call, one that
# requires grad.
TENSOR_FORMS = mostly(["tensor", "tensor", "tensor", "view", "conj", "neg", "array"], ["grad"],
                      odds=19)
NUMBERS = {"iterations", "eps", "workers", "frames_per_block", "logit", "alpha", "width",
           "thresh", "slope"}


def _tensor(a, form, torch):
    """`a` as a tensor in `form`, or as it is if torch cannot hold it (lists, object,
    long double and big-endian arrays)."""
    if (form == "array" or not isinstance(a, np.ndarray) or not a.dtype.isnative
            or a.dtype.kind not in "biufc" or a.dtype.char in "gG"):
        return a
    if not a.flags.writeable or any(s < 0 for s in a.strides):
        a = a.copy()  # torch.from_numpy refuses negative strides, warns on read-only memory
    if form == "conj" and a.dtype.kind == "c":
        return torch.from_numpy(np.conj(a)).conj()
    t = torch.from_numpy(a)
    if form == "view":
        return torch.stack([t, t], dim=-1)[..., 0]
    if form == "neg" and a.dtype in (np.float32, np.float64):
        return torch.complex(torch.zeros_like(t), -t).conj().imag
    if form == "grad" and a.dtype.kind in "fc":
        return t.requires_grad_()
    return t


def _number(value, torch):
    """`value` as a 0-d tensor of the same value and kind, or as it is."""
    if isinstance(value, (bool, np.bool_, int, np.integer)) and -2**63 <= int(value) < 2**63:
        return torch.tensor(value)
    if isinstance(value, (float, complex)):  # torch.tensor(1e300) would be a float32 inf
        return torch.tensor(value, dtype=torch.float64 if isinstance(value, float)
                            else torch.complex128)
    if isinstance(value, np.floating):
        return torch.tensor(value)
    return value


@st.composite
def tensor_forms(draw, kw):
    """{argument: form} for kw's arrays, and for some of its numbers "number" (a 0-d
    tensor). Drawn from the names only: the strategy's text stays short."""
    forms = {}
    for k, is_array in kw:
        if is_array:
            forms[k] = draw(TENSOR_FORMS)
        elif k in NUMBERS and draw(st.booleans()):
            forms[k] = "number"
    return forms


TENSOR_FUZZ = settings(FUZZ, max_examples=max(1, EXAMPLES // 4))


@TENSOR_FUZZ
@given(data=st.data())
def _fuzz_tensors(name, data):
    torch = sys.modules["torch"]
    func, calls, expect = CALLS[name]
    kw, ok = data.draw(calls(), label="keywords")
    forms = data.draw(tensor_forms(tuple((k, isinstance(v, np.ndarray)) for k, v in kw.items())),
                      label="tensor forms")
    for k, form in forms.items():
        kw[k] = _number(kw[k], torch) if form == "number" else _tensor(kw[k], form, torch)
    passed = {k: _passed_on(v) for k, v in kw.items()}
    grad = any(_is_tensor(v) and v.requires_grad for v in kw.values())
    # a lazy conjugate or negative out= cannot be written through: refused
    lazy_out = _is_tensor(kw.get("out")) and (kw["out"].is_conj() or kw["out"].is_neg())
    verdict = (ERROR, None) if grad or lazy_out else expect(passed, ok)
    result = _run(func, kw, verdict)
    if grad or lazy_out:
        assert isinstance(result, (TypeError, ValueError)), result
        assert ("detach" if grad else "lazy") in str(result) or (
            grad and lazy_out and "lazy" in str(result)), f"refused with: {result!r}"
        return
    if verdict[0] == ERROR:
        return
    # the NumPy call on what the wrapper passed on: the same exception or the same bits
    if passed.get("out") is not None:
        passed["out"] = np.empty_like(passed["out"])
    want = _call(func, passed, verdict[0])
    if isinstance(result, Exception):
        assert type(want) is type(result), f"NumPy gave {want!r}, tensors {result!r}"
        return
    assert not isinstance(want, Exception), f"NumPy raised {want!r}, tensors returned"
    got = result if isinstance(result, tuple) else (result,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        # (a call whose arrays torch cannot hold has no tensor, and returns arrays)
        g, w = (torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in (g, w))
        assert g.dtype == w.dtype and torch.equal(g, w), "tensors gave other values"


@pytest.mark.parametrize("name", list(CALLS))
def test_tensors(name):
    """Every call, with its arrays as CPU tensors: the oracle's outcome, and the values
    (bitwise) or the exception of the NumPy call."""
    pytest.importorskip("torch")
    _fuzz_tensors(name)


@pytest.mark.parametrize("batch", [(), (2,)])
@pytest.mark.parametrize("use_softmask", [True, False])
@pytest.mark.parametrize("iterations", [0, 1, 2])
def test_complex64_spectrograms_far_above_the_mixture(iterations, use_softmask, batch):
    """Finite in, finite out: complex64 x ~1e-3 with v ~1e38 (the mixture's phase as the
    first estimate makes PSDs ~1e76, past float32) separates, in double where float32
    overflows, and gives the complex128 result rounded to complex64."""
    rng = np.random.default_rng(1)
    x = np.full(batch + (4, 3, 2), 1e-3 + 1e-3j, np.complex64)
    x *= rng.uniform(0.5, 2.0, x.shape).astype(np.float32)
    v = (rng.random(batch + (4, 3, 1, 2)) * 1e38).astype(np.float32)
    eps = float(np.finfo(np.float32).eps)
    y = norbert.wiener(v, x, iterations=iterations, use_softmask=use_softmask)
    assert y.dtype == np.complex64 and np.all(np.isfinite(y))
    want = norbert.wiener(v.astype(np.float64), x.astype(np.complex128), iterations=iterations,
                          use_softmask=use_softmask, eps=eps)
    assert np.linalg.norm(y - want) <= 1e-5 * np.linalg.norm(want)


def test_complex64_estimates_far_above_the_mixture():
    # expectation_maximization: y finite from double; the PSDs of y's first estimate
    # (~1e76) cannot be float32, which a clear error says; two iterations return PSDs at
    # the mixture's level
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((5, 3, 2)) * 1e-3).astype(np.complex64)
    y0 = (rng.random((5, 3, 2, 2)) * 1e38).astype(np.complex64)
    with pytest.raises(ValueError, match=r"PSDs v of these estimates exceed float32"):
        norbert.expectation_maximization(y0, x, iterations=1)
    y, P, R = norbert.expectation_maximization(y0, x, iterations=2)
    assert y.dtype == np.complex64 and P.dtype == np.float32 and R.dtype == np.complex64
    assert all(np.all(np.isfinite(a)) for a in (y, P, R))
    eps = float(np.finfo(np.float32).eps)
    want = norbert.expectation_maximization(y0.astype(np.complex128), x.astype(np.complex128),
                                            iterations=2, eps=eps)[0]
    assert np.linalg.norm(y - want) <= 1e-5 * np.linalg.norm(want)
