"""A small user script that `mypy --strict` must accept (tests/test_stubs.py runs it).

It uses norbert the way an application would, with annotated numpy arrays, so the stubs
shipped with the package (py.typed) are what mypy checks it against.
"""

from typing import Any

import numpy as np
import numpy.typing as npt

import norbert
from norbert.contrib import compress_filter, residual_model, smooth

ComplexArray = npt.NDArray[np.complexfloating[Any, Any]]
RealArray = npt.NDArray[np.floating[Any]]


def report(done: int, total: int) -> None:
    assert 0 < done <= total


def separate(v: npt.NDArray[np.float32], x: npt.NDArray[np.complex64]) -> ComplexArray:
    """Soft masks with a residual source, then one EM round, into a preallocated output."""
    v_res: RealArray = residual_model(v, x, alpha=1.0, autoscale=True)
    v_smooth = smooth(v_res, width=1, temporal=True)
    out = np.empty(x.shape + (v_res.shape[-1],), dtype=x.dtype)
    y: ComplexArray = norbert.wiener(
        v_smooth, x, 1, True, None, workers=norbert.get_num_threads(), out=out, progress=report
    )
    return y


def refine(y0: ComplexArray, x: ComplexArray) -> tuple[ComplexArray, RealArray, ComplexArray]:
    y, v, R = norbert.expectation_maximization(y0, x, iterations=2, eps=1e-6, frames_per_block=4)
    v_j, R_j = norbert.get_local_gaussian_model(y[..., 0], eps=1.0)
    Cxx = norbert.get_mix_model(v, R)
    G = norbert.wiener_gain(v_j, R_j, np.linalg.inv(Cxx + np.eye(x.shape[-1])))
    y_hat: ComplexArray = norbert.apply_filter(x, compress_filter(G, thresh=0.5))
    assert y_hat.shape == x.shape
    return y, v, R


def stream(v: RealArray, x: ComplexArray) -> ComplexArray:
    """A live stream: blocks of 4 frames through OnlineWiener, then the frames held."""
    online = norbert.OnlineWiener(x.shape[1], x.shape[2], v.shape[3], lookahead=2, forget=0.9)
    parts = [online.process(v[t : t + 4], x[t : t + 4]) for t in range(0, x.shape[0], 4)]
    parts.append(online.flush())
    held: int = online.held
    assert held == 0 and online.frames_out == x.shape[0]
    online.reset()
    return np.concatenate(parts)


def main() -> None:
    rng = np.random.default_rng(0)
    shape = (16, 9, 2)
    x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    v = rng.random(shape + (2,)).astype(np.float32)
    y = separate(v, x)
    assert stream(v, x).shape == x.shape + (v.shape[3],)
    y0: ComplexArray = norbert.softmask(v, x, logit=None)
    try:
        refine(y0, x)
        norbert.wiener(v, x, workers=0)
    except norbert.ParameterError as err:  # workers=0 is refused
        message: str = str(err)
        assert "workers" in message
    include: str = norbert.get_include()
    threads: bool = norbert.openmp_enabled()
    print(y.shape, include != "", threads, norbert.__version__)


if __name__ == "__main__":
    main()
