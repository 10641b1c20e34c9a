"""Steering and watching the EM: given spatial covariances, the SDW filter, a record per iteration.

The kernels do the per-TF-point work inside the passes the EM makes anyway
(src/_core/_steer.pxd): a MODEL pass given ``mu != 1`` filters with the
speech-distortion-weighted filter, and one given a ``monitor`` array of shape (3, nb_bins)
adds, per bin and over frames in order, ``log det Cxx + x^H Cxx^-1 x``,
``||x - sum_j y_j||^2`` and ``||x||^2``. This module checks the options, turns those sums
into an :class:`EMRecord` after each iteration (bins added in order, so a record does not
depend on the thread count), calls the callback, prints the verbose line and decides
whether ``tol`` ends the EM.

Which filter a record describes: the EM's pass k + 1 filters the mixture with the
parameters estimated from the estimate of iteration k - 1 (pass 1 estimates them from the
initial estimate) and, unless it is the last pass, takes the statistics of its output for
the next parameters at once. Record k is taken in that pass: its Cxx is the one that filter
of iteration k solved, its consistency that of the images y_k it produced.
"""

import dataclasses
import numbers

import numpy as np

from norbert._core import Estimate
from norbert._validation import ParameterError, _as_array, _check_ndim, check_finite

__all__ = ["EMRecord", "Steering", "check_steering"]


@dataclasses.dataclass(frozen=True)
class EMRecord:
    """What one EM iteration did, as ``callback`` and ``verbose`` receive it.

    Attributes
    ----------
    iteration : int
        1, 2, ...: the iteration whose filter produced the estimates.
    log_likelihood : float
        mean over TF points of ``-C log(pi) - log det Cxx - x^H Cxx^-1 x``, with
        ``Cxx = sum_j v_j R_j + sqrt(eps) I`` (one channel: ``+ eps`` too) the mixture model
        of that iteration's parameters, regularisation included, as its filter solved it
        (``log det`` = sum of the logs of the LDL^H pivots). The same model whatever `mu`.
        ``wiener`` runs the EM on ``x * s`` with ``s = 1 / max(1, max|x| / 10)``; the value
        is that of the caller's ``x`` under the model ``Cxx / s**2`` (``2 C log s`` added).
    consistency : float
        ``||x - sum_j y_j|| / ||x||`` (Frobenius norms over the track) for the estimates of
        that iteration, in double before they are stored (0 where ``x`` is all zero).
    """

    iteration: int
    log_likelihood: float
    consistency: float

    def __str__(self):
        return (
            f"EM iteration {self.iteration}: log-likelihood {self.log_likelihood:.6f}, "
            f"consistency {self.consistency:.3e}"
        )


def _check_real(value, name, what, low, low_ok):
    """A finite Python or NumPy real (not bool) above `low` (or equal when low_ok)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < low or (value == low and not low_ok):
        raise ParameterError(f"{name} must be {what}, got {value!r}")
    return value


def check_covariances(R, shape, func):
    """Given spatial covariances, checked, as the kernels read them.

    `R` must be a numeric (real or complex) array of shape `shape` = (nb_bins, C, C, J),
    finite, Hermitian within rounding and positive semi-definite within rounding (each
    ``R[f, :, :, j]``): its imbalance ``max|R - R^H|`` and its most negative eigenvalue
    may reach ``100 C eps`` times its largest entry / eigenvalue (eps of R's precision).
    One eigen-decomposition per (bin, source): O(bins J C^3), nothing next to the EM.

    Returns the Hermitian part ``(R + R^H) / 2`` in the kernels' (bins, J, C, C, 2)
    double layout (an exactly Hermitian R is kept bit for bit).
    """
    R = _as_array(R, "R")
    _check_ndim(R, 4, "R", "(nb_bins, nb_channels, nb_channels, nb_sources)")
    if R.shape != shape:
        raise ParameterError(
            f"{func}: R must have shape (nb_bins, nb_channels, nb_channels, nb_sources) = "
            f"{shape}, got {R.shape}"
        )
    check_finite(R, "R", func)
    F, C, _, J = shape
    tol = 100.0 * C * (np.finfo(R.dtype).eps if R.dtype.kind in "fc" else np.finfo(float).eps)
    Rm = np.ascontiguousarray(np.moveaxis(R, 3, 1), dtype=np.complex128)  # (F, J, C, C)
    H = (Rm + np.conj(np.swapaxes(Rm, 2, 3))) / 2
    if Rm.size:
        size = np.abs(Rm).max(axis=(2, 3))
        skew = np.abs(Rm - H).max(axis=(2, 3))
        bad = np.argwhere(skew > tol * size)
        if bad.size:
            f, j = bad[0]
            raise ParameterError(
                f"{func}: R must be Hermitian (R[f, :, :, j] equal to its conjugate "
                f"transpose within rounding); R[{f}, :, :, {j}] got max|R - R^H| = "
                f"{2 * skew[f, j]:.3g} for entries up to {size[f, j]:.3g}"
            )
        w = np.linalg.eigvalsh(H)  # ascending, per (f, j)
        top = np.maximum(np.abs(w).max(axis=2), np.finfo(float).tiny)
        bad = np.argwhere(w[..., 0] < -tol * top)
        if bad.size:
            f, j = bad[0]
            raise ParameterError(
                f"{func}: R must be positive semi-definite (a spatial covariance); "
                f"R[{f}, :, :, {j}] got the eigenvalue {w[f, j, 0]:.3g} (largest "
                f"{top[f, j]:.3g})"
            )
    return np.ascontiguousarray(H).view(np.float64).reshape(F, J, C, C, 2)


def check_steering(func, R, update_R, mu, callback, tol, verbose, shape, batch=False):
    """The steering options of `func`, checked in signature order; a Steering or None.

    None when every option has its default: the EM then runs today's code, bit for bit.
    `shape` = (nb_bins, C, C, J) of R. batch: x has leading batch axes; the options are
    for one problem (one R, one log-likelihood), so they are refused there, and `verbose`
    prints only norbert 0.2.1's lines.
    """
    if batch:
        defaults = (("R", R is None), ("update_R", update_R is True),
                    ("mu", isinstance(mu, numbers.Real) and mu == 1),
                    ("callback", callback is None), ("tol", tol is None))
        given = [name for name, is_default in defaults if not is_default]
        if given:
            raise ParameterError(
                f"{func}: {', '.join(given)} apply to one problem (a 3-D x), not to a batch "
                f"(x has leading axes): call {func} on each element"
            )
        return None
    if R is not None:
        R = check_covariances(R, shape, func)
    if not isinstance(update_R, (bool, np.bool_)):
        raise TypeError(f"update_R must be True or False, got {update_R!r}")
    mu = _check_real(mu, "mu", "a finite real >= 0", 0.0, True)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be None or a callable callback(record), got {callback!r}")
    if tol is not None:
        tol = _check_real(tol, "tol", "None or a finite real > 0", 0.0, False)
    if R is None and update_R and mu == 1.0 and callback is None and tol is None and not verbose:
        return None
    return Steering(R, bool(update_R), mu, callback, tol, bool(verbose))


class Steering:
    """The steering options of one EM run and what they keep between its passes.

    Parameters
    ----------
    R : np.ndarray [shape=(nb_bins, nb_sources, nb_channels, nb_channels, 2)] or None
        given covariances in the kernels' layout (check_covariances).
    update_R : bool
    mu : float
    callback : callable or None
    tol : float or None
    verbose : bool
    """

    def __init__(self, R, update_R, mu, callback, tol, verbose):
        self.R = R
        self.update_R = update_R
        self.mu = mu
        self.callback = callback
        self.tol = tol
        self.verbose = verbose
        self.watch = callback is not None or tol is not None or verbose
        self.monitor = None
        self.records = []
        self._fixed = None

    def kernel_args(self, mode):
        """Keyword arguments of a pass's kernel call (only MODEL passes filter with R)."""
        if mode != Estimate.MODEL:
            return {}
        return {"mu": self.mu, "monitor": self.monitor}

    def start(self, state):
        """After the pass over the initial estimate: the given R replaces its estimate."""
        if self.R is not None:
            state.R[...] = self.R
        if not self.update_R:
            self._fixed = state.R.copy()
        if self.watch:
            self.monitor = np.zeros((3, state.x.shape[1]))

    def iteration_done(self, state, k, scale):
        """After the pass that filtered iteration k: the record; True when tol ends the EM.

        A statistics pass also re-estimated R, which update_R=False puts back.
        """
        if self._fixed is not None:
            state.R[...] = self._fixed
        if not self.watch:
            return False
        record = self._record(state, k, scale)
        self.monitor.fill(0.0)
        self.records.append(record)
        if self.verbose:
            print(record)
        if self.callback is not None:
            self.callback(record)  # an exception here ends the call, unchanged
        if self.tol is None or len(self.records) < 2:
            return False
        prev = self.records[-2].log_likelihood
        return abs(record.log_likelihood - prev) < self.tol * abs(prev)

    def _record(self, state, k, scale):
        T, F, C = state.x.shape
        # bins in order (np.sum of a given array is deterministic): no thread dependence
        loglik, residual, energy = (float(np.sum(row)) for row in self.monitor)
        if T * F == 0:
            return EMRecord(k, float("nan"), 0.0)
        scale = float(np.asarray(scale).reshape(-1)[0])  # one problem: its one scale
        mean = -C * np.log(np.pi) - loglik / (T * F) + 2.0 * C * np.log(scale)
        consistency = float(np.sqrt(residual / energy)) if energy > 0.0 else 0.0
        return EMRecord(k, float(mean), consistency)
