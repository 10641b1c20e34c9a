"""Outputs larger than the memory a process may use: MemoryError with the bytes needed.

A child interpreter imports norbert, warms every function up (OpenMP's thread pool, SciPy's
lazy imports), then limits its own address space (``RLIMIT_AS``) to what it uses plus
``HEADROOM``. Each public function is then asked for an output several times that
headroom, from inputs that take no memory (zero-stride views). It must raise MemoryError
saying how many bytes it needed; the process must survive, and the same function must
then compute a small problem correctly.
"""

import json
import re
import subprocess
import sys
import textwrap

import pytest

HEADROOM = 512 << 20  # bytes of address space the child may still map
OUTPUT = 4 << 30  # bytes of the output asked for: 8 times the headroom

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    import norbert
    from norbert import contrib

    HEADROOM, OUTPUT = int(sys.argv[1]), int(sys.argv[2])
    C, J = 2, 4

    def virtual(shape, dtype=np.float64):
        # a read-only zero-stride view: any size, no memory
        return np.broadcast_to(np.ones((1,) * len(shape), dtype), shape)

    def frames(bytes_per_frame):
        # frames of 1025 bins that make the output OUTPUT bytes
        return max(1, OUTPUT // bytes_per_frame)

    F = 1025

    def calls(T=None, F=F):
        # {name: (call, output bytes per frame)}; T=None: the frames that make OUTPUT bytes
        def t(per_frame):
            return frames(per_frame * F) if T is None else T

        def make(per_frame, build):
            n = t(per_frame)
            return lambda: build(n), per_frame * F * n

        c16 = 16
        table = {
            "wiener": make(C * J * c16, lambda n: norbert.wiener(
                virtual((n, F, 1, J)), virtual((n, F, C), complex))),
            "softmask": make(C * J * c16, lambda n: norbert.softmask(
                virtual((n, F, 1, J)), virtual((n, F, C), complex))),
            "expectation_maximization": make(C * J * c16, lambda n: (
                norbert.expectation_maximization(
                    virtual((n, F, C, J), complex), virtual((n, F, C), complex), iterations=1))),
            "get_local_gaussian_model": make(8, lambda n: norbert.get_local_gaussian_model(
                virtual((n, F, C), complex))),
            "get_mix_model": make(C * C * c16, lambda n: norbert.get_mix_model(
                virtual((n, F, J)), virtual((F, C, C, J), complex))),
            "wiener_gain": make(C * C * c16, lambda n: norbert.wiener_gain(
                virtual((n, F)), virtual((F, C, C), complex), virtual((n, F, C, C), complex))),
            "apply_filter": make(C * c16, lambda n: norbert.apply_filter(
                virtual((n, F, C), complex), virtual((n, F, C, C), complex))),
            "residual_model": make(C * (J + 1) * 8, lambda n: contrib.residual_model(
                virtual((n, F, 1, J)), virtual((n, F, C), complex))),
            "smooth": make(J * 8, lambda n: contrib.smooth(virtual((n, F, 1, J)))),
            "reduce_interferences": make(J * 8, lambda n: contrib.reduce_interferences(
                virtual((n, F, 1, J)))),
            "compress_filter": make(C * C * c16, lambda n: contrib.compress_filter(
                virtual((n, F, C, C), complex))),
        }
        return table

    def small(name):
        call, _ = calls(T=6, F=5)[name]
        out = call()
        outs = out if isinstance(out, tuple) else (out,)
        return all(bool(np.all(np.isfinite(o))) for o in outs) and outs[0].shape[0] == 6

    names = list(calls(T=1))
    for name in names:  # warm up: thread pool, lazy imports, first-call allocations
        assert small(name), name

    def vm_bytes():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmSize")

    limit = vm_bytes() + HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    print(json.dumps({"limit": limit}), flush=True)

    for name in names:
        call, needed = calls()[name]
        try:
            call()
            result = {"raised": None}
        except BaseException as exc:
            result = {"raised": type(exc).__name__, "message": str(exc)}
        try:
            result["small_ok"] = small(name)
        except BaseException as exc:
            result["small_ok"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"name": name, "needed": needed, **result}), flush=True)
    print(json.dumps({"survived": True}), flush=True)
    """
)

FUNCTIONS = [
    "wiener", "softmask", "expectation_maximization", "get_local_gaussian_model",
    "get_mix_model", "wiener_gain", "apply_filter", "residual_model", "smooth",
    "reduce_interferences", "compress_filter",
]


@pytest.fixture(scope="module")
def outcomes():
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(HEADROOM), str(OUTPUT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc, {line["name"]: line for line in lines if "name" in line}, lines


pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status: Linux"
)


def test_the_child_survives_every_impossible_output(outcomes):
    proc, _, lines = outcomes
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert lines and lines[-1] == {"survived": True}, proc.stdout + proc.stderr[-3000:]


def _size_in(message):
    """The sizes a message states, in bytes: '4294967296 bytes', '4.0 GiB', NumPy's '4.00 GiB'."""
    units = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}
    return [float(n) * units[u]
            for n, u in re.findall(r"(\d+(?:\.\d*)?) ?(bytes|[KMGTP]iB)\b", message)]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_output_beyond_the_limit_raises_memory_error_with_its_size(outcomes, name):
    proc, results, _ = outcomes
    assert name in results, f"{name} did not report (child died?):\n{proc.stderr[-3000:]}"
    r = results[name]
    assert r["raised"] == "MemoryError", r
    # the output's exact size, as norbert.allocate states it: "... (4294963200 bytes) ..."
    assert f"({r['needed']} bytes)" in r["message"], r
    assert any(abs(size - r["needed"]) <= 0.01 * r["needed"] for size in _size_in(r["message"]))
    assert r["small_ok"] is True, f"{name}: the next small call failed: {r['small_ok']}"
