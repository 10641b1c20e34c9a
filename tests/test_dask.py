"""norbert.dask against the in-memory functions, on the synchronous scheduler and on a
two-process LocalCluster; files on disk; bounded worker memory.

The spatial covariances are sums over the whole track, so a chunked run adds the same
terms in another order (partial sums per chunk, then a tree): results equal the in-memory
ones to ~1e-15 in float64, and are bitwise identical from one run to the next with the
same chunking, whatever the scheduler.
"""

import importlib
import logging
import mmap
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import random_em_problem, random_problem, rel_err

import norbert

# the [dask] extra: these tests skip without it
distributed = pytest.importorskip("dask.distributed")
dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
# import_module, not importorskip: with dask present, failing to import these is a bug
nd = importlib.import_module("norbert.dask")
_files = importlib.import_module("norbert.dask._files")
_graph = importlib.import_module("norbert.dask._graph")
bind = importlib.import_module("dask.graph_manipulation").bind

RTOL = 1e-12  # float64: the bound (observed: a few 1e-15)
SCHEDULERS = ["synchronous", "distributed"]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    c = distributed.Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(params=SCHEDULERS)
def compute(request):
    """compute(*dask_arrays) -> numpy arrays, on the scheduler under test."""
    scheduler = request.param
    if scheduler == "distributed":
        scheduler = request.getfixturevalue("client")

    def run(*arrays):
        return dask.compute(*arrays, scheduler=scheduler)

    run.scheduler = request.param
    return run


def _chunked(a, frames, bins):
    return da.from_array(a, chunks=(frames, bins) + a.shape[2:])


def _chunkings(x, scheduler):
    """(frames, bins) per chunk: one chunk, one frame per chunk, a ragged split of frames,
    frames and bins together. The cluster, where every task costs a few ms, gets the
    last two (the others differ only in the number of tasks)."""
    T, F = x.shape[:2]
    all_ = [(T, F), (1, F), (7, F), (10, 4)]
    return all_ if scheduler == "synchronous" else all_[2:]


# ---------------------------------------------------------------------------- wiener
@pytest.mark.parametrize(
    "nb_channels, mono_v", [(1, False), (2, True), (6, False)], ids=["mono", "stereo-mono-v", "6ch"]
)
@pytest.mark.parametrize("use_softmask", [True, False])
def test_wiener_equals_in_memory(rng, compute, nb_channels, mono_v, use_softmask):
    v, x = random_problem(
        rng, nb_frames=24, nb_bins=9, nb_channels=nb_channels, nb_sources=3, mono_v=mono_v
    )
    cases, lazy = [], []
    for iterations in range(4):
        expected = norbert.wiener(v, x, iterations=iterations, use_softmask=use_softmask)
        for frames, bins in _chunkings(x, compute.scheduler):
            xd = _chunked(x, frames, bins)
            y = nd.wiener(
                _chunked(v, frames, bins), xd, iterations=iterations, use_softmask=use_softmask
            )
            assert y.chunks == xd.chunks + ((3,),)
            assert y.dtype == x.dtype
            cases.append((iterations, frames, bins, expected))
            lazy.append(y)
    for (iterations, frames, bins, expected), y in zip(cases, compute(*lazy)):
        err = rel_err(y, expected)
        assert err <= RTOL, f"iterations={iterations} chunks=({frames}, {bins}): {err:.2e}"


def test_wiener_complex64(rng, compute):
    v, x = random_problem(
        rng, nb_frames=30, nb_bins=9, nb_channels=2, nb_sources=4, dtype=np.complex64
    )
    (y,) = compute(nd.wiener(_chunked(v, 8, 9), _chunked(x, 8, 9), iterations=2))
    assert y.dtype == np.complex64
    assert rel_err(y, norbert.wiener(v, x, iterations=2)) <= 1e-6


def test_wiener_same_bits_every_run(rng, client):
    v, x = random_problem(rng, nb_frames=40, nb_bins=11, nb_channels=2, nb_sources=3)
    y = nd.wiener(_chunked(v, 10, 6), _chunked(x, 10, 6), iterations=2)
    first = y.compute(scheduler=client)
    assert np.array_equal(first, y.compute(scheduler=client))
    # a graph built again, another scheduler, threads inside each task: the same bits
    again = nd.wiener(_chunked(v, 10, 6), _chunked(x, 10, 6), iterations=2, workers=2)
    assert np.array_equal(first, again.compute(scheduler="synchronous"))
    assert np.array_equal(first, again.compute(scheduler="threads"))


def test_wiener_rechunks_inputs(rng):
    v, x = random_problem(rng, nb_frames=20, nb_bins=7, nb_channels=2, nb_sources=3)
    xd = da.from_array(x, chunks=(6, 7, 1))  # channels split: merged by the driver
    vd = da.from_array(v, chunks=(4, 3, 1, 2))  # v chunked otherwise: follows x
    y = nd.wiener(vd, xd, iterations=1)
    assert y.chunks == ((6, 6, 6, 2), (7,), (2,), (3,))
    assert rel_err(y.compute(scheduler="synchronous"), norbert.wiener(v, x)) <= RTOL


def test_inputs_dask_cannot_copy_are_shared(rng, tmp_path, monkeypatch):
    """Each pass reads its inputs afresh where Dask can copy their graph (files,
    from_array); inputs it cannot copy (a rechunk, in dask >= 2024.12) are shared between
    passes: still correct, with a warning when they are large."""
    v, x = random_problem(rng, nb_frames=20, nb_bins=7, nb_channels=2, nb_sources=3)
    np.save(tmp_path / "x.npy", x)
    assert _graph.cloneable(nd.from_npy(tmp_path / "x.npy", chunks=(6,)))
    assert _graph.cloneable(_chunked(x, 6, 7))
    expected = norbert.wiener(v, x, iterations=2)
    xd = _chunked(x, 5, 7).rechunk((6, 7, 2))
    y = nd.wiener(_chunked(v, 6, 7), xd, iterations=2)  # either path, by dask's version
    assert rel_err(y.compute(scheduler="synchronous"), expected) <= RTOL
    monkeypatch.setattr(_graph, "cloneable", lambda a: False)
    monkeypatch.setattr(_graph, "_HELD_WARNING_BYTES", 0)
    with pytest.warns(UserWarning, match="held in memory between passes"):
        y = nd.wiener(_chunked(v, 6, 7), xd, iterations=2)
    assert rel_err(y.compute(scheduler="synchronous"), expected) <= RTOL


def test_cloneable_where_bind_gives_new_keys(rng, tmp_path):
    """_graph.cloneable, which finds Task objects with dask.core's public istask and
    keys_in_tasks (not the private dask._task_spec.GraphNode): a graph it accepts is
    copied by bind with the same values; a rechunk of Task objects (dask >= 2024.12),
    whose copy would refer to the old keys, is refused."""
    x = rng.standard_normal((20, 7))
    np.save(tmp_path / "x.npy", x)
    rechunked = da.from_array(x, chunks=(5, 7)).rechunk((6, 7))
    accepted = [
        nd.from_npy(tmp_path / "x.npy", chunks=(6,)),
        da.from_array(x, chunks=(6, 7)),
        2.0 * da.from_array(x, chunks=(6, 7)) - 1.0,
    ]
    assert all(_graph.cloneable(a) for a in accepted)
    new_tasks = tuple(int(n) for n in dask.__version__.split(".")[:2]) >= (2024, 12)
    assert _graph.cloneable(rechunked) is not new_tasks
    parent = da.ones(3, chunks=3).sum()
    for a in accepted + [rechunked] * (not new_tasks):
        (copy,) = bind([a], parent, seed=a.name)
        assert copy.name != a.name
        assert np.array_equal(copy.compute(scheduler="synchronous"), a.compute())


def test_wiener_numpy_inputs_are_wrapped(rng):
    v, x = random_problem(rng, nb_frames=20, nb_bins=7, nb_channels=2, nb_sources=3)
    y = nd.wiener(v, x, iterations=1)
    assert isinstance(y, da.Array)
    assert rel_err(y.compute(scheduler="synchronous"), norbert.wiener(v, x)) <= RTOL


def test_wiener_explicit_eps(rng):
    v, x = random_problem(rng, nb_frames=20, nb_bins=7, nb_channels=2, nb_sources=3, scale=1.0)
    y = nd.wiener(_chunked(v, 6, 7), _chunked(x, 6, 7), iterations=2, eps=1e-3)
    expected = norbert.wiener(v, x, iterations=2, eps=1e-3)
    assert rel_err(y.compute(scheduler="synchronous"), expected) <= RTOL
    assert rel_err(expected, norbert.wiener(v, x, iterations=2)) > 1e-8  # eps mattered


# ------------------------------------------------------------ expectation_maximization
@pytest.mark.parametrize(
    "dtype, rtol", [(np.complex128, RTOL), (np.complex64, 1e-5)], ids=["c128", "c64"]
)
@pytest.mark.parametrize("nb_channels", [1, 6])
def test_expectation_maximization_equals_in_memory(rng, compute, dtype, rtol, nb_channels):
    y0, x = random_em_problem(
        rng, nb_frames=24, nb_bins=7, nb_channels=nb_channels, nb_sources=2, dtype=dtype
    )
    cases, lazy = [], []
    for iterations in range(4):
        expected = norbert.expectation_maximization(y0, x, iterations=iterations)
        for frames, bins in _chunkings(x, compute.scheduler):
            y, v, R = nd.expectation_maximization(
                _chunked(y0, frames, bins), _chunked(x, frames, bins), iterations=iterations
            )
            assert y.chunks == _chunked(y0, frames, bins).chunks
            assert v.chunks[:2] == y.chunks[:2] and R.chunks[0] == y.chunks[1]
            cases.append((iterations, frames, bins, expected))
            lazy += [y, v, R]
    results = compute(*lazy)
    for k, (iterations, frames, bins, expected) in enumerate(cases):
        for name, got, want in zip("yvR", results[3 * k : 3 * k + 3], expected):
            assert got.dtype == want.dtype and got.shape == want.shape
            err = rel_err(got, want)
            assert err <= rtol, f"{name} iterations={iterations} ({frames}, {bins}): {err:.2e}"


def test_expectation_maximization_verbose(rng, capsys):
    y0, x = random_em_problem(rng, nb_frames=10, nb_bins=5)
    nd.expectation_maximization(
        da.from_array(y0, chunks=4), da.from_array(x, chunks=4), iterations=1, verbose=1
    )
    assert "iterations" in capsys.readouterr().out


# ------------------------------------------------------------------------- softmask
@pytest.mark.parametrize("logit", [None, 0.4])
@pytest.mark.parametrize("mono_v", [False, True])
def test_softmask_equals_in_memory(rng, compute, logit, mono_v):
    v, x = random_problem(rng, nb_frames=20, nb_bins=9, nb_channels=2, nb_sources=3, mono_v=mono_v)
    (y,) = compute(nd.softmask(_chunked(v, 6, 4), _chunked(x, 6, 4), logit=logit))
    assert np.array_equal(y, norbert.softmask(v, x, logit=logit))


# ----------------------------------------------------------------------- bad input
def test_bad_arguments_raise_at_call(rng):
    v, x = random_problem(rng, nb_frames=10, nb_bins=5)
    vd, xd = _chunked(v, 4, 5), _chunked(x, 4, 5)
    with pytest.raises(TypeError, match="x must be complex"):
        nd.wiener(vd, xd.real)
    with pytest.raises(ValueError, match="nb_frames"):
        nd.wiener(vd[:9], xd)
    with pytest.raises(ValueError, match="iterations"):
        nd.wiener(vd, xd, iterations=-1)
    with pytest.raises(ValueError, match="workers"):
        nd.wiener(vd, xd, workers=0)
    with pytest.raises(ValueError, match="eps"):
        nd.wiener(vd, xd, eps=-1.0)
    with pytest.raises(ValueError, match="logit"):
        nd.softmask(vd, xd, logit=1.5)
    with pytest.raises(ValueError, match="y must have shape"):
        nd.expectation_maximization(vd.astype(np.complex128)[:, :, :1], xd)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        nd.wiener(vd, xd[da.from_array(np.ones(10, bool), chunks=5)])


@pytest.mark.parametrize("bins", [5, 2], ids=["whole-bins", "bins-split"])
def test_bad_values_raise_at_compute_with_track_index(rng, compute, bins):
    """The index is in the whole track: the chunk's first frame and bin are added."""
    v, x = random_problem(rng, nb_frames=10, nb_bins=5, nb_channels=3)
    v[7, 3, 1, 2] = -1.0
    y = nd.wiener(_chunked(v, 4, bins), _chunked(x, 4, bins))  # lazy: no error yet
    with pytest.raises(ValueError, match=r"v must be finite and non-negative.*\(7, 3, 1, 2\)"):
        compute(y)
    v, x = random_problem(rng, nb_frames=10, nb_bins=5, nb_channels=3)
    x[6, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"x must be finite.*\(6, 2, 0\)"):
        compute(nd.wiener(_chunked(v, 4, bins), _chunked(x, 4, bins)))
    with pytest.raises(ValueError, match=r"x must be finite.*\(6, 2, 0\)"):
        compute(nd.softmask(_chunked(v, 4, bins), _chunked(x, 4, bins)))
    y0 = norbert.softmask(np.abs(v), np.nan_to_num(x))
    y0[9, 4, 1, 0] = np.inf
    _, P, _ = nd.expectation_maximization(_chunked(y0, 4, bins), _chunked(x, 4, bins))
    with pytest.raises(ValueError, match=r"y must be finite.*\(9, 4, 1, 0\)"):
        compute(P)


def test_import_error_names_the_extra():
    code = "import sys; sys.modules['dask'] = None; import norbert.dask"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "pip install 'norbert[dask]'" in proc.stderr


# --------------------------------------------------------------------------- files
def test_npy_files_in_and_out(rng, tmp_path, compute):
    v, x = random_problem(rng, nb_frames=30, nb_bins=9, nb_channels=2, nb_sources=3)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "v.npy", np.asfortranarray(v))  # Fortran order: read by memory map
    xd = nd.from_npy(tmp_path / "x.npy", chunks=(8, 9, 2))
    vd = nd.from_npy(tmp_path / "v.npy")
    assert xd.chunks == ((8, 8, 8, 6), (9,), (2,))
    expected = norbert.wiener(v, x, iterations=2)
    assert (
        rel_err(nd.wiener(vd, xd, iterations=2).compute(scheduler="synchronous"), expected) <= RTOL
    )
    # frames only: each task writes one run of the file; frames and bins: strided writes
    for chunks in [(8, 9), (8, 4)]:
        y = nd.wiener(vd, nd.from_npy(tmp_path / "x.npy", chunks=chunks + (2,)), iterations=2)
        delayed = nd.to_npy(y, tmp_path / "y.npy", compute=False)
        compute(delayed)
        stored = np.load(tmp_path / "y.npy")
        assert rel_err(stored, expected) <= RTOL


def test_memmap_inputs(rng, tmp_path):
    v, x = random_problem(rng, nb_frames=30, nb_bins=9, nb_channels=2, nb_sources=3)
    xm = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", x.dtype, x.shape)
    xm[...] = x
    xm.flush()
    vm = np.memmap(tmp_path / "v.raw", v.dtype, "w+", offset=16, shape=v.shape)
    vm[...] = v
    vm.flush()
    y = nd.wiener(vm, xm, iterations=1)  # np.memmap: read from its file, chunk by chunk
    assert rel_err(y.compute(scheduler="synchronous"), norbert.wiener(v, x)) <= RTOL
    # a contiguous view of a memmap reads the right part of the file
    part = nd.from_npy(vm[5:20])
    assert np.array_equal(part.compute(scheduler="synchronous"), v[5:20])
    with pytest.raises(ValueError, match="contiguous"):
        nd.from_npy(vm[:, ::2])


def test_memmap_offset_of_views(tmp_path):
    """_files.memmap_offset, from public attributes (not np.memmap's private _mmap): where
    a view, or a view of a view, starts in the file, past offsets that are not multiples
    of the mapping granularity."""
    a = np.arange(6 * 4 * 3, dtype=np.float32).reshape(6, 4, 3)
    row = 4 * 3 * 4  # bytes per frame
    for offset in (20, mmap.ALLOCATIONGRANULARITY + 20):
        m = np.memmap(tmp_path / f"a{offset}.raw", np.float32, "w+", offset=offset, shape=a.shape)
        m[...] = a
        m.flush()
        assert _files.memmap_offset(m) == offset
        assert _files.memmap_offset(m[2:]) == offset + 2 * row
        assert _files.memmap_offset(m[2:][1:3]) == offset + 3 * row
        assert _files.memmap_offset(m[3, 1:]) == offset + 3 * row + 3 * 4
        part = nd.from_npy(m[2:][1:3])
        assert np.array_equal(part.compute(scheduler="synchronous"), a[3:5])
    f = np.memmap(tmp_path / "f.raw", np.float64, "w+", offset=8, shape=(5, 3), order="F")
    f[...] = a[:5, 0]
    f.flush()
    assert np.array_equal(nd.from_npy(f[:, 1:]).compute(scheduler="synchronous"), a[:5, 0, 1:])


def test_file_table_drops_the_oldest(tmp_path):
    """The table of from_npy files keeps the `capacity` newest; an array derived from a
    file's array, or a numpy array, has no entry."""
    table = _files.FileTable(capacity=2)
    arrays = []
    for k in range(3):
        np.save(tmp_path / f"{k}.npy", np.full((4, 2), k))
        arrays.append(nd.from_npy(tmp_path / f"{k}.npy"))
        table.add(arrays[-1].name, _files.FILES.source(arrays[-1]))
    assert table.source(arrays[0]) is None
    assert table.source(arrays[1]).path == str(tmp_path / "1.npy")
    assert table.source(arrays[2]).path == str(tmp_path / "2.npy")
    assert table.source(arrays[2][1:]) is None
    assert table.source(np.zeros((4, 2))) is None


def test_refine_files(rng, tmp_path, client):
    jobs, expected = [], []
    for k in range(3):
        v, x = random_problem(
            rng,
            nb_frames=20 + 5 * k,
            nb_bins=9,
            nb_channels=2,
            nb_sources=2 + k,
            dtype=np.complex64,
        )
        paths = [str(tmp_path / f"track{k}_{name}.npy") for name in "xvy"]
        np.save(paths[0], x)
        np.save(paths[1], v)
        jobs.append(paths)
        expected.append(norbert.wiener(v, x, iterations=2))
    calls = []
    out = nd.refine_files(
        jobs,
        client=client,
        iterations=2,
        frames_per_chunk=7,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert out == [job[2] for job in jobs]
    assert calls == [(1, 3), (2, 3), (3, 3)]
    for job, want in zip(jobs, expected):
        got = np.load(job[2])
        assert got.dtype == np.complex64
        assert rel_err(got, want) <= 1e-6
    # a bad track fails alone, named, after the others are written
    v_bad = np.load(jobs[1][1])
    v_bad[3, 2, 0, 1] = np.nan
    np.save(jobs[1][1], v_bad)
    os.remove(jobs[2][2])
    with pytest.raises(RuntimeError, match="1 of 3 tracks failed.*track1_x") as info:
        nd.refine_files(jobs, client=client)
    assert "non-finite" in str(info.value.__cause__)
    assert os.path.exists(jobs[2][2])


# ------------------------------------------------------------------ bounded memory
def _rss_mib(reset=False):
    """(current, peak) resident memory of this process in MiB (VmRSS, VmHWM); reset=True
    then restarts the peak from the current value."""
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f)
    current, peak = (int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    if reset:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    return current, peak


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_worker_memory_stays_bounded(tmp_path):
    """x and v on disk (394 MB, 2.6 times a worker's 150 MB limit), y written to disk
    (525 MB): a worker's peak resident memory stays within its limit and grows by a few
    chunks, not with the track."""
    T, F, C, J = 16000, 513, 2, 4
    x = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.complex64, (T, F, C))
    v = np.lib.format.open_memmap(tmp_path / "v.npy", "w+", np.float32, (T, F, C, J))
    rng = np.random.default_rng(7)
    for t0 in range(0, T, 2000):
        block = rng.random((2000, F, C, J), dtype=np.float32)
        v[t0 : t0 + 2000] = block
        noise = rng.standard_normal((2000, F, C, 2), dtype=np.float32).view(np.complex64)
        x[t0 : t0 + 2000] = np.sqrt(block.sum(axis=-1)) * noise[..., 0]
    x.flush()
    v.flush()
    del x, v
    input_mib = (os.path.getsize(tmp_path / "x.npy") + os.path.getsize(tmp_path / "v.npy")) / 2**20
    limit_mib = 150e6 / 2**20
    assert input_mib > 2.5 * limit_mib

    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit="150MB",
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        baseline = {w: rss[0] for w, rss in client.run(_rss_mib, True).items()}
        xd = nd.from_npy(tmp_path / "x.npy", chunks=(200, F, C))  # y chunks: 6.6 MB
        vd = nd.from_npy(tmp_path / "v.npy", chunks=(200, F, C, J))
        start = time.perf_counter()
        nd.to_npy(nd.wiener(vd, xd, iterations=1), tmp_path / "y.npy", scheduler=client)
        elapsed = time.perf_counter() - start
        peak = {w: rss[1] for w, rss in client.run(_rss_mib).items()}
        assert set(peak) == set(baseline), "a worker was restarted"
    print(
        f"input {input_mib:.0f} MiB in {elapsed:.1f} s; worker memory (MiB) before "
        f"{baseline}, peak {peak}"
    )
    for w, before in baseline.items():
        assert peak[w] < limit_mib
        assert peak[w] - before < input_mib / 8, f"{w} grew by {peak[w] - before:.0f} MiB"

    # the result is the in-memory one (checked on every 50th frame, to save time)
    y = np.load(tmp_path / "y.npy", mmap_mode="r")
    expected = norbert.wiener(
        np.load(tmp_path / "v.npy", mmap_mode="r"),
        np.load(tmp_path / "x.npy", mmap_mode="r"),
        iterations=1,
    )
    assert rel_err(y[::50], expected[::50]) <= 1e-6
