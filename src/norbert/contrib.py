"""Utilities around the Wiener filter, as in norbert 0.2.1's ``norbert.contrib``.

They work on spectrograms and filters of any size with NumPy and SciPy; every function
returns a new array and leaves its inputs unmodified.
"""

import numpy as np

from norbert._validation import (
    ParameterError,
    _as_array,
    _check_ndim,
    allocate,
    check_finite,
    check_result,
)

__all__ = ["residual_model", "smooth", "reduce_interferences", "compress_filter"]


def _overflowing(minus_z):
    """Where exp(-z) overflows for a complex z, and exp(z) for the logistic's other form.

    A complex inf has no direction: 1 / (1 + inf) is NaN there, not the limit 0. Those
    entries are computed as exp(z) / (1 + exp(z)) instead (|exp(z)| is then tiny); real
    arrays get the limits from inf as they are, and every other entry keeps its bits.
    """
    if minus_z.dtype.kind != "c":
        return None, None
    big = minus_z.real > np.log(np.finfo(minus_z.real.dtype).max)
    return big, np.exp(-minus_z[big])


def _logistic(W, threshold, slope):
    minus_z = np.asarray(-slope * (W - threshold))
    big, e = _overflowing(minus_z)
    with np.errstate(over="ignore", invalid="ignore"):
        result = np.asarray(1.0 / (1.0 + np.exp(minus_z)))
    if big is not None:
        result[big] = e / (1.0 + e)
    return result


def _logistic_inplace(a, threshold, slope):
    """a <- _logistic(a, threshold, slope), the same operations without temporaries."""
    np.subtract(a, threshold, out=a)
    np.multiply(a, -slope, out=a)
    big, e = _overflowing(a)
    np.exp(a, out=a)
    np.add(a, 1.0, out=a)
    np.reciprocal(a, out=a)
    if big is not None:
        a[big] = e / (1.0 + e)
    return a


def _blur(v, width, temporal, out):
    """smooth's Gaussian blur of a float32/float64 v into out."""
    # imported here: scipy.ndimage takes ~0.25 s to import, which every `import norbert`
    # (and every CLI start) would pay for the two functions that blur
    from scipy.ndimage import gaussian_filter, gaussian_filter1d

    if temporal:
        if width * width == 0:  # no blur (scipy would divide by width ** 2)
            out[...] = v
            return out
        return gaussian_filter1d(v, sigma=width, axis=0, output=out)
    sigma = [width] * min(v.ndim, 2) + [0.0] * max(0, v.ndim - 2)
    return gaussian_filter(v, sigma=sigma, truncate=width, output=out)


def _check_kernel_size(width, temporal):
    """MemoryError when scipy could not even describe the Gaussian's taps as an array.

    scipy.ndimage samples the Gaussian over +-(truncate * width) (truncate: 4 along time,
    `width` otherwise) as float64 and int64 arrays; past 2**63 bytes it would fail with an
    OverflowError or a ValueError that does not say why. Smaller but still impossible
    kernels raise NumPy's own MemoryError, which gives their size.
    """
    radius = 4.0 * width if temporal else width * width
    if not np.isfinite(radius) or (2 * int(radius + 0.5) + 1) * 8 >= 2**63:
        raise MemoryError(
            f"smooth: the Gaussian kernel of width {width!r} needs more than 2**63 bytes "
            f"({radius:.3g} taps on each side), which cannot be allocated"
        )


def _float_dtype(a):
    """The precision a contrib function computes in: float32/float64 (and their complex
    types) as given; integers, float16 and longdouble in double (scipy.ndimage has no
    float16 or longdouble kernels)."""
    if a.dtype in (np.float32, np.float64, np.complex64, np.complex128):
        return a.dtype
    return np.dtype(np.complex128 if a.dtype.kind == "c" else np.float64)


def _check_real(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not np.isfinite(value):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    return float(value)


def residual_model(v, x, alpha=1, autoscale=False):
    r"""Compute a model for the residual based on spectral subtraction.

    The mixture's spectrogram is ``vx = max(eps, |x| ** alpha)``. With `autoscale`, each
    source is first multiplied by the per-(bin, channel) least-squares gain
    ``sum_t vx vt / (eps + sum_t vt^2)`` (``vt = sum_j v_j``) that best fits their sum to
    `vx`. The residual is ``max(0, vx - sum_j v_j)`` of the sources that are returned.

    Parameters
    ----------
    v : np.ndarray [shape=(..., nb_frames, nb_bins, {1, nb_channels}, nb_sources)]
        Estimated spectrograms for the sources (leading axes: a batch, as x's)
    x : np.ndarray [shape=(..., nb_frames, nb_bins, nb_channels)]
        complex mixture; leading axes, if any, are a batch of independent mixtures
    alpha : float [scalar]
        exponent for the spectrograms `v`. For instance, if ``alpha==1``, then `v` must be
        homogeneous to magnitudes, and if ``alpha==2``, `v` must be homogeneous to squared
        magnitudes.
    autoscale : boolean
        in the case you know that the spectrograms will not have the right magnitude, it is
        important that the models are scaled so that the residual is correctly estimated.

    Returns
    -------
    v : np.ndarray [shape=(..., nb_frames, nb_bins, nb_channels, nb_sources+1)]
        Spectrograms of the sources (broadcast to x's channels), with an appended one for
        the residual.

    Raises
    ------
    TypeError, ValueError
        on arrays of the wrong kind or shape, NaN or inf in v or x, negative v, or a
        non-positive alpha.

    Examples
    --------
    >>> import numpy as np
    >>> from norbert.contrib import residual_model
    >>> x = np.full((3, 2, 2), 2.0 + 0j)
    >>> out = residual_model(np.ones((3, 2, 1, 1)), x)
    >>> out.shape, float(out[0, 0, 0, 1])
    ((3, 2, 2, 2), 1.0)
    """
    v = _as_array(v, "v")
    x = _as_array(x, "x")
    if x.ndim < 3:
        _check_ndim(x, 3, "x", "(..., nb_frames, nb_bins, nb_channels)")
    _check_ndim(v, x.ndim + 1, "v", "(..., nb_frames, nb_bins, {1, nb_channels}, nb_sources)")
    if v.dtype.kind == "c":
        raise TypeError(f"v must be real (spectrograms), got {v.dtype}")
    C = x.shape[-1]
    if v.shape[:-2] != x.shape[:-1] or v.shape[-2] not in (1, C):
        raise ParameterError(
            f"v must have shape (..., nb_frames, nb_bins, {{1, nb_channels}}, nb_sources) "
            f"matching x {x.shape}, got {v.shape}"
        )
    alpha = _check_real(alpha, "alpha")
    if alpha <= 0:
        raise ParameterError(f"alpha must be > 0, got {alpha}")
    dtype = np.result_type(_float_dtype(v), np.float32)
    eps = np.finfo(dtype).eps
    out = allocate(x.shape + (v.shape[-1] + 1,), dtype, "residual_model's output")
    check_finite(v, "v", "residual_model", nonnegative=True)
    check_finite(x, "x", "residual_model")
    vx = np.abs(x).astype(dtype, copy=False)
    if alpha != 1:
        vx **= alpha
    np.maximum(vx, eps, out=vx)
    out[..., :-1] = v  # broadcasts a mono v to every channel
    sources = out[..., :-1]
    if autoscale:
        # element by element: each problem of a batch gets the bits a call on it alone gets
        for e in np.ndindex(x.shape[:-3]):
            total = sources[e].sum(axis=-1)
            gain = np.einsum("tfc,tfc->fc", vx[e], total) / (
                eps + np.einsum("tfc,tfc->fc", total, total))
            sources[e] *= gain[None, :, :, None]
    total = sources.sum(axis=-1)
    np.subtract(vx, total, out=total)
    np.maximum(total, 0, out=out[..., -1])
    # |x| ** alpha, the gains or the sums past the output's range: refused, not inf
    check_result([out], "residual_model", [("v", v, True), ("x", x, False)])
    return out


def smooth(v, width=1, temporal=False):
    """Smoothes a ndarray with a Gaussian blur.

    With `temporal`, a Gaussian of standard deviation `width` frames along axis 0 only
    (truncated at 4 sigma). Otherwise a Gaussian of standard deviation `width` truncated at
    `width` sigma, as norbert 0.2.1 does, over every axis of 1-D and 2-D arrays and over the
    first two axes (time and frequency) of arrays with more dimensions: channels and sources
    are never mixed.

    Parameters
    ----------
    v : np.ndarray [shape=(nb_frames, ...)]
        input array
    width : float [scalar]
        lengthscale (standard deviation) of the gaussian blur
    temporal : boolean
        if True, will smooth only along time through 1d blur.

    Returns
    -------
    result : np.ndarray [shape=(nb_frames, ...)]
        filtered array

    Raises
    ------
    TypeError, ValueError
        on a non-numeric or 0-d v, NaN or inf in v, a negative or non-finite width.

    Examples
    --------
    >>> import numpy as np
    >>> from norbert.contrib import smooth
    >>> v = np.zeros((9, 4, 1, 2)); v[4, :, 0, 0] = 1
    >>> s = smooth(v, 1, temporal=True)
    >>> float(s[..., 1].max()), bool(s[3, 0, 0, 0] > 0)
    (0.0, True)
    """
    v = _as_array(v, "v")
    if v.ndim == 0:
        raise ParameterError("v must have at least one dimension (nb_frames, ...), got a 0-d array")
    width = _check_real(width, "width")
    if width < 0:
        raise ParameterError(f"width must be >= 0, got {width}")
    # the output first: an impossible size fails before a pass over v
    out = allocate(v.shape, _float_dtype(v), "smooth's output")
    _check_kernel_size(width, temporal)
    check_finite(v, "v", "smooth")  # a NaN would be blurred over its neighbours
    return _blur(v.astype(out.dtype, copy=False), width, temporal, out)


def reduce_interferences(v, thresh=0.6, slope=15):
    r"""Reduction of interferences between spectrograms.

    Redistributes the energy of the input so that spectrograms are sparser along the
    source axis: ``v * logistic(s / (eps + sum_j s))`` where ``s = smooth(v, 10)`` and the
    logistic has threshold `thresh` and slope `slope`. Inspired from [1]_.

    Parameters
    ----------
    v : np.ndarray [shape=(..., nb_sources)]
        non-negative data on which to apply interference reduction
    thresh : float [scalar]
        threshold for the compression, should be between 0 and 1. The closer to 1, the
        more reduction of the interferences, at the price of more distortion.
    slope : float [scalar]
        the slope at which binarization is done. The higher, the more brutal

    Returns
    -------
    v : np.ndarray [same shape as input]
        `v` with reduced interferences

    Raises
    ------
    TypeError, ValueError
        on a complex or non-numeric v, NaN, inf or negative values in v, non-finite
        thresh or slope.

    References
    ----------
    .. [1] Thomas Prätzlich, Rachel Bittner, Antoine Liutkus, Meinard Müller. "Kernel
       additive modeling for interference reduction in multi channel music recordings"
       Proc. of ICASSP 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from norbert.contrib import reduce_interferences
    >>> v = np.ones((30, 20, 1, 2)); v[..., 1] = 0.1
    >>> out = reduce_interferences(v)
    >>> bool(out[..., 1].max() < 0.1 * 0.01 < out[..., 0].min())
    True
    """
    v = _as_array(v, "v")
    if v.dtype.kind == "c":
        raise TypeError(f"v must be real (spectrograms), got {v.dtype}")
    if v.ndim == 0:
        raise ParameterError(
            "v must have at least one dimension (..., nb_sources), got a 0-d array"
        )
    thresh = _check_real(thresh, "thresh")
    slope = _check_real(slope, "slope")
    eps = np.finfo(np.float32).eps
    out = allocate(v.shape, _float_dtype(v), "reduce_interferences' output")
    check_finite(v, "v", "reduce_interferences", nonnegative=True)
    v = v.astype(out.dtype, copy=False)
    s = _blur(v, 10, False, out)  # s = smooth(v, 10), then the mask, in out
    total = eps + np.sum(s, axis=-1, keepdims=True)
    np.divide(s, total, out=out)
    with np.errstate(over="ignore", invalid="ignore"):
        _logistic_inplace(out, thresh, slope)
    np.multiply(out, v, out=out)
    check_result([out], "reduce_interferences")  # e.g. a thresh that float32 cannot hold
    return out


def compress_filter(W, thresh=0.6, slope=15):
    """Applies a logit compression to a filter.

    This "binarizes" a separation filter, reducing interferences at the price of
    distortion. A single-channel filter becomes ``logistic(W)``. A multichannel filter is
    seen as a beamformer followed by the single-channel mask ``tr W``, and only the mask is
    compressed: ``W * logistic(tr W) / (eps + tr W)``.

    Parameters
    ----------
    W : ndarray, shape=(..., nb_channels, nb_channels)
        filter on which to apply logit compression (not modified).
    thresh : float
        threshold for the compression, should be between 0 and 1. The closer to 1, the
        less interferences, but the more distortion.
    slope : float
        the slope at which binarization is done. The higher, the more brutal

    Returns
    -------
    W : np.ndarray [same shape as input]
        Compressed filter

    Raises
    ------
    TypeError, ValueError
        on a non-numeric W, a W that is not (..., C, C), NaN or inf in W, non-finite
        thresh or slope.

    Examples
    --------
    >>> import numpy as np
    >>> from norbert.contrib import compress_filter
    >>> float(compress_filter(np.full((1, 1), 0.6))[0, 0])
    0.5
    """
    W = _as_array(W, "W")
    if W.ndim < 2 or W.shape[-1] != W.shape[-2]:
        raise ParameterError(f"W must have shape (..., nb_channels, nb_channels), got {W.shape}")
    thresh = _check_real(thresh, "thresh")
    slope = _check_real(slope, "slope")
    out = allocate(W.shape, _float_dtype(W), "compress_filter's output")
    check_finite(W, "W", "compress_filter")
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if W.shape[-1] == 1:
            out[...] = W
            _logistic_inplace(out, thresh, slope)
        else:
            eps = np.finfo(out.dtype).eps
            gains = np.asarray(np.trace(W, axis1=-2, axis2=-1)).astype(out.dtype, copy=False)
            mask = _logistic(gains, thresh, slope) / (eps + gains)
            np.multiply(W, mask[..., None, None], out=out)
    # the poles of a complex logistic, tr W = -eps, a thresh past float32: refused, not NaN
    check_result([out], "compress_filter")
    return out
