"""Run one benchmark cell in this (fresh) process and print its result as JSON.

bench.py starts ``python _cell.py '<json spec>'`` once per cell, so every cell
has clean peak-memory counters and no library's allocations, thread pools or
imports affect another's.  The last line on stdout is the JSON result.

Memory, on Linux:
- in-memory calls: inputs are loaded first, then freed heap is returned to the
  OS (``malloc_trim``), the peak RSS is reset (``5 > /proc/self/clear_refs``),
  and the call's cost is ``VmHWM - VmRSS before the call``: everything it
  allocated at its peak, its outputs included.
- ``out=`` on a memmap: the written file pages are not the call's memory, so only
  anonymous memory counts: ``RssAnon`` sampled every millisecond by a thread
  (kernels release the GIL), and ``VmHWM`` minus the growth of file-backed RSS.
  Both can only under-count (the second when file pages arrive before the
  anonymous peak), so the larger of the two is reported.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import json
import os
import sys
import threading
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _workloads import initial_estimate  # noqa: E402

# -- memory probes -------------------------------------------------------------

try:
    _libc = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc: no malloc_trim
    _libc = None


def proc_status() -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile, RssShmem of this process, in bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) * 1024
    return out


def settle_memory() -> None:
    gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class AnonSampler(threading.Thread):
    """Polls RssAnon while a call runs; ``peak`` is the highest value seen."""

    def __init__(self, interval=0.001):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = proc_status()["RssAnon"]
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.peak = max(self.peak, proc_status()["RssAnon"])
            time.sleep(self.interval)

    def stop(self):
        self._halt.set()
        self.join()
        self.peak = max(self.peak, proc_status()["RssAnon"])


# -- libraries -------------------------------------------------------------------


def load_ours():
    import norbert

    if getattr(norbert, "__version__", "0.2.1") == "0.2.1":
        raise ImportError(
            f"`norbert` is upstream 0.2.1 ({norbert.__file__}), not this project's build"
        )
    return norbert


def load_upstream(path):
    sys.path.insert(0, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its scipy.ndimage.filters import is deprecated
        import norbert_upstream
    return norbert_upstream


def load_openunmix(path):
    spec = importlib.util.spec_from_file_location("openunmix_filtering", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Ours:
    name = "ours"
    mutates = False

    def __init__(self, spec):
        self.nb = load_ours()
        self.workers = spec.get("threads")

    def prepare(self, v, x, y0):
        return v, x, y0

    def fresh(self, args):
        return args

    def call(self, op, args, out=None):
        v, x, y0 = args
        kw = {} if self.workers is None else {"workers": self.workers}
        if out is not None:
            kw["out"] = out
        if op == "softmask":
            return self.nb.softmask(v, x, **kw)
        if op.startswith("wiener"):
            return self.nb.wiener(v, x, iterations=int(op[6:]), **kw)
        if op == "em1":
            return self.nb.expectation_maximization(y0, x, iterations=1, **kw)[0]
        raise ValueError(op)

    def to_numpy(self, y):
        return y


class Upstream(Ours):
    name = "upstream"

    def __init__(self, spec):
        self.nb = load_upstream(spec["upstream_path"])
        self.workers = None

    def fresh(self, args):
        # 0.2.1's wiener divides x in place when max|x| > 10 and its EM
        # overwrites y: every call gets its own copies (made before timing)
        v, x, y0 = args
        return v, x.copy(), None if y0 is None else y0.copy()

    def call(self, op, args, out=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return super().call(op, args, out)


class OpenUnmix:
    """open-unmix's torch filtering: real views (..., 2), y as (..., 2, nb_sources)."""

    name = "openunmix"

    def __init__(self, spec):
        import torch

        self.torch = torch
        self.filtering = load_openunmix(spec["openunmix_path"])
        if spec.get("threads"):
            torch.set_num_threads(spec["threads"])
        self.eps = None

    def prepare(self, v, x, y0):
        torch = self.torch
        # same eps as norbert's default, so both compute the same maths
        self.eps = float(np.finfo(x.real.dtype).eps)
        X = torch.view_as_real(torch.from_numpy(x))  # (frames, bins, channels, 2), no copy
        V = torch.from_numpy(v)
        Y0 = None
        if y0 is not None:
            Y0 = torch.view_as_real(torch.from_numpy(y0)).permute(0, 1, 2, 4, 3).contiguous()
        return V, X, Y0

    def fresh(self, args):
        V, X, Y0 = args
        return V, X, None if Y0 is None else Y0.clone()  # its EM writes into y

    def call(self, op, args, out=None):
        V, X, Y0 = args
        f = self.filtering
        if op != "softmask" and X.shape[-2] > 2:
            raise NotImplementedError("open-unmix inverts only 1x1 and 2x2 mixture covariances")
        with self.torch.inference_mode():
            if op == "softmask":
                return f.wiener(V, X, iterations=0, softmask=True, eps=self.eps)
            if op.startswith("wiener"):
                return f.wiener(V, X, iterations=int(op[6:]), softmask=True, eps=self.eps)
            if op == "em1":
                return f.expectation_maximization(Y0, X, iterations=1, eps=self.eps)[0]
        raise ValueError(op)

    def to_numpy(self, y):
        y = y.permute(0, 1, 2, 4, 3).contiguous()
        return self.torch.view_as_complex(y).numpy()


LIBS = {"ours": Ours, "upstream": Upstream, "openunmix": OpenUnmix}


# -- data --------------------------------------------------------------------------


def load_data(spec):
    """v, x (and y0 for the EM) of the spec's workload, dtype and frame count."""
    dtype = np.dtype(spec["dtype"])
    stem = os.path.join(spec["data_dir"], f"{spec['workload']}_{dtype.name}")
    v = np.load(stem + "_v.npy")
    x = np.load(stem + "_x.npy")
    frames = spec.get("frames")
    if frames:
        v, x = np.ascontiguousarray(v[:frames]), np.ascontiguousarray(x[:frames])
    y0 = initial_estimate(v, x) if spec["op"] == "em1" else None
    return v, x, y0


# -- measurements --------------------------------------------------------------------


def warm_up(lib, spec, v, x, y0):
    """One untimed call.  Reference libraries on long inputs warm up on a
    32-frame slice when the full call would take long (extrapolated)."""
    op = spec["op"]
    if lib.name == "ours" or x.shape[0] <= 64:
        lib.call(op, lib.fresh(lib.prepare(v, x, y0)))
        return "full"
    n = 32
    sl = lib.prepare(v[:n].copy(), x[:n].copy(), None if y0 is None else y0[:n].copy())
    t0 = time.perf_counter()
    lib.call(op, lib.fresh(sl))
    estimate = (time.perf_counter() - t0) * x.shape[0] / n
    if estimate < spec.get("full_warmup_below_s", 5.0):
        lib.call(op, lib.fresh(lib.prepare(v, x, y0)))
        return "full"
    return f"{n} frames"


def measure_full(lib, spec, v, x, y0):
    op = spec["op"]
    warmup = warm_up(lib, spec, v, x, y0)
    base_args = lib.prepare(v, x, y0)
    times, extra = [], []
    for _ in range(spec["repeat"]):
        args = lib.fresh(base_args)
        settle_memory()
        reset_peak()
        before = proc_status()["VmRSS"]
        t0 = time.perf_counter()
        y = lib.call(op, args)
        times.append(time.perf_counter() - t0)
        extra.append(proc_status()["VmHWM"] - before)
        del y, args
    return {"times": times, "mem_extra": max(extra), "warmup": warmup}


def measure_memmap(lib, spec, v, x, y0):
    """wiener(..., out=np.memmap): time and anonymous memory beyond the inputs."""
    op = spec["op"]
    path = os.path.join(spec["data_dir"], f"out_{os.getpid()}.dat")
    shape = x.shape + v.shape[-1:]

    def new_out():
        return np.memmap(path, dtype=x.dtype, mode="w+", shape=shape)

    out = new_out()
    lib.call(op, (v, x, y0), out=out)  # warm-up
    del out
    times, anon, hwm_est = [], [], []
    try:
        for _ in range(spec["repeat"]):
            os.unlink(path)
            out = new_out()
            settle_memory()
            reset_peak()
            before = proc_status()
            sampler = AnonSampler()
            sampler.start()
            t0 = time.perf_counter()
            y = lib.call(op, (v, x, y0), out=out)
            times.append(time.perf_counter() - t0)
            sampler.stop()
            after = proc_status()
            if y is not out:
                raise AssertionError("wiener(out=...) did not return out")
            anon.append(sampler.peak - before["RssAnon"])
            file_growth = (after["RssFile"] - before["RssFile"]) + (
                after["RssShmem"] - before["RssShmem"]
            )
            hwm_est.append(after["VmHWM"] - before["VmRSS"] - file_growth)
            del y, out
    finally:
        if os.path.exists(path):
            os.unlink(path)
    return {
        "times": times,
        "mem_extra": max(max(anon), max(hwm_est)),
        "anon_sampled": max(anon),
        "anon_from_hwm": max(hwm_est),
        "warmup": "full",
    }


def measure_small(lib, spec, v, x, y0):
    """Per-call time of many small calls: autorange loops to >= 0.2 s, repeated."""
    op = spec["op"]
    base = lib.prepare(v, x, y0)
    lib.call(op, lib.fresh(base))  # warm-up
    loops = 1
    while True:
        argss = [lib.fresh(base) for _ in range(loops)]
        t0 = time.perf_counter()
        for a in argss:
            lib.call(op, a)
        dt = time.perf_counter() - t0
        if dt >= 0.2 or loops >= 10000:
            break
        loops *= 2 if dt * 2 >= 0.2 else 10
    per_call = [dt / loops]
    budget = time.perf_counter() + spec.get("small_budget_s", 3.0)
    while len(per_call) < spec["repeat"] and (len(per_call) < 2 or time.perf_counter() < budget):
        argss = [lib.fresh(base) for _ in range(loops)]
        t0 = time.perf_counter()
        for a in argss:
            lib.call(op, a)
        per_call.append((time.perf_counter() - t0) / loops)
    return {"times": per_call, "loops": loops, "warmup": "full"}


def check_agreement(spec):
    """Max relative difference of each library's result from the reference."""
    v, x, y0 = load_data(spec)
    results, errors = {}, {}
    for name in spec["libs"]:
        try:
            lib = LIBS[name](spec)
            results[name] = np.asarray(
                lib.to_numpy(lib.call(spec["op"], lib.fresh(lib.prepare(v, x, y0))))
            )
        except Exception as exc:  # report, do not fail the run
            errors[name] = f"{type(exc).__name__}: {exc}"
    ref_name = spec["reference"] if spec["reference"] in results else next(iter(results), None)
    diffs = {}
    if ref_name is not None:
        ref = results[ref_name].astype(np.complex128)
        scale = np.abs(ref).max()
        for name, y in results.items():
            if name != ref_name:
                diffs[name] = (
                    float(np.abs(y.astype(np.complex128) - ref).max() / scale)
                    if y.shape == ref.shape
                    else f"shape {y.shape} != {ref.shape}"
                )
    return {"reference": ref_name, "max_rel_diff": diffs, "errors": errors}


def main(spec):
    if spec["mode"] == "check":
        return check_agreement(spec)
    lib = LIBS[spec["lib"]](spec)
    v, x, y0 = load_data(spec)
    measure = {"full": measure_full, "memmap": measure_memmap, "small": measure_small}[spec["mode"]]
    result = measure(lib, spec, v, x, y0)
    result["median"] = float(np.median(result["times"]))
    result["min"] = float(np.min(result["times"]))
    nb_frames, nb_bins, nb_channels, nb_sources = x.shape + v.shape[-1:]
    out_bytes = nb_frames * nb_bins * nb_channels * nb_sources * x.itemsize  # y
    if spec["op"] == "em1":  # it also returns v (x's real dtype) and R
        out_bytes += nb_frames * nb_bins * nb_sources * x.itemsize // 2
        out_bytes += nb_bins * nb_channels * nb_channels * nb_sources * x.itemsize
    result["out_bytes"] = out_bytes
    result["in_bytes"] = int(v.nbytes + x.nbytes + (0 if y0 is None else y0.nbytes))
    result["shape"] = list(v.shape)
    if lib.name == "ours":
        result["threads_used"] = (
            lib.nb.get_num_threads(lib.workers) if hasattr(lib.nb, "get_num_threads") else None
        )
    elif lib.name == "openunmix":
        result["threads_used"] = lib.torch.get_num_threads()
    return result


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    try:
        result = main(spec)
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))
