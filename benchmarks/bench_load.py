#!/usr/bin/env python
"""Speed on a busy machine: all threads (the default) against one, with CPU-bound competitors.

    python benchmarks/bench_load.py                     # 0, 1, 2 competitors: a minute or two
    python benchmarks/bench_load.py --load numpy --json load.json

What: times ``norbert.wiener(v, x, iterations=3, workers=..., out=out)`` (or ``softmask``,
or ``expectation_maximization`` from a soft-mask estimate: ``--call``) with ``workers=1`` and
with the default (``workers=None``: all cores), while N other processes spin on the CPU
(``--load python``: a pure Python loop) or also stream through memory (``--load numpy``:
``a += 1`` on a 64 MB array).

Why: a call runs many parallel regions, and every region ends when its slowest thread does.
When another process holds a thread's core, its siblings wait for it, so on a busy machine
all threads can be slower than one. Targets: with one and with two competitors, the default
takes at most 1.2 times the one-thread time under the same load; on a quiet machine it is at
least 1.8 times faster than one thread (ratio <= 0.556).

How: inputs and a preallocated ``out`` are made once (a fresh output's page faults are not
measured). For each N the competitors are started, given 0.5 s to get going, and each setting
gets one warm-up call, then ``--repeats`` timed calls interleaved (1, default, 1, default, ...)
so that drifts of the load hit both alike; then the competitors are killed (also on Ctrl-C or
an error, and they exit by themselves when this process dies).

Reading the table: ``ratio`` = median default time / median one-thread time (below 1: the
threads help), ``target`` the bound it must meet; ``cores: comp.`` the cores the competitors
actually used while timing (so their load was real) and ``other`` the cores used by neither
them nor this process (other jobs: with more than ~0.1, the machine was not quiet and
the row measures more load than it says). The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

import norbert

QUIET_TARGET = 1 / 1.8  # no competitor: default at least 1.8x faster than one thread
BUSY_TARGET = 1.2  # with competitors: default at most 1.2x the one-thread time
ENV_KEYS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_PROC_BIND", "NORBERT_ISA")

# Run by each competitor: argv = parent pid, load kind.  It ignores Ctrl-C (the parent kills
# it) and exits when its parent is gone (then getppid() changes).
COMPETITOR = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
parent, kind = int(sys.argv[1]), sys.argv[2]
if kind == "numpy":
    import numpy as np
    a = np.zeros(8 * 1024 * 1024)  # 64 MB: far beyond the caches
    def step():
        np.add(a, 1.0, out=a)
else:
    def step():
        n = 0
        for i in range(100_000):
            n += i
print("ready", flush=True)
while os.getppid() == parent:
    step()
"""


def machine() -> dict:
    """Describe the machine: CPU model, core counts, norbert's threads and the load average.

    Returns
    -------
    dict
        ``cpu``, ``cpu_count``, ``affinity``, ``norbert_threads``, ``loadavg`` (1, 5, 15 min)
        and the OpenMP/norbert environment variables that are set.
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "norbert_threads": norbert.get_num_threads(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "env": {k: os.environ[k] for k in ENV_KEYS if k in os.environ},
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def cpu_snapshot(procs: list[subprocess.Popen]) -> np.ndarray:
    """CPU seconds used so far: by the whole machine, this process, and the competitors.

    Parameters
    ----------
    procs : list of subprocess.Popen
        the competitors.

    Returns
    -------
    np.ndarray
        wall clock, busy CPU time of all cores (``/proc/stat``), this process's CPU time, and
        the competitors' (``/proc/<pid>/stat``); NaN where /proc is missing. The difference
        of two snapshots divided by its wall time gives cores in use.
    """
    tick = os.sysconf("SC_CLK_TCK")
    wall, own = time.perf_counter(), sum(os.times()[:2])
    try:
        with open("/proc/stat") as f:
            ticks = [int(s) for s in f.readline().split()[1:9]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / tick  # all but idle and iowait
        comp = 0.0
        for p in procs:
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            comp += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    except OSError:
        busy = comp = float("nan")
    return np.array([wall, busy, own, comp])


@contextlib.contextmanager
def competitors(n: int, kind: str):
    """Run ``n`` CPU-bound processes for the duration of a ``with`` block.

    Parameters
    ----------
    n : int
        number of processes.
    kind : {"python", "numpy"}
        pure Python spin, or ``a += 1`` over a 64 MB array.

    Yields
    ------
    list of subprocess.Popen
        the processes, each already in its loop; they are killed when the block exits,
        however it exits.
    """
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(n):
            cmd = [sys.executable, "-c", COMPETITOR, str(os.getpid()), kind]
            procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE))
        for p in procs:
            if p.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"competitor {p.pid} failed to start (exit code {p.poll()})")
        time.sleep(0.5)
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
            p.stdout.close()


def make_call(args: argparse.Namespace):
    """Build the inputs, the output and the function to time.

    Parameters
    ----------
    args : argparse.Namespace
        the command-line options (shape, precision, call, iterations).

    Returns
    -------
    callable
        ``call(workers)`` runs the chosen function once into the preallocated output.
    """
    real = np.dtype(args.precision)
    cplx = np.result_type(real, np.complex64)
    rng = np.random.default_rng(0)
    shape = (args.frames, args.bins, args.channels)
    x = (rng.standard_normal(shape, real) + 1j * rng.standard_normal(shape, real)).astype(cplx)
    v = rng.gamma(1.0, 1.0, (*shape, args.sources)).astype(real)
    out = np.empty((*shape, args.sources), cplx)
    out.fill(0)  # fault the pages in now, not during the first timed call
    if args.call == "wiener":
        return lambda w: norbert.wiener(v, x, args.iterations, workers=w, out=out)
    if args.call == "softmask":
        return lambda w: norbert.softmask(v, x, workers=w, out=out)
    y = norbert.softmask(v, x)
    return lambda w: norbert.expectation_maximization(y, x, args.iterations, workers=w, out=out)


def measure(call, repeats: int) -> tuple[list[float], list[float]]:
    """Warm up, then time ``workers=1`` and ``workers=None`` alternately.

    Parameters
    ----------
    call : callable
        from :func:`make_call`.
    repeats : int
        timed calls per setting.

    Returns
    -------
    one, default : list of float
        wall times in seconds, in the order they were measured.
    """
    call(1)
    call(None)
    times: dict = {1: [], None: []}
    for _ in range(repeats):
        for w in (1, None):
            t0 = time.perf_counter()
            call(w)
            times[w].append(time.perf_counter() - t0)
    return times[1], times[None]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a target is missed."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--competitors", default="0,1,2", help="comma-separated process counts")
    ap.add_argument("--load", choices=("python", "numpy"), default="python")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--bins", type=int, default=2049)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--precision", choices=("float64", "float32"), default="float64")
    ap.add_argument("--call", choices=("wiener", "softmask", "em"), default="wiener")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    counts = [int(n) for n in args.competitors.split(",")]

    info = machine()  # load average before anything of ours runs
    print(
        f"cpu: {info['cpu']}; os.cpu_count() {info['cpu_count']}, "
        f"affinity {info['affinity']}, norbert.get_num_threads() {info['norbert_threads']}"
    )
    print(f"load average before start: {info['loadavg']}; env: {info['env'] or 'none set'}")
    print(
        f"call: {args.call}, iterations {args.iterations}, x ({args.frames}, {args.bins}, "
        f"{args.channels}) {args.precision}, {args.sources} sources; load: {args.load}; "
        f"{args.repeats} timed calls per setting, interleaved",
        flush=True,
    )
    call = make_call(args)

    rows = []
    print(
        f"\n{'comp.':>5}  {'1 thread: median [min-max] s':>29}  "
        f"{'default: median [min-max] s':>28}  {'ratio':>6}  {'target':>8}  met  cores: comp. other"
    )
    for n in counts:
        with competitors(n, args.load) as procs:
            before = cpu_snapshot(procs)
            one, default = measure(call, args.repeats)
            wall, busy, own, comp = cpu_snapshot(procs) - before
        others = (busy - own - comp) / wall  # cores used by everything else on the machine
        ratio = float(np.median(default) / np.median(one))
        target = QUIET_TARGET if n == 0 else BUSY_TARGET
        rows.append(
            {
                "competitors": n,
                "one": one,
                "default": default,
                "ratio": ratio,
                "target": target,
                "met": ratio <= target,
                "median_one": float(np.median(one)),
                "median_default": float(np.median(default)),
                "competitor_cores": comp / wall,
                "other_cores": others,
            }
        )
        span = [f"{np.median(t):.3f} [{min(t):.3f}-{max(t):.3f}]" for t in (one, default)]
        print(
            f"{n:>5}  {span[0]:>29}  {span[1]:>28}  {ratio:>6.3f}  <= {target:<5.3f}  "
            f"{'yes' if ratio <= target else 'NO ':<3}  {comp / wall:>11.2f} {others:>5.2f}",
            flush=True,
        )

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "options": vars(args), "results": rows}, f, indent=1)
        print(f"\nwrote {args.json}")
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
