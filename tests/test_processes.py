"""Threads, processes and signals: GIL release, concurrent calls, fork, Ctrl-C.

Everything that could hang runs under a timeout (a join, a future's result, a child's
communicate, plus pytest-timeout as a backstop), so a hang fails the test instead of
blocking CI. No assertion is about speed.
"""

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import norbert
from norbert import contrib

pytestmark = pytest.mark.timeout(180)


def _problem(seed, nb_frames=40, nb_bins=3300, nb_channels=2, nb_sources=3, dtype=np.complex128):
    """Big enough (frames x bins >= ONE_THREAD_POINTS, bins >= 32) that the kernels open
    parallel regions."""
    rng = np.random.default_rng(seed)
    shape = (nb_frames, nb_bins, nb_channels)
    x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    v = rng.random(shape[:2] + (nb_channels, nb_sources)).astype(x.real.dtype)
    return v, x


def _every_function(v, x, workers=None):
    """One call of every public function on (v, x); returns a flat list of arrays."""
    y0 = norbert.softmask(v, x, workers=workers)
    y, v_em, R = norbert.expectation_maximization(y0, x, iterations=2, workers=workers)
    v_j, R_j = norbert.get_local_gaussian_model(y[..., 0], workers=workers)
    Cxx = norbert.get_mix_model(v_em, R, workers=workers)
    nb_channels = x.shape[-1]
    inv = np.linalg.inv(Cxx + np.eye(nb_channels))
    G = norbert.wiener_gain(v_j, R_j, inv, workers=workers)
    return [
        norbert.wiener(v, x, iterations=2, workers=workers),
        norbert.wiener(v, x, iterations=1, use_softmask=False, workers=workers),
        norbert.softmask(v, x, logit=0.4, workers=workers),
        y,
        v_em,
        R,
        v_j,
        R_j,
        Cxx,
        G,
        norbert.apply_filter(x, G, workers=workers),
        contrib.residual_model(v, x),
        contrib.smooth(v, 2),
        contrib.reduce_interferences(v),
        contrib.compress_filter(G),
    ]


def _all_equal(a, b):
    return len(a) == len(b) and all(
        p.dtype == q.dtype and np.array_equal(p, q) for p, q in zip(a, b)
    )


# --------------------------------------------------------------------- the GIL
def _main_thread_turns_during(call):
    """How many times this (main) thread ran while `call` ran in another thread.

    The switch interval is raised so that a thread holding the GIL is never asked to
    give it up: the main thread, which hands the GIL over at every turn (sleep(0)), can
    only run again when the other thread releases it, i.e. inside nogil code.
    """
    done = threading.Event()
    started = threading.Event()
    errors = []

    def target():
        started.set()
        try:
            call()
        except BaseException as exc:  # noqa: BLE001  (re-raised in the main thread)
            errors.append(exc)
        finally:
            done.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(60.0)
    try:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        started.wait()
        turns = 0
        while not done.is_set():
            turns += 1
            time.sleep(0)
    finally:
        sys.setswitchinterval(old)
    thread.join(timeout=60)
    assert not thread.is_alive()
    if errors:
        raise errors[0]
    return turns


def test_gil_probe_sees_a_thread_that_holds_the_gil():
    # the control: pure Python keeps the GIL for the whole call
    assert _main_thread_turns_during(lambda: sum(range(3 * 10**6))) <= 2


def _long_calls():
    v, x = _problem(0, nb_frames=200, nb_bins=1025, nb_sources=4)
    y0 = norbert.softmask(v, x)
    T, F, C, J = v.shape
    R = np.broadcast_to(np.eye(C, dtype=complex)[None, :, :, None], (F, C, C, J))
    inv = np.broadcast_to(np.eye(C, dtype=complex), (T, F, C, C))
    one_block = {"frames_per_block": T}  # as few Python-level steps as possible
    return {
        "wiener": lambda: norbert.wiener(v, x, iterations=3, workers=1, **one_block),
        "expectation_maximization": lambda: norbert.expectation_maximization(
            y0, x, iterations=2, workers=1, **one_block
        ),
        "softmask": lambda: [norbert.softmask(v, x, workers=1) for _ in range(4)],
        "get_local_gaussian_model": lambda: [
            norbert.get_local_gaussian_model(x, workers=1) for _ in range(8)
        ],
        "get_mix_model": lambda: [
            norbert.get_mix_model(v[:, :, 0], R, workers=1) for _ in range(2)
        ],
        "wiener_gain": lambda: [
            norbert.wiener_gain(v[:, :, 0, 0], R[..., 0], inv, workers=1) for _ in range(2)
        ],
        "apply_filter": lambda: [norbert.apply_filter(x, inv, workers=1) for _ in range(4)],
    }


@pytest.mark.parametrize("name", list(_long_calls()))
def test_another_thread_keeps_running_during_a_long_call(name):
    turns = _main_thread_turns_during(_long_calls()[name])
    assert turns >= 20, f"the main thread ran only {turns} times: the call holds the GIL"


# ------------------------------------------------------------ concurrent calls
def _concurrent_problems():
    return [
        _problem(seed, nb_channels=1 + seed % 4, dtype=[np.complex128, np.complex64][seed % 2])
        for seed in range(8)
    ]


@pytest.mark.parametrize("workers", [None, 1, 2])
def test_eight_threads_at_once_return_what_serial_calls_return(workers):
    problems = _concurrent_problems()
    serial = [_every_function(v, x, workers=workers) for v, x in problems]
    with ThreadPoolExecutor(max_workers=8) as pool:
        # every problem twice, all 16 calls in flight at once
        futures = [pool.submit(_every_function, v, x, workers) for v, x in problems * 2]
        results = [f.result(timeout=120) for f in futures]
    for i, result in enumerate(results):
        assert _all_equal(result, serial[i % len(problems)]), f"problem {i % len(problems)}"


def test_one_problem_from_eight_threads_and_progress_callbacks():
    """The same read-only inputs, eight callers, each with its own progress callback."""
    v, x = _problem(1, nb_frames=64, nb_bins=257)
    v.flags.writeable = False
    x.flags.writeable = False
    expected = norbert.wiener(v, x, iterations=2)
    seen = [[] for _ in range(8)]

    def call(k):
        return norbert.wiener(
            v,
            x,
            iterations=2,
            frames_per_block=5,
            progress=lambda done, total: seen[k].append((done, total)),
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [f.result(timeout=120) for f in [pool.submit(call, k) for k in range(8)]]
    for result, calls in zip(results, seen):
        assert np.array_equal(result, expected)
        assert calls[-1][0] == calls[-1][1]
        assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# ------------------------------------------------------------------------ fork
def _fork_context():
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    return multiprocessing.get_context("fork")


def _fork_child(expected, problem, report):
    try:
        ok = _all_equal(_every_function(*problem, workers=2), expected)
        report.put(
            (
                "ok" if ok else "different results",
                norbert.get_num_threads(),
                norbert.get_num_threads(4),
            )
        )
    except BaseException as exc:  # noqa: BLE001  (reported to the parent)
        report.put((f"{type(exc).__name__}: {exc}", None, None))


def _in_forked_child(target, args, timeout=60):
    ctx = _fork_context()
    report = ctx.Queue()
    with warnings.catch_warnings():
        # Python >= 3.12 warns that fork() in a multi-threaded process may deadlock:
        # exactly what this test checks does not happen
        warnings.simplefilter("ignore", DeprecationWarning)
        proc = ctx.Process(target=target, args=(*args, report))
        proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        pytest.fail(f"the forked child hung for {timeout} s")
    assert proc.exitcode == 0
    return report.get(timeout=10)


def test_forked_child_can_call_every_function_after_the_parent_used_threads():
    problem = _problem(2)
    # the parent opens OpenMP parallel regions first (the case that hangs GNU libgomp)
    expected = _every_function(*problem, workers=2)
    status, threads, threads_asked = _in_forked_child(_fork_child, (expected, problem))
    assert status == "ok"
    assert threads == 1 and threads_asked == 1  # children of fork run serially
    # the parent is not affected
    assert norbert.get_num_threads(2) == 2
    assert _all_equal(_every_function(*problem, workers=2), expected)


def _pool_task(seed):
    v, x = _problem(seed)
    return norbert.wiener(v, x, iterations=2, workers=2)


def test_fork_pool_after_the_parent_used_threads():
    norbert.wiener(*_problem(3), workers=2)
    ctx = _fork_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pool = ctx.Pool(2)
    try:
        results = pool.map_async(_pool_task, range(4)).get(timeout=60)
    finally:
        pool.terminate()
        pool.join()
    for seed, result in enumerate(results):
        assert np.array_equal(result, _pool_task(seed))


def _spawn_child(report):
    report.put(norbert.get_num_threads())


def test_spawned_child_keeps_its_threads():
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    report = ctx.Queue()
    proc = ctx.Process(target=_spawn_child, args=(report,))
    proc.start()
    threads = report.get(timeout=60)
    proc.join(60)
    assert proc.exitcode == 0
    # a fresh interpreter is not a fork child: it uses OpenMP's limit as usual
    env_limit = os.environ.get("OMP_NUM_THREADS")
    if env_limit is None:
        assert threads == norbert.get_num_threads()


# ---------------------------------------------------------------------- Ctrl-C
INTERRUPT_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import norbert

    name, workers, catch = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "catch"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 513, 2)) + 1j * rng.standard_normal((256, 513, 2))
    v = rng.random((256, 513, 2, 4))
    y0 = norbert.softmask(v, x)

    started = []

    def progress(done, total):
        if not started:
            started.append(done)
            print("running", flush=True)

    def forever():
        # a million passes over the track: only Ctrl-C ends this call
        kw = dict(iterations=10**6, workers=workers, progress=progress, frames_per_block=16)
        if name == "wiener":
            norbert.wiener(v, x, **kw)
        else:
            norbert.expectation_maximization(y0, x, **kw)

    if not catch:
        forever()
    try:
        forever()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    # the library still works after an interrupted call
    small = np.ascontiguousarray(x[:8, :40]), np.ascontiguousarray(v[:8, :40])
    a = norbert.wiener(small[1], small[0], iterations=2, workers=workers)
    b = norbert.wiener(small[1], small[0], iterations=2, workers=1)
    print("recovered" if np.array_equal(a, b) else "different", flush=True)
    """
)


def _interrupt(name, workers, catch, timeout=60):
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPT_SCRIPT, name, str(workers), catch],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=timeout)
        assert first.strip() == "running", first
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=timeout)
    except (queue.Empty, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()
        pytest.fail(f"no answer to Ctrl-C within {timeout} s: {proc.stderr.read()[-2000:]}")
    reader.join(timeout=10)
    rest = []
    while not lines.empty():
        rest.append(lines.get().strip())
    return proc.returncode, rest, proc.stderr.read()


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("name", ["wiener", "expectation_maximization"])
def test_ctrl_c_interrupts_a_long_call(name, workers):
    returncode, _, stderr = _interrupt(name, workers, "raise")
    assert returncode != 0
    assert "KeyboardInterrupt" in stderr.strip().splitlines()[-1], stderr[-2000:]


def test_library_works_after_an_interrupted_call():
    returncode, lines, stderr = _interrupt("wiener", 2, "catch")
    assert returncode == 0, stderr[-2000:]
    assert lines == ["interrupted", "recovered"], (lines, stderr[-2000:])


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_touch_pages_writes_one_byte_per_page_and_nothing_else(workers):
    from norbert._core._common import touch_pages

    page = 4096
    buf = np.full(5 * page + 123, 7, np.uint8)
    touch_pages(buf, page, workers)
    starts = np.zeros(buf.size, bool)
    starts[::page] = True
    assert np.all(buf[starts] == 0)
    assert np.all(buf[~starts] == 7)
    touch_pages(buf[:0], page, workers)  # empty: nothing to do


def test_large_outputs_are_prefaulted_and_still_fully_written(monkeypatch, rng):
    # a 0-byte threshold makes every output take the touched path
    from norbert import _validation

    monkeypatch.setattr(_validation, "_TOUCH_BYTES", 0)
    v = rng.random((9, 300, 2, 3))
    x = rng.standard_normal((9, 300, 2)) + 1j * rng.standard_normal((9, 300, 2))
    monkeypatch.undo()
    expected = norbert.wiener(v, x, iterations=2)
    monkeypatch.setattr(_validation, "_TOUCH_BYTES", 0)
    assert np.array_equal(norbert.wiener(v, x, iterations=2, workers=2), expected)
    y, p, _ = norbert.expectation_maximization(expected, x, iterations=1, workers=2)
    monkeypatch.undo()
    y2, p2, _ = norbert.expectation_maximization(expected, x, iterations=1)
    assert np.array_equal(y, y2) and np.array_equal(p, p2)
