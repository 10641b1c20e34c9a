"""Every bad input of every public function, as one table.

Each row is (function, case, how to spoil a valid call, expectation). A spoiled call must
raise TypeError or ValueError (ParameterError is a ValueError) whose message names the
argument and says what it got, or succeed with outputs of the documented shapes and
dtypes when the policy accepts the input (lists, integer or float16 spectrograms, empty
tracks...). The policies themselves are written down in ``norbert/_validation.py``.

Rows that reach the compiled kernels (every accepted input, NaN/inf/negative values,
empty arrays) run in a child interpreter, so a crash fails its own row and not the run:
one child runs them all in order and is restarted after the row that killed it.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import norbert
from norbert import contrib

T, F, C, J = 5, 4, 2, 3
HERE = os.path.dirname(os.path.abspath(__file__))

FUNCTIONS = {
    "wiener": norbert.wiener,
    "softmask": norbert.softmask,
    "expectation_maximization": norbert.expectation_maximization,
    "get_local_gaussian_model": norbert.get_local_gaussian_model,
    "get_mix_model": norbert.get_mix_model,
    "wiener_gain": norbert.wiener_gain,
    "apply_filter": norbert.apply_filter,
    "residual_model": contrib.residual_model,
    "smooth": contrib.smooth,
    "reduce_interferences": contrib.reduce_interferences,
    "compress_filter": contrib.compress_filter,
}

# Role of each array argument: what the policy accepts.
#   spec  real, >= 0 (spectrograms, PSDs): ints, float16, longdouble converted; complex refused
#   stft  complex required: real and integer refused; clongdouble computed in complex128
#   cplx  complex matrices or signals of the building blocks: real accepted
#   real  any real or complex numbers (smooth, compress_filter)
ARRAYS = {
    "wiener": {"v": "spec", "x": "stft"},
    "softmask": {"v": "spec", "x": "stft"},
    "expectation_maximization": {"y": "stft", "x": "stft"},
    "get_local_gaussian_model": {"y_j": "stft"},
    "get_mix_model": {"v": "spec", "R": "cplx"},
    "wiener_gain": {"v_j": "spec", "R_j": "cplx", "inv_Cxx": "cplx"},
    "apply_filter": {"x": "cplx", "W": "cplx"},
    "residual_model": {"v": "spec", "x": "cplx"},
    "smooth": {"v": "real"},
    "reduce_interferences": {"v": "spec"},
    "compress_filter": {"W": "real"},
}


def valid_inputs(name, T=T, F=F, C=C, J=J):
    """Keyword arguments of a valid call; values are small integers, so every dtype
    conversion the policy allows is exact and must give the same result."""
    rng = np.random.default_rng(7)

    def real(*shape):
        return rng.integers(1, 10, size=shape).astype(np.float64)

    def cplx(*shape):
        return real(*shape) + 1j * (real(*shape) - 5)

    if name in ("wiener", "softmask"):
        return {"v": real(T, F, C, J), "x": cplx(T, F, C)}
    if name == "expectation_maximization":
        return {"y": cplx(T, F, C, J), "x": cplx(T, F, C)}
    if name == "get_local_gaussian_model":
        return {"y_j": cplx(T, F, C)}
    if name == "get_mix_model":
        a = cplx(F, C, C, J)
        R = np.einsum("fcdj,fedj->fcej", a, a.conj())
        return {"v": real(T, F, J), "R": R}
    if name == "wiener_gain":
        a = cplx(F, C, C)
        return {
            "v_j": real(T, F),
            "R_j": np.einsum("fcd,fed->fce", a, a.conj()),
            "inv_Cxx": cplx(T, F, C, C),
        }
    if name == "apply_filter":
        return {"x": cplx(T, F, C), "W": cplx(T, F, C, C)}
    if name == "residual_model":
        return {"v": real(T, F, C, J), "x": cplx(T, F, C)}
    if name in ("smooth", "reduce_interferences"):
        return {"v": real(T, F, C, J)}
    if name == "compress_filter":
        return {"W": cplx(T, F, C, C)}
    raise KeyError(name)


def output_specs(name, T=T, F=F, C=C, J=J, cdtype="complex128"):
    """[(shape, dtype)] of a successful call on valid_inputs(name, T, F, C, J)."""
    rdtype = np.empty(0, cdtype).real.dtype.name
    return {
        "wiener": [((T, F, C, J), cdtype)],
        "softmask": [((T, F, C, J), cdtype)],
        "expectation_maximization": [
            ((T, F, C, J), cdtype),
            ((T, F, J), rdtype),
            ((F, C, C, J), cdtype),
        ],
        "get_local_gaussian_model": [((T, F), rdtype), ((F, C, C), cdtype)],
        "get_mix_model": [((T, F, C, C), cdtype)],
        "wiener_gain": [((T, F, C, C), cdtype)],
        "apply_filter": [((T, F, C), cdtype)],
        "residual_model": [((T, F, C, J + 1), "float64")],
        "smooth": [((T, F, C, J), "float64")],
        "reduce_interferences": [((T, F, C, J), "float64")],
        "compress_filter": [((T, F, C, C), cdtype)],
    }[name]


class Ok:
    """Expect success: outputs of these (shape, dtype), finite, and (same=True) equal to
    the result of the unspoiled call."""

    def __init__(self, specs, same=False):
        self.specs = [(tuple(s), str(d)) for s, d in specs]
        self.same = same

    def __repr__(self):
        return f"Ok({self.specs})"


class Err:
    """Expect exc_type with a message matching pattern (re.search)."""

    def __init__(self, exc_type, pattern):
        self.exc_type = exc_type
        self.pattern = pattern

    def __repr__(self):
        return f"Err({self.exc_type.__name__}, {self.pattern!r})"


class Case:
    def __init__(self, func, case_id, spoil, expect, kernel=False):
        self.func = func
        self.id = f"{func}-{case_id}"
        self.spoil = spoil  # kwargs -> kwargs (may build new arrays)
        self.expect = expect
        # reaches the compiled kernels: run in the child interpreter
        self.risky = kernel or isinstance(expect, Ok)

    def call(self):
        kwargs = self.spoil(valid_inputs(self.func))
        return FUNCTIONS[self.func](**kwargs)


# functions with a batch axis: leading axes of x are independent problems
BATCHED = ("wiener", "softmask", "expectation_maximization", "residual_model")


def _set(arg, value):
    def spoil(kw):
        kw = dict(kw)
        kw[arg] = value(kw[arg]) if callable(value) else value
        return kw

    return spoil


def _with(**extra):
    def spoil(kw):
        return {**kw, **extra}

    return spoil


def _named(arg):
    return rf"\b{re.escape(arg)}\b"


def _ragged(a):
    return [a[0].tolist(), a[0, :-1].tolist()]


def _strided(a):
    return np.stack([a, a], axis=-1)[..., 0]


def _array_cases(func):
    cases = []
    for arg, role in ARRAYS[func].items():
        name = _named(arg)
        same = Ok(output_specs(func), same=True)

        def add(case_id, value, expect, kernel=False, arg=arg):
            cases.append(Case(func, f"{arg}-{case_id}", _set(arg, value), expect, kernel))

        add("None", None, Err(TypeError, name + r".*got None"))
        add("float", 1.0, Err(TypeError, name + r".*scalar"))
        add("numpy-scalar", np.float64(1.0), Err(TypeError, name + r".*scalar"))
        add("string", "abc", Err(TypeError, name + r".*scalar"))
        add("dict", lambda a: {"a": a}, Err(TypeError, name + r".*dtype object"))
        add("object-array", lambda a: a.astype(object), Err(TypeError, name + r".*dtype object"))
        add("bool-array", lambda a: a.astype(bool), Err(TypeError, name + r".*dtype bool"))
        add("str-array", lambda a: a.astype(str), Err(TypeError, name + r".*dtype <U"))
        add("bytes-array", lambda a: a.real.astype("S4"), Err(TypeError, name + r".*dtype \|S"))
        add("ragged-list", _ragged, Err(TypeError, name + r".*cannot convert"))
        add("list", lambda a: a.tolist(), same)
        add("tuple", lambda a: tuple(a.tolist()), same)
        add("strided", _strided, same)
        add(
            "nan",
            lambda a: _poke(a, np.nan),
            Err(ValueError, name + r".*non-finite.*nan.*index \(1, 1"),
            kernel=True,
        )
        add(
            "inf",
            lambda a: _poke(a, np.inf),
            Err(ValueError, name + r".*non-finite.*inf.*index \(1, 1"),
            kernel=True,
        )
        if func not in ("smooth", "reduce_interferences"):  # any number of dimensions
            if func in BATCHED and arg == "x":
                # x with an extra axis is a batch: the sources then lack its batch axes
                add(
                    "extra-axis",
                    lambda a: a[..., None],
                    Err(ValueError, r"\b[vy]\b.*dimension.*got"),
                )
            elif func != "compress_filter":
                add(
                    "extra-axis",
                    lambda a: a[..., None],
                    Err(ValueError, name + r".*dimension.*got"),
                )
            add(
                "missing-axis",
                lambda a: a[..., 0],
                Err(ValueError, name + r".*(dimension|shape).*got"),
            )
        add(
            "0d-array",
            lambda a: np.array(a.flat[0]),
            Err(ValueError, name + r".*(dimension|shape).*got"),
        )
        if role == "spec":
            add(
                "negative",
                lambda a: _poke(a, -1.0),
                Err(ValueError, name + r".*negative value .*-1\.0.* at index \(1, 1"),
                kernel=True,
            )
            add("complex", lambda a: a + 0j, Err(TypeError, name + r".*(real|complex)"))
            for dt in ("int64", "uint8", "int8", "float16", "float32", "longdouble"):
                if dt == "float32" and func in CONTRIB:
                    # contrib computes in float32 when given float32 (precision follows v)
                    add(
                        dt,
                        lambda a: a.astype(np.float32),
                        Ok([(s, "float32") for s, _ in output_specs(func)]),
                    )
                else:
                    add(dt, lambda a, dt=dt: a.astype(dt), same)
        if role == "stft":
            add("real", lambda a: a.real.copy(), Err(TypeError, name + r".*must be complex.*got"))
            add(
                "int",
                lambda a: a.real.astype(np.int64),
                Err(TypeError, name + r".*must be complex"),
            )
            add("clongdouble", lambda a: a.astype(np.clongdouble), same)
            add("bigendian", lambda a: a.astype(">c16"), same)
        if role == "cplx":
            add("real", lambda a: a.real.copy(), Ok(output_specs(func)))
            add("clongdouble", lambda a: a.astype(np.clongdouble), same)
        if role == "real":
            # integers, float16 and longdouble are computed in double
            as_double = Ok([(s, "float64") for s, _ in output_specs(func)])
            for dt in ("int64", "float16", "longdouble"):
                add(dt, lambda a, dt=dt: a.real.astype(dt), as_double)
            add(
                "clongdouble",
                lambda a: a.astype(np.clongdouble),
                Ok([(s, "complex128") for s, _ in output_specs(func)]),
            )
    return cases


def _poke(a, value):
    a = a.astype(np.result_type(a.dtype, type(value)))
    a[(1, 1) + (0,) * (a.ndim - 2)] = value
    return a


def _shape_cases(func):
    """Frames / bins / channels / sources that do not match between the arguments."""

    def resized(arg, axis, n):
        def spoil(kw):
            kw = dict(kw)
            a = kw[arg]
            shape = list(a.shape)
            shape[axis] = n
            kw[arg] = np.resize(a, shape)
            return kw

        return spoil

    table = {
        "wiener": [("v", 0, T + 1), ("v", 1, F + 1), ("v", 2, 3), ("x", 0, T - 1), ("x", 1, 1)],
        "softmask": [("v", 0, T + 1), ("v", 1, F - 1), ("v", 2, 3), ("x", 2, 3)],
        "expectation_maximization": [("y", 0, T + 1), ("y", 1, F + 1), ("y", 2, 1), ("x", 2, 3)],
        "get_mix_model": [("R", 0, F + 1), ("R", 3, J + 1), ("R", 2, C + 1), ("R", 1, C + 1)],
        "wiener_gain": [
            ("R_j", 0, F + 1),
            ("R_j", 2, C + 1),
            ("inv_Cxx", 0, T + 1),
            ("inv_Cxx", 1, F + 1),
            ("inv_Cxx", 3, C + 1),
            ("v_j", 1, F - 1),
        ],
        "apply_filter": [
            ("W", 0, T + 1),
            ("W", 1, F + 1),
            ("W", 2, C + 1),
            ("W", 3, 1),
            ("x", 2, C + 1),
        ],
        "residual_model": [("v", 0, T + 1), ("v", 1, F + 1), ("v", 2, 3), ("x", 1, F - 1)],
        "compress_filter": [("W", 3, C + 1)],
    }
    cases = []
    for arg, axis, n in table.get(func, []):
        # the message names the argument the caller passed wrong, or both
        other = "|".join(_named(a) for a in ARRAYS[func])
        # ParameterError is a ValueError
        cases.append(
            Case(
                func,
                f"{arg}-axis{axis}-{n}",
                resized(arg, axis, n),
                Err(ValueError, rf"({other}).*got|got.*({other})"),
            )
        )
    if func in ("wiener", "softmask", "residual_model"):
        cases.append(Case(func, "v-mono", resized("v", 2, 1), Ok(output_specs(func))))
    return cases


def _empty_cases(func):
    cases = []
    for label, dims in (
        ("0-frames", {"T": 0}),
        ("0-bins", {"F": 0}),
        ("0-frames-0-bins", {"T": 0, "F": 0}),
    ):
        full = {"T": T, "F": F, "C": C, "J": J, **dims}
        inputs = valid_inputs(func, **full)
        cases.append(
            Case(func, label, lambda kw, inputs=inputs: inputs, Ok(output_specs(func, **full)))
        )
    for label, dims in (("0-sources", {"J": 0}), ("0-channels", {"C": 0})):
        full = {"T": T, "F": F, "C": C, "J": J, **dims}
        inputs = valid_inputs(func, **full)
        refused = {
            "0-sources": ("wiener", "softmask", "expectation_maximization"),
            "0-channels": (
                "wiener",
                "softmask",
                "expectation_maximization",
                "get_local_gaussian_model",
            ),
        }[label]
        if func in refused:
            arg = next(iter(ARRAYS[func]))
            what = "source" if label == "0-sources" else "channel"
            expect = Err(ValueError, rf"\b({arg}|x)\b must have at least one {what}.*got shape")
        elif label == "0-sources" and func in (
            "get_local_gaussian_model",
            "wiener_gain",
            "apply_filter",
            "compress_filter",
        ):
            continue  # no source axis
        else:
            expect = Ok(output_specs(func, **full))
        cases.append(Case(func, label, lambda kw, inputs=inputs: inputs, expect, kernel=True))
    return cases


def _unknown_keyword(func):
    return [
        Case(
            func,
            "unknown-keyword",
            _with(bogus=1),
            Err(TypeError, r"unexpected keyword argument 'bogus'"),
        )
    ]


def _parameter_cases(func):
    cases = []

    def add(arg, label, value, expect):
        cases.append(Case(func, f"{arg}-{label}", _with(**{arg: value}), expect))

    def bad_number(arg, bad_values, type_errors=("a", None, True, [1.0])):
        for value in bad_values:
            add(arg, repr(value), value, Err(ValueError, _named(arg) + r".*got"))
        for value in type_errors:
            if value is None and arg in ("eps", "logit"):
                continue  # None is the documented default
            add(arg, f"type-{type(value).__name__}", value, Err(TypeError, _named(arg) + r".*got"))

    if func in ("wiener", "expectation_maximization"):
        bad_number("iterations", [-1, -100], ("2", 1.5, None, True, np.float64(2.0)))
        add("iterations", "np-int64", np.int64(2), Ok(output_specs(func)))
        bad_number("frames_per_block", [0, -3], ("2", 1.5, True))
        add("progress", "not-callable", 3, Err(TypeError, r"\bprogress\b.*callable.*got 3"))
        add("progress", "string", "tqdm", Err(TypeError, r"\bprogress\b.*got"))
    if func in ("wiener", "softmask", "expectation_maximization", "get_local_gaussian_model"):
        bad_number("eps", [-1.0, -1e-300, np.nan, np.inf, -np.inf], ("a", True, [1e-3]))
        add("eps", "np-float32", np.float32(1e-3), Ok(output_specs(func)))
        add("eps", "int-zero", 0, Ok(output_specs(func)))
    if func == "softmask":
        bad_number("logit", [0.0, 1.0, 2, -0.5, np.nan, np.inf], ("a", True, [0.5]))
        add("logit", "np-float", np.float64(0.3), Ok(output_specs(func)))
    if func == "residual_model":
        bad_number("alpha", [0, -1, np.nan, np.inf])
        add("alpha", "int-2", 2, Ok(output_specs(func)))
    if func == "smooth":
        bad_number("width", [-1, -0.5, np.nan, np.inf])
    if func in ("reduce_interferences", "compress_filter"):
        bad_number("thresh", [np.nan, np.inf])
        bad_number("slope", [np.nan, -np.inf])
    if func in (
        "wiener",
        "softmask",
        "expectation_maximization",
        "get_local_gaussian_model",
        "get_mix_model",
        "wiener_gain",
        "apply_filter",
    ):
        add("workers", "0", 0, Err(ValueError, r"\bworkers\b.*got 0"))
        add("workers", "str", "2", Err(TypeError, r"\bworkers\b.*got '2'"))
        add("workers", "float", 1.5, Err(TypeError, r"\bworkers\b.*got 1.5"))
        add("workers", "minus-one", -1, Ok(output_specs(func)))
        add("workers", "many", 64, Ok(output_specs(func)))
    if func in ("wiener", "softmask", "expectation_maximization"):
        shape = (T, F, C, J)
        add(
            "out",
            "wrong-shape",
            np.empty((T, F, C, J + 1), complex),
            Err(ValueError, r"\bout\b must have shape.*got shape"),
        )
        add(
            "out",
            "wrong-dtype",
            np.empty(shape, np.complex64),
            Err(ValueError, r"\bout\b must have shape.*dtype.*got.*complex64"),
        )
        add("out", "real", np.empty(shape), Err(ValueError, r"\bout\b.*got.*float64"))
        add(
            "out",
            "list",
            np.empty(shape, complex).tolist(),
            Err(TypeError, r"\bout\b must be a numpy array.*got list"),
        )
        ro = np.empty(shape, complex)
        ro.flags.writeable = False
        add("out", "read-only", ro, Err(ValueError, r"\bout\b must be writable, got"))
        add(
            "out",
            "fortran",
            np.asfortranarray(np.empty(shape, complex)),
            Err(ValueError, r"\bout\b must be C-contiguous, got"),
        )
        cases.append(
            Case(
                func,
                "out-overlaps-x",
                _overlapping_out,
                Err(ValueError, r"\bout\b must not share memory with x"),
            )
        )
        add("out", "given", np.empty(shape, complex), Ok(output_specs(func)))
    return cases


def _overlapping_out(kw):
    kw = dict(kw)
    buf = np.zeros(T * F * C * J, complex)
    buf[: T * F * C] = kw["x"].ravel()
    kw["x"] = buf[: T * F * C].reshape(T, F, C)
    kw["out"] = buf.reshape(T, F, C, J)
    return kw


CONTRIB = ("residual_model", "smooth", "reduce_interferences", "compress_filter")
CASES = []
for _func in FUNCTIONS:
    CASES += _array_cases(_func)
    CASES += _shape_cases(_func)
    CASES += _empty_cases(_func)
    CASES += _parameter_cases(_func)
    CASES += _unknown_keyword(_func)
CASES_BY_ID = {case.id: case for case in CASES}
assert len(CASES_BY_ID) == len(CASES), "case ids must be unique"


def _crash(kw):
    os.abort()


# not in CASES: only test_child_runner_survives_a_crash runs it
CRASH = Case("wiener", "deliberate-crash", _crash, Err(ValueError, "never"), kernel=True)
CASES_BY_ID[CRASH.id] = CRASH


# ---------------------------------------------------------------- outcome of one case
def _outcome(case):
    """What the call did, as JSON-able data (the same in-process and in the child)."""
    try:
        result = case.call()
    except Exception as exc:  # noqa: BLE001  (_check decides whether it was the right one)
        return {"raised": [k.__name__ for k in type(exc).__mro__], "message": str(exc)}
    outs = result if isinstance(result, tuple) else (result,)
    outcome = {
        "specs": [[list(o.shape), o.dtype.name] for o in outs],
        "finite": all(bool(np.all(np.isfinite(o))) for o in outs),
    }
    if isinstance(case.expect, Ok) and case.expect.same:
        baseline = FUNCTIONS[case.func](**valid_inputs(case.func))
        baseline = baseline if isinstance(baseline, tuple) else (baseline,)
        outcome["same"] = all(
            o.shape == b.shape and np.allclose(o, b, rtol=1e-12, atol=0)
            for o, b in zip(outs, baseline)
        )
    return outcome


def _child_main(ids):
    """Entry point of the child interpreter: one JSON line per case, flushed."""
    import faulthandler

    faulthandler.enable()
    for case_id in ids:
        print("START " + case_id, flush=True)
        print("DONE " + json.dumps({"id": case_id, **_outcome(CASES_BY_ID[case_id])}), flush=True)


CHILD = textwrap.dedent(
    f"""
    import sys
    sys.path.insert(0, {HERE!r})
    import test_validation
    test_validation._child_main(sys.argv[1:])
    """
)


def _run_in_children(ids, timeout=120):
    """Outcomes of the cases `ids`, run in order in child interpreters.

    A child that dies (signal, abort) or hangs is blamed on the case it had started; a
    new child carries on with the cases after it. A child that fails before starting any
    case (an import error) fails them all.
    """
    results = {}
    todo = list(ids)
    while todo:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, *todo],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
            failure = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            failure = f"hung for {timeout} s"
        started = None
        for line in stdout.splitlines():
            if line.startswith("START "):
                started = line[6:]
            elif line.startswith("DONE "):
                data = json.loads(line[5:])
                results[data.pop("id")] = data
                started = None
        if failure != 0:
            report = {"crashed": failure, "stderr": stderr[-3000:]}
            if started is None:
                results.update({i: report for i in todo if i not in results})
            else:
                results[started] = report
        todo = [i for i in todo if i not in results]
    return results


@pytest.fixture(scope="module")
def child_outcomes():
    return _run_in_children([case.id for case in CASES if case.risky])


def _check(case, outcome):
    assert "crashed" not in outcome, (
        f"{case.id} killed the interpreter (exit {outcome.get('crashed')}):\n"
        f"{outcome.get('stderr')}"
    )
    expect = case.expect
    if isinstance(expect, Err):
        assert "raised" in outcome, f"{case.id}: expected {expect}, returned {outcome}"
        raised, message = outcome["raised"], outcome["message"]
        assert raised[0] not in ("IndexError", "KeyError", "AttributeError", "ZeroDivisionError")
        assert expect.exc_type.__name__ in raised, f"{case.id}: {raised[0]}: {message}"
        assert re.search(expect.pattern, message), (
            f"{case.id}: message does not match {expect.pattern!r}: {message!r}"
        )
        # says what it got (or, for Python's own keyword check, names the keyword)
        assert re.search(r"\b(got|found|unexpected keyword)\b", message), message
    else:
        assert "raised" not in outcome, f"{case.id}: {outcome['raised'][0]}: {outcome['message']}"
        assert [tuple(s) for s, _ in outcome["specs"]] == [s for s, _ in expect.specs], outcome
        assert [d for _, d in outcome["specs"]] == [d for _, d in expect.specs], outcome
        assert outcome["finite"], f"{case.id}: non-finite output"
        if expect.same:
            assert outcome["same"], f"{case.id}: differs from the same call on float64 arrays"


SAFE = [case for case in CASES if not case.risky]
RISKY = [case for case in CASES if case.risky]


@pytest.mark.parametrize("case", SAFE, ids=[case.id for case in SAFE])
def test_refused_before_any_kernel(case):
    _check(case, _outcome(case))


@pytest.mark.parametrize("case", RISKY, ids=[case.id for case in RISKY])
def test_reaching_the_kernels_in_a_child(case, child_outcomes):
    _check(case, child_outcomes[case.id])


def test_table_covers_every_public_function():
    public = set(norbert.__all__) - {
        "ParameterError",
        "contrib",
        "get_include",
        "openmp_enabled",
        "get_num_threads",
        "OnlineWiener",  # a class: tests/test_online.py applies the same policies to process
        "EMRecord",  # a record the EM hands to callbacks, not a function
    }
    assert public == set(FUNCTIONS)
    for func in FUNCTIONS:
        ids = {case.id for case in CASES if case.func == func}
        for arg in ARRAYS[func]:
            for kind in ("None", "float", "object-array", "bool-array", "list", "nan", "0d-array"):
                assert f"{func}-{arg}-{kind}" in ids
        assert f"{func}-unknown-keyword" in ids
        assert f"{func}-0-frames" in ids and f"{func}-0-bins" in ids


def test_child_runner_survives_a_crash():
    """A row that kills its interpreter fails alone; the rows after it still run."""
    ids = [RISKY[0].id, CRASH.id, RISKY[1].id]
    results = _run_in_children(ids)
    assert results[CRASH.id]["crashed"] == -6, results[CRASH.id]  # SIGABRT
    assert "Fatal Python error: Aborted" in results[CRASH.id]["stderr"]  # faulthandler
    for i in (ids[0], ids[2]):
        _check(CASES_BY_ID[i], results[i])


@pytest.mark.parametrize("workers", [0, "2", 1.5])
def test_get_num_threads_validates_workers(workers):
    with pytest.raises((TypeError, ValueError), match=r"\bworkers\b.*got"):
        norbert.get_num_threads(workers)


def test_parameter_error_is_a_value_error():
    assert issubclass(norbert.ParameterError, ValueError)
    with pytest.raises(norbert.ParameterError):
        norbert.wiener(np.ones((2, 2, 1, 1)), np.ones((2, 2, 1), complex), iterations=-1)


# ------------------------------------------------------- shared helpers of the facades
def test_real_dtype():
    from norbert._validation import real_dtype

    assert real_dtype(np.complex64) == np.float32
    assert real_dtype(np.dtype(np.complex128)) == np.float64


@pytest.mark.parametrize(
    "logit, expected", [(None, -1.0), (0.5, 0.5), (np.float32(0.25), 0.25), (np.int64(0), None)]
)
def test_check_logit(logit, expected):
    from norbert._validation import ParameterError, check_logit

    if expected is None:
        with pytest.raises(ParameterError, match=r"^logit must be None or in \(0, 1\), got"):
            check_logit(logit)
    else:
        assert check_logit(logit) == expected and type(check_logit(logit)) is float


@pytest.mark.parametrize("logit", [True, np.True_, "0.5", [0.5], np.array(0.5), 0.5j])
def test_check_logit_refuses_non_reals(logit):
    from norbert._validation import check_logit

    with pytest.raises(TypeError, match=r"^logit must be None or a float in \(0, 1\), got"):
        check_logit(logit)


def test_check_positive_int():
    from norbert._validation import ParameterError, check_positive_int

    assert check_positive_int(None, "n") is None
    assert check_positive_int(np.int32(3), "n") == 3 and type(check_positive_int(3, "n")) is int
    with pytest.raises(TypeError, match=r"^n must be None or a positive integer, got True$"):
        check_positive_int(True, "n")
    with pytest.raises(TypeError, match=r"^n must be a positive integer, got None$"):
        check_positive_int(None, "n", allow_none=False)
    with pytest.raises(TypeError, match=r"^n must be a positive integer, got 2\.0$"):
        check_positive_int(2.0, "n", allow_none=False)
    with pytest.raises(ParameterError, match=r"^n must be >= 1, got 0$"):
        check_positive_int(0, "n")


def test_raise_for_status_messages_and_offset():
    from norbert._core import Status
    from norbert._validation import raise_for_status

    raise_for_status(Status.OK, "f", [("x", np.array([[np.nan]]), False)])  # OK: no scan
    v = np.ones((3, 4, 1, 2))
    v[2, 1, 0, 1] = -1.0
    x = np.ones((3, 4, 1), complex)
    x[1, 3, 0] = np.inf
    arrays = [("x", x, False), ("v", v, True)]
    with pytest.raises(ValueError) as info:
        raise_for_status(Status.NOT_FINITE, "wiener", arrays)
    assert str(info.value) == (
        "wiener: x must be finite; found non-finite value (inf+0j) at index (1, 3, 0)"
    )
    with pytest.raises(ValueError) as info:
        raise_for_status(Status.NEGATIVE, "softmask", arrays[1:], offset=(10, 100))
    assert str(info.value) == (
        "softmask: v must be finite and non-negative; found negative value -1.0 at index "
        "(12, 101, 0, 1) (power spectrograms must be >= 0)"
    )
    with pytest.raises(ValueError, match=r"^f: the computation overflowed .*rescale x and v$"):
        raise_for_status(Status.NOT_FINITE, "f", [("x", np.ones((2, 2)), False), ("v", None, True)])
    with pytest.raises(RuntimeError, match=r"^f: internal error, kernel status BAD_SHAPE$"):
        raise_for_status(Status.BAD_SHAPE, "f")


def test_check_finite_of_a_1d_array_with_offset():
    from norbert._validation import check_finite

    with pytest.raises(ValueError, match=r"^smooth: v must be finite; .*nan at index \(7,\)$"):
        check_finite(np.array([0.0, np.nan]), "v", "smooth", offset=(6, 0))


@pytest.mark.parametrize("func", ["wiener", "softmask", "expectation_maximization"])
def test_several_problems_report_the_first_in_one_order(func):
    """x, v or y, iterations, progress, eps, logit, workers, out, frames_per_block: the
    first bad argument in that order is the one reported, by all three functions."""
    kw = valid_inputs(func)
    bad = {"eps": -1.0, "workers": 0, "out": np.empty(1), "frames_per_block": 0}
    if func == "softmask":
        del bad["frames_per_block"]  # softmask takes no frames_per_block
        bad["logit"] = 2.0
    else:
        bad.update(iterations=-1, progress=3)
    order = ["iterations", "progress", "eps", "logit", "workers", "out", "frames_per_block"]
    for arg in [a for a in order if a in bad]:
        with pytest.raises((TypeError, ValueError), match=_named(arg)):
            FUNCTIONS[func](**kw, **bad)
        del bad[arg]


def test_expectation_maximization_checks_frames_per_block_without_iterations():
    kw = valid_inputs("expectation_maximization")
    with pytest.raises(ValueError, match=r"^frames_per_block must be >= 1, got 0$"):
        norbert.expectation_maximization(**kw, iterations=0, frames_per_block=0)
