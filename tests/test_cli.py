"""The ``norbert`` command, run as ``python -m norbert`` on WAV files made in tmp_path.

The example is the demo's synthetic stereo mixture (voice, bass, drums, each
panned and delayed differently, estimates with leakage), short and at 16 kHz
with a 512-point STFT so that the whole module runs in seconds.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import norbert
from norbert import _demo

SAMPLE_RATE = 16000
N_FFT, HOP = 512, 128
STFT = ["--n-fft", str(N_FFT), "--hop", str(HOP)]


def run(*args, blocked=None, timeout=120):
    """Run the CLI in a fresh interpreter; ``blocked`` modules fail to import there."""
    args = [str(a) for a in args]
    if blocked is None:
        command = [sys.executable, "-m", "norbert", *args]
    else:
        command = [
            sys.executable,
            "-c",
            (
                f"import sys; sys.modules.update(dict.fromkeys({blocked!r})); "
                f"from norbert.cli import main; sys.exit(main({args!r}))"
            ),
        ]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def example():
    return _demo.make_example(duration=1.0, sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop=HOP)


@pytest.fixture(scope="module")
def sf():
    return pytest.importorskip("soundfile")


@pytest.fixture(scope="module")
def files(example, sf, tmp_path_factory):
    """Mixture, references and estimates of the example as 32-bit float WAV files."""
    root = tmp_path_factory.mktemp("example")
    paths = {"mixture": root / "mixture.wav"}
    sf.write(paths["mixture"], example.mixture, SAMPLE_RATE, subtype="FLOAT")
    for name, estimate in zip(example.names, example.estimates):
        paths[name] = root / "estimates" / f"{name}.wav"
        paths[name].parent.mkdir(exist_ok=True)
        sf.write(paths[name], estimate, SAMPLE_RATE, subtype="FLOAT")
    return paths


def read_outputs(sf, outdir, names):
    return np.stack([sf.read(outdir / f"{name}.wav", always_2d=True)[0] for name in names])


def listing(directory):
    return sorted(p.name for p in Path(directory).rglob("*")) if Path(directory).exists() else None


# --------------------------------------------------------------------------
# info, version, demo


def test_info_prints_version_openmp_threads_and_numpy():
    result = run("info")
    assert result.returncode == 0, result.stderr
    rows = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert rows["norbert"].split()[0] == norbert.__version__
    assert rows["OpenMP"].startswith("yes" if norbert.openmp_enabled() else "no")
    assert rows["threads"].split()[0] == str(norbert.get_num_threads())
    assert rows["numpy"] == np.__version__


def test_version_and_usage():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"norbert {norbert.__version__}"
    result = run()
    assert result.returncode == 2
    assert "refine" in result.stderr and "demo" in result.stderr


@pytest.mark.parametrize(
    "module, absent",
    [
        ("norbert", ["norbert.cli", "norbert._demo", "norbert._signal", "scipy"]),
        ("norbert.cli", ["norbert._demo", "scipy"]),
        ("norbert._demo", ["norbert.cli"]),
    ],
)
def test_imports_stay_lazy_and_one_way(module, absent):
    """The CLI and the demo share norbert._signal, not each other; scipy waits for an STFT."""
    code = f"import sys, {module}; print([m for m in {absent!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cli_reexports_the_signal_path():
    from norbert import _signal, cli

    names = ("FILTER_EPS", "FILTER_PEAK", "filter_stft", "online_filter_stft", "istft")
    for name in (*names, "make_stft", "stft"):
        assert name in cli.__all__ and getattr(cli, name) is getattr(_signal, name)


@pytest.mark.parametrize("command", [["info"], ["demo"], ["refine", "mix.wav", "a.wav", "-o", "o"]])
def test_every_command_rejects_zero_workers(command, capsys):
    from norbert.cli import main

    assert main([*command, "--workers", "0"]) == 2
    assert "argument --workers: 0 threads" in capsys.readouterr().err


def test_demo_prints_its_table_and_em_beats_softmask(tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plot = []  # the [plot] extra is optional: check the rest of the demo
    else:
        plot = ["--plot"]
    result = run("demo", "-o", tmp_path, *plot, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    online = [f"online, lookahead {L}**" for L in (0, 2, 8)]
    methods = ["softmask", "wiener, 1 EM iteration", "wiener, 3 EM iterations", *online]
    mean = {}
    for line in lines:
        for method in methods:
            if line.startswith(method + " "):  # first table (MDX SDR): voice bass drums mean
                mean.setdefault(method, float(line[len(method) :].split()[3]))
    assert set(mean) == set(methods)
    assert mean["wiener, 3 EM iterations"] > mean["wiener, 1 EM iteration"] > mean["softmask"]
    for method in online:  # causality costs SDR, but the online filter beats the softmask
        assert mean["wiener, 1 EM iteration"] > mean[method] > mean["softmask"], mean
    assert any(line.startswith("Causality (online, lookahead 0) costs ") for line in lines)
    assert (tmp_path / "mixture.wav").is_file()
    folders = ("reference", "estimates", "softmask", "wiener-1", "wiener-3")
    for folder in (*folders, "online-0", "online-2", "online-8"):
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == [
            "bass.wav",
            "drums.wav",
            "voice.wav",
        ]
    assert (tmp_path / "wiener-1-residual" / "residual.wav").is_file()
    if plot:
        assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_demo_plot_without_matplotlib_names_the_extra(tmp_path):
    result = run("demo", "--plot", "-o", tmp_path, blocked=["matplotlib"])
    assert result.returncode == 1
    assert "norbert[plot]" in result.stderr
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------
# refine


def test_refine_without_soundfile_names_the_extra(tmp_path):
    result = run(
        "refine", "mix.wav", "a.wav", "b.wav", "-o", tmp_path / "out", blocked=["soundfile"]
    )
    assert result.returncode == 1
    assert "norbert[cli]" in result.stderr
    assert not (tmp_path / "out").exists()


def test_refine_round_trip_shapes_lengths_rates_subtypes(example, sf, tmp_path):
    nb_samples = len(example.mixture)
    mixture = tmp_path / "mix.wav"
    sf.write(mixture, example.mixture, SAMPLE_RATE, subtype="PCM_16")
    voice, bass, drums = example.estimates
    estimates = [tmp_path / "voice.flac", tmp_path / "bass.wav", tmp_path / "drums.wav"]
    sf.write(estimates[0], voice, SAMPLE_RATE, subtype="PCM_24")  # FLAC in, WAV out
    sf.write(estimates[1], bass.mean(axis=1)[: nb_samples - 37], SAMPLE_RATE)  # mono, short
    padded = np.concatenate([drums, np.zeros((50, 2))])  # a separator's STFT slack
    sf.write(estimates[2], padded, SAMPLE_RATE, subtype="FLOAT")
    out = tmp_path / "out"

    result = run("refine", mixture, *estimates, "-o", out, *STFT)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bars when stderr is not a terminal
    names = ["voice", "bass", "drums"]
    assert result.stdout.split() == [str(out / f"{n}.wav") for n in names]
    assert listing(out) == ["bass.wav", "drums.wav", "voice.wav"]
    for name in names:
        info = sf.info(out / f"{name}.wav")
        assert (info.frames, info.channels, info.samplerate) == (nb_samples, 2, SAMPLE_RATE)
        assert (info.format, info.subtype) == ("WAV", "PCM_16")

    # --force overwrites, --subtype changes the subtype, --quiet prints nothing
    result = run(
        "refine",
        mixture,
        *estimates,
        "-o",
        out,
        *STFT,
        "--force",
        "--subtype",
        "float",
        "--quiet",
        "--iterations",
        "0",
        "--precision",
        "float64",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert listing(out) == ["bass.wav", "drums.wav", "voice.wav"]
    assert {sf.info(out / f"{n}.wav").subtype for n in names} == {"FLOAT"}


@pytest.mark.parametrize(
    "precision, level",
    [("float32", 1.0), ("float64", 1.0), ("float32", 1e-3)],
    ids=["float32", "float64", "float32-quiet"],
)
def test_refine_improves_sdr_and_sums_to_the_mixture(example, sf, tmp_path, precision, level):
    """On the spatial example, in both precisions and at -60 dB: the levels are handled."""
    mixture = tmp_path / "mix.wav"
    sf.write(mixture, level * example.mixture, SAMPLE_RATE, subtype="FLOAT")
    estimates = []
    for name, estimate in zip(example.names, example.estimates):
        estimates.append(tmp_path / f"{name}.wav")
        sf.write(estimates[-1], level * estimate, SAMPLE_RATE, subtype="FLOAT")
    out = tmp_path / "out"
    result = run(
        "refine",
        mixture,
        *estimates,
        "-o",
        out,
        *STFT,
        "--residual",
        "--precision",
        precision,
        "--subtype",
        "FLOAT",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    refined = read_outputs(sf, out, [*example.names, "residual"]) / level

    # with the residual the refined stems add up to the mixture
    error = np.linalg.norm(refined.sum(axis=0) - example.mixture) / np.linalg.norm(example.mixture)
    assert error < 1e-3
    sdr_refined = _demo.sdr(example.sources, refined[:-1])
    sdr_estimates = _demo.sdr(example.sources, example.estimates)
    assert np.all(sdr_refined >= sdr_estimates + 1.0), (sdr_refined, sdr_estimates)


def test_refine_two_estimates_and_residual(example, files, sf, tmp_path):
    """voice + bass given: the residual holds the drums, and the stems sum to the mixture."""
    out = tmp_path / "out"
    result = run(
        "refine",
        files["mixture"],
        files["voice"],
        files["bass"],
        "-o",
        out,
        *STFT,
        "--residual",
        "--autoscale",
        "--iterations",
        "2",
        "--subtype",
        "FLOAT",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    refined = read_outputs(sf, out, ["voice", "bass", "residual"])
    error = np.linalg.norm(refined.sum(axis=0) - example.mixture) / np.linalg.norm(example.mixture)
    assert error < 1e-3
    assert _demo.sdr(example.sources[2], refined[2]) > _demo.sdr(example.sources[2], 0 * refined[2])


# --------------------------------------------------------------------------
# bad input: status 2, one line naming the file, nothing written


def _bad_inputs(example, sf, files, tmp):
    """(arguments, file the message must name) for each kind of bad input."""
    mix, voice, bass = files["mixture"], files["voice"], files["bass"]
    garbage = tmp / "garbage.wav"
    garbage.write_text("this is not audio\n")
    rate = tmp / "rate.wav"
    sf.write(rate, example.estimates[0], 8000)
    channels = tmp / "channels.wav"
    sf.write(channels, np.zeros((len(example.mixture), 3)), SAMPLE_RATE)
    short = tmp / "short.wav"
    sf.write(short, example.estimates[0][: -2 * N_FFT], SAMPLE_RATE)
    nan = tmp / "nan.wav"
    sf.write(nan, np.full_like(example.estimates[0], np.nan), SAMPLE_RATE, subtype="FLOAT")
    twin = tmp / "other" / "voice.wav"
    twin.parent.mkdir()
    sf.write(twin, example.estimates[0], SAMPLE_RATE)
    missing = tmp / "missing.wav"
    return {
        "missing mixture": ([missing, voice, bass], missing),
        "missing estimate": ([mix, voice, missing], missing),
        "unreadable": ([mix, voice, garbage], garbage),
        "sample rate": ([mix, rate, bass], rate),
        "channels": ([mix, voice, channels], channels),
        "length": ([mix, short, bass], short),
        "NaN samples": ([mix, voice, nan], nan),
        "too few estimates": ([mix, voice], voice),
        "same output twice": ([mix, voice, twin], twin),
    }


BAD = [
    "missing mixture",
    "missing estimate",
    "unreadable",
    "sample rate",
    "channels",
    "length",
    "NaN samples",
    "too few estimates",
    "same output twice",
]


@pytest.fixture(scope="module")
def bad_runs(example, files, sf, tmp_path_factory):
    """Run every bad-input case at once: concurrent interpreters keep the module fast."""
    root = tmp_path_factory.mktemp("bad")
    running = {}
    for i, (case, (inputs, culprit)) in enumerate(_bad_inputs(example, sf, files, root).items()):
        out = root / f"out{i}"
        command = [
            sys.executable,
            "-m",
            "norbert",
            "refine",
            *map(str, inputs),
            "-o",
            str(out),
            *STFT,
        ]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        running[case] = (proc, out, culprit)
    results = {}
    for case, (proc, out, culprit) in running.items():
        stdout, stderr = proc.communicate(timeout=120)
        results[case] = (proc.returncode, stdout, stderr, out, culprit)
    return results


@pytest.mark.parametrize("case", BAD)
def test_refine_bad_input_exits_2_with_one_line_and_no_output(bad_runs, case):
    returncode, stdout, stderr, out, culprit = bad_runs[case]
    assert returncode == 2, stderr
    assert stdout == ""
    message = stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert message.startswith("norbert refine: error: ")
    assert str(culprit) in message
    assert not out.exists()


def test_refine_refuses_to_overwrite_without_force(files, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "bass.wav").write_bytes(b"precious")
    result = run("refine", files["mixture"], files["voice"], files["bass"], "-o", out, *STFT)
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert str(out / "bass.wav") in message and "--force" in message
    assert listing(out) == ["bass.wav"]
    assert (out / "bass.wav").read_bytes() == b"precious"


@pytest.mark.parametrize(
    "options", [["--hop", "0"], ["--autoscale"], ["--subtype", "VORBIS"], ["--workers", "0"]]
)
def test_refine_bad_options_exit_2(files, tmp_path, capsys, options):
    from norbert.cli import main  # in-process: argument checks need no fresh interpreter

    out = tmp_path / "out"
    args = ["refine", files["mixture"], files["voice"], files["bass"], "-o", out, *options]
    assert main([str(a) for a in args]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("norbert refine: error:")
    assert not out.exists()


def test_outputs_are_removed_when_a_run_fails_midway(sf, tmp_path):
    """Temporaries are cleaned up, and the directories the run created are removed."""
    from norbert._output import AtomicOutputs

    def write_to(file):
        sf.write(file, np.zeros((10, 2)), SAMPLE_RATE, subtype="PCM_16", format="WAV")

    outdir = tmp_path / "new" / "out"
    with pytest.raises(RuntimeError), AtomicOutputs(outdir) as outputs:
        outputs.write("a.wav", write_to)
        outputs.write("sub/b.wav", write_to)
        assert len(list(outdir.iterdir())) == 2
        raise RuntimeError("disk full")
    assert not (tmp_path / "new").exists()


# --------------------------------------------------------------------------
# refine --online


def test_refine_online_writes_the_stream_filters_result(example, files, sf, tmp_path):
    """--online gives valid stems of the mixture's length: OnlineWiener's, block by block."""
    from norbert.cli import FILTER_EPS, make_stft, stft

    out = tmp_path / "out"
    stems = [files[name] for name in example.names]
    options = ["--lookahead", "3", "--forget", "0.98", "--subtype", "FLOAT", "-q"]
    result = run("refine", "--online", files["mixture"], *stems, "-o", out, *STFT, *options)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert listing(out) == ["bass.wav", "drums.wav", "voice.wav"]
    nb_samples = len(example.mixture)
    for name in example.names:
        info = sf.info(out / f"{name}.wav")
        assert (info.frames, info.channels, info.samplerate) == (nb_samples, 2, SAMPLE_RATE)
    refined = read_outputs(sf, out, example.names)
    assert np.isfinite(refined).all()

    # the same filter in-process, on the same float32 STFT, in one call and level=peak
    mixture = sf.read(files["mixture"], dtype="float32", always_2d=True)[0]
    sft = make_stft(N_FFT, HOP)
    x = stft(sft, mixture, np.complex64)
    v = np.stack(
        [
            np.abs(stft(sft, sf.read(p, dtype="float32", always_2d=True)[0], np.complex64))
            for p in stems
        ],
        axis=-1,
    )
    stream = norbert.OnlineWiener(
        x.shape[1], 2, 3, lookahead=3, forget=0.98, eps=FILTER_EPS, level=np.abs(x).max()
    )
    y = np.concatenate([stream.process(v, x), stream.flush()])
    expected = np.stack(
        [sft.istft(y[..., j], k1=nb_samples, f_axis=1, t_axis=0).T for j in range(3)]
    )
    scale = np.abs(expected).max()
    np.testing.assert_allclose(refined, expected, rtol=0, atol=1e-5 * scale)

    # causality has a price, but the stream still improves on the estimates
    assert np.mean(_demo.sdr(example.sources, refined)) > np.mean(
        _demo.sdr(example.sources, example.estimates)
    )


@pytest.mark.parametrize(
    "options, message",
    [
        (["--online", "--lookahead", "-1"], "--lookahead must be an integer >= 0"),
        (["--online", "--forget", "0"], "--forget must be in (0, 1]"),
        (["--online", "--forget", "1.5"], "--forget must be in (0, 1]"),
        (["--online", "--forget", "nan"], "--forget must be in (0, 1]"),
        (["--online", "--iterations", "1"], "--iterations does not apply to --online"),
        (["--online", "--residual", "--autoscale"], "--autoscale needs the whole track"),
        (["--lookahead", "2"], "--lookahead applies only to --online"),
        (["--forget", "0.9"], "--forget applies only to --online"),
    ],
)
def test_refine_online_bad_options_exit_2_with_one_line(files, tmp_path, capsys, options, message):
    from norbert.cli import main

    out = tmp_path / "out"
    args = ["refine", files["mixture"], files["voice"], files["bass"], "-o", out, *options]
    assert main([str(a) for a in args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("norbert refine: error: " + message), lines
    assert not out.exists()


def test_refine_online_lookahead_must_be_an_integer(files, tmp_path, capsys):
    from norbert.cli import main

    args = ["refine", files["mixture"], files["voice"], files["bass"], "-o", tmp_path / "o"]
    assert main([*map(str, args), "--online", "--lookahead", "1.5"]) == 2
    assert "argument --lookahead: invalid int value" in capsys.readouterr().err


def test_refine_online_residual_and_mono_estimate_sum_to_the_mixture(example, sf, tmp_path):
    """The residual is per frame, so it streams: with it the stems add up to the mixture."""
    mixture = tmp_path / "mix.wav"
    sf.write(mixture, example.mixture, SAMPLE_RATE, subtype="FLOAT")
    voice = tmp_path / "voice.wav"
    sf.write(voice, example.estimates[0].mean(axis=1), SAMPLE_RATE, subtype="FLOAT")  # mono
    bass = tmp_path / "bass.wav"
    sf.write(bass, example.estimates[1], SAMPLE_RATE, subtype="FLOAT")
    out = tmp_path / "out"
    options = ["--online", "--lookahead", "1", "--residual", "--subtype", "FLOAT", "-q"]
    result = run("refine", mixture, voice, bass, "-o", out, *STFT, *options)
    assert result.returncode == 0, result.stderr
    refined = read_outputs(sf, out, ["voice", "bass", "residual"])
    assert refined.shape == (3, *example.mixture.shape)
    error = np.linalg.norm(refined.sum(axis=0) - example.mixture) / np.linalg.norm(example.mixture)
    assert error < 1e-3
