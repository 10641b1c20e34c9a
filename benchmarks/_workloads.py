"""Seeded synthetic workloads: mixture STFTs with real spatial structure.

Everything is built in the STFT domain (n_fft 4096, hop 1024, 44.1 kHz), which
is what the filters see.  Each source has a spectro-temporal envelope of its
own kind (drums: broadband onsets; bass, vocals, other: notes with harmonic
combs), a complex Gaussian excitation under that envelope, and a spatial image
per channel: a panning gain, an inter-channel delay (a phase ramp
``exp(-2i pi f tau)``, the narrow-band form of a delay) and a diffuse part that
is independent between channels.  The mixture is the sum of the images.

The source spectrograms ``v`` handed to the filters are deliberately imperfect,
like a separation model's output: the true image magnitudes with log-normal
errors, plus some leakage of the mixture magnitude.

Same name and seed, same arrays, bit for bit (numpy's PCG64 streams).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 44100
N_FFT = 4096
HOP = 1024


@dataclass(frozen=True)
class Workload:
    name: str
    seconds: float
    nb_channels: int
    nb_sources: int

    @property
    def nb_frames(self) -> int:
        # centred STFT: one frame per hop plus one (180 s -> 7752 frames)
        return 1 + int(round(self.seconds * SAMPLE_RATE)) // HOP

    @property
    def nb_bins(self) -> int:
        return N_FFT // 2 + 1

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.nb_frames, self.nb_bins, self.nb_channels, self.nb_sources)


WORKLOADS = {
    w.name: w
    for w in (
        Workload("short", 10.0, 2, 4),
        Workload("song", 180.0, 2, 4),
        Workload("mono", 10.0, 1, 4),
        Workload("multi", 10.0, 6, 3),
    )
}

_KINDS = ("drums", "bass", "vocals", "other")


def _rng(name: str, seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode()), *tags])


def _notes(rng, nb_frames, frames_per_second, mean_len_s, f0_range):
    """Note index per frame and the f0 of each note (note 0 is a rest)."""
    starts = [0]
    while starts[-1] < nb_frames:
        starts.append(starts[-1] + max(1, int(rng.exponential(mean_len_s) * frames_per_second) + 1))
    index = np.zeros(nb_frames, dtype=np.intp)
    for k, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
        index[a:b] = k
    f0 = np.exp(rng.uniform(np.log(f0_range[0]), np.log(f0_range[1]), len(starts)))
    rest = rng.random(len(starts)) < 0.15
    return index, f0, rest


def _envelope(kind, rng, nb_frames, freqs):
    """Magnitude envelope (nb_frames, nb_bins) of one source, peak about 1."""
    fps = SAMPLE_RATE / HOP
    tilt = 1.0 / np.sqrt(1.0 + freqs / 200.0)  # pink-ish spectral tilt
    if kind == "drums":
        onsets = np.flatnonzero(rng.random(nb_frames) < 4.0 / fps)  # about 4 hits per second
        act = np.full(nb_frames, 0.02)
        decay = np.exp(-np.arange(int(0.5 * fps)) / (0.08 * fps))
        for t in onsets:
            seg = act[t : t + len(decay)]
            np.maximum(seg, rng.uniform(0.3, 1.0) * decay[: len(seg)], out=seg)
        bright = np.exp(-freqs / rng.uniform(3000, 9000))
        return act[:, None] * (0.3 * tilt + 0.7 * bright)[None, :]
    f0_range, mean_len, nb_harm, width = {
        "bass": ((40.0, 120.0), 0.5, 12, 6.0),
        "vocals": ((180.0, 500.0), 0.4, 24, 12.0),
        "other": ((100.0, 800.0), 0.8, 16, 8.0),
    }[kind]
    index, f0, rest = _notes(rng, nb_frames, fps, mean_len, f0_range)
    profiles = np.empty((len(f0), len(freqs)))
    for k in range(len(f0)):
        h = np.arange(1, nb_harm + 1)
        centres = h * f0[k]
        amps = h**-0.8 * (
            1.0 if kind != "vocals" else 1.0 + 2.0 * np.exp(-(((centres - 2500.0) / 800.0) ** 2))
        )
        comb = np.zeros(len(freqs))
        for c, a in zip(centres, amps):
            lo, hi = np.searchsorted(freqs, (c - 4 * width, c + 4 * width))
            comb[lo:hi] += a * np.exp(-0.5 * ((freqs[lo:hi] - c) / width) ** 2)
        profiles[k] = comb * (0.0 if rest[k] else 1.0) + 0.01 * tilt
    act = 0.6 + 0.4 * np.sin(
        2 * np.pi * np.arange(nb_frames) / fps * rng.uniform(0.1, 0.5) + rng.uniform(0, 6.3)
    )
    return act[:, None] * profiles[index]


def _spatial(rng, nb_channels):
    """Panning gains, inter-channel delays (s) and diffuse fraction of one source."""
    if nb_channels == 1:
        return np.ones(1), np.zeros(1), rng.uniform(0.05, 0.25)
    if nb_channels == 2:
        pan = rng.uniform(0.1, 0.9) * np.pi / 2  # constant-power pan law
        gains = np.array([np.cos(pan), np.sin(pan)])
        delay = rng.uniform(-5e-4, 5e-4)
        return gains, np.array([0.0, delay]), rng.uniform(0.05, 0.3)
    # linear array, 5 cm spacing, a source at its own direction of arrival
    positions = (np.arange(nb_channels) - (nb_channels - 1) / 2) * 0.05
    theta = rng.uniform(-np.pi / 2, np.pi / 2)
    delays = positions * np.sin(theta) / 343.0
    gains = 0.6 + 0.4 * np.cos(theta - np.linspace(-1.2, 1.2, nb_channels))
    gains /= np.sqrt(np.sum(gains**2))
    return gains, delays, rng.uniform(0.05, 0.3)


def make_workload(name: str, seed: int = 0, dtype=np.complex128):
    """Return ``(v, x)``: v (nb_frames, nb_bins, nb_channels, nb_sources) magnitude
    spectrograms (x's real dtype), x (nb_frames, nb_bins, nb_channels) complex.
    The arrays are generated in double precision and cast at the end."""
    w = WORKLOADS[name]
    nb_frames, nb_bins, nb_channels, nb_sources = w.shape
    freqs = np.arange(nb_bins) * SAMPLE_RATE / N_FFT
    x = np.zeros((nb_frames, nb_bins, nb_channels), np.complex128)
    v = np.empty((nb_frames, nb_bins, nb_channels, nb_sources), np.float64)
    for j in range(nb_sources):
        rng = _rng(name, seed, j)
        env = _envelope(_KINDS[j % len(_KINDS)], rng, nb_frames, freqs)
        # scale: audio in [-1, 1] with a 4096-point Hann window gives |X| up to ~1000
        env *= 60.0 * rng.uniform(0.5, 1.0)
        s = rng.standard_normal((nb_frames, nb_bins, 2)).view(np.complex128)[..., 0]
        s *= env * np.sqrt(0.5)
        gains, delays, diffuse = _spatial(rng, nb_channels)
        for c in range(nb_channels):
            phase = np.exp(-2j * np.pi * freqs * delays[c])
            image = s * (np.sqrt(1.0 - diffuse) * gains[c] * phase)
            noise = rng.standard_normal((nb_frames, nb_bins, 2)).view(np.complex128)[..., 0]
            image += noise * (env * np.sqrt(0.5 * diffuse / nb_channels))
            x[..., c] += image
            # the model's estimate: true magnitude times a log-normal error
            v[..., c, j] = np.abs(image) * rng.lognormal(0.0, 0.4, (nb_frames, nb_bins))
            del image, noise
        del s, env
    # leakage: each estimate also carries a share of the mixture magnitude
    leak = _rng(name, seed, 1000).uniform(0.03, 0.12, nb_sources)
    for j in range(nb_sources):
        v[..., j] = (1.0 - leak[j]) * v[..., j] + leak[j] * np.abs(x)
    x = x.astype(dtype, copy=False)
    v = v.astype(x.real.dtype, copy=False)
    return v, x


def initial_estimate(v, x, eps=None):
    """Ratio-mask estimate of the sources (the usual EM starting point), x's dtype."""
    if eps is None:
        eps = np.finfo(x.real.dtype).eps
    mask = v / (eps + v.sum(axis=-1, keepdims=True))
    return (mask * x[..., None]).astype(x.dtype, copy=False)


def save_workload(name: str, seed: int, directory: str) -> None:
    """Write ``<name>_<dtype>_{v,x}.npy`` for complex128 and complex64."""
    import os

    v, x = make_workload(name, seed)
    for dtype in (np.complex128, np.complex64):
        stem = os.path.join(directory, f"{name}_{np.dtype(dtype).name}")
        np.save(stem + "_x.npy", x.astype(dtype, copy=False))
        np.save(stem + "_v.npy", v.astype(np.dtype(dtype).char.lower(), copy=False))


if __name__ == "__main__":  # python _workloads.py NAME SEED DIRECTORY
    import sys

    save_workload(sys.argv[1], int(sys.argv[2]), sys.argv[3])
