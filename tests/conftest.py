"""Shared fixtures: a seeded rng and small, spatially structured problems."""

import os
import sys

import numpy as np
import pytest
from hypothesis import settings

# tests import the reference as a plain module: `import reference`
sys.path.insert(0, os.path.dirname(__file__))


# deadline=None: CI machines are noisy.  `pytest --hypothesis-profile=thorough`
# searches harder (e.g. after touching a kernel).
settings.register_profile("norbert", deadline=None, max_examples=30)
settings.register_profile("thorough", deadline=None, max_examples=1000)
settings.load_profile("norbert")


@pytest.fixture
def rng():
    return np.random.default_rng(20240521)


def _real_dtype(dtype):
    return np.finfo(np.dtype(dtype)).dtype


def source_images(rng, nb_frames=12, nb_bins=9, nb_channels=2, nb_sources=3, scale=100.0):
    """Complex128 source images (T, F, C, J), each with its own spatial image.

    Source j = a_j[f] s_j[t, f] + a small diffuse part: a_j is a random complex
    mixing vector (its own panning, bin-dependent phase), s_j is complex
    Gaussian with a random non-flat power spectrum and temporal activation,
    the diffuse part is white across channels at -20 dB.  Every bin carries
    energy.  ``scale`` sets the order of max|x| (upstream's wiener rescales
    when max|x| > 10).
    """
    shape = (nb_frames, nb_bins, nb_channels, nb_sources)
    pan = rng.uniform(0.2, 1.0, size=(1, nb_channels, nb_sources))
    phase = rng.uniform(-np.pi, np.pi, size=(nb_bins, nb_channels, nb_sources))
    a = pan * np.exp(1j * phase)  # (F, C, J)
    spectrum = rng.gamma(2.0, 1.0, size=(1, nb_bins, nb_sources))
    activation = rng.gamma(1.5, 1.0, size=(nb_frames, 1, nb_sources))
    power = spectrum * activation
    s = np.sqrt(power / 2) * (
        rng.standard_normal(power.shape) + 1j * rng.standard_normal(power.shape)
    )
    diffuse = np.sqrt(power[:, :, None, :] / 2) * (
        rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    )
    images = a[None] * s[:, :, None, :] + 0.1 * diffuse
    return scale / 10.0 * images


def random_problem(
    rng,
    nb_frames=12,
    nb_bins=9,
    nb_channels=2,
    nb_sources=3,
    mono_v=False,
    dtype=np.complex128,
    scale=100.0,
):
    """(v, x): magnitude spectrograms like a model's imperfect output, mixture.

    v[..., j] = |image_j| times a log-normal error (so v is not exact), shape
    (T, F, C or 1, J) in x's real dtype; x = sum_j image_j in ``dtype``.
    """
    images = source_images(rng, nb_frames, nb_bins, nb_channels, nb_sources, scale)
    x = images.sum(axis=-1)
    v = np.abs(images) * np.exp(0.3 * rng.standard_normal(images.shape))
    if mono_v:
        v = v.mean(axis=2, keepdims=True)
    return v.astype(_real_dtype(dtype)), x.astype(dtype)


def random_em_problem(
    rng,
    nb_frames=12,
    nb_bins=9,
    nb_channels=2,
    nb_sources=3,
    dtype=np.complex128,
    scale=10.0,
):
    """(y0, x): initial source estimates for the EM and the mixture.

    y0 = the true images times a random complex error near 1 per TF point and
    channel, so the initial estimates neither sum to x nor have exact spatial
    images.
    """
    images = source_images(rng, nb_frames, nb_bins, nb_channels, nb_sources, scale)
    x = images.sum(axis=-1)
    err = np.exp(0.3 * rng.standard_normal(images.shape) + 0.3j * rng.standard_normal(images.shape))
    y0 = images * err
    return y0.astype(dtype), x.astype(dtype)


def rel_err(actual, expected):
    """Normwise error max|actual - expected| / max|expected|."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    denom = np.max(np.abs(expected)) if expected.size else 0.0
    diff = np.max(np.abs(actual.astype(np.complex128) - expected)) if expected.size else 0.0
    if denom == 0:
        return diff
    return diff / denom


def assert_close(actual, expected, rtol):
    err = rel_err(actual, expected)
    assert np.all(np.isfinite(actual)), "non-finite output"
    assert err <= rtol, f"normwise error {err:.3e} > {rtol:.0e}"
