#!/usr/bin/env python
"""norbert.dask on a recording several times larger than the workers' memory.

    python benchmarks/bench_dask.py                  # 10 min stereo, 4 sources: ~6 GB on disk
    python benchmarks/bench_dask.py --minutes 2      # a quicker look

Needs the [dask] extra. Generates (seeded, block by block) the STFT x of a stereo mixture
(n_fft 4096, hop 1024, 44.1 kHz: 2049 bins, 2584 frames a minute) and the spectrograms v of
4 sources as .npy files in --data-dir (complex64 / float32: x 0.85 GB, v 1.7 GB for 10
minutes), then

1. refines them with ``norbert.dask.wiener(iterations=1)`` on a LocalCluster of 2 worker
   processes with one thread each and a 512 MB memory limit each, reading x and v with
   ``from_npy`` and writing y (3.4 GB) with ``to_npy``: wall time, peak resident memory of
   each worker (VmHWM, exact, not sampled), restarts;
2. on the first --fit-minutes of the same data (a size that fits in memory): the in-memory
   ``norbert.wiener`` (1 and 2 threads, arrays already in memory, output allocated by the
   call), and the same Dask pipeline, files to files, on the same cluster.

Throughput is minutes of audio refined per minute of wall time. The inputs are in the page
cache after generation (this harness does not drop caches, which would need root and
disturb everything else on the machine); y is written through the page cache to disk, and
a last row times writing zeros of y's size the same way (the output's I/O alone). Results:
a Markdown table on stdout and --json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

FRAMES_PER_MINUTE = 2584  # 60 s * 44100 / 1024, rounded up
BINS, CHANNELS, SOURCES = 2049, 2, 4
MiB = 2**20


def log(msg):
    print(msg, flush=True)


def generate(data_dir: Path, nb_frames: int, seed: int = 0):
    """x (T, 2049, 2) complex64 and v (T, 2049, 2, 4) float32 as .npy files, seeded."""
    x_path, v_path = data_dir / f"x_{nb_frames}.npy", data_dir / f"v_{nb_frames}.npy"
    if x_path.exists() and v_path.exists():
        return x_path, v_path
    rng = np.random.default_rng(seed)
    x = np.lib.format.open_memmap(x_path, "w+", np.complex64, (nb_frames, BINS, CHANNELS))
    v = np.lib.format.open_memmap(v_path, "w+", np.float32, (nb_frames, BINS, CHANNELS, SOURCES))
    # a spectral envelope per source (decaying with frequency), random activations
    envelope = (1.0 / (1.0 + np.arange(BINS) / rng.uniform(20, 400, SOURCES)[:, None])).T
    step = 500
    for t0 in range(0, nb_frames, step):
        n = min(step, nb_frames - t0)
        gains = rng.gamma(1.0, 1.0, (n, 1, 1, SOURCES)).astype(np.float32)
        pan = rng.uniform(0.3, 1.0, (1, 1, CHANNELS, SOURCES)).astype(np.float32)
        power = gains * pan * envelope[None, :, None, :].astype(np.float32)
        block = power * rng.random((n, BINS, CHANNELS, SOURCES), dtype=np.float32)
        v[t0 : t0 + n] = block
        noise = rng.standard_normal((n, BINS, CHANNELS, 2), dtype=np.float32)
        x[t0 : t0 + n] = np.sqrt(block.sum(axis=-1)) * noise.view(np.complex64)[..., 0]
    x.flush()
    v.flush()
    del x, v
    return x_path, v_path


def _rss_mib(reset=False):
    """(current, peak) resident memory of this process, MiB; reset restarts the peak."""
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f)
    current, peak = (int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    if reset:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    return current, peak


def run_dask(client, x_path, v_path, y_path, frames_per_chunk, iterations):
    import norbert.dask as nd

    before = client.run(_rss_mib, True)
    x = nd.from_npy(x_path, chunks=(frames_per_chunk, -1, -1))
    v = nd.from_npy(v_path, chunks=(frames_per_chunk, -1, -1, -1))
    start = time.perf_counter()
    y = nd.wiener(v, x, iterations=iterations)
    nd.to_npy(y, y_path, scheduler=client)
    wall = time.perf_counter() - start
    after = client.run(_rss_mib)
    return {
        "wall_s": wall,
        "baseline_mib": {w: round(r[0], 1) for w, r in before.items()},
        "peak_mib": {w: round(r[1], 1) for w, r in after.items()},
        "restarted": sorted(set(before) ^ set(after)),
        "chunks": len(x.chunks[0]),
    }


def run_in_memory(x_path, v_path, iterations, workers, repeat=3, out_path=None):
    """Median time of norbert.wiener: arrays in memory, or (out_path) memory-mapped files
    in and an np.memmap out (the in-memory driver's own out-of-core path)."""
    import norbert

    if out_path is None:
        x, v = np.load(x_path), np.load(v_path)
    else:
        x, v = np.load(x_path, mmap_mode="r"), np.load(v_path, mmap_mode="r")
    norbert.wiener(v[:64], x[:64], iterations=iterations, workers=workers)  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = None
        if out_path is not None:
            shape = x.shape + v.shape[-1:]
            out = np.lib.format.open_memmap(out_path, "w+", x.dtype, shape)
        y = norbert.wiener(v, x, iterations=iterations, workers=workers, out=out)
        if out is not None:
            out.flush()
        times.append(time.perf_counter() - start)
        del y, out
    return float(np.median(times))


def run_write_floor(client, shape, y_path, frames_per_chunk):
    """Time to_npy takes to write zeros of y's size: the output's I/O alone."""
    import dask.array as da

    import norbert.dask as nd

    zeros = da.zeros(shape, dtype=np.complex64, chunks=(frames_per_chunk, -1, -1, -1))
    start = time.perf_counter()
    nd.to_npy(zeros, y_path, scheduler=client)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fit-minutes", type=float, default=1.0)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="512MB")
    parser.add_argument(
        "--frames-per-chunk", type=int, default=240, help="frames per task (240: y chunks of 31 MB)"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="where the .npy files go (default: a temporary directory, removed)",
    )
    parser.add_argument("--json", default=None, help="write the results here as JSON")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    import norbert

    tmp = None
    if args.data_dir is None:
        tmp = tempfile.mkdtemp(prefix="norbert-bench-dask-")
        data_dir = Path(tmp)
    else:
        data_dir = Path(args.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
    big_frames = round(args.minutes * FRAMES_PER_MINUTE)
    fit_frames = round(args.fit_minutes * FRAMES_PER_MINUTE)
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_start": os.getloadavg(),
        },
        "norbert": norbert.__version__,
        "args": vars(args),
    }
    try:
        log(
            f"generating {args.minutes} min ({big_frames} frames) and {args.fit_minutes} min "
            f"in {data_dir} ..."
        )
        start = time.perf_counter()
        x_big, v_big = generate(data_dir, big_frames)
        x_fit, v_fit = generate(data_dir, fit_frames, seed=1)
        sizes = {name: os.path.getsize(p) / 1e9 for name, p in [("x_gb", x_big), ("v_gb", v_big)]}
        sizes["y_gb"] = big_frames * BINS * CHANNELS * SOURCES * 8 / 1e9
        results["sizes"] = sizes
        log(
            f"  {time.perf_counter() - start:.0f} s; x {sizes['x_gb']:.2f} GB, "
            f"v {sizes['v_gb']:.2f} GB, y {sizes['y_gb']:.2f} GB"
        )

        log("in memory, 1 and 2 threads ...")
        mem = {w: run_in_memory(x_fit, v_fit, args.iterations, w) for w in (1, 2)}
        mem["files"] = run_in_memory(
            x_fit, v_fit, args.iterations, 2, out_path=data_dir / "y_fit_mem.npy"
        )
        results["in_memory_s"] = mem

        with (
            LocalCluster(
                n_workers=args.n_workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=args.memory_limit,
                dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):
            log(f"dask, {args.fit_minutes} min ...")
            fit = run_dask(
                client, x_fit, v_fit, data_dir / "y_fit.npy", args.frames_per_chunk, args.iterations
            )
            log(f"dask, {args.minutes} min ...")
            big = run_dask(
                client, x_big, v_big, data_dir / "y_big.npy", args.frames_per_chunk, args.iterations
            )
            log("dask, writing zeros of y's size (the output's I/O alone) ...")
            floor = run_write_floor(
                client,
                (big_frames, BINS, CHANNELS, SOURCES),
                data_dir / "y_zeros.npy",
                args.frames_per_chunk,
            )
        results["dask_fit"] = fit
        results["dask_big"] = big
        results["write_floor_s"] = floor
        results["machine"]["loadavg_end"] = os.getloadavg()

        def rate(minutes, seconds):
            return minutes * 60.0 / seconds

        rows = [
            ("in memory, 1 thread", args.fit_minutes, mem[1], "-"),
            ("in memory, 2 threads", args.fit_minutes, mem[2], "-"),
            ("in memory, 2 threads, memmap in, out= memmap", args.fit_minutes, mem["files"], "-"),
            (
                f"dask, {args.n_workers} workers x 1 thread, files",
                args.fit_minutes,
                fit["wall_s"],
                max(fit["peak_mib"].values()),
            ),
            (
                f"dask, {args.n_workers} workers x 1 thread, files",
                args.minutes,
                big["wall_s"],
                max(big["peak_mib"].values()),
            ),
            ("(to_npy of zeros of y's size: output I/O alone)", args.minutes, floor, "-"),
        ]
        log("")
        log(
            f"wiener(iterations={args.iterations}), stereo, 4 sources, complex64; "
            f"workers' memory limit {args.memory_limit}"
        )
        log("")
        log("| path | audio | wall time | throughput (audio min / min) | peak worker RSS |")
        log("|---|--:|--:|--:|--:|")
        for name, minutes, seconds, peak in rows:
            peak_s = peak if isinstance(peak, str) else f"{peak:.0f} MiB"
            log(
                f"| {name} | {minutes:g} min | {seconds:.1f} s | "
                f"{rate(minutes, seconds):.1f} | {peak_s} |"
            )
        log("")
        log(
            f"worker baseline RSS before the {args.minutes} min run: {big['baseline_mib']}; "
            f"peaks {big['peak_mib']}; restarted workers: {big['restarted'] or 'none'}; "
            f"{big['chunks']} chunks of {args.frames_per_chunk} frames"
        )
        log(
            f"load average start {results['machine']['loadavg_start']}, "
            f"end {results['machine']['loadavg_end']}"
        )
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
