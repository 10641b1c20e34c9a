"""``norbert refine --online`` streams its files: incremental STFT, overlap-add, bounded memory.

The incremental transforms (:func:`norbert._signal.stft_blocks`,
:func:`norbert._signal.istft_blocks`) are checked against the whole-signal
:func:`~norbert.cli.stft` and :func:`~norbert.cli.istft` for window/hop pairs
whose centre is and is not a multiple of the hop, input blocks of one sample to
the whole signal and lengths from half a window up; the command against the
whole-track :func:`~norbert.cli.online_filter_stft`; its memory against the
length of the track.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from norbert import _demo, cli
from norbert._signal import istft_blocks, stft_blocks

sf = pytest.importorskip("soundfile")

SAMPLE_RATE = 16000
N_FFT, HOP = 512, 128
STFT = ["--n-fft", str(N_FFT), "--hop", str(HOP)]
SHAPES = [(512, 128), (400, 160), (33, 7), (16, 5), (4096, 1024)]  # (n_fft, hop)


def lengths(n_fft):
    """Half a window (the shortest STFT), one window, and lengths of many frames."""
    return [n_fft - n_fft // 2, n_fft, 2 * n_fft + 17, 5000]


def in_blocks(audio, size):
    return [audio[k : k + size] for k in range(0, len(audio), size)]


# --------------------------------------------------------------------------
# the incremental STFT and its inverse


@pytest.mark.parametrize("n_fft, hop", SHAPES)
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_stft_blocks_gives_the_frames_of_stft_bit_for_bit(rng, n_fft, hop, dtype):
    sft = cli.make_stft(n_fft, hop)
    real = np.finfo(dtype).dtype
    for nb_samples in lengths(n_fft):
        audio = rng.standard_normal((nb_samples, 2)).astype(real)
        expected = cli.stft(sft, audio, dtype)
        for block_samples in (1, 97, nb_samples):
            for block_frames in (1, 6, 512):
                blocks = in_blocks(audio, block_samples)
                parts = list(stft_blocks(sft, blocks, dtype, block_frames=block_frames))
                assert all(len(x) == block_frames for x in parts[:-1])
                x = np.concatenate(parts)
                assert x.dtype == dtype and x.shape == expected.shape
                assert np.array_equal(x, expected), (nb_samples, block_samples, block_frames)


@pytest.mark.parametrize("n_fft, hop", [(512, 128), (33, 7)])
def test_stft_blocks_trims_and_pads_to_nb_samples_as_fit_length(rng, n_fft, hop):
    """An estimate a few samples off the mixture's length is trimmed or padded with zeros."""
    sft = cli.make_stft(n_fft, hop)
    nb_samples = 3 * n_fft + 5
    for length in (nb_samples - n_fft, nb_samples - 1, nb_samples, nb_samples + n_fft):
        audio = rng.standard_normal((length, 1)).astype(np.float32)
        expected = cli.stft(sft, cli._fit_length(audio, nb_samples), np.complex64)
        blocks = in_blocks(audio, 50)
        x = np.concatenate(list(stft_blocks(sft, blocks, np.complex64, nb_samples, 4)))
        assert np.array_equal(x, expected), length


@pytest.mark.parametrize("n_fft, hop", SHAPES)
@pytest.mark.parametrize("dtype, rtol", [(np.complex64, 1e-6), (np.complex128, 1e-12)])
def test_istft_blocks_matches_istft_from_the_first_sample_to_the_last(rng, n_fft, hop, dtype, rtol):
    sft = cli.make_stft(n_fft, hop)
    for nb_samples in lengths(n_fft):
        nb_frames = sft.p_max(nb_samples) - sft.p_min
        shape = (nb_frames, sft.f_pts, 3)
        y = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
        expected = cli.istft(sft, y, nb_samples)
        scale = np.abs(expected).max()
        for block_frames in (1, 4, nb_frames):
            parts = list(istft_blocks(sft, in_blocks(y, block_frames), nb_samples))
            audio = np.concatenate(parts)
            assert audio.shape == expected.shape == (nb_samples, 3)
            np.testing.assert_allclose(audio, expected, rtol=0, atol=rtol * scale)
            for edge in (0, -1):  # the frames that stick out of the signal
                np.testing.assert_allclose(audio[edge], expected[edge], rtol=0, atol=rtol * scale)


def test_the_streamed_transforms_invert_each_other(rng):
    """STFT, then inverse, both streamed: the signal again (the transform is invertible)."""
    sft = cli.make_stft(N_FFT, HOP)
    audio = rng.standard_normal((10_000, 2))
    frames = stft_blocks(sft, in_blocks(audio, 300), np.complex128, block_frames=7)
    again = np.concatenate(list(istft_blocks(sft, frames, len(audio))))
    np.testing.assert_allclose(again, audio, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------
# refine --online on files


@pytest.fixture(scope="module")
def example():
    """3 s: 379 frames, several blocks of STREAM_FRAMES = 64 frames."""
    return _demo.make_example(duration=3.0, sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop=HOP)


@pytest.fixture(scope="module")
def files(example, tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    paths = {"mixture": root / "mixture.wav"}
    sf.write(paths["mixture"], example.mixture, SAMPLE_RATE, subtype="FLOAT")
    for name, estimate in zip(example.names, example.estimates):
        paths[name] = root / f"{name}.wav"
        if name == "voice":  # mono, and 100 samples short: padded as offline
            estimate = estimate.mean(axis=1)[:-100]
        sf.write(paths[name], estimate, SAMPLE_RATE, subtype="FLOAT")
    return paths


def whole_track(files, names, precision, lookahead, forget, residual):
    """What the command used to compute: whole STFTs, online_filter_stft, whole inverse."""
    dtype = cli.PRECISIONS[precision]
    real = np.finfo(dtype).dtype
    sft = cli.make_stft(N_FFT, HOP)
    mixture = sf.read(files["mixture"], dtype=real.name, always_2d=True)[0]
    x = cli.stft(sft, mixture, dtype)
    estimates = [sf.read(files[n], dtype=real.name, always_2d=True)[0] for n in names]
    v_channels = max(e.shape[1] for e in estimates)  # a mono estimate is broadcast
    v = np.empty((*x.shape[:2], v_channels, len(names)), dtype=real)
    for j, estimate in enumerate(estimates):
        v[..., j] = np.abs(cli.stft(sft, cli._fit_length(estimate, len(mixture)), dtype))
    y = cli.online_filter_stft(x, v, lookahead=lookahead, forget=forget, residual=residual)
    return [cli.istft(sft, y[..., j], len(mixture)).astype(real) for j in range(y.shape[-1])]


@pytest.mark.parametrize(
    "precision, subtype, rtol", [("float32", "FLOAT", 1e-6), ("float64", "DOUBLE", 1e-12)]
)
@pytest.mark.parametrize("block", [cli.STREAM_FRAMES, 5])  # the default, and many blocks
@pytest.mark.parametrize("residual", [False, True])
def test_refine_online_streams_the_whole_track_filters_result(
    example, files, tmp_path, monkeypatch, precision, subtype, rtol, block, residual
):
    monkeypatch.setattr(cli, "STREAM_FRAMES", block)
    names = ["voice", "bass"] if residual else list(example.names)
    out = tmp_path / "out"
    options = ["--online", "--lookahead", "20", "--forget", "0.98", "--precision", precision]
    options += ["--subtype", subtype, "-q", *(["--residual"] if residual else [])]
    args = ["refine", files["mixture"], *(files[n] for n in names), "-o", out, *STFT, *options]
    assert cli.main([str(a) for a in args]) == 0

    outputs = names + ["residual"] * residual
    expected = whole_track(files, names, precision, 20, 0.98, residual)
    scale = max(np.abs(e).max() for e in expected)
    for name, audio in zip(outputs, expected):
        written, rate = sf.read(out / f"{name}.wav", dtype=audio.dtype.name, always_2d=True)
        assert rate == SAMPLE_RATE and written.shape == audio.shape == example.mixture.shape
        np.testing.assert_allclose(written, audio, rtol=0, atol=rtol * scale, err_msg=name)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.wav" for n in outputs)


def test_refine_online_filters_at_the_whole_tracks_level(example, tmp_path):
    """A quiet track (peak |x| ~ 1e-2, so sqrt(eps) matters unscaled) that starts 60 dB
    quieter still: the level must be the whole track's STFT peak, not the first block's."""
    gain = np.full((len(example.mixture), 1), 1e-5)
    gain[: SAMPLE_RATE // 2] *= 1e-3
    paths = {"mixture": tmp_path / "mixture.wav"}
    sf.write(paths["mixture"], gain * example.mixture, SAMPLE_RATE, subtype="FLOAT")
    for name, estimate in zip(example.names, example.estimates):
        paths[name] = tmp_path / f"{name}.wav"
        sf.write(paths[name], gain * estimate, SAMPLE_RATE, subtype="FLOAT")
    out = tmp_path / "out"
    args = ["refine", "--online", paths["mixture"], *(paths[n] for n in example.names)]
    args += ["-o", out, *STFT, "--subtype", "FLOAT", "-q", "--precision", "float64"]
    assert cli.main([str(a) for a in args]) == 0
    expected = whole_track(paths, list(example.names), "float64", 0, 0.99, False)
    for name, audio in zip(example.names, expected):
        written, _ = sf.read(out / f"{name}.wav", always_2d=True)
        head = slice(0, SAMPLE_RATE // 2)  # the quiet start: relative to its own level
        scale = np.abs(audio[head]).max()
        np.testing.assert_allclose(written[head], audio[head], rtol=0, atol=1e-6 * scale)
        np.testing.assert_allclose(written, audio, rtol=0, atol=1e-6 * np.abs(audio).max())


def test_refine_online_clips_for_pcm_and_says_so(example, files, tmp_path, capsys):
    """A loud mixture: the PCM_16 outputs are clipped block by block, counted as offline."""
    loud = tmp_path / "loud.wav"
    sf.write(loud, 4.0 * example.mixture, SAMPLE_RATE, subtype="FLOAT")
    stems = [files[n] for n in example.names]
    counts = {}
    for mode in ([], ["--online", "--forget", "1", "--lookahead", "1000"]):
        out = tmp_path / ("online" if mode else "offline")
        args = ["refine", loud, *stems, "-o", out, *STFT, "--subtype", "PCM_16", "-q", *mode]
        assert cli.main([str(a) for a in args]) == 0
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines and all("samples clipped to [-1, 1] for PCM_16" in line for line in lines)
        counts[bool(mode)] = [int(line.split(": ")[-1].split()[0]) for line in lines]
        assert sf.info(out / "voice.wav").subtype == "PCM_16"
    # forget 1, lookahead past the end: the online filter is the offline one (to rounding)
    assert np.allclose(counts[True], counts[False], rtol=0.01)


def test_refine_online_bad_estimate_midway_leaves_nothing(example, files, tmp_path, capsys):
    """A NaN found in the second block, after the outputs were begun: exit 2, one line, no file."""
    bad = example.estimates[1].copy()
    bad[len(bad) // 2] = np.nan
    path = tmp_path / "bass.wav"
    sf.write(path, bad, SAMPLE_RATE, subtype="FLOAT")
    out = tmp_path / "new" / "out"
    args = ["refine", "--online", files["mixture"], files["voice"], path, "-o", out, *STFT]
    assert cli.main([str(a) for a in args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"norbert refine: error: {path}: contains NaN or infinite samples"]
    assert not (tmp_path / "new").exists()  # the run created it, the run removed it


def test_refine_online_silent_mixture_gives_silent_sources(example, files, tmp_path):
    """Peak 0: nothing to scale to; silence out, as the whole-track filter gives."""
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros_like(example.mixture), SAMPLE_RATE, subtype="FLOAT")
    out = tmp_path / "out"
    args = ["refine", "--online", silent, files["voice"], files["bass"], "-o", out, *STFT, "-q"]
    assert cli.main([str(a) for a in args]) == 0
    for name in ("voice", "bass"):
        audio, _ = sf.read(out / f"{name}.wav", always_2d=True)
        assert audio.shape == example.mixture.shape and not audio.any()


def test_refine_too_short_for_the_window_exits_2(tmp_path, capsys):
    """Fewer samples than half a window: no STFT frame; one line, both modes."""
    for name in ("mix.wav", "a.wav"):
        sf.write(tmp_path / name, np.full((100, 2), 0.1), SAMPLE_RATE)
    for mode in ([], ["--online"]):
        args = ["refine", tmp_path / "mix.wav", tmp_path / "a.wav", "--residual"]
        assert cli.main([*map(str, args), "-o", str(tmp_path / "out"), *mode]) == 2
        err = capsys.readouterr().err
        assert err.strip() == (
            f"norbert refine: error: {tmp_path / 'mix.wav'}: 100 samples, fewer than half "
            "the STFT window (--n-fft 4096 needs 2048); use a smaller --n-fft"
        )
        assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------
# memory


PEAK_SCRIPT = textwrap.dedent(
    """
    import sys, tracemalloc
    import scipy.fft, scipy.signal, soundfile  # their import is not the run's memory
    from norbert.cli import main
    tracemalloc.start()
    status = main(sys.argv[1:])
    print(status, tracemalloc.get_traced_memory()[1])
    """
)


def traced_peak(tmp_path, seconds, rng):
    """tracemalloc's peak (numpy's buffers included) of refine --online on a track."""
    root = tmp_path / f"{seconds}s"
    root.mkdir()
    nb_samples = seconds * SAMPLE_RATE
    paths = [root / f"{name}.wav" for name in ("mixture", "a", "b")]
    for path in paths:  # written in blocks: the test itself stays small too
        with sf.SoundFile(path, "w", SAMPLE_RATE, 2, "FLOAT") as file:
            for _ in range(0, nb_samples, SAMPLE_RATE):
                file.write(0.1 * rng.standard_normal((SAMPLE_RATE, 2)).astype(np.float32))
    command = [sys.executable, "-c", PEAK_SCRIPT, "refine", "--online", *map(str, paths)]
    command += ["-o", str(root / "out"), *STFT, "-q", "--workers", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    status, peak = map(int, result.stdout.split())
    assert status == 0
    assert sf.info(root / "out" / "a.wav").frames == nb_samples
    return peak, sum(p.stat().st_size for p in paths)


def test_refine_online_memory_does_not_grow_with_the_track(tmp_path, rng):
    """8x the track, the same peak: what is held is a few blocks, not the track."""
    short, _ = traced_peak(tmp_path, 10, rng)
    long, input_bytes = traced_peak(tmp_path, 80, rng)
    # what the whole-track path held: the STFTs of the mixture and 2 estimates, complex64
    whole_stfts = 3 * (80 * SAMPLE_RATE // HOP) * (N_FFT // 2 + 1) * 2 * 8
    print(f"tracemalloc peak: 10 s {short / 1e6:.1f} MB, 80 s {long / 1e6:.1f} MB")
    assert long < 1.1 * short + 1_000_000, (short, long)
    assert long < whole_stfts / 4, (long, whole_stfts, input_bytes)
