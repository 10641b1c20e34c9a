"""open-unmix 1.3's ``openunmix.filtering`` filter, computed by norbert.

``wiener`` and ``expectation_maximization`` have the signatures, defaults, tensor layouts
(complex numbers as a last axis of length 2) and results of open-unmix 1.3's: on random
mono and stereo problems they agree to about 1e-6 (relative, normwise) in float32 and
1e-7 in float64 for 0-2 iterations, with and without ``softmask`` and ``residual``.
``patch()``, ``unpatch()`` and ``with patched():`` make an installed open-unmix (its
``Separator``) and demucs (``HDemucs``/``HTDemucs`` with ``cac=False``) call them.

How open-unmix's maths is reproduced (see docs/torch.rst for what differs):

- the EM adds ``torch.sqrt(torch.as_tensor(eps))`` times the identity to each mixture
  covariance, a square root computed in torch's default dtype (float32); norbert adds
  ``sqrt(eps)`` (one channel: ``sqrt(eps) + eps``), so norbert is given the eps whose
  regularisation is exactly open-unmix's. The eps added to the weights of the spatial
  covariances (and, with ``residual=False``, to the ratio masks' denominators) then
  differs from open-unmix's by a few parts in 1e5 of itself, a change below rounding.
- ``scale_factor``, ``residual`` and the initial estimate are open-unmix's own steps,
  done here on NumPy views of the tensors; the EM runs in norbert's compiled core.

Tensors on another device are filtered on the CPU and the result moved back. Tensors
that require grad are refused: the filter is not differentiable.
"""

import contextlib
import importlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from norbert import _filtering
from norbert._torch import as_array
from norbert._validation import resolve_workers

__all__ = ["wiener", "expectation_maximization", "patch", "unpatch", "patched"]

# (module, attribute) pairs that patch() replaces, when the module can be imported:
# open-unmix's Separator calls the `wiener` it imported into openunmix.model; demucs'
# HDemucs and HTDemucs call the `wiener` they imported from openunmix.filtering.
TARGETS = (
    ("openunmix.filtering", "wiener"),
    ("openunmix.filtering", "expectation_maximization"),
    ("openunmix.model", "wiener"),
    ("demucs.hdemucs", "wiener"),
    ("demucs.htdemucs", "wiener"),
)


def _cpu_array(t, name):
    """NumPy view of a tensor (a CPU copy first when it lives on another device)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.requires_grad:
        as_array(t, name)  # raises the "not differentiable" TypeError
    return as_array(t.cpu(), name)


def _complex_view(t, name):
    """(..., 2) real tensor -> (...) complex NumPy array, a view when the layout allows."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim < 1 or t.shape[-1] != 2 or t.dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"{name} must be a float32 or float64 tensor whose last axis (real, imaginary) "
            f"has length 2, got shape {tuple(t.shape)} and dtype {t.dtype}"
        )
    if t.requires_grad:
        as_array(t, name)
    t = t.cpu()
    try:
        c = torch.view_as_complex(t)
    except RuntimeError:  # strides view_as_complex cannot reinterpret: one copy
        c = torch.view_as_complex(t.contiguous())
    return as_array(c, name)


def _regularisation_eps(eps, nb_channels):
    """The eps that makes norbert's diagonal loading equal open-unmix's.

    open-unmix adds ``r = torch.sqrt(torch.as_tensor(eps))`` (in torch's default dtype);
    norbert adds sqrt(eps') for several channels and sqrt(eps') + eps' for one.
    """
    r = float(torch.sqrt(torch.as_tensor(eps)))
    if nb_channels == 1:
        r = 2.0 * r / (1.0 + np.sqrt(1.0 + 4.0 * r))  # s + s^2 = r, stably
    return r * r


def _to_openunmix_layout(y, scale=1.0):
    """(..., C, J) complex -> (..., C, 2, J) real tensor over the same memory, times `scale`.

    Each (frame, bin, channel) holds J complex numbers, i.e. 2 J reals: open-unmix's layout
    is the transpose of that (J, 2) block, so the result is rearranged in place, a few
    MB of frames at a time through a small buffer per thread (NumPy copies release the
    GIL). No second output-sized array, and half the time of writing a fresh one.
    `y` must be C-contiguous and ours (norbert's fresh results are).
    """
    r = y.view(y.real.dtype).reshape(y.shape + (2,))  # (T, F, C, J, 2)
    o = r.reshape(y.shape[:-1] + (2, y.shape[-1]))  # the same memory as (T, F, C, 2, J)
    nb_frames = y.shape[0]
    step = max(1, (4 << 20) // max(1, r[:1].nbytes))
    blocks = [(t0, min(nb_frames, t0 + step)) for t0 in range(0, nb_frames, step)]
    n_threads = min(len(blocks), resolve_workers(None))

    def rearrange(k):
        buffer = np.empty((step,) + r.shape[1:], r.dtype)
        for t0, t1 in blocks[k::n_threads]:
            b = buffer[: t1 - t0]
            np.copyto(b, r[t0:t1])
            if scale == 1.0:
                np.copyto(o[t0:t1], b.swapaxes(-1, -2))
            else:
                np.multiply(b.swapaxes(-1, -2), scale, out=o[t0:t1])

    if n_threads > 1:
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(rearrange, range(n_threads)))
    elif blocks:
        rearrange(0)
    return torch.from_numpy(o)


def wiener(
    targets_spectrograms,
    mix_stft,
    iterations=1,
    softmask=False,
    residual=False,
    scale_factor=10.0,
    eps=1e-10,
):
    """Wiener-based separation for multichannel audio: ``openunmix.filtering.wiener``.

    open-unmix 1.3's function (same arguments, defaults, layouts and results), computed
    by norbert's compiled core. An initial estimate (the spectrograms with the mixture's
    phase, or a ratio mask when `softmask`), optionally completed by a residual source
    (the mixture minus the others), is refined by `iterations` EM steps on
    ``mix_stft / max(1, max|mix_stft| / scale_factor)`` and scaled back.

    Parameters
    ----------
    targets_spectrograms : torch.Tensor [shape=(nb_frames, nb_bins, {1, nb_channels}, nb_sources)]
        non-negative magnitude (or power) spectrograms of the sources.
    mix_stft : torch.Tensor [shape=(nb_frames, nb_bins, nb_channels, 2)]
        STFT of the mixture, real and imaginary parts on the last axis (float32/float64).
    iterations : int
        number of EM iterations (0: the initial estimate).
    softmask : bool
        initial estimate from ratio masks instead of magnitudes with the mixture phase.
    residual : bool
        add a source: the mixture minus the initial estimates of the others.
    scale_factor : float
        the EM runs on the mixture divided by ``max(1, max|mix_stft| / scale_factor)``.
    eps : float
        regularisation: ``sqrt(eps)`` is added to the mixture covariances, `eps` to the
        denominators of the ratio masks and the covariance weights.

    Returns
    -------
    torch.Tensor [shape=(nb_frames, nb_bins, nb_channels, 2, nb_sources (+ 1))]
        STFTs of the sources, in `mix_stft`'s dtype and on its device.

    Raises
    ------
    TypeError
        if a tensor requires grad (the filter is not differentiable) or is not a tensor.
    ValueError
        on bad shapes, negative or non-finite spectrograms, non-finite mixture.

    Examples
    --------
    >>> import torch
    >>> from norbert.compat import openunmix
    >>> g = torch.Generator().manual_seed(0)
    >>> mix = torch.randn(50, 9, 2, 2, generator=g)
    >>> spectrograms = torch.rand(50, 9, 2, 3, generator=g)
    >>> openunmix.wiener(spectrograms, mix, iterations=1).shape
    torch.Size([50, 9, 2, 2, 3])
    """
    device = mix_stft.device if isinstance(mix_stft, torch.Tensor) else None
    x = _complex_view(mix_stft, "mix_stft")
    v = _cpu_array(targets_spectrograms, "targets_spectrograms")
    if x.ndim != 3:
        raise ValueError(
            "mix_stft must have shape (nb_frames, nb_bins, nb_channels, 2), "
            f"got {tuple(mix_stft.shape)}"
        )
    # The Separator passes permuted (strided) windows: a contiguous copy of x costs less
    # than the filter's block-wise reading of a strided x (for v, both cost the same).
    x = np.ascontiguousarray(x)
    nb_frames, nb_bins, nb_channels = x.shape
    nb_sources = (v.shape[-1] if v.ndim else 0) + bool(residual)
    em_eps = _regularisation_eps(eps, nb_channels)
    if iterations and not residual and scale_factor == 10.0:
        # norbert.wiener is open-unmix's wiener for these arguments; its kernels write
        # open-unmix's (C, 2, J) layout directly, so the result needs no second pass
        y = _filtering._wiener(v, x, iterations, softmask, em_eps, split=True)
        r = y.view(y.real.dtype).reshape(y.shape[:-1] + (2, y.shape[-1]))
        return torch.from_numpy(r).to(device)
    # the initial estimate: softmask, or magnitude and phase (norbert's iterations=0)
    y0 = _filtering.wiener(v, x, 0, use_softmask=softmask, eps=eps)
    if residual:
        y = np.empty(y0.shape[:-1] + (nb_sources,), y0.dtype)
        y[..., :-1] = y0
        np.subtract(x, y0.sum(axis=-1), out=y[..., -1])
        y0 = y
    if iterations == 0:
        return _to_openunmix_layout(y0).to(device)
    # open-unmix's max(1, max|mix_stft| / scale_factor), in the mixture's precision
    scale = max(1.0, float(np.abs(x).max()) / scale_factor) if x.size else 1.0
    if scale != 1.0:
        x = x / np.asarray(scale, x.real.dtype)
        y0 /= np.asarray(scale, x.real.dtype)
    y = _filtering.expectation_maximization(y0, x, iterations, eps=em_eps)[0]
    return _to_openunmix_layout(y, scale).to(device)


def expectation_maximization(y, x, iterations=2, eps=1e-10, batch_size=200):
    """EM refinement of source estimates: ``openunmix.filtering.expectation_maximization``.

    open-unmix 1.3's function (same arguments, defaults, layouts and results), computed
    by norbert's compiled core, which needs no batches: `batch_size` is accepted and
    ignored (open-unmix uses it only to bound its memory). Unlike open-unmix, `y` is not
    overwritten, and ``iterations=0`` returns a copy of it.

    Parameters
    ----------
    y : torch.Tensor [shape=(nb_frames, nb_bins, nb_channels, 2, nb_sources)]
        initial estimates of the sources.
    x : torch.Tensor [shape=(nb_frames, nb_bins, nb_channels, 2)]
        STFT of the mixture.
    iterations : int
        number of EM iterations.
    eps : float
        regularisation, as in :func:`wiener`.
    batch_size : int
        ignored.

    Returns
    -------
    y : torch.Tensor [shape=(nb_frames, nb_bins, nb_channels, 2, nb_sources)]
        estimated sources.
    v : torch.Tensor [shape=(nb_frames, nb_bins, nb_sources)]
        power spectral densities (of the estimates the last iteration started from).
    R : list of torch.Tensor [shape=(nb_bins, nb_channels, nb_channels, 2)]
        one spatial covariance matrix per source.

    Raises
    ------
    TypeError, ValueError
        as :func:`wiener`.

    Examples
    --------
    >>> import torch
    >>> from norbert.compat import openunmix
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(50, 9, 2, 2, generator=g)
    >>> y0 = openunmix.wiener(torch.rand(50, 9, 2, 3, generator=g), x, iterations=0)
    >>> y, v, R = openunmix.expectation_maximization(y0, x, iterations=1)
    >>> y.shape, v.shape, len(R), R[0].shape
    (torch.Size([50, 9, 2, 2, 3]), torch.Size([50, 9, 3]), 3, torch.Size([9, 2, 2, 2]))
    """
    device = x.device if isinstance(x, torch.Tensor) else None
    xc = _complex_view(x, "x")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.ndim != 5 or y.shape[-2] != 2:
        raise ValueError(
            "y must have shape (nb_frames, nb_bins, nb_channels, 2, nb_sources), "
            f"got {tuple(y.shape)}"
        )
    yr = _cpu_array(y, "y")
    # (T, F, C, 2, J) real -> (T, F, C, J) complex: the layouts differ, one copy
    yc = np.empty(yr.shape[:3] + yr.shape[4:], xc.dtype)
    yc.real = yr[..., 0, :]
    yc.imag = yr[..., 1, :]
    nb_frames, nb_bins, nb_channels, nb_sources = yc.shape
    dtype = x.dtype
    if iterations == 0:
        out = y.detach().clone()
        v = torch.zeros((nb_frames, nb_bins, nb_sources), dtype=dtype, device=device)
        R = [
            torch.zeros((nb_bins, nb_channels, nb_channels, 2), dtype=dtype, device=device)
            for _ in range(nb_sources)
        ]
        return out, v, R
    em_eps = _regularisation_eps(eps, nb_channels)
    xc = np.ascontiguousarray(xc)  # as in wiener: faster than reading a strided x
    y_out, v, R = _filtering.expectation_maximization(yc, xc, iterations, eps=em_eps)
    R = torch.view_as_real(torch.from_numpy(R))  # (F, C, C, J, 2)
    R = [R[..., j, :].to(device).contiguous() for j in range(nb_sources)]
    return _to_openunmix_layout(y_out).to(device), torch.from_numpy(v).to(device), R


# -- patching open-unmix and demucs -----------------------------------------------------

_originals = {}  # (module name, attribute) -> the function patch() replaced


def _replacement(attribute):
    return {"wiener": wiener, "expectation_maximization": expectation_maximization}[attribute]


def patch():
    """Make an installed open-unmix and demucs call this module's filter.

    Replaces ``wiener`` (and open-unmix's ``expectation_maximization``) in the modules
    that call them: ``openunmix.filtering``, ``openunmix.model`` (the ``Separator``),
    ``demucs.hdemucs`` and ``demucs.htdemucs``, for those that can be imported.
    Patching twice is harmless; :func:`unpatch` restores the originals.

    Returns
    -------
    list of str
        the attributes newly replaced, e.g. ``["openunmix.model.wiener", ...]``.

    Raises
    ------
    ImportError
        if neither open-unmix nor demucs can be imported.

    Examples
    --------
    >>> from norbert.compat import openunmix
    >>> openunmix.patch()  # doctest: +SKIP
    ['openunmix.filtering.wiener', 'openunmix.filtering.expectation_maximization', ...]
    """
    replaced, found, errors = [], False, []
    for module_name, attribute in TARGETS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            errors.append(f"{module_name}: {exc}")
            continue
        found = True
        if not hasattr(module, attribute):
            continue
        key = (module_name, attribute)
        if key not in _originals:
            _originals[key] = getattr(module, attribute)
            setattr(module, attribute, _replacement(attribute))
            replaced.append(f"{module_name}.{attribute}")
    if not found:
        raise ImportError(
            "norbert.compat.openunmix.patch() found neither open-unmix nor demucs: "
            + "; ".join(errors)
        )
    return replaced


def unpatch(names=None):
    """Restore what :func:`patch` replaced (all of it, or the given ``"module.attr"`` names).

    Examples
    --------
    >>> from norbert.compat import openunmix
    >>> openunmix.unpatch()
    """
    for key in list(_originals):
        if names is None or f"{key[0]}.{key[1]}" in names:
            setattr(importlib.import_module(key[0]), key[1], _originals.pop(key))


@contextlib.contextmanager
def patched():
    """Context manager: :func:`patch` on entry, restore on exit (also after an exception).

    Only what this block patched is restored, so an enclosing :func:`patch` stays.

    Examples
    --------
    >>> from norbert.compat import openunmix
    >>> with openunmix.patched():  # doctest: +SKIP
    ...     estimates = separator(audio)
    """
    replaced = patch()
    try:
        yield replaced
    finally:
        unpatch(replaced)
