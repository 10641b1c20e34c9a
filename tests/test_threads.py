"""Results are bitwise identical for any thread count, block size and instruction set.

The only module that mentions threads: statistics are reduced per bin, frames
in order, so `workers` and `frames_per_block` must not change a single bit.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import random_em_problem, random_problem

import norbert
from norbert._core import Estimate, Status
from norbert._core._common import pass_info, scratch_size
from norbert._core._filter import apply_estimate
from norbert._core._stats import accumulate
from norbert._validation import ONE_THREAD_POINTS

WORKERS = [1, 2, 4]


# above a call's one-thread threshold (ONE_THREAD_POINTS TF points) and wider than one
# range of bins (128), so that several threads share every pass; odd sizes so that blocks
# and bin ranges do not divide evenly
NB_FRAMES = 37
NB_BINS = -(-ONE_THREAD_POINTS // NB_FRAMES) + 7


def _problem(rng, nb_channels, dtype):
    return random_problem(
        rng, nb_frames=NB_FRAMES, nb_bins=NB_BINS, nb_channels=nb_channels, nb_sources=3,
        dtype=dtype,
    )


def _assert_all_equal(results):
    first = results[0]
    for other in results[1:]:
        first_t = first if isinstance(first, tuple) else (first,)
        other_t = other if isinstance(other, tuple) else (other,)
        for a, b in zip(first_t, other_t, strict=True):
            assert a.dtype == b.dtype
            assert np.array_equal(a, b), f"max |diff| = {np.max(np.abs(a - b)):.3e}"


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_wiener_same_bits_for_any_workers(rng, dtype, nb_channels):
    v, x = _problem(rng, nb_channels, dtype)
    _assert_all_equal([norbert.wiener(v, x, iterations=2, workers=w) for w in WORKERS])


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_expectation_maximization_same_bits_for_any_workers(rng, dtype, nb_channels):
    y0, x = random_em_problem(
        rng, nb_frames=NB_FRAMES, nb_bins=NB_BINS, nb_channels=nb_channels, nb_sources=3,
        dtype=dtype,
    )
    _assert_all_equal(
        [norbert.expectation_maximization(y0, x, iterations=2, workers=w) for w in WORKERS]
    )


@pytest.mark.parametrize("nb_channels", [1, 2, 3])
@pytest.mark.parametrize("mu", [1.0, 0.5])
def test_watched_em_same_bits_and_records_for_any_workers(rng, nb_channels, mu):
    # the monitor sums are per bin, frames in order, then bins in order: no thread count
    # reaches them (and passes with a monitor still share the work)
    v, x = _problem(rng, nb_channels, np.complex128)
    runs = []
    for w in WORKERS:
        records = []
        regions = pass_info()[1]
        y = norbert.wiener(v, x, iterations=3, mu=mu, callback=records.append, workers=w,
                           frames_per_block=5)
        assert (pass_info()[1] > regions) == (w > 1)
        runs.append((y, np.array([[r.log_likelihood, r.consistency] for r in records])))
    _assert_all_equal(runs)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("logit", [None, 0.4])
def test_softmask_same_bits_for_any_workers(rng, dtype, logit):
    v, x = _problem(rng, 2, dtype)
    _assert_all_equal([norbert.softmask(v, x, logit=logit, workers=w) for w in WORKERS])


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("nb_channels", [1, 3])
def test_get_local_gaussian_model_same_bits_for_any_workers(rng, dtype, nb_channels):
    y0, _ = random_em_problem(
        rng, nb_frames=NB_FRAMES, nb_bins=NB_BINS, nb_channels=nb_channels, nb_sources=1,
        dtype=dtype,
    )
    y_j = np.ascontiguousarray(y0[..., 0])
    _assert_all_equal([norbert.get_local_gaussian_model(y_j, eps=1e-3, workers=w) for w in WORKERS])


FRAMES_PER_BLOCK = [None, 1, 5, 16, 37, 1000]


@pytest.mark.parametrize("nb_channels", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_wiener_same_bits_for_any_block_size(rng, nb_channels, dtype):
    v, x = _problem(rng, nb_channels, dtype)
    _assert_all_equal(
        [
            norbert.wiener(v, x, iterations=2, frames_per_block=b, workers=w)
            for b in FRAMES_PER_BLOCK
            for w in (1, 2)
        ]
    )


@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_expectation_maximization_same_bits_for_any_block_size(rng, nb_channels):
    y0, x = random_em_problem(
        rng, nb_frames=NB_FRAMES, nb_bins=NB_BINS, nb_channels=nb_channels, nb_sources=3
    )
    _assert_all_equal(
        [
            norbert.expectation_maximization(y0, x, iterations=2, frames_per_block=b, workers=w)
            for b in FRAMES_PER_BLOCK
            for w in (1, 2)
        ]
    )


def _threads_of_last_pass(call):
    """Threads that computed part of the last pass of call(); the most of a few tries
    (on a busy machine one thread may find every item taken before another starts)."""
    most = 0
    for _ in range(20):
        call()
        most = max(most, pass_info()[0])
        if most >= 2:
            break
    return most


needs_two_threads = pytest.mark.skipif(
    not norbert.openmp_enabled() or norbert.get_num_threads(-1) < 2,
    reason="needs OpenMP and two cores",
)


@needs_two_threads
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_passes_really_run_on_several_threads(rng, nb_channels):
    v, x = random_problem(rng, nb_frames=300, nb_bins=2049, nb_channels=nb_channels, nb_sources=3)
    y = norbert.softmask(v, x)
    assert _threads_of_last_pass(lambda: norbert.expectation_maximization(y, x, 1, workers=2)) >= 2
    assert _threads_of_last_pass(lambda: norbert.softmask(v, x, workers=2)) >= 2
    norbert.expectation_maximization(y, x, 1, workers=1)
    assert pass_info()[0] == 1


@needs_two_threads
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_psds_kept_in_the_output_give_the_same_bits(rng, nb_channels, dtype):
    """wiener keeps its PSDs in its own output and overwrites them in the last pass: with
    threads drifting apart within the lead bound, any block size must still read every
    PSD before it is overwritten."""
    v, x = random_problem(
        rng, nb_frames=211, nb_bins=700, nb_channels=nb_channels, nb_sources=4, dtype=dtype
    )
    _assert_all_equal(
        [norbert.wiener(v, x, iterations=2, frames_per_block=b, workers=w)
         for b in (None, 1, 3, 50) for w in (1, 2, 3)]
    )


@needs_two_threads
def test_small_calls_run_on_one_thread(rng):
    """Below ONE_THREAD_POINTS TF points a call opens no parallel region: on a busy machine
    the end of each region can cost a scheduler time slice, more than such a call takes.
    A batch counts the points of all its elements."""
    nb_frames = 10
    nb_bins = ONE_THREAD_POINTS // (2 * nb_frames) + 1
    v, x = random_problem(rng, nb_frames=nb_frames, nb_bins=nb_bins, nb_channels=2,
                          nb_sources=3)
    regions = pass_info()[1]
    norbert.wiener(v, x, iterations=1, workers=2)
    norbert.softmask(v, x, workers=2)
    norbert.expectation_maximization(norbert.softmask(v, x), x, iterations=1, workers=2)
    assert pass_info() == (1, regions)
    # two such problems in one batch: above the threshold, and threads share the passes
    vb, xb = np.stack([v, v]), np.stack([x, x])
    most = _threads_of_last_pass(lambda: norbert.wiener(vb, xb, iterations=1, workers=2))
    assert pass_info()[1] > regions
    assert most == 2


def test_one_parallel_region_per_pass_for_contiguous_inputs(rng):
    """A pass is one parallel region (plus one where the last pass switches to its PSD
    copy), not one per block: on a busy machine each region's end can cost a scheduler
    time slice. Inputs that need converting are still taken block by block."""
    v, x = random_problem(rng, nb_frames=300, nb_bins=513, nb_channels=2, nb_sources=4)
    iterations = 3
    regions = pass_info()[1]
    norbert.wiener(v, x, iterations=iterations, frames_per_block=4, workers=2)
    opened = pass_info()[1] - regions
    if norbert.openmp_enabled() and norbert.get_num_threads(-1) >= 2:
        assert 1 <= opened <= iterations + 2
    regions = pass_info()[1]
    norbert.wiener(v, np.asfortranarray(x), iterations=iterations, frames_per_block=16, workers=2)
    if norbert.openmp_enabled() and norbert.get_num_threads(-1) >= 2:
        assert pass_info()[1] - regions >= 300 // 16


# Each child prints the stereo kernels' instruction set, which NORBERT_ISA picks (baseline,
# AVX2, or the best the CPU has), and a digest of every result.
_ISA_SCRIPT = """
import hashlib, numpy as np, norbert, norbert._core
rng = np.random.default_rng(7)
h = hashlib.sha256()
for C in (1, 2, 3):
    for dtype in (np.complex128, np.complex64):
        shape = (23, 131, C)
        x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
        v = rng.random(shape + (4,)).astype(x.real.dtype)
        v[3, :40] = 0.0                      # silent points: the guarded branches
        y = norbert.wiener(v, x, iterations=2, workers=2)
        y2, p, R = norbert.expectation_maximization(y, x, iterations=1)
        for a in (y, y2, p, R, norbert.softmask(v, x)):
            h.update(a.tobytes())
print(norbert._core.isa(), h.hexdigest())
"""


def _run_with_isa(script, isa):
    """stdout of a child running `script` with NORBERT_ISA=isa (None: unset)."""
    env = {k: v for k, v in os.environ.items() if k != "NORBERT_ISA"}
    if isa is not None:
        env["NORBERT_ISA"] = isa
    return subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()


def test_every_instruction_set_gives_the_same_bits():
    runs = {isa: _run_with_isa(_ISA_SCRIPT, isa).split() for isa in ("base", "avx2", "best")}
    assert runs["base"][0] == "base"
    assert len(runs["base"][1]) == 64
    assert runs["base"][1] == runs["avx2"][1] == runs["best"][1], runs


# the stereo kernels' variants, lowest first
ISAS = ["base", "avx2", "avx512"]


@pytest.mark.parametrize("isa", ISAS)
def test_norbert_isa_picks_that_variant(isa):
    best = _run_with_isa("import norbert._core as c; print(c.isa())", None)
    assert best in ISAS
    if ISAS.index(isa) > ISAS.index(best):
        pytest.skip(f"no {isa} kernels on this CPU or build (the best is {best})")
    assert _run_with_isa("import norbert._core as c; print(c.isa())", isa) == isa


@pytest.mark.parametrize("nb_channels", [1, 3])
def test_kernels_report_the_same_status_for_any_threads(rng, nb_channels):
    # a negative v in the first range of bins and a NaN later in the same frame, in the
    # next range: one thread meets both in one range, two threads in two ranges, and the
    # kernel must pick the same Status either way (T * F above the one-thread threshold)
    C, J, T, F = nb_channels, 2, 20, 300
    x = rng.standard_normal((T, F, C)) + 0j
    v = rng.random((T, F, C, J))
    v[0, 5, 0, 0] = -1.0
    x[0, 130, 0] = np.nan
    no_R = np.empty((0, 0, 0, 0, 2))
    for n_threads in WORKERS:
        work = np.empty((n_threads, scratch_size(C, J)))
        y = np.empty((T, F, C, J), complex)
        status = apply_estimate(
            Estimate.SOFTMASK, x, v, np.empty((0, 0, 0)), no_R, 1.0, 1e-6, -1.0, 15.0, 1.0, y,
            work, n_threads,
        )  # fmt: skip
        assert status == Status.NEGATIVE, n_threads
        Rnum, weight = np.zeros((F, J, C, C, 2)), np.zeros((F, J))
        status = accumulate(
            Estimate.SOFTMASK, x, v, np.empty((0, 0, 0, 0), complex), np.empty((T, F, J)), no_R,
            1.0, 1e-6, -1.0, 15.0, Rnum, weight, work, n_threads,
        )  # fmt: skip
        assert status == Status.NEGATIVE, n_threads
