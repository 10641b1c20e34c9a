#!/usr/bin/env python
"""Side-by-side benchmark: this norbert vs upstream norbert 0.2.1 vs open-unmix.

    python benchmarks/bench.py            # full run (song included), ~25 min
    python benchmarks/bench.py --quick    # 10 s workloads only, a few minutes

Run it with the Python that has this project's ``norbert`` installed.  The
harness installs upstream norbert 0.2.1 itself (``pip install --no-deps
--target``) under the import name ``norbert_upstream`` in a temporary
directory, and, when torch is importable, takes ``openunmix/filtering.py`` from
the ``openunmix`` wheel on PyPI.  Every measured cell runs in a fresh
subprocess (``_cell.py``).  Results: ``<out-dir>/results.json`` and
``results.md``.  See benchmarks/README.md for the columns.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _floor import best_of, floor_seconds, min_traffic  # noqa: E402
from _workloads import WORKLOADS  # noqa: E402

UPSTREAM_VERSION = "0.2.1"
OPENUNMIX_VERSION = "1.3.0"
OPS = ("softmask", "wiener1", "wiener3", "em1")
OP_LABEL = {
    "softmask": "softmask",
    "wiener1": "wiener(iterations=1)",
    "wiener3": "wiener(iterations=3)",
    "em1": "expectation_maximization(iterations=1)",
}
DTYPES = ("complex128", "complex64")
SLOW_LIBS = ("upstream", "openunmix")
SMALL_FRAMES = (1, 10, 300)
LONG_FRAMES = 2000  # workloads longer than this use --slow-repeat for reference libs
MB = 1024 * 1024
CONTENDED = 0.10  # share of the machine's CPU used by other jobs during a cell
ITEMSIZE = {"complex128": 16, "complex64": 8}


def log(msg: str) -> None:
    print(msg, flush=True)


# -- setup ------------------------------------------------------------------------


def pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    subprocess.run(cmd, check=True)


def install_upstream(work: Path) -> str:
    """pip-install norbert 0.2.1 into work/ and expose it as `norbert_upstream`."""
    pkgs = work / "pkgs"
    if (pkgs / "norbert_upstream" / "__init__.py").exists():
        return str(pkgs)
    site = work / "upstream-site"
    pip(
        "install",
        "--no-deps",
        "--no-compile",
        "--target",
        str(site),
        f"norbert=={UPSTREAM_VERSION}",
    )
    pkgs.mkdir(exist_ok=True)
    # its imports are relative (from .contrib import ...): renaming the directory is enough
    shutil.copytree(site / "norbert", pkgs / "norbert_upstream")
    return str(pkgs)


def fetch_openunmix(work: Path) -> str:
    """filtering.py from the openunmix wheel on PyPI (it needs only torch)."""
    target = work / "openunmix_filtering.py"
    if target.exists():
        return str(target)
    dl = work / "openunmix-dl"
    pip(
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "-d",
        str(dl),
        f"openunmix=={OPENUNMIX_VERSION}",
    )
    (wheel,) = glob.glob(str(dl / "openunmix-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        target.write_bytes(zf.read("openunmix/filtering.py"))
    return str(target)


def supports(lib: str, workload: str, op: str) -> bool:
    """open-unmix inverts only 1x1 and 2x2 covariances: 6 channels, softmask only."""
    return lib != "openunmix" or WORKLOADS[workload].nb_channels <= 2 or op == "softmask"


def probe(code: str) -> str | None:
    """Run code in a subprocess; its stdout, or None if it fails."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def describe_ours() -> dict | None:
    out = probe(
        "import json, norbert\n"
        "assert norbert.__version__ != '0.2.1', 'upstream, not ours'\n"
        "import norbert._core as core\n"
        "print(json.dumps({'version': norbert.__version__, 'file': norbert.__file__,\n"
        "  'openmp': getattr(norbert, 'openmp_enabled', lambda: None)(),\n"
        "  'isa': getattr(core, 'isa', lambda: None)(),\n"
        "  'max_threads': getattr(core, 'max_threads', lambda: None)()}))"
    )
    return json.loads(out) if out else None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def measure_floor(threads: list[int], repeat: int) -> dict | None:
    """The machine's bandwidth and first-touch cost (_floor.py) in a fresh process."""
    cmd = [sys.executable, str(HERE / "_floor.py"), "--threads", ",".join(map(str, threads))]
    r = subprocess.run([*cmd, "--repeat", str(repeat)], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # JSON keys are strings; thread counts are ints everywhere else
    out["machine"] = {int(t): m for t, m in out["machine"].items()}
    return out


# -- running cells ------------------------------------------------------------------


def busy_cpu_s() -> float:
    """CPU-seconds all processes have used since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_cell(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, str(HERE / "_cell.py"), json.dumps(spec)]
    busy0, ours0 = busy_cpu_s(), children_cpu_s()
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    lines = r.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        result = {"error": f"exit {r.returncode}: " + " | ".join(tail)}
    result["wall_s"] = round(wall, 2)
    # CPU used by other jobs while the cell ran, as a share of the machine: they distort
    # timings (two-thread ones most), so cells above CONTENDED are flagged in the report
    other = (busy_cpu_s() - busy0) - (children_cpu_s() - ours0)
    result["other_cpu_share"] = round(max(0.0, other) / (wall * (os.cpu_count() or 1)), 3)
    return result


def fmt_time(s) -> str:
    if s is None:
        return "–"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


def fmt_x(a, b, digits=1) -> str:
    """a / b as a speed-up."""
    if a is None or b is None or b <= 0:
        return "–"
    return f"{a / b:.{digits}f}x"


def median_of(cell):
    return None if cell is None else cell.get("median")


# -- the run --------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="10 s workloads only (no song, no memmap)")
    p.add_argument(
        "--workloads", help=f"comma list of {','.join(WORKLOADS)} (default: all; --quick: no song)"
    )
    p.add_argument("--ops", default=",".join(OPS), help=f"comma list of {','.join(OPS)}")
    p.add_argument("--dtypes", default=",".join(DTYPES))
    p.add_argument("--libs", default="ours,upstream,openunmix")
    p.add_argument("--threads", default="1,2", help="worker counts for ours (default 1,2)")
    p.add_argument("--repeat", type=int, default=5, help="timed calls per cell (default 5)")
    p.add_argument(
        "--slow-repeat",
        type=int,
        default=1,
        help="timed calls for upstream/open-unmix on song-length inputs (default 1)",
    )
    p.add_argument("--no-small", action="store_true", help="skip the small-call cells")
    p.add_argument("--no-memmap", action="store_true", help="skip wiener(out=np.memmap) on song")
    p.add_argument(
        "--memmap-workload", default="song", help=argparse.SUPPRESS
    )  # for testing the harness
    p.add_argument("--no-check", action="store_true", help="skip the agreement check")
    p.add_argument("--no-floor", action="store_true", help="skip the bandwidth floor (_floor.py)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per cell")
    p.add_argument("--out-dir", default=str(HERE / "results"))
    p.add_argument(
        "--work-dir", help="keep installs and workloads here (default: a temp dir, removed)"
    )
    a = p.parse_args(argv)

    workloads = (
        a.workloads.split(",")
        if a.workloads
        else [w for w in WORKLOADS if not (a.quick and w == "song")]
    )
    for w in workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w!r}")
    ops = [o for o in a.ops.split(",") if o]
    if set(ops) - set(OPS):
        p.error(f"unknown ops {set(ops) - set(OPS)}")
    dtypes = a.dtypes.split(",")
    libs = a.libs.split(",")
    threads = [int(t) for t in a.threads.split(",")]
    # --quick: the slow reference libraries and the small calls run complex128 only, one
    # timed call, no wiener(iterations=3) for the reference libraries
    ref_dtypes = [d for d in dtypes if d == "complex128"] if a.quick else dtypes
    ref_ops = [o for o in ops if o != "wiener3"] if a.quick else ops
    small_ops = [o for o in ops if o in ("softmask", "wiener1")] if a.quick else ops
    if a.quick:
        a.slow_repeat = 1
    max_threads = max(threads)
    memmap_ops = [o for o in ops if o.startswith("wiener")]
    do_memmap = not (a.quick or a.no_memmap) and "ours" in libs and bool(memmap_ops)
    do_small = not a.no_small

    work = Path(a.work_dir) if a.work_dir else Path(tempfile.mkdtemp(prefix="norbert-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = []
    floor_runs = []  # _floor.py's measurements (None when one failed)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        log(f"note: load average is {load_before:.2f}: other jobs will distort the timings")
    try:
        ours = describe_ours() if "ours" in libs else None
        if "ours" in libs and ours is None:
            notes.append("this project's `norbert` is not importable here: its cells are skipped")
            libs = [lib for lib in libs if lib != "ours"]
        upstream_path = install_upstream(work) if "upstream" in libs else None
        openunmix_path = None
        torch_version = None
        if "openunmix" in libs:
            torch_version = probe("import torch; print(torch.__version__)")
            if torch_version is None:
                notes.append("torch is not installed: open-unmix cells are skipped")
                libs = [lib for lib in libs if lib != "openunmix"]
            else:
                openunmix_path = fetch_openunmix(work)
        log(f"libs: {', '.join(libs)}; work dir {work}")

        data_dir = work / f"data-seed{a.seed}"
        data_dir.mkdir(exist_ok=True)
        needed = (
            set(workloads)
            | ({"short"} if do_small else set())
            | ({a.memmap_workload} if do_memmap else set())
        )
        needed |= {"short", "mono", "multi"} if not a.no_check else set()
        for name in sorted(needed, key=lambda n: WORKLOADS[n].nb_frames):
            if not (data_dir / f"{name}_complex64_v.npy").exists():
                log(f"generating workload {name} {WORKLOADS[name].shape} (seed {a.seed})")
                subprocess.run(
                    [sys.executable, str(HERE / "_workloads.py"), name, str(a.seed), str(data_dir)],
                    check=True,
                )

        common = {
            "data_dir": str(data_dir),
            "upstream_path": upstream_path,
            "openunmix_path": openunmix_path,
        }
        cells, small, memmap, checks = [], [], [], []

        def cell(kind, record_list, **spec):
            spec = {**common, **spec, "mode": kind}
            result = run_cell(spec, a.timeout)
            record = {k: v for k, v in spec.items() if k not in common}
            record.update(result)
            record_list.append(record)
            who = spec.get("lib") or "+".join(spec.get("libs", []))
            thr = f" w={spec['threads']}" if spec.get("threads") else ""
            what = f"{kind:6s} {spec['workload']:5s} {spec['op']:8s} {spec['dtype']:10s} {who}{thr}"
            if spec.get("frames"):
                what += f" frames={spec['frames']}"
            if "error" in result:
                log(f"  {what}: ERROR {result['error']}")
            elif kind == "check":
                log(f"  {what}: {result['max_rel_diff']} {result['errors'] or ''}")
            else:
                mem = f", +{result['mem_extra'] / MB:.0f} MB" if "mem_extra" in result else ""
                log(f"  {what}: {fmt_time(result['median'])}{mem}")
            return result

        if not a.no_check and len(libs) > 1:
            log("agreement check (64 frames; reference: upstream)")
            for name in ("short", "mono", "multi"):
                for op in ops:
                    for dtype in dtypes:
                        cell(
                            "check",
                            checks,
                            workload=name,
                            op=op,
                            dtype=dtype,
                            frames=64,
                            libs=[lib for lib in libs if supports(lib, name, op)],
                            reference="upstream",
                        )

        def take_floor(when):
            # measured before each workload's cells and after all of them, best of all: a
            # machine that got busier during the run cannot make the floor look slower
            if not a.no_floor:
                log(f"floor: memory bandwidth and first-touch cost ({when})")
                floor_runs.append(measure_floor(threads, 7))

        log("full-size cells")
        for name in workloads:
            take_floor(f"before {name}")
            long = WORKLOADS[name].nb_frames > LONG_FRAMES
            for op in ops:
                for dtype in dtypes:
                    base = {"workload": name, "op": op, "dtype": dtype}
                    for lib in libs:
                        if lib == "ours":
                            for t in threads:
                                cell("full", cells, lib=lib, threads=t, repeat=a.repeat, **base)
                            continue
                        if not supports(lib, name, op):
                            cells.append(
                                {**base, "lib": lib, "skipped": "open-unmix supports 1-2 channels"}
                            )
                            continue
                        if dtype not in ref_dtypes or op not in ref_ops:
                            continue
                        repeat = a.slow_repeat if long or a.quick else a.repeat
                        cell("full", cells, lib=lib, repeat=repeat, **base)

        if do_small:
            log("small calls (first frames of `short`)")
            for frames in SMALL_FRAMES:
                for op in small_ops:
                    for dtype in ref_dtypes:
                        base = {
                            "workload": "short",
                            "op": op,
                            "dtype": dtype,
                            "frames": frames,
                            "repeat": 5,
                        }
                        for lib in libs:
                            if lib == "openunmix":
                                continue
                            for t in threads if lib == "ours" else [None]:
                                cell("small", small, lib=lib, threads=t, **base)

        if do_memmap:
            log("wiener(out=np.memmap) on song")
            for op in memmap_ops:
                for dtype in dtypes:
                    cell(
                        "memmap",
                        memmap,
                        workload=a.memmap_workload,
                        op=op,
                        dtype=dtype,
                        lib="ours",
                        threads=max_threads,
                        repeat=a.repeat,
                    )
        take_floor("after the cells")
    finally:
        if not a.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    floor = None
    measured_floors = [f for f in floor_runs if f]
    if measured_floors:
        floor = {
            "machine": best_of(*[f["machine"] for f in measured_floors]),
            "runs": measured_floors,
            "thp": measured_floors[0].get("thp"),
        }
    elif floor_runs:
        notes.append("the floor (_floor.py) failed: no x-floor column")

    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "numpy": probe("import numpy; print(numpy.__version__)"),
        "floor": floor,
        "ours": ours,
        "upstream": UPSTREAM_VERSION if upstream_path else None,
        "openunmix": OPENUNMIX_VERSION if openunmix_path else None,
        "torch": torch_version,
        "threads": threads,
        "repeat": a.repeat,
        "slow_repeat": a.slow_repeat,
        "seed": a.seed,
        "notes": notes,
        "wall_s": round(time.perf_counter() - started, 1),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    report = build_report(meta, cells, small, memmap, checks, threads)
    (out_dir / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / "results.md").write_text(render_markdown(report))
    log(f"wrote {out_dir / 'results.md'} and results.json ({meta['wall_s']:.0f} s)")
    return 0


# -- report -----------------------------------------------------------------------------


def _index(cells):
    """{(workload, op, dtype, lib, threads): cell}"""
    return {(c["workload"], c["op"], c["dtype"], c["lib"], c.get("threads")): c for c in cells}


def build_report(meta, cells, small, memmap, checks, threads):
    t1, tn = min(threads), max(threads)
    idx = _index(cells)
    machine = (meta.get("floor") or {}).get("machine", {})
    rows = []
    seen = []
    for c in cells:
        key = (c["workload"], c["op"], c["dtype"])
        if key not in seen:
            seen.append(key)
    for w, op, dt in seen:
        o1 = idx.get((w, op, dt, "ours", t1))
        on = idx.get((w, op, dt, "ours", tn))
        up = idx.get((w, op, dt, "upstream", None))
        ou = idx.get((w, op, dt, "openunmix", None))
        ref = on if on and "error" not in on else o1
        row = {
            "workload": w,
            "op": op,
            "dtype": dt,
            "shape": WORKLOADS[w].shape,
            "ours_1": median_of(o1),
            "ours_n": median_of(on),
            "upstream": median_of(up),
            "openunmix": median_of(ou),
            "openunmix_note": (ou or {}).get("skipped") or (ou or {}).get("error"),
            "ours_mem_extra": ref.get("mem_extra") if ref and "error" not in ref else None,
            "out_bytes": ref.get("out_bytes") if ref else None,
            "upstream_mem_extra": up.get("mem_extra") if up and "error" not in up else None,
            "openunmix_mem_extra": ou.get("mem_extra") if ou and "error" not in ou else None,
            "contended": contended(ours_1=o1, ours_n=on, upstream=up, openunmix=ou),
        }
        row["speedup_upstream"] = _ratio(row["upstream"], row["ours_n"])
        row["speedup_openunmix"] = _ratio(row["openunmix"], row["ours_n"])
        row["thread_speedup"] = _ratio(row["ours_1"], row["ours_n"])
        row["mem_ratio"] = _ratio(row["ours_mem_extra"], row["out_bytes"])
        # the floor: the bytes this call must move at this machine's best (_floor.py)
        traffic = min_traffic(op, WORKLOADS[w].shape, ITEMSIZE[dt])
        row["traffic"] = traffic
        row["floor_1"] = floor_seconds(traffic, machine[t1]) if t1 in machine else None
        row["floor_n"] = floor_seconds(traffic, machine[tn]) if tn in machine else None
        row["x_floor_1"] = _ratio(row["ours_1"], row["floor_1"])
        row["x_floor_n"] = _ratio(row["ours_n"], row["floor_n"])
        rows.append(row)

    sidx = {(c["frames"], c["op"], c["dtype"], c["lib"], c.get("threads")): c for c in small}
    small_rows = []
    for frames in SMALL_FRAMES:
        for op in OPS:
            for dt in DTYPES:
                if not any(k[:3] == (frames, op, dt) for k in sidx):
                    continue
                c1 = sidx.get((frames, op, dt, "ours", t1))
                cn = sidx.get((frames, op, dt, "ours", tn))
                cu = sidx.get((frames, op, dt, "upstream", None))
                r = {
                    "frames": frames,
                    "op": op,
                    "dtype": dt,
                    "ours_1": median_of(c1),
                    "ours_n": median_of(cn),
                    "upstream": median_of(cu),
                    "contended": contended(ours_1=c1, ours_n=cn, upstream=cu),
                }
                r["speedup_1"] = _ratio(r["upstream"], r["ours_1"])
                r["speedup_n"] = _ratio(r["upstream"], r["ours_n"])
                small_rows.append(r)

    by = {(r["workload"], r["op"], r["dtype"]): r for r in rows}
    scaling = []
    for (w, op, dt), r in by.items():
        if w != "song" or ("short", op, dt) not in by:
            continue
        s = by[("short", op, dt)]
        fs, fl = WORKLOADS["short"].nb_frames, WORKLOADS["song"].nb_frames
        for lib in ("ours_n", "upstream"):
            if r[lib] and s[lib]:
                scaling.append(
                    {
                        "op": op,
                        "dtype": dt,
                        "lib": lib,
                        "short": s[lib],
                        "song": r[lib],
                        "frames_ratio": fl / fs,
                        "time_ratio": r[lib] / s[lib],
                        "per_frame_ratio": (r[lib] / fl) / (s[lib] / fs),
                    }
                )
    channels = []
    for (w, op, dt), r in by.items():
        if w != "multi" or ("short", op, dt) not in by:
            continue
        s = by[("short", op, dt)]
        for lib in ("ours_n", "upstream"):
            if r[lib] and s[lib]:
                ws, wm = WORKLOADS["short"], WORKLOADS["multi"]
                ns_s = s[lib] / (ws.nb_frames * ws.nb_bins) * 1e9
                ns_m = r[lib] / (wm.nb_frames * wm.nb_bins) * 1e9
                channels.append(
                    {
                        "op": op,
                        "dtype": dt,
                        "lib": lib,
                        "stereo_ns_per_tf": ns_s,
                        "multi_ns_per_tf": ns_m,
                        "ratio": ns_m / ns_s,
                        "ratio_per_source": (ns_m / wm.nb_sources) / (ns_s / ws.nb_sources),
                    }
                )

    return {
        "meta": meta,
        "rows": rows,
        "small": small_rows,
        "memmap": memmap,
        "scaling": scaling,
        "channels": channels,
        "agreement": checks,
        "targets": targets(rows, memmap, tn),
        "cells": cells,
        "small_cells": small,
    }


def contended(**cells) -> list[str]:
    """Names of the cells during which other jobs used more than CONTENDED of the CPU."""
    return [k for k, c in cells.items() if c and c.get("other_cpu_share", 0) > CONTENDED]


def _ratio(a, b):
    return a / b if a is not None and b else None


# Issue 14's targets: (op, workload, {dtype: minimum speed-up over 0.2.1}) with tn threads
SPEEDUP_TARGETS = (
    ("wiener3", "song", {"complex128": 75, "complex64": 100}),
    ("wiener1", "song", {"complex128": 50, "complex64": 50}),
    ("softmask", "song", {"complex128": 15, "complex64": 15}),
    ("em1", "song", {"complex128": 30, "complex64": 30}),
    ("wiener3", "short", {"complex128": 40, "complex64": 40}),
    ("wiener3", "multi", {"complex128": 60, "complex64": 60}),
)
THREAD_TARGET = 1.8  # song, every call: tn threads at least this much faster than 1
FLOOR_TARGET = 2.5  # song, every call: at most this many times the floor
MEM_TARGET = 1.05  # memory beyond the inputs / outputs: 1.00x, slack for scratch and pages


def targets(rows, memmap, tn):
    """Every target of issue 14 (and the memory ones that must keep holding), met or not."""
    by = {(r["workload"], r["op"], r["dtype"]): r for r in rows}
    out = []

    def add(name, value, op, threshold, unit="x"):
        met = None if value is None else value >= threshold if op == ">=" else value <= threshold
        out.append({"target": name, "value": value, "goal": f"{op} {threshold}{unit}", "met": met})

    def get(w, op, dt, key):
        r = by.get((w, op, dt))
        return r and r[key]

    for op, w, goals in SPEEDUP_TARGETS:
        for dt, goal in goals.items():
            add(f"{w} {OP_LABEL[op]} {dt} vs 0.2.1", get(w, op, dt, "speedup_upstream"), ">=", goal)
    # per song call: the thread speed-up, then the distance to the floor
    for label, key, rel, goal in ((f"{tn} threads vs 1", "thread_speedup", ">=", THREAD_TARGET),
                                  ("time / floor", "x_floor_n", "<=", FLOOR_TARGET)):
        for op in OPS:
            for dt in DTYPES:
                if ("song", op, dt) in by:
                    add(f"song {OP_LABEL[op]} {dt}: {label}", get("song", op, dt, key), rel, goal)
    ratios = [
        r["mem_ratio"] for r in rows if r["workload"] == "song" and r["mem_ratio"] is not None
    ]
    add(
        "song: memory beyond inputs / output size (worst cell)",
        max(ratios) if ratios else None,
        "<=",
        MEM_TARGET,
    )
    anon = [m["mem_extra"] for m in memmap if "mem_extra" in m]
    add(
        "song wiener(out=memmap): anonymous memory (worst, MB)",
        max(anon) / MB if anon else None,
        "<=",
        256,
        " MB",
    )
    return out


def table(header: list[str], align: str, rows: list[list[str]]) -> list[str]:
    """Markdown table; align has one letter per column: l(eft) or r(ight)."""
    sep = ["---" if a == "l" else "--:" for a in align]
    return ["| " + " | ".join(r) + " |" for r in [header, sep, *rows]]


def host_line(m) -> str:
    """CPU, the kernels' instruction set and the thread counts: heads every table."""
    ours = m["ours"] or {}
    return (
        f"Host: {m['machine']['cpu']}, {m['machine']['cores']} cores; ours: ISA "
        f"`{ours.get('isa', '–')}`, OpenMP {ours.get('openmp', '–')}, default threads "
        f"{ours.get('max_threads', '–')}, measured with {' and '.join(map(str, m['threads']))}; "
        f"load average {m['load_before']:.2f} before, {m['load_after']:.2f} after."
    )


def render_markdown(rep) -> str:
    m = rep["meta"]
    tn, t1 = max(m["threads"]), min(m["threads"])
    ours = m["ours"] or {}
    host = ["", host_line(m), ""]
    facts = [
        m["date"],
        f"`{m['command']}`",
        f"{m['machine']['cpu']}, {m['machine']['cores']} cores",
        f"load average {m['load_before']:.2f} before, {m['load_after']:.2f} after",
        f"Python {m['machine']['python']}, numpy {m['numpy']}",
        f"ours {ours.get('version', '–')} (OpenMP: {ours.get('openmp', '–')}, "
        f"ISA: {ours.get('isa', '–')})",
        f"upstream norbert {m['upstream'] or '–'}",
        f"open-unmix {m['openunmix'] or '–'} (torch {m['torch'] or '–'})",
        f"seed {m['seed']}, {m['wall_s']:.0f} s",
    ]
    lines = ["# norbert benchmarks", "", " · ".join(facts), ""]
    lines += [f"> {n}" for n in m["notes"]]
    lines += [
        "",
        f"Median of {m['repeat']} timed calls per cell after one untimed warm-up "
        f"({m['slow_repeat']} for upstream and open-unmix on song-length inputs). "
        f"`vs upstream` and `vs open-unmix` are speed-ups of ours with {tn} threads; "
        f"`ours mem` is the peak RSS beyond the inputs during one call of ours ({tn} threads), "
        "outputs included, and `mem/out` that divided by the size of the outputs (y; "
        "for expectation_maximization y, v and R). `x floor`: ours with "
        f"{tn} threads / the floor, the least time the bytes the call must move take on this "
        "machine in this run (see Floor below).",
        *host,
    ]
    header = ["workload", "op", "dtype", f"ours {t1} thr", f"ours {tn} thr", f"{tn} vs {t1} thr",
              "x floor", "upstream", "vs upstream", "open-unmix", "vs open-unmix", "ours mem",
              "mem/out", "upstream mem"]  # fmt: skip
    body = []
    for r in rep["rows"]:
        f, b, c, j = r["shape"]
        t = timer(r)
        ou = t("openunmix") if r["openunmix"] else ("n/a" if r["openunmix_note"] else "–")
        body.append([
            f"{r['workload']} ({f}x{b}x{c}, {j} src)", OP_LABEL[r["op"]], r["dtype"],
            t("ours_1"), t("ours_n"), _x(r["thread_speedup"], 2), _x(r.get("x_floor_n"), 2),
            t("upstream"), _x(r["speedup_upstream"]), ou, _x(r["speedup_openunmix"]),
            _mb(r["ours_mem_extra"]), _x(r["mem_ratio"], 2), _mb(r["upstream_mem_extra"]),
        ])  # fmt: skip
    lines += table(header, "lllrrrrrrrrrrr", body)
    if any(r["contended"] for r in rep["rows"] + rep["small"]):
        lines += [
            "",
            f"\\* other jobs used more than {CONTENDED:.0%} of the machine's CPU during that cell "
            "(`other_cpu_share` in results.json): its time is suspect.",
        ]
    notes = {r["openunmix_note"] for r in rep["rows"] if r["openunmix"] is None}
    if notes - {None}:
        lines += ["", "open-unmix n/a: " + "; ".join(sorted(notes - {None}))]

    lines += render_floor(rep, host)

    if rep["small"]:
        lines += ["", "## Small calls (first frames of `short`), time per call", ""]
        header = ["frames", "op", "dtype", f"ours {t1} thr", f"ours {tn} thr", "upstream",
                  f"vs upstream ({t1} thr)", f"vs upstream ({tn} thr)"]  # fmt: skip
        body = [
            [str(r["frames"]), OP_LABEL[r["op"]], r["dtype"], timer(r)("ours_1"),
             timer(r)("ours_n"), timer(r)("upstream"), _x(r["speedup_1"]), _x(r["speedup_n"])]
            for r in rep["small"]
        ]  # fmt: skip
        lines += host[1:] + table(header, "rllrrrrr", body)

    if rep["memmap"]:
        lines += [
            "",
            f"## `wiener(..., out=np.memmap)` on song ({tn} threads)",
            "",
            "Anonymous memory beyond the inputs (RssAnon); the memmap's file pages excluded.",
            "",
        ]
        body = []
        for c in rep["memmap"]:
            if "error" in c:
                body.append([OP_LABEL[c["op"]], c["dtype"], "error: " + c["error"], "", ""])
            else:
                body.append([OP_LABEL[c["op"]], c["dtype"], fmt_time(c["median"]),
                             _mb(c["mem_extra"]), _mb(c["out_bytes"])])  # fmt: skip
        lines += host[1:] + table(
            ["op", "dtype", "time", "anon memory", "output size"], "llrrr", body
        )

    if rep["scaling"]:
        lines += [
            "",
            "## Linear scaling: short (431 frames) vs song (7752 frames)",
            "",
            "per-frame ratio = (song time / song frames) / (short time / short frames).",
            "",
        ]
        body = [
            [OP_LABEL[s["op"]], s["dtype"], f"ours {tn} thr" if s["lib"] == "ours_n" else s["lib"],
             fmt_time(s["short"]), fmt_time(s["song"]), f"{s['time_ratio']:.1f}",
             f"{s['per_frame_ratio']:.2f}"]
            for s in rep["scaling"]
        ]  # fmt: skip
        header = ["op", "dtype", "lib", "short", "song", "time ratio", "per-frame ratio"]
        lines += host[1:] + table(header, "lllrrrr", body)

    if rep["channels"]:
        lines += [
            "",
            "## 6 channels, 3 sources (`multi`) vs stereo, 4 sources (`short`): time per TF point",
            "",
        ]
        body = [
            [OP_LABEL[s["op"]], s["dtype"], f"ours {tn} thr" if s["lib"] == "ours_n" else s["lib"],
             f"{s['stereo_ns_per_tf']:.1f}", f"{s['multi_ns_per_tf']:.1f}", f"{s['ratio']:.2f}",
             f"{s['ratio_per_source']:.2f}"]
            for s in rep["channels"]
        ]  # fmt: skip
        header = ["op", "dtype", "lib", "stereo ns/TF", "6-ch ns/TF", "ratio", "ratio per source"]
        lines += host[1:] + table(header, "lllrrrr", body)

    if rep["agreement"]:
        lines += ["", "## Agreement: max abs(y - y_upstream) / max abs(y_upstream), 64 frames", ""]
        body = []
        for c in rep["agreement"]:
            diffs = ", ".join(
                f"{k} {v:.1e}" if isinstance(v, float) else f"{k} {v}"
                for k, v in c.get("max_rel_diff", {}).items()
            )
            errs = "; ".join(f"{k}: {v}" for k, v in c.get("errors", {}).items())
            body.append(
                [c["workload"], OP_LABEL[c["op"]], c["dtype"], diffs, errs or c.get("error", "")]
            )
        lines += host[1:] + table(
            ["workload", "op", "dtype", "max relative difference", "errors"], "lllll", body
        )

    measured = [t for t in rep["targets"] if t["met"] is not None]
    if measured:
        met = sum(t["met"] is True for t in rep["targets"])
        lines += [
            "",
            f"## Targets (issue 14): {met} of {len(measured)} measured met",
            "",
            "`distance`: for a target not met, how far the measured value is from the goal "
            "(the factor by which it must still improve).",
            "",
        ]
        body = []
        for t in rep["targets"]:
            v = t["value"]
            val = "–" if v is None else (f"{v:.0f} MB" if "MB" in t["goal"] else f"{v:.2f}")
            ok = {True: "met", False: "**not met**", None: "not measured"}[t["met"]]
            body.append([t["target"], val, t["goal"], ok, distance(t)])
        lines += host[1:] + table(["target", "value", "goal", "met", "distance"], "lrllr", body)
    return "\n".join(lines) + "\n"


def distance(t) -> str:
    """How many times better a target's value must get to meet its goal ('' when met)."""
    if t["met"] is not False or not t["value"]:
        return ""
    goal = float(t["goal"].split()[1].rstrip("xMB "))
    return (
        f"{goal / t['value']:.2f}x" if t["goal"].startswith(">=") else f"{t['value'] / goal:.2f}x"
    )


def render_floor(rep, host) -> list[str]:
    """The Floor section: the machine's bandwidths, then every cell's bytes and floor."""
    m = rep["meta"]
    floor = m.get("floor")
    if not floor:
        return []
    tn, t1 = max(m["threads"]), min(m["threads"])
    lines = [
        "",
        "## Floor",
        "",
        f"Measured by `_floor.py` in a fresh process before each workload's cells and after "
        f"all of them; each figure is the best of those {len(floor['runs'])} runs, of 7 calls "
        "each, on arrays of "
        f"{floor['runs'][0]['machine'][tn]['array_bytes'] // MB} MB (read: a sum, write: "
        "fill, copy: `np.copyto`, read + written bytes; first touch: a fresh `np.empty` "
        "filled once minus the fill of a touched array, per byte). `CPU/wall` is the "
        "process's CPU time over the wall time of the timed calls, run by run: near the "
        "thread count when the threads streamed in parallel, lower when other jobs held a "
        f"core. Transparent huge pages: `{floor['thp']}`.",
        *host,
    ]
    body = []
    for t, f in sorted(floor["machine"].items()):
        cpu = " / ".join(f"{r['machine'][t]['cpu_per_wall']:.2f}" for r in floor["runs"])
        ms_per_gb = f["first_touch_s_per_byte"] * 1e12
        touch = f"{ms_per_gb:.1f} ms/GB ({ms_per_gb * 2:.0f} ms / 2 GB)"
        body.append([str(t), _gbs(f["read"]), _gbs(f["write"]), _gbs(f["copy"]), touch, cpu])
    lines += table(["threads", "read", "write", "copy", "first touch", "CPU/wall"], "rrrrrl", body)
    lines += [
        "",
        "Bytes each call must move at least (`min_traffic` in `_floor.py`: inputs read once "
        "per pass the call needs, PSDs read and written between passes, outputs written and "
        "first-touched once), and the least time that takes: max(read / read bandwidth, "
        "write / write bandwidth, (read + write) / copy bandwidth) + touched x first-touch "
        f"cost. `x floor` = median time / floor, with {t1} and {tn} threads.",
        *host,
    ]
    body = []
    for r in rep["rows"]:
        tr = r["traffic"]
        body.append([
            r["workload"], OP_LABEL[r["op"]], r["dtype"], str(tr["passes"]),
            _gb(tr["read"]), _gb(tr["write"]), _gb(tr["touch"]),
            fmt_time(r["floor_1"]), fmt_time(r["ours_1"]), _x(r["x_floor_1"], 2),
            fmt_time(r["floor_n"]), fmt_time(r["ours_n"]), _x(r["x_floor_n"], 2),
        ])  # fmt: skip
    header = ["workload", "op", "dtype", "passes", "read", "written", "touched",
              f"floor {t1} thr", f"ours {t1} thr", f"x floor {t1} thr", f"floor {tn} thr",
              f"ours {tn} thr", f"x floor {tn} thr"]  # fmt: skip
    lines += table(header, "lllrrrrrrrrrr", body)
    return lines


def _gbs(bytes_per_s):
    return f"{bytes_per_s / 1e9:.1f} GB/s"


def _gb(b):
    return f"{b / 1e9:.2f} GB" if b >= 1e8 else f"{b / 1e6:.1f} MB"


def timer(row):
    """fmt_time of row[key], starred when other jobs were busy during that cell."""
    return lambda key: fmt_time(row[key]) + ("\\*" if key in row["contended"] else "")


def _x(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}x"


def _mb(b):
    return "–" if b is None else f"{b / MB:.0f} MB"


if __name__ == "__main__":
    sys.exit(main())
