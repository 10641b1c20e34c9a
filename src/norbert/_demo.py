"""Deterministic synthetic example and SDR metrics for ``norbert demo``.

Nothing here downloads anything: the example is synthesised with numpy and
scipy from a seed, so ``norbert demo`` runs offline and prints the same SDR
table on every run (timings aside).

The example is built to look like a real separation problem to the filter:

* three sources with distinct spectra -- a harmonic, voice-like melody with
  vibrato and formants, a plucked bass line, and a drum kit (kick, snare,
  hi-hat) made of filtered noise bursts;
* each source is placed in the stereo field with its own gain and
  inter-channel delay, plus a diffuse reverberation tail, so each has its own
  full-rank spatial covariance (the cue that the multichannel Wiener filter
  and its EM refinement exploit);
* the "estimates" imitate a separator's output: the true magnitude plus
  leakage of the other sources, multiplied by smooth random magnitude errors,
  with the mixture's phase, resynthesised to the time domain.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._output import AtomicOutputs
from ._signal import PRECISIONS, filter_stft, istft, make_stft, online_filter_stft, stft

__all__ = ["Example", "bss_eval_sdr", "make_example", "run_demo", "sdr"]

SOURCE_NAMES = ("voice", "bass", "drums")
DEFAULT_SEED = 42
DEFAULT_SAMPLE_RATE = 22050
DEFAULT_DURATION = 4.0
DEMO_N_FFT = 2048
DEMO_HOP = 512
#: Lookaheads (frames) of the demo's rows for ``norbert.OnlineWiener``, and its forgetting.
DEMO_LOOKAHEADS = (0, 2, 8)
DEMO_FORGET = 0.99

# (gain left, gain right, delay left, delay right in samples) per source:
# voice left of centre, bass right, drums centre-left with a small delay.
_SPATIAL = {
    "voice": (0.95, 0.45, 0, 6),
    "bass": (0.35, 1.0, 9, 0),
    "drums": (0.8, 0.7, 0, 2),
}


@dataclass(frozen=True)
class Example:
    """A synthetic stereo separation problem.

    Attributes
    ----------
    sample_rate : int
        Sampling rate in Hz.
    mixture : np.ndarray [shape=(nb_samples, nb_channels)]
        The mixture, sum of the source images, peak 0.9.
    sources : np.ndarray [shape=(nb_sources, nb_samples, nb_channels)]
        The true source images (the reference for SDR).
    estimates : np.ndarray [shape=(nb_sources, nb_samples, nb_channels)]
        Imperfect estimates of the source images, as a separator would give.
    names : tuple of str
        Source names, in the order of the first axis of ``sources``.
    """

    sample_rate: int
    mixture: np.ndarray
    sources: np.ndarray
    estimates: np.ndarray
    names: tuple


def _envelope(onsets, length, nb_samples, sample_rate, attack=0.01, decay=None):
    """Sum of note envelopes: linear attack, then sustain or exponential decay."""
    env = np.zeros(nb_samples)
    n_attack = max(1, int(attack * sample_rate))
    for onset, dur in zip(onsets, length):
        start = int(onset * sample_rate)
        n = min(int(dur * sample_rate), nb_samples - start)
        if n <= 0:
            continue
        t = np.arange(n) / sample_rate
        e = np.minimum(1.0, np.arange(n) / n_attack)
        if decay is None:  # sustained note with a short release
            e *= np.minimum(1.0, (n - np.arange(n)) / n_attack)
        else:
            e *= np.exp(-t / decay)
        env[start : start + n] += e
    return env


def _harmonic(f0, nb_harmonics, sample_rate, amplitude):
    """Sum of harmonics of a time-varying f0; ``amplitude(freq)`` shapes them."""
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    out = np.zeros_like(f0)
    for k in range(1, nb_harmonics + 1):
        freq = k * f0
        gain = amplitude(freq) * (freq < 0.45 * sample_rate)
        out += gain * np.sin(k * phase)
    return out


def _filtered_noise(rng, nb_samples, sample_rate, low, high):
    """White noise band-limited to [low, high] Hz in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(nb_samples))
    freqs = np.fft.rfftfreq(nb_samples, 1 / sample_rate)
    spectrum *= (freqs >= low) & (freqs <= high)
    noise = np.fft.irfft(spectrum, nb_samples)
    return noise / (np.abs(noise).max() + 1e-12)


def _voice(rng, nb_samples, sample_rate):
    """Melody with vibrato, a formant envelope and syllable-like note gaps."""
    beat = 0.5
    nb_notes = int(np.ceil(nb_samples / sample_rate / beat))
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    notes = scale[rng.integers(0, len(scale), nb_notes)]
    t = np.arange(nb_samples) / sample_rate
    f0 = notes[np.minimum((t / beat).astype(int), nb_notes - 1)]
    f0 = f0 * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))  # vibrato
    formants = ((700, 130), (1200, 200), (2600, 300))

    def amplitude(freq):
        return sum(np.exp(-0.5 * ((freq - fc) / bw) ** 2) for fc, bw in formants) + 0.05

    onsets = np.arange(nb_notes) * beat
    env = _envelope(onsets, np.full(nb_notes, 0.85 * beat), nb_samples, sample_rate, attack=0.03)
    breath = 0.02 * _filtered_noise(rng, nb_samples, sample_rate, 2000, 6000)
    return env * (_harmonic(f0, 40, sample_rate, amplitude) + breath)


def _bass(rng, nb_samples, sample_rate):
    """Plucked bass line: decaying notes with a few harmonics."""
    step = 0.25
    nb_notes = int(np.ceil(nb_samples / sample_rate / step))
    roots = 55.0 * 2 ** (np.array([0, 3, 5, 7, 10, 12]) / 12)
    notes = roots[rng.integers(0, len(roots), nb_notes)]
    t = np.arange(nb_samples) / sample_rate
    f0 = notes[np.minimum((t / step).astype(int), nb_notes - 1)]
    env = _envelope(
        np.arange(nb_notes) * step,
        np.full(nb_notes, step),
        nb_samples,
        sample_rate,
        attack=0.005,
        decay=0.18,
    )
    return env * _harmonic(f0, 8, sample_rate, lambda freq: (freq / 55.0) ** -1.2)


def _drums(rng, nb_samples, sample_rate):
    """Kick on the beat, snare on the off-beat, hi-hat on eighths."""
    t = np.arange(nb_samples) / sample_rate
    beats = np.arange(0, t[-1], 0.5)
    kick_env = _envelope(beats, np.full(len(beats), 0.3), nb_samples, sample_rate, 0.002, 0.08)
    kick_freq = 45 + 80 * _envelope(
        beats, np.full(len(beats), 0.3), nb_samples, sample_rate, 0.0001, 0.03
    )
    kick = kick_env * np.sin(2 * np.pi * np.cumsum(kick_freq) / sample_rate)
    snare_env = _envelope(
        beats + 0.25, np.full(len(beats), 0.2), nb_samples, sample_rate, 0.001, 0.06
    )
    snare = snare_env * _filtered_noise(rng, nb_samples, sample_rate, 300, 5000)
    hats = np.arange(0, t[-1], 0.125)
    hat_env = _envelope(hats, np.full(len(hats), 0.08), nb_samples, sample_rate, 0.0005, 0.015)
    hat = hat_env * _filtered_noise(rng, nb_samples, sample_rate, 6000, 0.5 * sample_rate)
    return kick + 0.6 * snare + 0.35 * hat


def _spatialise(mono, gains_delays):
    """Stereo image: per-channel gain and integer delay (a pan with a time difference)."""
    gain_l, gain_r, delay_l, delay_r = gains_delays
    image = np.zeros((len(mono), 2))
    for c, (gain, delay) in enumerate(((gain_l, delay_l), (gain_r, delay_r))):
        image[delay:, c] = gain * mono[: len(mono) - delay]
    return image


def _reverberate(rng, image, sample_rate, wet_db, decay=0.12, length=0.5):
    """Add a diffuse tail: independent exponentially decaying noise per channel.

    It makes each source's spatial covariance full-rank, as in a real room or
    a mix with reverb, rather than the rank-1 of a pure pan and delay.
    """
    from scipy.signal import fftconvolve

    n = int(length * sample_rate)
    t = np.arange(n) / sample_rate
    tails = rng.standard_normal((n, image.shape[1])) * np.exp(-t / decay)[:, None]
    wet = np.stack(
        [fftconvolve(image[:, c], tails[:, c])[: len(image)] for c in range(image.shape[1])],
        axis=1,
    )
    wet *= 10 ** (wet_db / 20) * np.sqrt(np.sum(image**2) / (np.sum(wet**2) + 1e-12))
    return image + wet


def make_example(
    seed=DEFAULT_SEED,
    duration=DEFAULT_DURATION,
    sample_rate=DEFAULT_SAMPLE_RATE,
    n_fft=DEMO_N_FFT,
    hop=DEMO_HOP,
    leakage=0.3,
    error_db=3.0,
    reverb_db=-10.0,
):
    """Synthesise the demo's stereo mixture, its sources and imperfect estimates.

    Parameters
    ----------
    seed : int
        Seed of every random choice (melodies, noise, estimate errors).
    duration : float
        Length in seconds.
    sample_rate : int
        Sampling rate in Hz.
    n_fft, hop : int
        STFT used to simulate the separator's estimates.
    leakage : float
        Magnitude of the other sources leaking into each estimate, as a
        fraction of their own magnitude.
    error_db : float
        Standard deviation, in dB, of the smooth random magnitude error of
        each estimate.
    reverb_db : float
        Level of each source's diffuse reverberation relative to its dry image.

    Returns
    -------
    example : Example

    Examples
    --------
    >>> ex = make_example(duration=1.0, sample_rate=8000, n_fft=512, hop=128)
    >>> ex.mixture.shape, ex.sources.shape
    ((8000, 2), (3, 8000, 2))
    """
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    nb_samples = round(duration * sample_rate)
    makers = {"voice": _voice, "bass": _bass, "drums": _drums}
    levels = {"voice": 1.0, "bass": 0.9, "drums": 0.8}
    images = []
    for name in SOURCE_NAMES:
        mono = makers[name](rng, nb_samples, sample_rate)
        mono *= levels[name] / (np.sqrt(np.mean(mono**2)) + 1e-12)
        image = _spatialise(mono, _SPATIAL[name])
        images.append(_reverberate(rng, image, sample_rate, reverb_db))
    sources = np.stack(images)
    peak = np.abs(sources.sum(axis=0)).max()
    sources *= 0.9 / peak
    mixture = sources.sum(axis=0)

    # A separator's output: each estimate's magnitude has leakage from the
    # other sources and a smooth multiplicative error; the phase is the mixture's.
    sft = make_stft(n_fft, hop)
    x = stft(sft, mixture)
    mags = np.abs(np.stack([stft(sft, s) for s in sources]))
    total = mags.sum(axis=0)
    estimates = np.empty_like(sources)
    for j in range(len(sources)):
        error = gaussian_filter(rng.standard_normal(x.shape[:2]), sigma=(2.0, 3.0))
        error *= error_db / (error.std() + 1e-12)
        magnitude = (mags[j] + leakage * (total - mags[j])) * 10 ** (error[..., None] / 20)
        estimates[j] = istft(sft, magnitude * np.exp(1j * np.angle(x)), nb_samples)
    return Example(sample_rate, mixture, sources, estimates, SOURCE_NAMES)


def sdr(reference, estimate, delta=1e-7):
    """MDX-challenge SDR: the energy ratio of reference to error, in dB.

    ``10 log10((sum s^2 + delta) / (sum (s - s_hat)^2 + delta))`` over all
    samples and channels, as in the Music Demixing challenge. Needs nothing
    beyond numpy, and is not invariant to gain or filtering errors.

    Parameters
    ----------
    reference, estimate : np.ndarray [shape=(..., nb_samples, nb_channels)]
        True source images and their estimates, same shape.
    delta : float
        Regulariser for silent references.

    Returns
    -------
    sdr : np.ndarray [shape=(...)]
        One value per leading index (per source).

    Examples
    --------
    >>> s = np.ones((10, 2))
    >>> round(float(sdr(s, 0.9 * s)), 1)
    20.0
    """
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    num = np.sum(reference**2, axis=(-2, -1)) + delta
    den = np.sum((reference - estimate) ** 2, axis=(-2, -1)) + delta
    return 10 * np.log10(num / den)


def bss_eval_sdr(reference, estimate):
    """BSS-eval SDR from ``fast_bss_eval``, per source, averaged over channels.

    Parameters
    ----------
    reference, estimate : np.ndarray [shape=(nb_sources, nb_samples, nb_channels)]

    Returns
    -------
    sdr : np.ndarray [shape=(nb_sources,)] or None
        None when ``fast_bss_eval`` is not installed (extra ``norbert[eval]``).
    """
    fast_bss_eval = _import_fast_bss_eval()
    if fast_bss_eval is None:
        return None
    # (sources, channels, 1, samples): each estimate against its own reference only.
    # SDR does not depend on the other references (SIR and SAR do), and this skips
    # the permutation search -- and bss_eval_sources, which fails with numpy 2.
    ref = np.moveaxis(np.asarray(reference, np.float64), -1, 1)[:, :, None, :]
    est = np.moveaxis(np.asarray(estimate, np.float64), -1, 1)[:, :, None, :]
    # conjugate gradient instead of a dense 512x512 solve per signal: 10x faster,
    # within 0.01 dB of the direct solve on the demo
    sdr_ = fast_bss_eval.sdr(ref, est, load_diag=1e-10, use_cg_iter=30)
    return np.asarray(sdr_)[..., 0].mean(axis=1)


def _import_fast_bss_eval():
    """Import fast_bss_eval without the torch import it attempts (seconds, unused here)."""
    if "fast_bss_eval" in sys.modules or "torch" in sys.modules:
        try:
            import fast_bss_eval
        except ImportError:
            return None
        return fast_bss_eval
    sys.modules["torch"] = None  # makes `import torch` fail fast inside fast_bss_eval
    try:
        import fast_bss_eval
    except ImportError:
        return None
    finally:
        del sys.modules["torch"]
    return fast_bss_eval


def _plot(path, example, x, s, v, y_softmask, y_em, source=0):
    """Spectrograms of mixture, source, estimate and refined source, and two masks."""
    from matplotlib.figure import Figure

    def db(a):
        return 20 * np.log10(np.abs(a) + 1e-9)

    def mask(y):
        return np.abs(y[..., 0, source]) / (np.abs(x[..., 0]) + 1e-9)

    name = example.names[source]
    extent = (0, len(example.mixture) / example.sample_rate, 0, example.sample_rate / 2000)
    mix_db = db(x[..., 0])
    top = float(mix_db.max())
    spec = ("magma", top - 80, top, "dB")
    gain = ("viridis", 0.0, 1.0, "gain")
    panels = [
        ("mixture (left channel)", mix_db, spec),
        (f"{name}: true source", db(s[..., 0]), spec),
        (f"{name}: estimate (input)", db(v[..., 0, source]), spec),
        (f"{name}: wiener, 3 EM iterations", db(y_em[..., 0, source]), spec),
        (f"{name}: softmask, mask", mask(y_softmask), gain),
        (f"{name}: wiener 3 EM, |y| / |x|", mask(y_em), gain),
    ]
    fig = Figure(figsize=(13, 7), layout="constrained")
    axes = fig.subplots(2, 3, sharex=True, sharey=True)
    for ax, (title, image, (cmap, vmin, vmax, label)) in zip(axes.ravel(), panels):
        im = ax.imshow(
            image.T,
            origin="lower",
            aspect="auto",
            extent=extent,
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
        )
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, label=label)
    for ax in axes[1]:
        ax.set_xlabel("time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("frequency (kHz)")
    fig.suptitle("norbert demo: multichannel Wiener filter on a synthetic stereo mixture")
    fig.savefig(path, dpi=90)
    return path


def _wav_writer(audio, sample_rate):
    """A writer of 32-bit float WAV with scipy (the demo needs no soundfile)."""
    from scipy.io import wavfile

    def write_to(file):
        wavfile.write(file, sample_rate, np.asarray(audio, dtype=np.float32))

    return write_to


def _table(title, labels, names, rows, times=None):
    """Lines of a fixed-width table of per-source values, their mean and a time."""
    width = max(len(label) for label in labels)
    head = f"{'method':<{width}}" + "".join(f"{n:>8}" for n in names) + f"{'mean':>8}"
    if times is not None:
        head += f"{'time':>10}"
    lines = [title, head]
    for i, (label, values) in enumerate(zip(labels, rows)):
        line = f"{label:<{width}}" + "".join(f"{value:8.2f}" for value in values)
        line += f"{np.mean(values):8.2f}"
        if times is not None:
            line += f"{'-':>10}" if times[i] is None else f"{times[i] * 1e3:8.0f} ms"
        lines.append(line)
    return lines


def run_demo(outdir=None, plot=False, seed=None, precision="float32", workers=None, file=None):
    """Separate the synthetic example with each method and print an SDR table.

    Runs the softmask, ``norbert.wiener`` with 1 and 3 EM iterations,
    ``wiener`` with the residual model standing in for the drums (given only
    the voice and bass estimates), and the causal ``norbert.OnlineWiener``
    with the lookaheads of :data:`DEMO_LOOKAHEADS`, through the same level
    handling as ``norbert refine`` (:func:`norbert.cli.filter_stft` and
    :func:`norbert.cli.online_filter_stft`).

    Parameters
    ----------
    outdir : str or path-like or None
        Write the mixture, references, estimates and each method's sources
        as 32-bit float WAV files here, all or nothing: if one cannot be
        written (:class:`norbert._output.OutputError`), none is, and files
        already there are left as they were.
    plot : bool
        Save a PNG figure to ``outdir/demo.png``, or to ``./norbert-demo.png``
        without ``outdir`` (needs matplotlib: the CLI checks for it before the work).
    seed : int or None
        Seed of the example (None: :data:`DEFAULT_SEED`).
    precision : {"float32", "float64"}
        Working precision of the STFT and the filter.
    workers : int or None
        Threads for the filter.
    file : text stream or None
        Where to print (default: stdout).
    """
    import norbert

    out = sys.stdout if file is None else file
    seed = DEFAULT_SEED if seed is None else seed
    dtype = PRECISIONS[precision]

    start = time.perf_counter()
    example = make_example(seed=seed)
    sft = make_stft(DEMO_N_FFT, DEMO_HOP)
    nb_samples = len(example.mixture)
    x = stft(sft, example.mixture, dtype)
    v = np.stack([np.abs(stft(sft, e, dtype)) for e in example.estimates], axis=-1)
    setup_time = time.perf_counter() - start

    nb_sources = len(example.names)
    methods = [
        ("softmask", {"iterations": 0}, nb_sources),
        ("wiener, 1 EM iteration", {"iterations": 1}, nb_sources),
        ("wiener, 3 EM iterations", {"iterations": 3}, nb_sources),
        ("wiener, 1 EM it. + residual*", {"iterations": 1, "residual": True}, nb_sources - 1),
    ]
    methods += [
        (f"online, lookahead {L}**", {"lookahead": L, "forget": DEMO_FORGET}, nb_sources)
        for L in DEMO_LOOKAHEADS
    ]
    labels = ["estimates (input)"]
    outputs = [example.estimates]
    times = [None]
    spectra = {}
    for label, options, nb_given in methods:
        tic = time.perf_counter()
        run = online_filter_stft if "lookahead" in options else filter_stft
        y = run(x, v[..., :nb_given], workers=workers, **options)
        times.append(time.perf_counter() - tic)
        spectra[label] = y
        labels.append(label)
        outputs.append(np.stack([istft(sft, y[..., j], nb_samples) for j in range(nb_sources)]))

    mdx = [sdr(example.sources, est) for est in outputs]
    threads = norbert.get_num_threads(workers)
    duration = nb_samples / example.sample_rate
    lines = [
        (
            f"norbert {norbert.__version__} demo: {duration:.1f} s synthetic stereo mixture at "
            f"{example.sample_rate} Hz (seed {seed}) of {', '.join(example.names)},"
        ),
        "each panned and delayed differently, with reverb; the estimates imitate a separator's",
        "output (leakage of the other sources, smooth magnitude errors, the mixture's phase).",
        (
            f"STFT Hann {DEMO_N_FFT}, hop {DEMO_HOP}; {precision}; {threads} thread(s); "
            f"synthesis and STFTs took {setup_time * 1e3:.0f} ms."
        ),
        "",
    ]
    lines += _table(
        "SDR in dB (MDX challenge: 10 log10 sum s^2 / sum (s - s_hat)^2; higher is better)",
        labels,
        example.names,
        mdx,
        times,
    )
    last = example.names[-1]
    lines.append(
        f"* given only the {' and '.join(example.names[:-1])} estimates: "
        f"{last} is the residual model's extra source"
    )
    hop_ms = DEMO_HOP / example.sample_rate * 1e3
    lines += [
        f"** causal: norbert.OnlineWiener (norbert refine --online), forget {DEMO_FORGET}; frame t",
        f"   is filtered with the statistics of frames up to t + lookahead ({hop_ms:.0f} ms each),",
        "   where the offline filters see the whole track",
    ]
    bss = [bss_eval_sdr(example.sources, est) for est in outputs]
    if bss[0] is not None:
        lines += [""] + _table(
            "BSS-eval SDR in dB (fast_bss_eval: 512-tap distortion filter, mean of the channels)",
            labels,
            example.names,
            bss,
        )
    else:
        lines.append("(pip install 'norbert[eval]' adds BSS-eval SDR from fast_bss_eval)")
    gain = np.mean(mdx[3]) - np.mean(mdx[1])
    lines += ["", f"EM (3 iterations) changes the mean SDR by {gain:+.2f} dB over the softmask."]
    causal = np.mean(mdx[labels.index(f"online, lookahead {DEMO_LOOKAHEADS[0]}**")])
    lines.append(
        f"Causality (online, lookahead {DEMO_LOOKAHEADS[0]}) costs "
        f"{np.mean(mdx[2]) - causal:.2f} dB of mean SDR against wiener with 1 EM iteration."
    )
    print("\n".join(lines), file=out)

    if outdir is not None:
        root = Path(outdir)
        rate = example.sample_rate
        folders = ["estimates", "softmask", "wiener-1", "wiener-3", "wiener-1-residual"]
        folders += [f"online-{L}" for L in DEMO_LOOKAHEADS]
        with AtomicOutputs(root) as files:  # all or nothing, as norbert refine
            files.write("mixture.wav", _wav_writer(example.mixture, rate))
            for j, name in enumerate(example.names):
                files.write(f"reference/{name}.wav", _wav_writer(example.sources[j], rate))
                for folder, audio in zip(folders, outputs):
                    last = folder.endswith("residual") and j == nb_sources - 1
                    stem = "residual" if last else name
                    files.write(f"{folder}/{stem}.wav", _wav_writer(audio[j], rate))
            files.commit()
        print(
            f"\nwrote WAV files to {root}/ (try: norbert refine {root / 'mixture.wav'} "
            f"{root / 'estimates'}/*.wav -o {root / 'refined'})",
            file=out,
        )
    if plot:
        path = (Path(outdir) / "demo.png") if outdir is not None else Path("norbert-demo.png")
        s = stft(sft, example.sources[0], dtype)
        _plot(path, example, x, s, v, spectra["softmask"], spectra["wiener, 3 EM iterations"])
        print(f"wrote {path}", file=out)
