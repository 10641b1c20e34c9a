#!/usr/bin/env python
"""Time per time-frequency point on one thread: a problem in the caches against the song.

    python benchmarks/bench_points.py                  # about a minute
    python benchmarks/bench_points.py --json points.json

What: ``softmask``, ``wiener(iterations=1)`` and ``wiener(iterations=3)`` with ``workers=1``
and a preallocated ``out=``, complex128 and complex64, stereo, 4 sources, on two sizes: 64
frames x 1025 bins (inputs, PSDs and output about 20 MB: they stay in a 32 MB last-level
cache) and the 3-minute song (7752 frames x 2049 bins: about 3 GB, in DRAM).

Why: it tells whether the passes are bound by memory or by instructions. When a point costs
about the same in the caches as in DRAM, memory is not what limits them, and prefetching or
other layouts of the same work help little; fewer instructions per point will.

How: random inputs (the timing does not depend on the values); one untimed call, then
``--rounds`` rounds, each timing enough calls for about 20 million points; the best round
counts (the least disturbed by other jobs). The machine's load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import norbert
import norbert._core

SIZES = {"cache": (64, 1025), "song": (7752, 2049)}
CALLS = {
    "softmask": lambda v, x, out: norbert.softmask(v, x, workers=1, out=out),
    "wiener1": lambda v, x, out: norbert.wiener(v, x, iterations=1, workers=1, out=out),
    "wiener3": lambda v, x, out: norbert.wiener(v, x, iterations=3, workers=1, out=out),
}


def ns_per_point(call, v, x, out, rounds):
    points = x.shape[0] * x.shape[1]
    reps = max(1, 20_000_000 // points)
    call(v, x, out)
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            call(v, x, out)
        best = min(best, (time.perf_counter() - t) / reps / points * 1e9)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"load average {os.getloadavg()[0]:.2f}; ns per TF point, one thread, out= given")
    print(f"{'size':6} {'dtype':10} " + " ".join(f"{name:>9}" for name in CALLS))
    results = []
    for size, (T, F) in SIZES.items():
        for dtype in (np.complex128, np.complex64):
            x = (rng.standard_normal((T, F, 2)) + 1j * rng.standard_normal((T, F, 2)))
            x = x.astype(dtype)
            v = rng.random((T, F, 2, 4)).astype(x.real.dtype)
            out = np.zeros((T, F, 2, 4), dtype)
            row = {name: ns_per_point(call, v, x, out, args.rounds)
                   for name, call in CALLS.items()}
            results.append({"size": size, "frames": T, "bins": F,
                            "dtype": np.dtype(dtype).name, "ns_per_point": row})
            print(f"{size:6} {np.dtype(dtype).name:10} "
                  + " ".join(f"{row[name]:9.1f}" for name in CALLS))
            del x, v, out
    print(f"load average {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"isa": norbert._core.isa(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
