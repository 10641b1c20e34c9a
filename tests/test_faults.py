"""``norbert refine`` and ``norbert demo -o`` when writing fails or the process is killed.

Faults are injected into real processes (``python -m norbert``):

* a file size limit (``RLIMIT_FSIZE`` set in the child, ``SIGXFSZ`` ignored, so a
  write past it fails with ``EFBIG``);
* a full disk: a small tmpfs (needs root and ``mount``; skipped elsewhere);
* ``SIGKILL`` at 20 moments of a run over four outputs.

Each failed run must exit 2 with one line naming the file and the cause, put no
file under a final output name and leave the files that were there unchanged;
after a kill every file under a final name is complete, and the next run removes
the temporaries the killed ones left (and says so).
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from norbert import _demo

resource = pytest.importorskip("resource")  # POSIX
sf = pytest.importorskip("soundfile")

SAMPLE_RATE = 16000
STFT = ["--n-fft", "512", "--hop", "128"]
NAMES = ["voice.wav", "bass.wav", "drums.wav", "residual.wav"]
PRECIOUS = b"precious: not a WAV, must survive every failed run"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 2 s stereo mixture and three estimates, 32-bit float WAV (256 kB an output)."""
    root = tmp_path_factory.mktemp("inputs")
    example = _demo.make_example(duration=2.0, sample_rate=SAMPLE_RATE, n_fft=512, hop=128)
    paths = [root / "mixture.wav"]
    sf.write(paths[0], example.mixture, SAMPLE_RATE, subtype="FLOAT")
    for name, estimate in zip(example.names, example.estimates):
        paths.append(root / f"{name}.wav")
        sf.write(paths[-1], estimate, SAMPLE_RATE, subtype="FLOAT")
    return paths, len(example.mixture)


def refine_command(inputs, outdir, *options):
    paths, _ = inputs
    return [
        sys.executable,
        "-m",
        "norbert",
        "refine",
        *map(str, paths),
        "--residual",
        "-o",
        str(outdir),
        "--force",
        "-q",
        *STFT,
        *options,
    ]


def file_size_limit(nbytes):
    """preexec_fn: writes past ``nbytes`` fail with EFBIG instead of killing the child."""

    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return preexec


def snapshot(directory):
    """{relative path: bytes} of every file under ``directory``."""
    root = Path(directory)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def assert_failed_cleanly(result, before, outdir, cause):
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert message.startswith("norbert ") and ": error: " in message, message
    assert str(outdir) in message and cause in message, message
    assert snapshot(outdir) == before  # nothing new, nothing changed, no temporaries


@pytest.fixture
def small_tmpfs(tmp_path):
    """mount(size) -> a fresh tmpfs of that many bytes; skips where mount is not allowed."""
    mounted = []

    def mount(size):
        point = tmp_path / f"tmpfs{len(mounted)}"
        point.mkdir()
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a tmpfs needs root and mount(8)")
        command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=30)


# --------------------------------------------------------------------------
# file size limit (EFBIG)


# --online writes its outputs as it filters, all at once: the limit hits them mid-stream
MODES = pytest.mark.parametrize("mode", [[], ["--online"]], ids=["whole", "online"])


@MODES
@pytest.mark.parametrize("limit", [0, 40, 100_000])  # no header, half a header, mid-data
def test_refine_past_the_file_size_limit_exits_2_and_writes_nothing(inputs, tmp_path, limit, mode):
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "bass.wav").write_bytes(PRECIOUS)  # --force would replace it on success
    before = snapshot(outdir)
    result = subprocess.run(
        refine_command(inputs, outdir, *mode),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=file_size_limit(limit),
    )
    assert_failed_cleanly(result, before, outdir, "File too large")
    assert "ulimit -f" in result.stderr


@MODES
def test_refine_into_a_new_directory_past_the_limit_removes_it(inputs, tmp_path, mode):
    outdir = tmp_path / "new" / "out"
    result = subprocess.run(
        refine_command(inputs, outdir, *mode),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=file_size_limit(1000),
    )
    assert result.returncode == 2 and "File too large" in result.stderr, result.stderr
    assert not (tmp_path / "new").exists()


def test_demo_past_the_file_size_limit_exits_2_and_keeps_old_files(tmp_path):
    outdir = tmp_path / "demo"
    (outdir / "reference").mkdir(parents=True)
    (outdir / "mixture.wav").write_bytes(PRECIOUS)  # demo files are replaced on success
    (outdir / "reference" / "voice.wav").write_bytes(PRECIOUS)
    before = snapshot(outdir)
    result = subprocess.run(
        [sys.executable, "-m", "norbert", "demo", "-o", str(outdir)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=file_size_limit(200_000),  # below one demo file (~700 kB)
    )
    assert result.stdout.startswith("norbert ")  # the table, printed before writing
    assert_failed_cleanly(result, before, outdir, "File too large")
    assert sorted(p.name for p in outdir.iterdir()) == ["mixture.wav", "reference"]


# --------------------------------------------------------------------------
# full disk (ENOSPC) on a small tmpfs


@MODES
@pytest.mark.parametrize("size", [8192, 700_000])  # full at the first file; at the third
def test_refine_on_a_full_disk_exits_2_and_writes_nothing(inputs, small_tmpfs, size, mode):
    outdir = small_tmpfs(size) / "out"
    outdir.mkdir()
    (outdir / "drums.wav").write_bytes(PRECIOUS)
    before = snapshot(outdir)
    result = subprocess.run(
        refine_command(inputs, outdir, *mode), capture_output=True, text=True, timeout=120
    )
    assert_failed_cleanly(result, before, outdir, "No space left on device")
    # every byte written to temporaries was given back
    usage = shutil.disk_usage(outdir)
    assert usage.used <= 64 * 1024, usage


def test_demo_on_a_full_disk_exits_2_and_writes_nothing(small_tmpfs):
    outdir = small_tmpfs(4_000_000) / "demo"  # room for a few of its 19 MB
    result = subprocess.run(
        [sys.executable, "-m", "norbert", "demo", "-o", str(outdir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "No space left on device" in message, message
    assert str(outdir) in message
    assert not outdir.exists()  # the run created it, so the run removed it


# --------------------------------------------------------------------------
# SIGKILL at random moments


def check_outputs(outdir, nb_samples):
    """Every file under a final name is a complete, readable WAV of the mixture's shape."""
    complete = []
    for name in NAMES:
        path = outdir / name
        if path.exists():
            audio, rate = sf.read(path, always_2d=True)
            assert audio.shape == (nb_samples, 2) and rate == SAMPLE_RATE, name
            assert np.isfinite(audio).all() and np.abs(audio).max() > 0, name
            complete.append(name)
    return complete


def temporaries(outdir):
    return sorted(p.name for p in outdir.iterdir() if p.name.endswith(".part"))


def wait_for_writing(proc, outdir, timeout=60):
    """Poll until the run's first temporary output appears (or the run ends)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if any(name.endswith(".part") for name in os.listdir(outdir)):
                return
        time.sleep(0.0005)


def kill_runs(command, plan, outdir, nb_samples):
    """Run ``command`` once per moment of ``plan`` and SIGKILL it then; check after each.

    A moment is ``("run", t)``: t seconds after the start, or ``("writing", t)``:
    t seconds after the first temporary output appears (the writing phase takes
    ~20 ms of a ~2 s run, so moments drawn over the whole run almost never hit it).
    """
    killed, seen = 0, set()
    for phase, moment in plan:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if phase == "writing":
            wait_for_writing(proc, outdir)
        try:
            proc.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(timeout=60)
        if outdir.exists():
            check_outputs(outdir, nb_samples)
            seen.update(temporaries(outdir))
    return killed, seen


def test_kill_9_at_20_moments_leaves_only_complete_files(inputs, tmp_path):
    """Two streams of 10 kills run at once (one thread each) to keep this under 30 s."""
    from concurrent.futures import ThreadPoolExecutor

    _, nb_samples = inputs
    outdirs = [tmp_path / "out0", tmp_path / "out1"]
    commands = [[*refine_command(inputs, out), "--workers", "1"] for out in outdirs]
    tic = time.perf_counter()
    subprocess.run(commands[0], check=True, capture_output=True, timeout=120)
    duration = time.perf_counter() - tic
    assert check_outputs(outdirs[0], nb_samples) == NAMES
    shutil.rmtree(outdirs[0])

    # 10 moments anywhere in a run, 10 in the first 20 ms of its writing phase
    rng = np.random.default_rng(20261204)
    plans = [
        [("run", t) for t in rng.uniform(0.05, 1.0, 5) * duration]
        + [("writing", t) for t in rng.uniform(0.0, 0.02, 5)]
        for _ in outdirs
    ]
    with ThreadPoolExecutor(len(outdirs)) as pool:
        streams = list(pool.map(kill_runs, commands, plans, outdirs, [nb_samples] * 2))
    killed = sum(k for k, _ in streams)
    seen = set().union(*(s for _, s in streams))
    assert killed >= 15, killed  # the moments fall inside the runs
    assert seen, "no kill hit the writing phase"

    for command, outdir in zip(commands, outdirs):
        left = temporaries(outdir) if outdir.exists() else []
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        if left:  # the next run cleans up after the killed ones, and says so
            assert f"removed {len(left)} temporary file(s)" in result.stderr, result.stderr
        else:
            assert result.stderr == ""
        assert temporaries(outdir) == []
        assert check_outputs(outdir, nb_samples) == NAMES


def test_kill_9_while_streaming_online_leaves_only_complete_files(inputs, tmp_path):
    """--online writes all its outputs during the filter pass: kill runs inside that pass."""
    _, nb_samples = inputs
    outdir = tmp_path / "out"
    command = [*refine_command(inputs, outdir, "--online"), "--workers", "1"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    assert check_outputs(outdir, nb_samples) == NAMES  # the old outputs, to be kept whole

    rng = np.random.default_rng(17)
    hit = 0
    for moment in rng.uniform(0.0, 0.05, 6):  # the filter pass of this input takes ~0.1 s
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        own = f".norbert-{proc.pid}-"  # the temporaries of killed runs before are there too
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if any(own in name for name in temporaries(outdir)):
                break
            time.sleep(0.0005)
        try:
            proc.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert check_outputs(outdir, nb_samples) == NAMES
        hit += any(own in name for name in temporaries(outdir))
    assert hit >= 4, hit  # most kills landed while the outputs were being streamed
    left = temporaries(outdir)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"removed {len(left)} temporary file(s)" in result.stderr, result.stderr
    assert temporaries(outdir) == []
    assert check_outputs(outdir, nb_samples) == NAMES
