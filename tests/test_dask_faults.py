"""norbert.dask under faults: a full disk or a file size limit while writing .npy files
(to_npy, refine_files), and a Dask worker process killed during a computation.

Disk full is a small tmpfs (root only: the tests skip otherwise); a file size limit is
RLIMIT_FSIZE in a child process, with SIGXFSZ ignored so that writes fail with EFBIG. In
every case the error is an OSError naming the file, no file appears under the output's
name, and a file that was there before keeps its bytes. A killed worker is restarted by
its nanny and its tasks are run again: the results equal the in-memory ones.
"""

import contextlib
import errno
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest
from conftest import random_problem, rel_err

import norbert

distributed = pytest.importorskip("dask.distributed")
dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
nd = importlib.import_module("norbert.dask")

OLD = b"an earlier file, which a failed run must leave as it was"


def _listing(directory):
    return sorted(os.listdir(directory))


@contextlib.contextmanager
def _small_tmpfs(size="1m"):
    """A directory on a tmpfs of `size` (skip unless this process may mount one)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    directory = tempfile.mkdtemp(prefix="norbert-full-")
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", directory],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
        try:
            yield directory
        finally:
            subprocess.run(["umount", directory], check=True)
    finally:
        os.rmdir(directory)


def _problem(rng, nb_frames=200):
    # y: 200 x 257 x 2 x 2 complex64 = 1.6 MB, more than the 1 MB tmpfs
    return random_problem(
        rng, nb_frames=nb_frames, nb_bins=257, nb_channels=2, nb_sources=2, dtype=np.complex64
    )


# ---------------------------------------------------------------------- disk full
@pytest.mark.parametrize("reserve", [True, False], ids=["reserved", "sparse"])
def test_to_npy_disk_full(rng, monkeypatch, reserve):
    """ENOSPC: when the space is reserved up front (posix_fallocate), at creation; where
    it cannot be (no posix_fallocate), in the task writing the chunk that does not fit."""
    v, x = _problem(rng)
    if not reserve:
        monkeypatch.delattr(os, "posix_fallocate")
    with _small_tmpfs() as d:
        old = os.path.join(d, "old.npy")
        with open(old, "wb") as f:
            f.write(OLD)
        y = nd.wiener(da.from_array(v, chunks=(50, -1, -1, -1)), da.from_array(x, (50, -1, -1)))
        for name in ("old.npy", "new.npy"):
            path = os.path.join(d, name)
            with pytest.raises(OSError, match=path) as info:
                nd.to_npy(y, path, scheduler="synchronous")
            assert info.value.errno == errno.ENOSPC
            assert info.value.filename == path
            assert _listing(d) == ["old.npy"]  # no new.npy, no temporary
            with open(old, "rb") as f:
                assert f.read() == OLD
        # what fits is written, under its name
        small = nd.to_npy(y[:20], os.path.join(d, "small.npy"), scheduler="synchronous")
        assert rel_err(np.asarray(small), norbert.wiener(v, x)[:20]) <= 1e-6
        assert _listing(d) == ["old.npy", "small.npy"]
        del small


_EFBIG_CHILD = """
import json, os, resource, signal, sys
import dask.array as da
import numpy as np
import norbert.dask as nd

d, limit, reserve = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
if not reserve:
    del os.posix_fallocate
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
a = da.ones((64, 1024), chunks=(8, 1024))  # 512 KiB of float64
out = {}
for name in ("old.npy", "new.npy"):
    try:
        nd.to_npy(a, os.path.join(d, name), scheduler="synchronous")
        out[name] = None
    except OSError as exc:
        out[name] = [exc.errno, exc.filename, str(exc)]
nd.to_npy(a[:4], os.path.join(d, "small.npy"), scheduler="synchronous")
print(json.dumps(out))
"""


@pytest.mark.parametrize("reserve", [True, False], ids=["reserved", "sparse"])
def test_to_npy_file_size_limit(tmp_path, reserve):
    """EFBIG (RLIMIT_FSIZE, in a child process): an OSError naming the file."""
    (tmp_path / "old.npy").write_bytes(OLD)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_EFBIG_CHILD),
            str(tmp_path),
            "65536",
            str(int(reserve)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    for name in ("old.npy", "new.npy"):
        path = str(tmp_path / name)
        assert out[name] is not None, f"{name} was written past the limit"
        assert out[name][0] == errno.EFBIG
        assert out[name][1] == path
        assert path in out[name][2]
    assert _listing(tmp_path) == ["old.npy", "small.npy"]
    assert (tmp_path / "old.npy").read_bytes() == OLD
    assert np.array_equal(np.load(tmp_path / "small.npy"), np.ones((4, 1024)))


# ----------------------------------------------------------------- a 2-process cluster
@pytest.fixture
def cluster_client():
    """A fresh 2-process cluster per test (a test kills one of its workers)."""
    with (
        dask.config.set(
            {
                "distributed.scheduler.allowed-failures": 5,
                "distributed.comm.timeouts.connect": "30s",
            }
        ),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.CRITICAL,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False, timeout="30s") as client,
    ):
        yield client


def _write_tracks(rng, directory, count, nb_frames=60):
    jobs, expected = [], []
    for k in range(count):
        v, x = _problem(rng, nb_frames=nb_frames + 10 * k)
        paths = [os.path.join(directory, f"track{k}_{name}.npy") for name in "xvy"]
        np.save(paths[0], x)
        np.save(paths[1], v)
        jobs.append(paths)
        expected.append(norbert.wiener(v, x, iterations=2))
    return jobs, expected


@pytest.mark.timeout(180)
def test_refine_files_disk_full(rng, tmp_path, monkeypatch, cluster_client):
    """The output on a full tmpfs: reserved up front, an OSError naming the file before
    anything is computed; sparse, a RuntimeError whose cause is an OSError naming the
    file. Either way no file under the output's name, and an earlier file unchanged."""
    jobs, expected = _write_tracks(rng, tmp_path, 2, nb_frames=200)
    with _small_tmpfs() as d:
        old = os.path.join(d, "old.npy")
        with open(old, "wb") as f:
            f.write(OLD)
        for job, name in zip(jobs, ("old.npy", "new.npy")):
            job[2] = os.path.join(d, name)
        with pytest.raises(OSError, match=jobs[0][2]) as info:
            nd.refine_files(jobs, client=cluster_client, frames_per_chunk=50, iterations=2)
        assert info.value.errno == errno.ENOSPC
        assert _listing(d) == ["old.npy"]

        monkeypatch.delattr(os, "posix_fallocate")  # in this process, which creates the files
        with pytest.raises(RuntimeError, match="2 of 2 tracks failed") as info:
            nd.refine_files(jobs, client=cluster_client, frames_per_chunk=50, iterations=2)
        cause = info.value.__cause__
        assert isinstance(cause, OSError), repr(cause)
        assert cause.errno == errno.ENOSPC
        assert jobs[0][2] in str(cause)
        assert _listing(d) == ["old.npy"]
        with open(old, "rb") as f:
            assert f.read() == OLD
    # and with room, the same jobs are written
    for job in jobs:
        job[2] = job[0].replace("_x.npy", "_y.npy")
    nd.refine_files(jobs, client=cluster_client, frames_per_chunk=50, iterations=2)
    for job, want in zip(jobs, expected):
        assert rel_err(np.load(job[2]), want) <= 1e-6


# ------------------------------------------------------------------- worker loss
def _kill_once(marker):
    """A function for a task: the first call in any process (marker file created with
    O_EXCL) kills its own process with SIGKILL; later calls do nothing."""

    def kill(block):
        if block.size == 0:  # Dask's meta, in this process: not a task
            return block
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return block
        os.kill(os.getpid(), signal.SIGKILL)
        return block  # pragma: no cover

    return kill


@pytest.mark.timeout(180)
def test_wiener_survives_a_killed_worker(rng, tmp_path, cluster_client):
    v, x = random_problem(rng, nb_frames=60, nb_bins=33, nb_channels=2, nb_sources=3)
    marker = str(tmp_path / "killed")
    pids = set(cluster_client.run(os.getpid).values())
    # x passes each of its chunks through a task that kills its worker the first time
    xd = da.from_array(x, chunks=(10, -1, -1)).map_blocks(
        _kill_once(marker), meta=np.empty((0, 0, 0), x.dtype)
    )
    vd = da.from_array(v, chunks=(10, -1, -1, -1))
    y = nd.wiener(vd, xd, iterations=2).compute(scheduler=cluster_client)
    assert os.path.exists(marker), "no worker was killed"
    assert rel_err(y, norbert.wiener(v, x, iterations=2)) <= 1e-12
    cluster_client.wait_for_workers(2, timeout=60)
    assert set(cluster_client.run(os.getpid).values()) != pids  # the killed one was replaced


def _kill_while_writing(marker):
    """Patch RawFile writes in a worker: the first chunk written (in any worker) is
    written half, then its worker is killed."""

    def patch():
        from norbert.dask import _files

        write = _files.RawFile._write

        def dying_write(self, key, value):
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return write(self, key, value)
            with open(self.path, "r+b") as f:  # a torn chunk: garbage over its first bytes
                f.seek(self._run(key)[0])
                f.write(b"\xff" * 64)
            os.kill(os.getpid(), signal.SIGKILL)
            return None  # pragma: no cover

        _files.RawFile._write = dying_write

    return patch


@pytest.mark.timeout(180)
def test_refine_files_survives_a_killed_worker(rng, tmp_path, cluster_client):
    jobs, expected = _write_tracks(rng, tmp_path, 3)
    marker = str(tmp_path / "killed")
    cluster_client.run(_kill_while_writing(marker))
    out = nd.refine_files(jobs, client=cluster_client, frames_per_chunk=20, iterations=2)
    assert os.path.exists(marker), "no worker was killed"
    assert out == [job[2] for job in jobs]
    for job, want in zip(jobs, expected):
        assert rel_err(np.load(job[2]), want) <= 1e-6
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".part")]
