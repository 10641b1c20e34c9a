"""The machine's floor: memory bandwidth, first-touch cost, and the bytes a call must move.

    python benchmarks/_floor.py --threads 1,2     # prints the measurements as JSON

bench.py runs this in a fresh process at the start and at the end of a run and keeps the
best of each figure, so the floor and the timings it is compared with come from the same
machine, the same run and the same load.  A cell's ``x floor`` is its median time divided
by :func:`floor_seconds` of :func:`min_traffic`: how far a call is from the time that
moving its unavoidable bytes takes on this machine.

The kernels are NumPy calls on arrays far larger than the last-level cache, each thread
working on its own contiguous part; NumPy releases the GIL in them, so ``n`` Python
threads really stream in parallel (``cpu_per_wall`` records the process's CPU time over
the wall time of the timed calls as proof: about ``n`` when they did).  Best of
``repeat`` calls, as STREAM reports:

- read: ``np.add.reduce`` (a sum) of the part (not ``np.dot``: BLAS would start threads
  of its own);
- write: ``part.fill(c)``, for 0 and 1 (glibc's ``memset`` path for 0 may use streaming
  stores, as our final pass does); the faster one;
- copy: ``np.copyto(dst, src)``, counted as the bytes read plus the bytes written;
- first touch: ``np.empty`` then ``fill`` once, minus ``fill`` of an array already
  touched, per byte: the page faults and the kernel's zeroing of the pages.  NumPy asks
  for transparent huge pages on large arrays (``madvise``), as it does for our outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ARRAY_BYTES = 512 << 20  # per array: 16x a 32 MB L3, so no pass is served by the caches
REPEAT = 7


class Team:
    """``n`` threads that start a kernel together on their parts of the arrays."""

    def __init__(self, n: int):
        self.n = n
        self.pool = ThreadPoolExecutor(n) if n > 1 else None

    def time(self, kernel, *arrays) -> tuple[float, float]:
        """Wall and CPU seconds of ``kernel(*parts)`` on every thread's parts."""
        parts = [np.array_split(a, self.n) for a in arrays]
        cpu0, t0 = time.process_time(), time.perf_counter()
        if self.pool is None:
            kernel(*[p[0] for p in parts])
        else:
            # a barrier, so that no thread streams alone while the others start
            barrier = threading.Barrier(self.n)

            def work(i):
                barrier.wait()
                kernel(*[p[i] for p in parts])

            for f in [self.pool.submit(work, i) for i in range(self.n)]:
                f.result()
        return time.perf_counter() - t0, time.process_time() - cpu0

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()


def _fill0(a):
    a.fill(0.0)


def _fill1(a):
    a.fill(1.0)


def measure(threads: int, nbytes: int = ARRAY_BYTES, repeat: int = REPEAT) -> dict:
    """Read, write and copy bandwidth (bytes/s) and first-touch cost (s/byte) on n threads."""
    n = nbytes // 8
    team = Team(threads)
    src = np.ones(n)
    dst = np.ones(n)
    best = {}
    cpu, wall = 0.0, 0.0

    def run(name, kernel, *arrays, moved):
        nonlocal cpu, wall
        times = []
        for _ in range(repeat):
            w, c = team.time(kernel, *arrays)
            times.append(w)
            wall, cpu = wall + w, cpu + c
        best[name] = moved / min(times)

    run("read", np.add.reduce, src, moved=src.nbytes)
    run("write_0", _fill0, dst, moved=dst.nbytes)
    run("write_1", _fill1, dst, moved=dst.nbytes)
    run("copy", np.copyto, dst, src, moved=src.nbytes + dst.nbytes)
    del dst
    fresh = []
    for _ in range(repeat):
        a = np.empty(n)  # an mmap of its own (far above glibc's threshold): new pages
        w, c = team.time(_fill1, a)
        fresh.append(w)
        wall, cpu = wall + w, cpu + c
        del a
    team.close()
    # the fill of touched pages is the write bandwidth of the same kernel
    touched = src.nbytes / best["write_1"]
    return {
        "threads": threads,
        "array_bytes": src.nbytes,
        "repeat": repeat,
        "read": best["read"],
        "write": max(best["write_0"], best["write_1"]),
        "write_nonzero": best["write_1"],
        "copy": best["copy"],
        "first_touch_s_per_byte": max(0.0, min(fresh) - touched) / src.nbytes,
        "cpu_per_wall": round(cpu / wall, 2),
    }


def best_of(*runs: dict) -> dict:
    """{threads: figures} keeping each figure's best over runs (highest bandwidth, lowest
    first-touch cost): the floor is what the machine did at its best during the run."""
    out = {}
    for run in runs:
        for t, m in run.items():
            if t not in out:
                out[t] = dict(m)
                continue
            for k in ("read", "write", "write_nonzero", "copy"):
                out[t][k] = max(out[t][k], m[k])
            out[t]["first_touch_s_per_byte"] = min(
                out[t]["first_touch_s_per_byte"], m["first_touch_s_per_byte"]
            )
    return out


# -- the bytes a call must move --------------------------------------------------------


def min_traffic(op: str, shape, itemsize: int) -> dict:
    """Bytes a call must read, write and first-touch at least, whatever its implementation.

    Parameters
    ----------
    op : str
        ``softmask``, ``wiener<K>`` (``wiener(v, x, iterations=K)``, softmask start) or
        ``em<K>`` (``expectation_maximization(y, x, iterations=K)``).
    shape : tuple of int
        ``(nb_frames, nb_bins, nb_channels, nb_sources)``: T, F, C, J.
    itemsize : int
        Bytes of one complex of x (16 for complex128, 8 for complex64); the PSDs are
        reals of half that size.

    Returns
    -------
    dict
        ``read``, ``write`` and ``touch`` (bytes of new output pages), and ``passes``.

    Notes
    -----
    With ``X = T F C`` complexes (x), ``V = T F J`` reals (v, or the PSDs P of an
    estimate), ``Y = T F C J`` complexes (y) and ``R = F C C J`` complexes, and every
    array far larger than the caches, a pass over the track reads each array it needs
    once (a streaming model: nothing survives in cache from one pass to the next).

    ``softmask`` is one pass: each mask needs v at the point and the sum over sources,
    and y needs x: read ``X + V``, write ``Y``, touch ``Y``.

    ``wiener(iterations=K)`` needs ``K + 1`` passes, since the spatial covariances
    ``R_k`` of a bin are sums over all frames and the filter of iteration ``k`` needs
    them at every frame:

    1. the softmask estimate's statistics give ``R_1``: read x and v;
    2. passes ``2 .. K`` filter with ``(P_{k-1}, R_{k-1})`` and take the statistics of
       the result: read x and the PSDs (pass 2 can recompute the softmask PSDs from v,
       same bytes), write the new PSDs, which no later pass can recompute without
       ``R`` of the pass before;
    3. the last pass filters with ``(P_K, R_K)``: read x and P, write y.

    Total: read ``(K + 1)(X + V)``, write ``(K - 1) V + Y``, touch ``Y``. A separate
    pass for ``max|x|`` (upstream's scaling of x) is not counted: it is not needed to
    move the bytes of the algorithm, and a faster implementation may fold it away.

    ``expectation_maximization(y, x, iterations=K)`` starts from y instead of the
    softmask: pass 1 reads y (v and R need only y) and writes the PSDs, which are an
    output (v) and so written and touched; passes ``2 .. K`` read x and P and write P;
    the last pass reads x and P and writes y. Total: read ``Y + K (X + V)``, write
    ``K V + Y + R``, touch ``V + Y + R``.

    Per-bin arrays (R's sums, weights) are smaller than a frame block and not counted
    in the passes; inputs are given, so only outputs are touched.
    """
    T, F, C, J = shape
    r = itemsize // 2
    X, V, Y = T * F * C * itemsize, T * F * J * r, T * F * C * J * itemsize
    R = F * C * C * J * itemsize
    if op == "softmask":
        return {"read": X + V, "write": Y, "touch": Y, "passes": 1}
    if op.startswith("wiener"):
        K = int(op[len("wiener") :])
        return {"read": (K + 1) * (X + V), "write": (K - 1) * V + Y, "touch": Y, "passes": K + 1}
    if op.startswith("em"):
        K = int(op[len("em") :])
        return {
            "read": Y + K * (X + V),
            "write": K * V + Y + R,
            "touch": V + Y + R,
            "passes": K + 1,
        }
    raise ValueError(f"unknown op {op!r}")


def floor_seconds(traffic: dict, machine: dict) -> float:
    """Seconds that moving ``traffic`` takes at least at ``machine``'s measured best.

    Reads go no faster than the read bandwidth, writes no faster than the write
    bandwidth, and both together no faster than the copy bandwidth (the best mixed
    traffic measured, above either alone on most machines), so the call takes at least
    the largest of the three times, plus the first-touch cost of its new pages (the
    kernel faults and zeroes them before the call can write them).
    """
    read, write = traffic["read"], traffic["write"]
    streaming = max(
        read / machine["read"], write / machine["write"], (read + write) / machine["copy"]
    )
    return streaming + traffic["touch"] * machine["first_touch_s_per_byte"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,2", help="comma list of thread counts (default 1,2)")
    p.add_argument("--mb", type=int, default=ARRAY_BYTES >> 20, help="MB per array")
    p.add_argument("--repeat", type=int, default=REPEAT)
    a = p.parse_args(argv)
    out = {}
    for t in (int(s) for s in a.threads.split(",")):
        out[t] = measure(t, a.mb << 20, a.repeat)
    out_json = {"machine": out, "thp": _thp(), "page_size": os.sysconf("SC_PAGE_SIZE")}
    print(json.dumps(out_json))
    return 0


def _thp() -> str | None:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().strip()
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
