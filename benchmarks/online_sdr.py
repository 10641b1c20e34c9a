#!/usr/bin/env python
"""SDR of the online (causal) filter against its lookahead: the figure of docs/online.rst.

    python benchmarks/online_sdr.py   # prints a table, writes docs/_static/figures/online_sdr.png

Runs on the example of ``norbert demo`` (``norbert._demo.make_example``: 4 s of a stereo
mixture of voice, bass and drums at 22050 Hz, STFT Hann 2048, hop 512, estimates with
leakage and smooth magnitude errors) through the demo's own signal path: the estimates'
magnitudes filter the mixture's STFT at the level of ``norbert refine``
(``norbert.cli.online_filter_stft``, ``norbert.cli.filter_stft``), the result is
resynthesised and scored with the demo's MDX SDR, averaged over the three sources.

Curves: ``norbert.OnlineWiener`` for each forgetting factor, at lookaheads of 0 to 32
frames and "whole track" (a lookahead of every frame: each frame is filtered with the
statistics of the whole track, forgotten from its end); a line: the offline
``wiener(iterations=1)``, which ``forget=1`` with the whole track reproduces (printed, not
drawn: on a 176-frame track ``forget=0.999`` draws the same curve), as is the soft mask's
SDR. Needs matplotlib (and Pillow, which it brings) to draw; ``--no-plot`` only prints.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOOKAHEADS = (0, 1, 2, 4, 8, 16, 32, None)  # None: the whole track
FORGETS = (0.99, 0.999, 1.0)  # printed; 1.0 is drawn over by 0.999 on this 4 s example
PLOTTED = (0.99, 0.999)


def measure(precision="float32"):
    """Mean SDR per (forget, lookahead), and of the offline filters; the example's facts."""
    from norbert import _demo
    from norbert.cli import filter_stft, istft, make_stft, online_filter_stft, stft

    dtype = {"float32": np.complex64, "float64": np.complex128}[precision]
    example = _demo.make_example()
    sft = make_stft(_demo.DEMO_N_FFT, _demo.DEMO_HOP)
    nb_samples = len(example.mixture)
    x = stft(sft, example.mixture, dtype)
    v = np.stack([np.abs(stft(sft, e, dtype)) for e in example.estimates], axis=-1)

    def score(y):
        sources = np.stack([istft(sft, y[..., j], nb_samples) for j in range(y.shape[-1])])
        return float(np.mean(_demo.sdr(example.sources, sources)))

    online = {}
    for forget in FORGETS:
        for lookahead in LOOKAHEADS:
            L = len(x) if lookahead is None else lookahead
            online[forget, lookahead] = score(online_filter_stft(x, v, lookahead=L, forget=forget))
    offline = {
        "wiener(iterations=1)": score(filter_stft(x, v, iterations=1)),
        "softmask": score(filter_stft(x, v, iterations=0)),
    }
    facts = {
        "hop_ms": _demo.DEMO_HOP / example.sample_rate * 1e3,
        "frames": len(x),
        "estimates": float(np.mean(_demo.sdr(example.sources, example.estimates))),
    }
    return online, offline, facts


def table(online, offline, facts):
    label = [("whole" if L is None else str(L)) for L in LOOKAHEADS]
    lines = [
        f"mean SDR (dB) of the demo example ({facts['frames']} frames, hop "
        f"{facts['hop_ms']:.1f} ms) against the lookahead in frames",
        f"{'forget':>8}" + "".join(f"{s:>7}" for s in label),
    ]
    for forget in FORGETS:
        row = "".join(f"{online[forget, L]:7.2f}" for L in LOOKAHEADS)
        lines.append(f"{forget:>8}" + row)
    for name, value in offline.items():
        lines.append(f"offline {name}: {value:.2f}")
    lines.append(f"estimates (input): {facts['estimates']:.2f}")
    return "\n".join(lines)


def plot(online, offline, facts, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sys.path.insert(0, str(HERE))
    from make_figures import _style, shrink_png

    _style(plt)
    positions = np.arange(len(LOOKAHEADS))
    ticks = [
        "whole\ntrack" if L is None else f"{L}\n{L * facts['hop_ms']:.0f} ms" for L in LOOKAHEADS
    ]
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    colours = {0.99: "#1f77b4", 0.999: "#ff7f0e"}
    for forget in PLOTTED:
        values = [online[forget, L] for L in LOOKAHEADS]
        frames = 1 / (1 - forget)
        memory = f"memory ~{frames:.0f} frames, {frames * facts['hop_ms'] / 1e3:.1f} s"
        ax.plot(
            positions,
            values,
            marker="o",
            color=colours[forget],
            label=f"OnlineWiener, forget {forget:g} ({memory})",
        )
    ax.axhline(offline["wiener(iterations=1)"], color="black", linestyle="--", linewidth=1.2)
    ax.text(
        0,
        offline["wiener(iterations=1)"],
        f" offline wiener(iterations=1), whole track: {offline['wiener(iterations=1)']:.2f} dB",
        va="bottom",
    )
    drawn = [online[f, L] for f in PLOTTED for L in LOOKAHEADS] + [offline["wiener(iterations=1)"]]
    ax.set_ylim(min(drawn) - 0.25, max(drawn) + 0.2)
    ax.set_xticks(positions, ticks)
    ax.set_xlabel("lookahead (frames, and latency at hop 512, 22.05 kHz)")
    ax.set_ylabel("mean SDR (dB), 3 sources")
    ax.set_title(
        f"norbert demo example: the price of causality (soft mask {offline['softmask']:.2f} dB, "
        f"estimates {facts['estimates']:.2f} dB)"
    )
    ax.legend(loc="center left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    shrink_png(buf.getvalue(), path, None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=ROOT / "docs" / "_static" / "figures" / "online_sdr.png",
        help="PNG to write (default: %(default)s)",
    )
    parser.add_argument("--precision", choices=("float32", "float64"), default="float32")
    parser.add_argument("--no-plot", action="store_true", help="only print the table")
    args = parser.parse_args(argv)
    online, offline, facts = measure(args.precision)
    print(table(online, offline, facts))
    if not args.no_plot:
        plot(online, offline, facts, args.output)


if __name__ == "__main__":
    main()
