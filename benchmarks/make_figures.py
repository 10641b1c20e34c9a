#!/usr/bin/env python
"""Figures (and the table of figures) of the documentation's Performance page.

    python benchmarks/bench.py                  # writes benchmarks/results/results.json
    python benchmarks/make_figures.py           # writes docs/_static/figures/*.png, *.inc

Reads the JSON that ``bench.py`` writes (its ``cells`` and ``small_cells``: one record per
measured cell) and draws, with matplotlib:

- ``time_vs_length.png``: time per call against track length, log-log, for this library
  (one thread and all of ``--threads``), upstream norbert 0.2.1 and open-unmix: the small
  calls (1, 10, 300 frames of ``short``) and the full ``short`` (10 s) and ``song`` (3 min)
  workloads, stereo, four sources, complex128;
- ``memory_vs_length.png``: peak memory beyond the inputs against track length, with the
  size of the output for scale and, where measured, ``wiener(out=np.memmap)``;
- ``thread_speedup.png``: speed-up of this library against its own one-thread time, per
  operation, on the longest stereo workload measured;
- ``floor.png``: time / floor (``x floor``, see ``_floor.py``) of every operation on the
  longest stereo workload measured, both dtypes, one thread and all of ``--threads``, with
  issue 14's target of 2.5x;
- ``demo.png``: the picture of ``norbert demo --plot`` (run here, then downsized);
- ``benchmarks_run.inc`` (machine, versions, date, command) and ``benchmarks_tables.inc``
  (the numbers behind the figures), reStructuredText included by ``docs/performance.rst``.

The docs build only reads these files; it never runs a benchmark. A library or a length
without data is left out of a figure, not invented. Only small, palette-quantised PNGs
are written (the site shows them at about 700 px).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _workloads import HOP, SAMPLE_RATE, WORKLOADS  # noqa: E402  (needs sys.path above)

OPS = {
    "softmask": "softmask",
    "wiener1": "wiener(iterations=1)",
    "wiener3": "wiener(iterations=3)",
    "em1": "expectation_maximization(iterations=1)",
}
LIBS = {  # label, colour, marker
    "ours": ("this library", "#1f77b4", "o"),
    "ours_1": ("this library, 1 thread", "#7fb5dd", "o"),
    "upstream": ("norbert 0.2.1", "#d62728", "s"),
    "openunmix": ("open-unmix 1.3 (torch)", "#2ca02c", "^"),
}
STEREO = "short"  # the small calls are the first frames of this workload
MB = 1024 * 1024


# -- reading the results ---------------------------------------------------------------


def load(path: Path) -> dict:
    with open(path) as f:
        report = json.load(f)
    for key in ("meta", "cells"):
        if key not in report:
            raise SystemExit(f"{path}: not a bench.py results file (no {key!r})")
    return report


def ok(cell) -> bool:
    return "error" not in cell and "skipped" not in cell and cell.get("median") is not None


def stereo_points(report, op, dtype, lib, threads=None):
    """[(frames, cell)] for one library on the stereo 4-source workloads, by length."""
    points = {}
    for c in report.get("small_cells", []):
        key = (c.get("workload"), c["op"], c["dtype"], c["lib"], c.get("threads"))
        if key == (STEREO, op, dtype, lib, threads) and ok(c):
            points[c["frames"]] = c
    for c in report["cells"]:
        if c.get("mode", "full") != "full" or (c["op"], c["dtype"], c["lib"]) != (op, dtype, lib):
            continue
        w = WORKLOADS.get(c["workload"])
        if w is None or (w.nb_channels, w.nb_sources) != (2, 4):
            continue
        if c.get("threads") == threads and ok(c):
            points[w.nb_frames] = c
    return sorted(points.items())


def seconds(frames):
    return frames * HOP / SAMPLE_RATE


def thread_counts(report):
    return sorted(report["meta"].get("threads") or [1])


def pick_dtype(report, preferred=("complex128", "complex64")):
    """The dtype with the most reference-library cells (the references run complex128
    only in --quick), so the figures compare like with like."""
    counts = {d: 0 for d in preferred}
    for c in report["cells"] + report.get("small_cells", []):
        if c["lib"] != "ours" and c["dtype"] in counts and ok(c):
            counts[c["dtype"]] += 1
    return max(preferred, key=lambda d: (counts[d], -preferred.index(d)))


# -- figures ---------------------------------------------------------------------------


def _style(plt):
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "font.size": 9,
            "axes.titlesize": 9.5,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.fontsize": 8,
            "legend.frameon": False,
        }
    )


def _fmt_time(s):
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def _panel_ops(report, dtype, tn):
    """Up to three operations for the time figure: those measured for this library and
    at least one reference, in a fixed order (the EM alone only if a wiener is missing)."""
    ops = []
    for op in ("softmask", "wiener1", "wiener3", "em1"):
        ours = stereo_points(report, op, dtype, "ours", tn)
        refs = [lib for lib in ("upstream", "openunmix") if stereo_points(report, op, dtype, lib)]
        if ours and refs:
            ops.append(op)
    return ops[:3]


def _legend_below(fig, axes, ncol=4):
    handles, labels = [], []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(handles, labels, loc="lower center", ncol=min(ncol, len(labels)))
    return len(labels)


def _log_axis_labels(axis, fmt, subs=(1.0,)):
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: fmt(value)))
    axis.set_minor_formatter(NullFormatter())


def _seconds_label(s):
    return f"{s:g} s"


def _mb_label(m):
    return f"{m:g} MB"


def fig_time(report, dtype, out: Path, plt) -> list[str]:
    tn = max(thread_counts(report))
    t1 = min(thread_counts(report))
    ops = _panel_ops(report, dtype, tn)
    if not ops:
        return []
    if len(ops) == 3:
        # a 2 x 2 grid, the legend in the fourth cell: readable at the page's width
        fig, grid = plt.subplots(2, 2, figsize=(7.6, 6.0), sharex=True, sharey=True)
        axes = grid.ravel()
        legend_ax = axes[3]
    else:
        # one row, the legend in a last column
        fig, grid = plt.subplots(
            1,
            len(ops) + 1,
            figsize=(3.0 * len(ops) + 2.2, 3.4),
            sharex=True,
            sharey=True,
            gridspec_kw={"width_ratios": [3.0] * len(ops) + [2.2]},
        )
        axes = grid.ravel()
        legend_ax = axes[-1]
    series = [
        ("ours", "ours", tn),
        ("ours_1", "ours", t1),
        ("upstream", "upstream", None),
        ("openunmix", "openunmix", None),
    ]
    if t1 == tn:
        series = [item for item in series if item[0] != "ours_1"]
    for ax, op in zip(axes, ops):
        for key, lib, threads in series:
            pts = stereo_points(report, op, dtype, lib, threads)
            if not pts:
                continue
            label, colour, marker = LIBS[key]
            if key == "ours" and tn > 1:
                label = f"this library, {tn} threads"
            ax.plot(
                [seconds(f) for f, _ in pts],
                [c["median"] for _, c in pts],
                ls="--" if key == "ours_1" else "-",
                marker=marker,
                color=colour,
                label=label,
                ms=4,
                lw=1.4,
            )
        ax.set_title(OPS[op])
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_axis_labels(ax.xaxis, _seconds_label)
        _log_axis_labels(ax.yaxis, _fmt_time)
        ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[: len(ops)]:
        if ax in (axes[0], axes[2]):
            ax.set_ylabel("time per call")
        ax.set_xlabel("track length")
    handles, labels = [], []
    for ax in axes[: len(ops)]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    legend_ax.axis("off")
    legend_ax.legend(
        handles,
        labels,
        loc="center",
        fontsize=9,
        title=f"stereo, 4 sources, {dtype}\nlower is better",
        title_fontsize=9,
    )
    fig.suptitle("Time per call against track length")
    fig.tight_layout()
    save(fig, out / "time_vs_length.png", plt)
    return ops


def fig_memory(report, dtype, out: Path, plt) -> bool:
    op = "wiener1"
    tn = max(thread_counts(report))
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    sizes, values = {}, []
    for key, lib, threads in (
        ("ours", "ours", tn),
        ("upstream", "upstream", None),
        ("openunmix", "openunmix", None),
    ):
        pts = [
            (f, c)
            for f, c in stereo_points(report, op, dtype, lib, threads)
            if c.get("mem_extra") is not None
        ]
        if not pts:
            continue
        label, colour, marker = LIBS[key]
        mb = [c["mem_extra"] / MB for _, c in pts]
        xs = [seconds(f) for f, _ in pts]
        ax.plot(xs, mb, marker=marker, color=colour, label=label, ms=5, lw=1.4)
        for x, m in zip(xs, mb):
            ax.annotate(
                f"{m:.0f} MB",
                (x, m),
                xytext=(7, 0),
                textcoords="offset points",
                va="center",
                fontsize=7.5,
                color=colour,
            )
        values += mb
        for f, c in pts:
            if c.get("out_bytes"):
                sizes[f] = c["out_bytes"]
    if not values:
        plt.close(fig)
        return False
    for c in report.get("memmap", []):
        if ok(c) and c["op"] == op and c["dtype"] == dtype and c.get("mem_extra") is not None:
            w = WORKLOADS[c["workload"]]
            ax.plot(
                [seconds(w.nb_frames)],
                [c["mem_extra"] / MB],
                marker="*",
                ms=10,
                ls="none",
                color=LIBS["ours"][1],
                label="this library, out=np.memmap (anonymous memory)",
            )
            values.append(c["mem_extra"] / MB)
    if sizes:
        f = sorted(sizes)
        # a wide grey band under the lines: a library that needs only its output sits on it
        ax.plot(
            [seconds(x) for x in f],
            [sizes[x] / MB for x in f],
            lw=7,
            alpha=0.3,
            solid_capstyle="round",
            color="0.45",
            label="size of the output y",
            zorder=1,
        )
        values += [sizes[x] / MB for x in f]
    ax.set_xscale("log")
    ax.set_yscale("log")
    lengths = sorted(set(sizes)) or [1]
    ax.set_xlim(seconds(lengths[0]) / 2, seconds(lengths[-1]) * 3)  # room for the labels
    ax.set_ylim(min(values) / 1.6, max(values) * 1.6)
    _log_axis_labels(ax.xaxis, _seconds_label)
    _log_axis_labels(ax.yaxis, _mb_label, subs=(1.0, 2.0, 5.0))
    ax.set_xlabel("track length (stereo, 4 sources)")
    ax.set_ylabel("peak memory beyond the inputs")
    ax.set_title(f"Memory of {OPS[op]}, {dtype} (lower is better)")
    n = _legend_below(fig, [ax], ncol=2)
    fig.tight_layout(rect=(0, 0.06 * ((n + 1) // 2), 1, 1))
    save(fig, out / "memory_vs_length.png", plt)
    return True


def fig_threads(report, dtype, out: Path, plt) -> str | None:
    threads = thread_counts(report)
    if len(threads) < 2:
        return None
    by = {}
    for c in report["cells"]:
        if c["lib"] == "ours" and c.get("mode", "full") == "full" and ok(c):
            by[(c["workload"], c["op"], c["dtype"], c["threads"])] = c["median"]
    stereo = [w for w in ("song", STEREO) if any(k[0] == w for k in by)]
    if not stereo:
        return None
    workload = stereo[0]
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    colours = {"softmask": "#9467bd", "wiener1": "#1f77b4", "wiener3": "#17becf", "em1": "#ff7f0e"}
    for op, op_label in OPS.items():
        t = [(n, by.get((workload, op, dtype, n))) for n in threads]
        t = [(n, s) for n, s in t if s is not None]
        if len(t) < 2 or t[0][0] != threads[0]:
            continue
        base = t[0][1]
        ax.plot(
            [n for n, _ in t],
            [base / s for _, s in t],
            marker="o",
            ms=4,
            color=colours[op],
            label=op_label,
        )
    ax.plot(
        threads, [n / threads[0] for n in threads], ls=":", color="0.35", label="linear speed-up"
    )
    ax.set_xticks(threads)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("threads (workers=)")
    ax.set_ylabel(f"speed-up over {threads[0]} thread")
    w = WORKLOADS[workload]
    ax.set_title(
        f"Thread scaling: {_seconds_label(w.seconds)} stereo, {w.nb_sources} sources, {dtype}"
    )
    n = _legend_below(fig, [ax], ncol=3)
    fig.tight_layout(rect=(0, 0.06 * ((n + 2) // 3), 1, 1))
    save(fig, out / "thread_speedup.png", plt)
    return workload


def fig_floor(report, out: Path, plt) -> str | None:
    """Bars of time / floor per operation and dtype on the longest stereo workload."""
    rows = [r for r in report.get("rows", []) if r.get("x_floor_n") is not None]
    stereo = [w for w in ("song", STEREO) if any(r["workload"] == w for r in rows)]
    if not stereo:
        return None
    workload = stereo[0]
    rows = [r for r in rows if r["workload"] == workload]
    t1, tn = min(thread_counts(report)), max(thread_counts(report))
    # three short lines per bar: the full operation names overlap at eight bars
    short = {"softmask": "softmask\n", "wiener1": "wiener\n1 iter.", "wiener3": "wiener\n3 iter."}
    short["em1"] = "EM\n1 iter."
    labels = [f"{short.get(r['op'], r['op'])}\n{r['dtype']}" for r in rows]
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    xs = range(len(rows))
    width = 0.38
    if t1 != tn:
        ax.bar([x - width / 2 for x in xs], [r["x_floor_1"] or 0 for r in rows], width,
               color=LIBS["ours_1"][1], label=f"{t1} thread")  # fmt: skip
    ax.bar([x + width / 2 if t1 != tn else x for x in xs], [r["x_floor_n"] for r in rows],
           width, color=LIBS["ours"][1], label=f"{tn} threads")  # fmt: skip
    ax.axhline(2.5, ls="--", color="#d62728", lw=1, label="target: 2.5x the floor")
    ax.axhline(1.0, ls=":", color="0.35", lw=1, label="floor")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("time / floor")
    w = WORKLOADS[workload]
    ax.set_title(
        f"Distance to the machine's floor: {_seconds_label(w.seconds)} stereo, "
        f"{w.nb_sources} sources"
    )
    n = _legend_below(fig, [ax], ncol=4)
    fig.tight_layout(rect=(0, 0.06 * ((n + 3) // 4), 1, 1))
    save(fig, out / "floor.png", plt)
    return workload


def demo_figure(out: Path, max_width: int) -> bool:
    """Run ``norbert demo --plot`` with the installed package and keep a small copy."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "norbert", "demo", "--plot", "-o", tmp]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        png = Path(tmp) / "demo.png"
        if r.returncode != 0 or not png.exists():
            print(
                f"norbert demo --plot failed ({r.returncode}): {r.stderr.strip()[-500:]}",
                file=sys.stderr,
            )
            return False
        shrink_png(png.read_bytes(), out / "demo.png", max_width, colors=128)
    return True


def save(fig, path: Path, plt):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    shrink_png(buf.getvalue(), path, None)


def shrink_png(data: bytes, path: Path, max_width: int | None, colors: int = 256):
    """Resize to max_width (if wider) and quantise to a palette: the charts have flat
    colours, so this costs nothing visible and saves most of the bytes (the demo's
    spectrograms get 128 colours, enough for its two colour maps)."""
    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("RGB")
    if max_width and img.width > max_width:
        img = img.resize((max_width, round(img.height * max_width / img.width)), Image.LANCZOS)
    img = img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(path, optimize=True)
    print(f"wrote {_shown(path)} ({path.stat().st_size / 1024:.0f} KB)")


def _shown(path: Path) -> Path:
    path = path.resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


# -- the table -------------------------------------------------------------------------


def _nbsp(text):
    """Keep a number and its unit on one line in narrow table columns."""
    return text.replace(" ", "\u00a0")


def _speedup(a, b):
    if not a or not b:
        return NONE
    r = a / b
    return f"{r:.1f}x" if r < 10 else f"{r:.0f}x"


def rst_table(header, rows):
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return lines


SHORT_OPS = {
    "softmask": "softmask",
    "wiener1": "wiener, 1 iteration",
    "wiener3": "wiener, 3 iterations",
    "em1": "EM, 1 iteration",
}
NONE = "–"  # a lone "-" in a list-table cell would be read as a bullet


def facts(report) -> str:
    """The run: date, command, machine, versions, load."""
    m = report["meta"]
    ours = m.get("ours") or {}
    items = [
        f"measured on {m['date'][:10]} with ``{m['command']}``",
        (
            f"{m['machine']['cpu']}, {m['machine']['cores']} cores, "
            f"{m['machine']['platform'].split('-with-')[0]}; Python {m['machine']['python']}, "
            f"NumPy {m['numpy']}"
        ),
        (
            f"this library {ours.get('version', '?')} (OpenMP: {ours.get('openmp', '?')}), "
            f"norbert {m.get('upstream') or 'not measured'}, open-unmix "
            f"{m.get('openunmix') or 'not measured'} (torch {m.get('torch') or NONE})"
        ),
        (
            f"kernels compiled for ``{ours.get('isa', '?')}`` (picked from the CPU), "
            f"{ours.get('max_threads', '?')} threads by default; measured with "
            f"{' and '.join(map(str, thread_counts(report)))}"
        ),
        f"load average {m['load_before']:.2f} before the run, {m['load_after']:.2f} after",
        *floor_facts(m),
        *[f"note: {note}" for note in m.get("notes", [])],
    ]
    return "\n".join([f"- {item}" for item in items]) + "\n"


def floor_facts(m) -> list[str]:
    """The machine's floor in this run (_floor.py), one item per thread count."""
    machine = (m.get("floor") or {}).get("machine", {})
    items = []
    for t, f in sorted(machine.items(), key=lambda kv: int(kv[0])):
        items.append(
            f"floor with {t} thread{'s' if int(t) > 1 else ''}: read {f['read'] / 1e9:.0f} GB/s, "
            f"write {f['write'] / 1e9:.0f} GB/s, copy {f['copy'] / 1e9:.0f} GB/s, first touch "
            f"{f['first_touch_s_per_byte'] * 1e12:.0f} ms per GB"
        )
    return items


def tables(report, dtype) -> str:
    """Time and memory of every measured (workload, operation), as reST tables."""
    tn, t1 = max(thread_counts(report)), min(thread_counts(report))
    time_rows, mem_rows, used = [], [], []
    for r in report.get("rows", []):
        w = WORKLOADS.get(r["workload"])
        if w is None or r["dtype"] != dtype:
            continue
        if r["workload"] not in used:
            used.append(r["workload"])
        head = [r["workload"], SHORT_OPS.get(r["op"], r["op"])]
        up, ou, ours = r.get("upstream"), r.get("openunmix"), r.get("ours_n")
        times = [r.get("ours_1")] if t1 != tn else []
        time_rows.append(
            head
            + [_nbsp(_fmt_time(t)) if t else NONE for t in [*times, ours, up]]
            + [_speedup(up, ours)]
            + [_nbsp(_fmt_time(ou)) if ou else ("n/a" if r.get("openunmix_note") else NONE)]
            + [_speedup(ou, ours)]
            + [f"{r['x_floor_n']:.1f}x" if r.get("x_floor_n") else NONE]
        )
        mems = [r.get(k) for k in ("ours_mem_extra", "upstream_mem_extra", "openunmix_mem_extra")]
        mem_rows.append(
            head + [f"{m / MB:.0f}\u00a0MB" if m else NONE for m in [*mems, r.get("out_bytes")]]
        )
    if not time_rows:
        return "No full-size measurements in this run.\n"
    legend = "; ".join(
        f"``{name}``: {_seconds_label(WORKLOADS[name].seconds)}, "
        f"{WORKLOADS[name].nb_channels} channel{'s' if WORKLOADS[name].nb_channels > 1 else ''}, "
        f"{WORKLOADS[name].nb_sources} sources"
        for name in used
    )
    threads = ([f"ours {t1} thr"] if t1 != tn else []) + [f"ours {tn} thr"]
    lines = [
        (
            f'Workloads: {legend}. {dtype}; "{NONE}": not measured; "n/a": open-unmix '
            "cannot run it (more than two channels)."
        ),
        "",
        (
            f"Median time per call; × is the speed-up of this library with {tn} threads "
            "over norbert 0.2.1 and over open-unmix; × floor is its time over the floor, the "
            "least time the bytes the call must move take on this machine."
        ),
        "",
        *rst_table(
            [
                "workload",
                "operation",
                *threads,
                "0.2.1",
                "×",
                "open-unmix",
                "×",
                "× floor",
            ],
            time_rows,
        ),
        "",
        (
            "Peak memory beyond the inputs during one call, output included (this library "
            f"with {tn} threads), and the size of the output ``y``."
        ),
        "",
        *rst_table(
            ["workload", "operation", "ours", "norbert 0.2.1", "open-unmix", "output y"],
            mem_rows,
        ),
    ]
    return "\n".join(lines) + "\n"


# -- main ------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--results",
        default=str(HERE / "results" / "results.json"),
        help="bench.py's JSON (default: benchmarks/results/results.json)",
    )
    p.add_argument("--out-dir", default=str(ROOT / "docs" / "_static" / "figures"))
    p.add_argument(
        "--dtype",
        default=None,
        help="dtype of the time and memory figures (default: the one with the "
        "most reference measurements)",
    )
    p.add_argument("--no-demo", action="store_true", help="keep the existing demo.png")
    p.add_argument("--demo-width", type=int, default=850, help="demo.png width in pixels")
    a = p.parse_args(argv)

    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _style(plt)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = load(Path(a.results))
    dtype = a.dtype or pick_dtype(report)
    figures = {
        "time": fig_time(report, dtype, out, plt),
        "memory": fig_memory(report, dtype, out, plt),
        "threads": fig_threads(report, dtype, out, plt),
        "floor": fig_floor(report, out, plt),
    }
    if not a.no_demo:
        figures["demo"] = demo_figure(out, a.demo_width)
    header = ".. Written by benchmarks/make_figures.py from bench.py's results; do not edit.\n\n"
    for name, text in (
        ("benchmarks_run.inc", facts(report)),
        ("benchmarks_tables.inc", tables(report, dtype)),
    ):
        (out / name).write_text(header + text)
        print(f"wrote {_shown(out / name)}")
    missing = [k for k, v in figures.items() if not v]
    if missing:
        print(f"no data for: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
