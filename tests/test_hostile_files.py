"""``norbert refine`` on a corpus of malformed and mismatched audio files.

The corpus is built here, in tmp_path: RIFF/WAVE files assembled with ``struct``
(truncated headers and data, wrong chunk sizes, absurd channel counts, sample rates
and sample formats, zero-length data), bytes that are not audio named ``.wav``,
files that are not regular files, and valid files (written with soundfile) that do
not match the mixture (rate, length, channels). Each file is given to ``refine``
as the mixture and as an estimate. A file must be refused with status 2 and one
line naming a file, with no traceback and no output; the few that libsndfile reads
as valid audio of the right shape (it tolerates some wrong chunk sizes) are listed
in TOLERATED and must then be refined normally.

Most runs call :func:`norbert.cli.main` in-process; a few run ``python -m norbert``
with a timeout to prove the whole path prints no traceback and cannot hang.
``norbert info`` takes no files, so it has no part here.
"""

import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from norbert.cli import main

sf = pytest.importorskip("soundfile")

RATE = 16000
NB_SAMPLES = 4000  # 0.25 s
STFT = ["--n-fft", "512", "--hop", "128", "-q"]


def chunk(tag, payload, size=None):
    """A RIFF chunk; ``size`` overrides the length field (a lie), payload is padded to even."""
    size = len(payload) if size is None else size
    return tag + struct.pack("<I", size & 0xFFFFFFFF) + payload + b"\0" * (len(payload) % 2)


def fmt(tag=1, channels=2, rate=RATE, bits=16, block_align=None, byte_rate=None, extra=b""):
    """A ``fmt `` payload (WAVEFORMATEX without cbSize unless ``extra``)."""
    block_align = channels * bits // 8 if block_align is None else block_align
    byte_rate = rate * block_align if byte_rate is None else byte_rate
    fields = (tag, channels, rate, byte_rate, block_align, bits)
    masks = (0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFF, 0xFFFF)
    return struct.pack("<HHIIHH", *(f & m for f, m in zip(fields, masks))) + extra


def riff(*chunks, size=None, magic=b"RIFF", form=b"WAVE"):
    body = form + b"".join(chunks)
    return magic + struct.pack("<I", (len(body) if size is None else size) & 0xFFFFFFFF) + body


def corpus(data):
    """{name: bytes} of malformed files; ``data`` is valid stereo PCM_16 sample data."""
    valid = riff(chunk(b"fmt ", fmt()), chunk(b"data", data))
    files = {}
    # truncated header and data (44 = the whole header, no sample)
    for cut in (0, 1, 4, 8, 11, 12, 16, 20, 24, 30, 35, 36, 40, 43, 44, 45):
        files[f"cut-at-{cut}"] = valid[:cut]
    files["cut-mid-data"] = valid[: 44 + len(data) // 2]
    # chunk sizes that lie
    files["riff-size-0"] = riff(chunk(b"fmt ", fmt()), chunk(b"data", data), size=0)
    files["riff-size-4"] = riff(chunk(b"fmt ", fmt()), chunk(b"data", data), size=4)
    files["fmt-size-0"] = riff(chunk(b"fmt ", fmt(), size=0), chunk(b"data", data))
    files["fmt-size-2"] = riff(chunk(b"fmt ", fmt(), size=2), chunk(b"data", data))
    files["fmt-size-huge"] = riff(chunk(b"fmt ", fmt(), size=0xFFFFFFF0), chunk(b"data", data))
    files["data-size-0"] = riff(chunk(b"fmt ", fmt()), chunk(b"data", b""))
    files["data-size-0-with-data"] = riff(chunk(b"fmt ", fmt()), chunk(b"data", data, size=0))
    files["data-size-odd"] = riff(chunk(b"fmt ", fmt()), chunk(b"data", data[:-3]))
    files["data-size-1"] = riff(chunk(b"fmt ", fmt()), chunk(b"data", data[:1]))
    files["data-size-double"] = riff(
        chunk(b"fmt ", fmt()), chunk(b"data", data, size=2 * len(data))
    )
    files["list-size-huge"] = riff(
        chunk(b"fmt ", fmt()), chunk(b"LIST", b"INFO", size=0x7FFFFFFF), chunk(b"data", data)
    )
    files["no-fmt"] = riff(chunk(b"data", data))
    files["no-data"] = riff(chunk(b"fmt ", fmt()))
    files["data-before-fmt"] = riff(chunk(b"data", data), chunk(b"fmt ", fmt()))
    files["two-fmt-chunks"] = riff(
        chunk(b"fmt ", fmt()), chunk(b"fmt ", fmt(channels=7)), chunk(b"data", data)
    )
    # absurd channel counts, sample rates and sample formats
    for channels in (0, 3, 1025, 65535):
        files[f"channels-{channels}"] = riff(
            chunk(b"fmt ", fmt(channels=channels)), chunk(b"data", data)
        )
    for rate in (0, 1, 8000, 0x7FFFFFFF, 0xFFFFFFFF):
        files[f"rate-{rate}"] = riff(chunk(b"fmt ", fmt(rate=rate)), chunk(b"data", data))
    for bits in (0, 1, 7, 12, 64, 0xFFFF):
        files[f"bits-{bits}"] = riff(chunk(b"fmt ", fmt(bits=bits)), chunk(b"data", data))
    files["block-align-0"] = riff(chunk(b"fmt ", fmt(block_align=0)), chunk(b"data", data))
    files["format-tag-0x1234"] = riff(chunk(b"fmt ", fmt(tag=0x1234)), chunk(b"data", data))
    files["float-16-bits"] = riff(chunk(b"fmt ", fmt(tag=3)), chunk(b"data", data))
    files["extensible-bad-cbsize"] = riff(
        chunk(b"fmt ", fmt(tag=0xFFFE, extra=struct.pack("<H", 0xFFFF))), chunk(b"data", data)
    )
    files["extensible-no-guid"] = riff(
        chunk(b"fmt ", fmt(tag=0xFFFE, extra=struct.pack("<HHI", 22, 16, 3))),
        chunk(b"data", data),
    )
    files["float-max-samples"] = riff(
        chunk(b"fmt ", fmt(tag=3, bits=32)),
        chunk(b"data", np.full((NB_SAMPLES, 2), 3.4e38, "<f4").tobytes()),
    )
    # other containers and non-audio bytes named .wav
    files["rifx-lies"] = riff(chunk(b"fmt ", fmt()), chunk(b"data", data), magic=b"RIFX")
    files["rf64-no-ds64"] = riff(chunk(b"fmt ", fmt()), chunk(b"data", data), magic=b"RF64")
    files["riff-avi"] = riff(chunk(b"avih", bytes(56)), form=b"AVI ")
    files["text"] = b"this is not audio\n" * 100
    files["zeros"] = bytes(4096)
    files["random"] = np.random.default_rng(7).bytes(8192)
    files["png"] = b"\x89PNG\r\n\x1a\n" + bytes(100)
    files["zip"] = b"PK\x03\x04" + bytes(100)
    files["elf"] = b"\x7fELF\x02\x01\x01" + bytes(200)
    files["flac-magic-only"] = b"fLaC" + bytes(50)
    files["ogg-magic-only"] = b"OggS" + bytes(50)
    files["aiff-lies"] = b"FORM" + struct.pack(">I", 0xFFFFFFFF) + b"AIFFCOMM" + bytes(30)
    return files


@pytest.fixture(scope="module")
def case_files(tmp_path_factory):
    """{name: path} of the corpus, plus the valid mixture and two estimates."""
    root = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(20261204)
    signal = rng.normal(0, 0.1, (NB_SAMPLES, 2))
    valid = {}
    for name, audio in [("mixture", signal), ("a", signal * 0.6), ("b", signal * 0.4)]:
        valid[name] = root / f"{name}.wav"
        sf.write(valid[name], audio, RATE, subtype="PCM_16")
    data = (signal * 32767).astype("<i2").tobytes()
    hostile = {}
    for name, content in corpus(data).items():
        hostile[name] = root / "corpus" / f"{name}.wav"
        hostile[name].parent.mkdir(exist_ok=True)
        hostile[name].write_bytes(content)
    # valid files that do not match the mixture
    mismatched = {
        "stem-8000-hz": (signal[::2], 8000),
        "stem-44100-hz": (np.repeat(signal, 3, axis=0)[: int(NB_SAMPLES * 2.75625)], 44100),
        "stem-3-channels": (np.hstack([signal, signal[:, :1]]), RATE),
        "stem-8-channels": (np.tile(signal, 4), RATE),
        "stem-half-length": (signal[: NB_SAMPLES // 2], RATE),
        "stem-double-length": (np.vstack([signal, signal]), RATE),
        "stem-one-sample": (signal[:1], RATE),
        "stem-nan": (np.where(np.arange(NB_SAMPLES)[:, None] == 99, np.nan, signal), RATE),
        "stem-inf": (np.where(np.arange(NB_SAMPLES)[:, None] == 99, np.inf, signal), RATE),
    }
    for name, (audio, rate) in mismatched.items():
        hostile[name] = root / "corpus" / f"{name}.wav"
        sf.write(hostile[name], audio, rate, subtype="FLOAT")
    # not regular files
    hostile["fifo"] = root / "corpus" / "fifo.wav"
    os.mkfifo(hostile["fifo"])  # opening it for reading would block forever
    hostile["directory"] = root / "corpus" / "directory.wav"
    hostile["directory"].mkdir()
    hostile["dangling-link"] = root / "corpus" / "dangling-link.wav"
    hostile["dangling-link"].symlink_to(root / "nowhere.wav")
    hostile["link-loop"] = root / "corpus" / "link-loop.wav"
    hostile["link-loop"].symlink_to(hostile["link-loop"])
    return valid, hostile


NAMES = sorted(corpus(bytes(4 * NB_SAMPLES))) + [
    "stem-8000-hz",
    "stem-44100-hz",
    "stem-3-channels",
    "stem-8-channels",
    "stem-half-length",
    "stem-double-length",
    "stem-one-sample",
    "stem-nan",
    "stem-inf",
    "fifo",
    "directory",
    "dangling-link",
    "link-loop",
]

# read by libsndfile as valid audio of the mixture's shape: refined like any other file
TOLERATED = {
    "riff-size-0",
    "riff-size-4",
    "data-size-odd",
    "data-size-double",
    "bits-12",
    "block-align-0",
    "rf64-no-ds64",
}


def test_the_corpus_has_at_least_50_files():
    assert len(set(NAMES)) == len(NAMES) >= 50


def arguments(case_files, name, role, outdir):
    valid, hostile = case_files
    if role == "mixture":
        inputs = [hostile[name], valid["a"], valid["b"]]
    else:
        inputs = [valid["mixture"], valid["a"], hostile[name]]
    return ["refine", *map(str, inputs), "-o", str(outdir), *STFT]


def check_refused(status, err, out, outdir):
    lines = err.strip().splitlines()
    assert status == 2, err
    assert out == ""
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("norbert refine: error: "), err
    assert ".wav" in lines[0]  # names a file
    assert not outdir.exists()


@pytest.mark.parametrize("role", ["mixture", "estimate"])
@pytest.mark.parametrize("name", [n for n in NAMES if n != "fifo"])
def test_refine_refuses_a_hostile_file(case_files, tmp_path, capsys, name, role):
    outdir = tmp_path / "out"
    status = main(arguments(case_files, name, role, outdir))
    captured = capsys.readouterr()
    hostile = case_files[1][name]
    if name in TOLERATED:
        assert status == 0, captured.err
        nb_samples = sf.info(hostile).frames if role == "mixture" else NB_SAMPLES
        expected = ["a.wav", "b.wav"] if role == "mixture" else ["a.wav", f"{name}.wav"]
        assert sorted(p.name for p in outdir.iterdir()) == sorted(expected)
        for path in outdir.iterdir():
            audio, rate = sf.read(path, always_2d=True)
            assert audio.shape == (nb_samples, 2) and rate == RATE and np.isfinite(audio).all()
        return
    check_refused(status, captured.err, captured.out, outdir)
    # a mixture whose rate, length or channels are off is named by the first estimate
    # that differs from it ("... differs from the mixture's ...")
    assert str(hostile) in captured.err or (role == "mixture" and "the mixture" in captured.err)


@pytest.mark.parametrize(
    "name, role",
    [
        ("fifo", "mixture"),
        ("fifo", "estimate"),
        ("cut-at-30", "mixture"),
        ("channels-65535", "estimate"),
        ("float-max-samples", "mixture"),
        ("random", "estimate"),
    ],
)
def test_refine_in_a_fresh_process_prints_one_line_and_never_hangs(
    case_files, tmp_path, name, role
):
    outdir = tmp_path / "out"
    command = [sys.executable, "-m", "norbert", *arguments(case_files, name, role, outdir)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    check_refused(result.returncode, result.stderr, result.stdout, outdir)
    assert str(case_files[1][name]) in result.stderr
