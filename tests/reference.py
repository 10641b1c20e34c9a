"""Slow, loop-based float64 NumPy reference of the maths in DESIGN.md.

Written from the maths, not from norbert: every function casts its inputs up
to float64 / complex128, loops over frames and bins where that makes the
formula obvious, and returns float64 / complex128 arrays.  The default eps is
the machine epsilon of the *input's* real dtype (float32 eps for complex64 x),
as the package uses.  Silent cases (eps=0 and an all-zero denominator) are
defined as 0 for masks and for spatial covariance matrices.

Only meant for small problems (tens of frames, tens of bins).
"""

import numpy as np


# ---------------------------------------------------------------- helpers ---
def _real_eps(a):
    """Machine epsilon of the real dtype underlying array ``a``."""
    a = np.asarray(a)
    return float(np.finfo(a.real.dtype).eps)


def _complex(a):
    return np.array(a, dtype=np.complex128)  # always a fresh copy


def _real(a):
    return np.array(a, dtype=np.float64)  # always a fresh copy


def _divide(num, den):
    """num / den with 0 / 0 defined as 0 (den >= 0 scalar)."""
    if den == 0:
        return 0.0 * num
    return num / den


def logistic(m, thresh, slope):
    return 1.0 / (1.0 + np.exp(-slope * (m - thresh)))


def _broadcast_v(v, nb_channels):
    """(T, F, {1, C}, J) -> (T, F, C, J) float64."""
    v = _real(v)
    return np.array(np.broadcast_to(v, v.shape[:2] + (nb_channels, v.shape[3])))


# ------------------------------------------------------- core primitives ---
def get_local_gaussian_model(y_j, eps=1.0):
    """v_j[t,f] = mean_c |y_j|^2, R_j[f] = sum_t y y^H / (eps + sum_t v_j)."""
    y_j = _complex(y_j)
    nb_frames, nb_bins, nb_channels = y_j.shape
    v_j = np.zeros((nb_frames, nb_bins))
    R_j = np.zeros((nb_bins, nb_channels, nb_channels), np.complex128)
    for f in range(nb_bins):
        num = np.zeros((nb_channels, nb_channels), np.complex128)
        weight = 0.0
        for t in range(nb_frames):
            y = y_j[t, f]
            v_j[t, f] = np.mean(y.real**2 + y.imag**2)
            num += np.outer(y, np.conj(y))
            weight += v_j[t, f]
        R_j[f] = _divide(num, eps + weight)
    return v_j, R_j


def get_mix_model(v, R):
    """Cxx[t,f] = sum_j v[t,f,j] R[f,:,:,j] (no regularisation)."""
    v = _real(v)
    R = _complex(R)
    nb_frames, nb_bins, nb_sources = v.shape
    nb_channels = R.shape[1]
    Cxx = np.zeros((nb_frames, nb_bins, nb_channels, nb_channels), np.complex128)
    for t in range(nb_frames):
        for f in range(nb_bins):
            for j in range(nb_sources):
                Cxx[t, f] += v[t, f, j] * R[f, :, :, j]
    return Cxx


def wiener_gain(v_j, R_j, inv_Cxx):
    """G[t,f] = v_j[t,f] R_j[f] @ inv_Cxx[t,f]; v_j is (nb_frames, nb_bins)."""
    v_j = _real(v_j)
    R_j = _complex(R_j)
    inv_Cxx = _complex(inv_Cxx)
    G = np.zeros_like(inv_Cxx)
    nb_frames, nb_bins = inv_Cxx.shape[:2]
    for t in range(nb_frames):
        for f in range(nb_bins):
            G[t, f] = v_j[t, f] * (R_j[f] @ inv_Cxx[t, f])
    return G


def apply_filter(x, W):
    """y[t,f] = W[t,f] @ x[t,f]."""
    x = _complex(x)
    W = _complex(W)
    y = np.zeros(x.shape, np.complex128)
    nb_frames, nb_bins = x.shape[:2]
    for t in range(nb_frames):
        for f in range(nb_bins):
            y[t, f] = W[t, f] @ x[t, f]
    return y


def regularisation(eps, nb_channels):
    """Scalar added to the diagonal of Cxx before solving (DESIGN.md).

    sqrt(eps) I; with one channel upstream inverts 1 / (Cxx + eps), i.e. adds
    eps once more.
    """
    reg = np.sqrt(eps)
    if nb_channels == 1:
        reg += eps
    return reg


def solve_mixture(Cxx_tf, x_tf, eps):
    """z = (Cxx + reg I)^{-1} x for one TF point."""
    nb_channels = x_tf.shape[0]
    if nb_channels == 1:
        # 1 / ((Cxx + sqrt(eps)) + eps), as upstream
        return x_tf / ((Cxx_tf[0, 0] + np.sqrt(eps)) + eps)
    C = Cxx_tf + np.sqrt(eps) * np.eye(nb_channels)
    return np.linalg.solve(C, x_tf)


def _em_parameters(y, eps):
    """Steps 1-2 of an EM iteration for all sources: v (T,F,J), R (F,C,C,J)."""
    nb_frames, nb_bins, nb_channels, nb_sources = y.shape
    v = np.zeros((nb_frames, nb_bins, nb_sources))
    R = np.zeros((nb_bins, nb_channels, nb_channels, nb_sources), np.complex128)
    for j in range(nb_sources):
        v[..., j], R[..., j] = get_local_gaussian_model(y[..., j], eps)
    return v, R


def _em_filter(v, R, x, eps):
    """Steps 3-4: y_j = v_j R_j (Cxx + reg)^{-1} x at every TF point."""
    nb_frames, nb_bins, nb_channels = x.shape
    nb_sources = v.shape[-1]
    y = np.zeros((nb_frames, nb_bins, nb_channels, nb_sources), np.complex128)
    for t in range(nb_frames):
        for f in range(nb_bins):
            Cxx = np.zeros((nb_channels, nb_channels), np.complex128)
            for j in range(nb_sources):
                Cxx += v[t, f, j] * R[f, :, :, j]
            z = solve_mixture(Cxx, x[t, f], eps)
            for j in range(nb_sources):
                y[t, f, :, j] = v[t, f, j] * (R[f, :, :, j] @ z)
    return y


def expectation_maximization(y, x, iterations=2, eps=None):
    """Returns (y, v, R); v, R are the parameters of the last iteration."""
    if eps is None:
        eps = _real_eps(x)
    x = _complex(x)
    y = _complex(y)
    nb_frames, nb_bins, nb_channels = x.shape
    nb_sources = y.shape[-1]
    v = np.zeros((nb_frames, nb_bins, nb_sources))
    R = np.zeros((nb_bins, nb_channels, nb_channels, nb_sources), np.complex128)
    for _ in range(iterations):
        v, R = _em_parameters(y, eps)
        y = _em_filter(v, R, x, eps)
    return y, v, R


def softmask(v, x, logit=None, eps=None):
    """y[...,c,j] = m[...,c,j] x[...,c], m = v / (eps + sum_k v_k)."""
    if eps is None:
        eps = _real_eps(x)
    x = _complex(x)
    nb_frames, nb_bins, nb_channels = x.shape
    v = _broadcast_v(v, nb_channels)
    nb_sources = v.shape[-1]
    y = np.zeros((nb_frames, nb_bins, nb_channels, nb_sources), np.complex128)
    for t in range(nb_frames):
        for f in range(nb_bins):
            for c in range(nb_channels):
                total = eps + np.sum(v[t, f, c])
                for j in range(nb_sources):
                    m = _divide(v[t, f, c, j], total)
                    if logit is not None:
                        m = logistic(m, logit, 15.0)
                    y[t, f, c, j] = m * x[t, f, c]
    return y


def initial_estimate(v, x, use_softmask=True, eps=None):
    """wiener's first step: softmask, or v * exp(i angle(x))."""
    if use_softmask:
        return softmask(v, x, eps=eps)
    xc = _complex(x)
    vb = _broadcast_v(v, xc.shape[-1])
    return vb * np.exp(1j * np.angle(xc))[..., None]


def wiener_scale(x):
    """max(1, max|x| / 10): wiener runs the EM on x / scale."""
    return max(1.0, float(np.max(np.abs(_complex(x)))) / 10.0)


def wiener(v, x, iterations=1, use_softmask=True, eps=None):
    if eps is None:
        eps = _real_eps(x)
    y = initial_estimate(v, x, use_softmask, eps)
    if not iterations:
        return y
    scale = wiener_scale(x)
    xs = _complex(x) / scale
    y = expectation_maximization(y / scale, xs, iterations, eps)[0]
    return y * scale


def wiener_mixture_residual(v, x, iterations=1, use_softmask=True, eps=None):
    """Predicted x - sum_j y_j for wiener(v, x, ...), from DESIGN.md.

    iterations >= 1: scale * reg * Cxx^{-1} (x / scale) with Cxx from the last
    iteration's parameters (regularised, reg = sqrt(eps) [+ eps for 1 channel]).
    iterations == 0 with softmask: eps / (eps + sum_j v_j) * x.
    """
    if eps is None:
        eps = _real_eps(x)
    xc = _complex(x)
    nb_frames, nb_bins, nb_channels = xc.shape
    if not iterations:
        if not use_softmask:
            raise ValueError("no residual identity without softmask")
        vb = _broadcast_v(v, nb_channels)
        total = eps + vb.sum(axis=-1)
        out = np.zeros_like(xc)
        nz = total > 0
        out[nz] = eps / total[nz] * xc[nz]
        return out
    scale = wiener_scale(x)
    xs = xc / scale
    y = initial_estimate(v, x, use_softmask, eps) / scale
    for _ in range(iterations - 1):
        v_it, R_it = _em_parameters(y, eps)
        y = _em_filter(v_it, R_it, xs, eps)
    v_it, R_it = _em_parameters(y, eps)
    reg = regularisation(eps, nb_channels)
    res = np.zeros_like(xc)
    for t in range(nb_frames):
        for f in range(nb_bins):
            Cxx = np.zeros((nb_channels, nb_channels), np.complex128)
            for j in range(v_it.shape[-1]):
                Cxx += v_it[t, f, j] * R_it[f, :, :, j]
            res[t, f] = reg * solve_mixture(Cxx, xs[t, f], eps)
    return res * scale


# --------------------------------------------------- steering the EM (#18) --
def sdw_filter(v, R, x, eps, mu=1.0):
    """y_j = v_j R_j (v_j R_j + mu sum_{k != j} v_k R_k + reg I)^{-1} x, per TF point.

    reg as regularisation(); mu = 1 is _em_filter's Wiener filter.
    """
    nb_frames, nb_bins, nb_channels = x.shape
    nb_sources = v.shape[-1]
    reg = regularisation(eps, nb_channels) * np.eye(nb_channels)
    y = np.zeros((nb_frames, nb_bins, nb_channels, nb_sources), np.complex128)
    for t in range(nb_frames):
        for f in range(nb_bins):
            for j in range(nb_sources):
                own = v[t, f, j] * R[f, :, :, j]
                others = sum(v[t, f, k] * R[f, :, :, k] for k in range(nb_sources) if k != j)
                z = np.linalg.solve(own + mu * others + reg, x[t, f])
                y[t, f, :, j] = own @ z
    return y


def log_likelihood(v, R, x, eps):
    """Mean over TF points of -C log(pi) - log det Cxx - x^H Cxx^-1 x, Cxx regularised."""
    nb_frames, nb_bins, nb_channels = x.shape
    total = 0.0
    for t in range(nb_frames):
        for f in range(nb_bins):
            Cxx = regularisation(eps, nb_channels) * np.eye(nb_channels, dtype=complex)
            for j in range(v.shape[-1]):
                Cxx += v[t, f, j] * R[f, :, :, j]
            _, logdet = np.linalg.slogdet(Cxx)
            quad = np.vdot(x[t, f], np.linalg.solve(Cxx, x[t, f])).real
            total += -nb_channels * np.log(np.pi) - logdet - quad
    return total / (nb_frames * nb_bins)


def steered_em(y, x, iterations, eps=None, R=None, update_R=True, mu=1.0):
    """The EM of expectation_maximization with the options of issue 18.

    Returns (y, v, R, records), records[k - 1] = (k, log-likelihood, consistency) of the
    filter of iteration k: the model (v, R) it used and the images it produced.
    """
    if eps is None:
        eps = _real_eps(x)
    x = _complex(x)
    y = _complex(y)
    records = []
    R_fixed = None if R is None else _complex(R)
    v = None
    for k in range(iterations):
        v, R_est = _em_parameters(y, eps)
        if R_fixed is not None and (k == 0 or not update_R):
            R_it = R_fixed
        elif k == 0 or update_R:
            R_it = R_est
            if not update_R:
                R_fixed = R_est
        y = sdw_filter(v, R_it, x, eps, mu)
        residual = x - y.sum(axis=-1)
        records.append((k + 1, log_likelihood(v, R_it, x, eps),
                        np.linalg.norm(residual) / np.linalg.norm(x)))
    return y, v, R_it, records


# ----------------------------------------------------------------- contrib --
def _reflect_index(i, n):
    """scipy.ndimage mode='reflect' (d c b a | a b c d | d c b a), any i."""
    i = i % (2 * n)
    return i if i < n else 2 * n - 1 - i


def gaussian_filter1d(a, sigma, axis, truncate=4.0):
    """Correlation with a normalised sampled Gaussian, reflect boundary."""
    a = _real(a)
    if sigma <= 0:
        return a
    radius = int(truncate * float(sigma) + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * offsets**2 / float(sigma) ** 2)
    weights /= weights.sum()
    a = np.moveaxis(a, axis, 0)
    n = a.shape[0]
    out = np.zeros_like(a)
    for i in range(n):
        for k, w in zip(offsets, weights):
            out[i] += w * a[_reflect_index(i + k, n)]
    return np.moveaxis(out, 0, axis)


def smooth(v, width=1, temporal=False):
    v = _real(v)
    if temporal:
        return gaussian_filter1d(v, width, axis=0, truncate=4.0)
    # blur over every axis of 1-D / 2-D arrays, over time and frequency only
    # for (frames, bins, channels, sources) arrays (and any ndim >= 3)
    axes = range(v.ndim) if v.ndim <= 2 else (0, 1)
    for axis in axes:
        v = gaussian_filter1d(v, width, axis=axis, truncate=width)
    return v


def reduce_interferences(v, thresh=0.6, slope=15):
    eps = float(np.finfo(np.float32).eps)
    v = _real(v)
    s = smooth(v, 10)
    total = eps + np.sum(s, axis=-1, keepdims=True)
    return logistic(s / total, thresh, slope) * v


def compress_filter(W, thresh=0.6, slope=15):
    """1 channel: logistic(W); else W * logistic(tr W) / (eps + tr W)."""
    eps = _real_eps(W)
    W = np.array(W, dtype=np.result_type(W, np.float64))
    nb_channels = W.shape[-1]
    if nb_channels == 1:
        return logistic(W, thresh, slope)
    out = np.zeros_like(W)
    for idx in np.ndindex(W.shape[:-2]):
        tr = np.trace(W[idx])
        out[idx] = W[idx] * (logistic(tr, thresh, slope) / (eps + tr))
    return out


def residual_model(v, x, alpha=1, autoscale=False):
    eps = float(np.finfo(np.asarray(v).dtype).eps)
    xc = _complex(x)
    nb_frames, nb_bins, nb_channels = xc.shape
    v = _broadcast_v(v, nb_channels)
    vx = np.maximum(eps, np.abs(xc) ** alpha)
    if autoscale:
        vt = v.sum(axis=-1)
        gain = np.zeros((nb_bins, nb_channels))
        for f in range(nb_bins):
            for c in range(nb_channels):
                num = 0.0
                den = eps
                for t in range(nb_frames):
                    num += vx[t, f, c] * vt[t, f, c]
                    den += vt[t, f, c] ** 2
                gain[f, c] = num / den
        v = v * gain[None, :, :, None]
    vr = np.maximum(0.0, vx - v.sum(axis=-1))
    return np.concatenate((v, vr[..., None]), axis=-1)


def online_wiener(v, x, lookahead=0, forget=0.99, use_softmask=True, eps=None, scale=1.0):
    """OnlineWiener's recursion (DESIGN.md, "Online filter"), one frame at a time.

    Frame t is filtered with R_j = Rnum_j / (eps + weight_j) taken after frames
    0 .. min(t + lookahead, T - 1) were accumulated (the last ones by flush), with the PSDs
    of its own initial estimate. The mixture is filtered at x * scale, scaled back.
    """
    if eps is None:
        eps = _real_eps(x)
    x = _complex(x) * scale
    nb_frames, nb_bins, nb_channels = x.shape
    y0 = initial_estimate(v, x / scale, use_softmask, eps) * scale
    nb_sources = y0.shape[-1]
    Rnum = np.zeros((nb_bins, nb_channels, nb_channels, nb_sources), np.complex128)
    weight = np.zeros((nb_bins, nb_sources))
    P = np.mean(np.abs(y0) ** 2, axis=2)  # (T, F, J)
    y = np.zeros((nb_frames, nb_bins, nb_channels, nb_sources), np.complex128)

    def filter_frame(s):
        for f in range(nb_bins):
            R = np.zeros((nb_channels, nb_channels, nb_sources), np.complex128)
            Cxx = np.zeros((nb_channels, nb_channels), np.complex128)
            for j in range(nb_sources):
                R[:, :, j] = _divide(Rnum[f, :, :, j], eps + weight[f, j])
                Cxx += P[s, f, j] * R[:, :, j]
            z = solve_mixture(Cxx, x[s, f], eps)
            for j in range(nb_sources):
                y[s, f, :, j] = P[s, f, j] * (R[:, :, j] @ z) / scale

    for t in range(nb_frames):
        for f in range(nb_bins):
            for j in range(nb_sources):
                yj = y0[t, f, :, j]
                Rnum[f, :, :, j] = forget * Rnum[f, :, :, j] + np.outer(yj, yj.conj())
                weight[f, j] = forget * weight[f, j] + P[t, f, j]
        if t >= lookahead:
            filter_frame(t - lookahead)
    for s in range(max(0, nb_frames - lookahead), nb_frames):
        filter_frame(s)
    return y
