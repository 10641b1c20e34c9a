#!/usr/bin/env python
"""Steering the EM on a simulated reverberant room: the figure and tables of docs/steering.rst.

    pip install -e ".[bench]"           # pyroomacoustics and matplotlib
    python benchmarks/scene.py          # prints the tables, writes the figure below
    python benchmarks/scene.py --quick  # a 2 s scene, no figure, no timings: a smoke run

A shoebox room (6 x 5 x 3 m, RT60 0.35 s, image sources by pyroomacoustics) holds a
4-microphone circular array (radius 5 cm) and three sources at known positions: the target
talker, a second talker and a broadband noise source (a fan), each synthesised in code (no
recording is downloaded). Each source is simulated alone, so its true image at the array is
known. STFT: 16 kHz, Hann 512, hop 128. The spectrograms given to the filter are what a
model would give: the images' magnitudes (channel mean) with log-normal errors and a little
leakage of the mixture.

Compared (``expectation_maximization`` from the soft mask, 3 iterations, mu = 1):

- estimated R: the EM estimates R from its estimates (norbert's default);
- oracle R: R from the true images (``get_local_gaussian_model``), fixed (``update_R=False``);
- steering R: from the geometry alone, fixed: per source the free-field direct-path vector
  d(f) (delays and 1/r gains from the positions) as ``(1 - g) d d^H / |d|^2 C + g Gamma(f)``,
  Gamma the spherically isotropic (diffuse) coherence ``sinc(2 f dist / c)``, g = 0.5;
- steering R then updated: the same R given as a start, re-estimated by the EM.

Then mu from 0.1 to 10 with the oracle R: the target's SDR, its speech distortion and the
residual noise (the other sources left in it). The last filter's gains are rebuilt from the
v and R that ``expectation_maximization`` returns and applied to each true image alone,
which separates distortion ``||W s - s||^2 / ||s||^2`` from residual noise
``||W n||^2 / ||n||^2`` (n = x - s); the rebuilt gains reproduce norbert's output (checked).
Finally the log-likelihood and the consistency of each iteration (``callback``), and the
measured cost of watching (callback on / off) and of ``mu != 1``, in one process.
Every figure is on the STFT coefficients of all channels (SDR = 10 log10 ||s||^2 / ||s - y||^2).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import norbert

HERE = Path(__file__).resolve().parent
FIGURE = HERE.parent / "docs" / "_static" / "figures" / "scene.png"
TABLES = FIGURE.with_name("scene_tables.inc")  # included by docs/steering.rst
FS = 16000
N_FFT, HOP = 512, 128
SOUND_SPEED = 343.0
ROOM = (6.0, 5.0, 3.0)
RT60 = 0.35
ARRAY_CENTER = (3.0, 2.2, 1.2)
ARRAY_RADIUS = 0.05
NB_MICS = 4
SOURCES = ((1.6, 3.8, 1.5), (4.6, 3.9, 1.6), (5.2, 0.8, 0.6))  # target, talker, fan
NAMES = ("target talker", "second talker", "fan noise")
ITERATIONS = 3
MUS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
DIFFUSE = 0.5
LABELS = {
    "soft mask (no EM)": "soft mask\n(no EM)",
    "estimated R": "estimated R",
    "oracle R (true images)": "oracle R\n(true images)",
    "steering + diffuse R": "steering +\ndiffuse R",
    "steering R, then updated": "steering R,\nthen updated",
}


# -------------------------------------------------------------------------- signals
def _speech(rng, nb_samples, f0_base):
    """Speech-like: voiced syllables (gliding f0, vowel formants) separated by pauses."""
    t = np.arange(nb_samples) / FS
    out = np.zeros(nb_samples)
    vowels = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480),
              (570, 840, 2410))
    start = 0.1
    while start < t[-1]:
        dur = rng.uniform(0.12, 0.3)
        n0, n1 = int(start * FS), min(nb_samples, int((start + dur) * FS))
        if n1 <= n0:
            break
        tt = t[n0:n1] - start
        f0 = f0_base * (1 + 0.15 * rng.standard_normal()) * (1 - 0.3 * tt / dur)
        phase = 2 * np.pi * np.cumsum(f0) / FS
        formants = vowels[rng.integers(len(vowels))]
        syllable = np.zeros(n1 - n0)
        for k in range(1, int(3800 / f0.max())):
            gain = sum(np.exp(-0.5 * ((k * f0 - fc) / (60 + 0.05 * fc)) ** 2) for fc in formants)
            syllable += (gain + 0.02) / k * np.sin(k * phase)
        syllable *= np.sin(np.pi * tt / dur) ** 2                 # syllable envelope
        out[n0:n1] += syllable
        start += dur + rng.uniform(0.03, 0.25)                    # pause
    out += 0.01 * rng.standard_normal(nb_samples) * (np.abs(out) > 1e-3)  # fricative noise
    return out / np.abs(out).max()


def _fan(rng, nb_samples):
    """Broadband noise with a 1/f tilt and a hum at 120 Hz and harmonics."""
    spectrum = np.fft.rfft(rng.standard_normal(nb_samples))
    freqs = np.fft.rfftfreq(nb_samples, 1 / FS)
    spectrum /= np.sqrt(np.maximum(freqs, 50.0))
    noise = np.fft.irfft(spectrum, nb_samples)
    t = np.arange(nb_samples) / FS
    noise /= np.abs(noise).max()
    noise += 0.2 * sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 5))
    return noise / np.abs(noise).max()


def microphones():
    angles = 2 * np.pi * np.arange(NB_MICS) / NB_MICS
    c = np.array(ARRAY_CENTER)
    return np.stack([c + ARRAY_RADIUS * np.array([np.cos(a), np.sin(a), 0.0]) for a in angles])


def build_scene(duration=6.0, seed=0):
    """The room's source images (J, nb_samples, C) and the dry signals, by pyroomacoustics."""
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    n = int(duration * FS)
    dry = [_speech(rng, n, 120.0), _speech(rng, n, 210.0), _fan(rng, n)]
    gains = (1.0, 0.8, 0.5)
    e_absorption, max_order = pra.inverse_sabine(RT60, ROOM)
    images = []
    for pos, s, g in zip(SOURCES, dry, gains):
        # one source per simulation: its image at the array is then known exactly
        room = pra.ShoeBox(ROOM, fs=FS, materials=pra.Material(e_absorption),
                           max_order=max_order)
        room.add_source(pos, signal=g * s)
        room.add_microphone_array(pra.MicrophoneArray(microphones().T, FS))
        room.simulate()
        images.append(room.mic_array.signals[:, :n].T)
    return np.stack(images)  # (J, n, C)


# ---------------------------------------------------------------------------- STFTs
def stfts(images, dtype=np.complex128):
    """x (T, F, C), true images (T, F, C, J), model spectrograms v (T, F, 1, J)."""
    from norbert._signal import make_stft, stft

    sft = make_stft(N_FFT, HOP)
    s = np.stack([stft(sft, im, dtype) for im in images], axis=-1)
    x = np.ascontiguousarray(s.sum(axis=-1))
    rng = np.random.default_rng(1)
    mag = np.abs(s).mean(axis=2, keepdims=True)
    v = mag * np.exp(0.4 * rng.standard_normal(mag.shape)) + 0.05 * np.abs(x).mean(
        axis=2, keepdims=True)[..., None]
    return x, s, v.astype(x.real.dtype)


def oracle_R(s):
    """R_j from the true images: the EM's own estimator on them (eps of the images' dtype)."""
    return np.stack([norbert.get_local_gaussian_model(np.ascontiguousarray(s[..., j]),
                                                      eps=np.finfo(s.real.dtype).eps)[1]
                     for j in range(s.shape[-1])], axis=-1)


def steering_R(nb_bins, diffuse=DIFFUSE):
    """Rank-1 free-field direct path plus a diffuse part, from the positions alone."""
    mics = microphones()
    freqs = np.arange(nb_bins) * FS / N_FFT
    C = len(mics)
    dist = np.linalg.norm(mics[:, None] - mics[None], axis=-1)
    gamma = np.sinc(2 * freqs[:, None, None] * dist[None] / SOUND_SPEED)  # (F, C, C)
    R = np.zeros((nb_bins, C, C, len(SOURCES)), complex)
    for j, pos in enumerate(SOURCES):
        r = np.linalg.norm(mics - np.array(pos), axis=1)
        d = np.exp(-2j * np.pi * freqs[:, None] * r[None] / SOUND_SPEED) / r[None]   # (F, C)
        d /= np.sqrt(np.mean(np.abs(d) ** 2, axis=1, keepdims=True))
        rank1 = d[:, :, None] * np.conj(d[:, None, :])
        R[..., j] = (1 - diffuse) * rank1 + diffuse * gamma
    return (R + np.conj(np.swapaxes(R, 1, 2))) / 2


# -------------------------------------------------------------------------- metrics
def sdr(ref, est):
    return float(10 * np.log10(np.sum(np.abs(ref) ** 2) / np.sum(np.abs(ref - est) ** 2)))


def sdw_gains_apply(v, R, x_parts, eps, mu, j=0):
    """Apply the SDW gain of source j (from the EM's last v, R) to each array in x_parts."""
    C = R.shape[1]
    vR = v[:, :, None, None, :] * R[None]                        # (T, F, C, C, J): v_j R_j
    own = vR[..., j]
    others = vR.sum(axis=-1) - own
    A = own + mu * others + np.sqrt(eps) * np.eye(C)
    G = own @ np.linalg.inv(A)                                   # (T, F, C, C)
    return [np.einsum("tfcd,tfd->tfc", G, p) for p in x_parts]


# ---------------------------------------------------------------------------- runs
def compare_R(x, s, v, iterations=ITERATIONS):
    y0 = norbert.softmask(v, x)
    em = norbert.expectation_maximization
    runs = {
        "soft mask (no EM)": y0,
        "estimated R": em(y0, x, iterations)[0],
        "oracle R (true images)": em(y0, x, iterations, R=oracle_R(s), update_R=False)[0],
        "steering + diffuse R": em(y0, x, iterations, R=steering_R(x.shape[1]),
                                   update_R=False)[0],
        "steering R, then updated": em(y0, x, iterations, R=steering_R(x.shape[1]))[0],
    }
    return {name: [sdr(s[..., j], y[..., j]) for j in range(s.shape[-1])]
            for name, y in runs.items()}


def sweep_mu(x, s, v, iterations=ITERATIONS):
    y0 = norbert.softmask(v, x)
    R = oracle_R(s)
    eps = float(np.finfo(x.real.dtype).eps)
    target, noise = s[..., 0], x - s[..., 0]
    rows = []
    for mu in MUS:
        y, v_last, R_last = norbert.expectation_maximization(y0, x, iterations, R=R,
                                                             update_R=False, mu=mu)
        ws, wn, wx = sdw_gains_apply(v_last, R_last, [target, noise, x], eps, mu)
        check = np.max(np.abs(wx - y[..., 0])) / np.max(np.abs(y[..., 0]))
        assert check < 1e-6, f"rebuilt gains differ from norbert's output: {check:.2e}"
        rows.append({
            "mu": mu,
            "sdr": sdr(target, y[..., 0]),
            "distortion": float(10 * np.log10(np.sum(np.abs(ws - target) ** 2)
                                              / np.sum(np.abs(target) ** 2))),
            "residual": float(10 * np.log10(np.sum(np.abs(wn) ** 2) / np.sum(np.abs(noise) ** 2))),
        })
    return rows


def watch(x, s, v, iterations=10):
    y0 = norbert.softmask(v, x)
    curves = {}
    for name, kw in (("estimated R", {}), ("steering R, then updated",
                                          {"R": steering_R(x.shape[1])})):
        records = []
        norbert.expectation_maximization(y0, x, iterations, callback=records.append, **kw)
        curves[name] = records
    return curves


def timings(x, v, iterations=ITERATIONS, repeats=7, workers=None):
    """Median seconds of the EM with and without watching, and with mu != 1."""
    y0 = norbert.softmask(v, x)
    em = norbert.expectation_maximization
    variants = {
        "plain": {},
        "callback": {"callback": lambda r: None},
        "mu=0.5": {"mu": 0.5},
        "mu=0.5 + callback": {"mu": 0.5, "callback": lambda r: None},
    }
    times = {k: [] for k in variants}
    for _ in range(repeats):                      # interleaved: load hits every variant
        for name, kw in variants.items():
            t0 = time.perf_counter()
            em(y0, x, iterations, workers=workers, **kw)
            times[name].append(time.perf_counter() - t0)
    return {k: float(np.median(t)) for k, t in times.items()}


# ---------------------------------------------------------------------------- output
def print_tables(comparison, mus, curves, times=None, two_channel_times=None):
    print("\nSDR (dB) of each source, 3 EM iterations from the soft mask, mu = 1")
    print("| R | " + " | ".join(NAMES) + " |")
    print("|---|" + "--:|" * len(NAMES))
    for name, sdrs in comparison.items():
        print(f"| {name} | " + " | ".join(f"{d:.2f}" for d in sdrs) + " |")
    print("\nmu sweep (oracle R, fixed): target SDR, speech distortion, residual noise (dB)")
    print("| mu | target SDR | distortion | residual noise |")
    print("|--:|--:|--:|--:|")
    for r in mus:
        print(f"| {r['mu']:g} | {r['sdr']:.2f} | {r['distortion']:.2f} | {r['residual']:.2f} |")
    for name, records in curves.items():
        print(f"\n{name}: per iteration")
        for rec in records:
            print(f"  {rec}")
    for label, t in (("4 channels", times), ("2 channels", two_channel_times)):
        if t:
            base = t["plain"]
            print(f"\nTime of the EM ({label}, median, {ITERATIONS} iterations): "
                  + ", ".join(f"{k} {v * 1e3:.0f} ms ({v / base:.2f}x)" for k, v in t.items()))


def write_tables(comparison, mus, times, two, path=TABLES):
    """The tables of docs/steering.rst, as csv-table directives."""
    out = [".. Written by benchmarks/scene.py: do not edit.", "",
           ".. csv-table:: SDR (dB) of each source: 3 EM iterations from the soft mask, mu = 1",
           '   :header: "R", ' + ", ".join(f'"{n}"' for n in NAMES), ""]
    for name, sdrs in comparison.items():
        out.append(f'   "{name}", ' + ", ".join(f"{d:.2f}" for d in sdrs))
    out += ["", ".. csv-table:: The target with the oracle R, fixed, against mu (dB)",
            '   :header: "mu", "target SDR", "speech distortion", "residual noise"', ""]
    for r in mus:
        out.append(f'   {r["mu"]:g}, {r["sdr"]:.2f}, {r["distortion"]:.2f}, {r["residual"]:.2f}')
    if times:
        out += ["", ".. csv-table:: Time of expectation_maximization (3 iterations, median of 7, "
                "interleaved), relative to the plain call",
                '   :header: "array", ' + ", ".join(f'"{k}"' for k in times), ""]
        for label, t in (("4 microphones", times), ("2 microphones", two)):
            out.append(f'   "{label}", ' + ", ".join(f"{v / t['plain']:.2f}x" for v in t.values()))
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path}")


def plot(comparison, mus, curves, path=FIGURE):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    names = list(comparison)
    width = 0.8 / len(NAMES)
    for j, src in enumerate(NAMES):
        ax.bar(np.arange(len(names)) + (j - 1) * width, [comparison[n][j] for n in names],
               width, label=src)
    ax.set_xticks(np.arange(len(names)), [LABELS.get(n, n) for n in names], fontsize=8)
    ax.set_ylabel("SDR (dB)")
    ax.set_title("Spatial covariances given or estimated")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)

    ax = axes[1]
    m = [r["mu"] for r in mus]
    ax.semilogx(m, [r["sdr"] for r in mus], "o-", label="target SDR")
    ax.semilogx(m, [-r["distortion"] for r in mus], "s--", label="-speech distortion")
    ax.semilogx(m, [-r["residual"] for r in mus], "^--", label="noise reduction")
    ax.set_xlabel("mu")
    ax.set_ylabel("dB")
    ax.set_title("Speech-distortion weighting (oracle R)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[2]
    ax2 = ax.twinx()
    for (name, records), color in zip(curves.items(), ("C0", "C1")):
        it = [r.iteration for r in records]
        ax.plot(it, [r.log_likelihood for r in records], "o-", color=color,
                label=f"{name}: log-likelihood")
        ax2.semilogy(it, [r.consistency for r in records], "x:", color=color,
                     label=f"{name}: consistency")
    # a steering start is far below: show the climb of the rest, and say where it starts
    top = max(r.log_likelihood for records in curves.values() for r in records)
    shown = [r.log_likelihood for rs in curves.values() for r in rs if r.log_likelihood > top - 10]
    low = min(shown) - 0.5
    ax.set_ylim(low, top + 0.3)
    for records, color in zip(curves.values(), ("C0", "C1")):
        if records[0].log_likelihood < low:
            ax.annotate(f"iteration 1: {records[0].log_likelihood:.1f} (off the axis)",
                        (1.1, low + 0.15), fontsize=7, color=color)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("log-likelihood per TF point")
    ax2.set_ylabel("||x - sum y|| / ||x||")
    ax.set_title("Watching the EM (callback)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="center right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"\nwrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s scene, no figure or timings")
    parser.add_argument("--no-plot", action="store_true", help="print the tables only")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of audio")
    args = parser.parse_args(argv)
    duration = 2.0 if args.quick else args.duration
    images = build_scene(duration)
    x, s, v = stfts(images)
    print(f"scene: {duration:g} s, {x.shape[0]} frames x {x.shape[1]} bins x {x.shape[2]} "
          f"microphones, {s.shape[-1]} sources")
    comparison = compare_R(x, s, v)
    mus = sweep_mu(x, s, v)
    curves = watch(x, s, v)
    times = two = None
    if not args.quick:
        times = timings(x, v)
        two = timings(np.ascontiguousarray(x[..., :2]), v)
    print_tables(comparison, mus, curves, times, two)
    if not (args.quick or args.no_plot):
        plot(comparison, mus, curves)
        write_tables(comparison, mus, times, two)
    return comparison, mus, curves


if __name__ == "__main__":
    main()
