"""The ``norbert`` command: refine separated stems, report the build, run the demo.

::

    norbert refine MIXTURE ESTIMATE [ESTIMATE ...] -o OUTDIR [options]
    norbert info
    norbert demo [-o OUTDIR] [--plot]

``python -m norbert ...`` is the same command. Exit status: 0 on success;
2 on bad input or usage, or when an output cannot be written (disk full, file
size limit), with a one-line message that names the file and the problem, and
no output file left behind; 1 when an optional dependency is missing. Outputs
are written all or nothing by :mod:`norbert._output`.

Only numpy and norbert are imported up front, scipy when a command needs it.
``refine`` needs the ``[cli]`` extra (``soundfile`` to read and write audio,
``tqdm`` for progress bars), ``demo --plot`` the ``[plot]`` extra (matplotlib);
each is imported when it is used, with a message naming the extra when it is
missing. The STFT, its inverse and the level handling that ``refine`` and
``demo`` share live in :mod:`norbert._signal`; their public names are
re-exported here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from ._output import AtomicOutputs, OutputError, Progress
from ._output import one_line as _one_line
from ._signal import (
    FILTER_EPS,
    FILTER_PEAK,
    PRECISIONS,
    _OnlineAtPeak,
    _peak,
    filter_stft,
    istft,
    istft_blocks,
    make_stft,
    online_filter_stft,
    stft,
    stft_blocks,
)

__all__ = [
    "FILTER_EPS",
    "FILTER_PEAK",
    "filter_stft",
    "istft",
    "main",
    "make_stft",
    "online_filter_stft",
    "stft",
]

#: Hops per block of ``refine --online``: what it holds is a few blocks (64 frames of
#: 2049 bins x 2 channels are 2 MB a complex64 STFT), whatever the length of the track.
STREAM_FRAMES = 64

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """An error reported as one line on stderr, with an exit status.

    Parameters
    ----------
    message : str
        The line to print; for bad input it starts with the file it is about.
    status : int
        Exit status: 2 for bad input (the default), 1 otherwise.
    """

    def __init__(self, message, status=EXIT_USAGE):
        super().__init__(message)
        self.status = status


def _require(module, extra, purpose):
    """Import an optional dependency or fail with a message naming its extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise CommandError(
            f"{purpose} needs {module}: pip install 'norbert[{extra}]'", EXIT_FAILURE
        ) from None


# --------------------------------------------------------------------------
# norbert refine


# soundfile.LibsndfileError is a RuntimeError; bad headers can also raise these
_SOUNDFILE_ERRORS = (RuntimeError, TypeError, ValueError, OSError)


def _audio_info(sf, path):
    """soundfile's info on ``path``, or a one-line CommandError naming it."""
    p = Path(path)
    if not p.exists():
        raise CommandError(f"{path}: no such file")
    if p.is_dir():
        raise CommandError(f"{path}: is a directory, not an audio file")
    if not p.is_file():  # a FIFO would block sf.info, and refine reads each file twice
        raise CommandError(f"{path}: not a regular file (a pipe or a device), cannot read audio")
    try:
        info = sf.info(str(p))
    except _SOUNDFILE_ERRORS as err:
        raise CommandError(f"{path}: cannot read audio: {_one_line(err)}") from None
    if info.frames <= 0:
        raise CommandError(f"{path}: contains no samples")
    return info


def _read_audio(sf, path, dtype):
    try:
        audio, _ = sf.read(str(path), dtype=dtype, always_2d=True)
    except _SOUNDFILE_ERRORS as err:
        raise CommandError(f"{path}: cannot read audio: {_one_line(err)}") from None
    if not np.isfinite(audio).all():
        raise CommandError(f"{path}: contains NaN or infinite samples")
    return audio


def _audio_blocks(sf, path, dtype, block_samples, counted=None):
    """Yield the samples of ``path`` in blocks of ``block_samples``, checked as :func:`_read_audio`.

    ``counted``, a list, gets the number of samples read appended at the end.
    """
    nb_samples = 0
    try:
        with sf.SoundFile(str(path)) as file:
            while True:  # to the end of the data, as sf.read: a truncated file's header lies
                block = file.read(block_samples, dtype=dtype, always_2d=True)
                if not len(block):
                    break
                if not np.isfinite(block).all():
                    raise CommandError(f"{path}: contains NaN or infinite samples")
                nb_samples += len(block)
                yield block
    except _SOUNDFILE_ERRORS as err:
        raise CommandError(f"{path}: cannot read audio: {_one_line(err)}") from None
    if counted is not None:
        counted.append(nb_samples)


def _fit_length(audio, nb_samples):
    """Pad with zeros or trim to ``nb_samples`` (the STFT slack of a separator)."""
    if len(audio) >= nb_samples:
        return audio[:nb_samples]
    pad = np.zeros((nb_samples - len(audio), audio.shape[1]), dtype=audio.dtype)
    return np.concatenate([audio, pad])


def _check_online_options(args):
    """--online's options, and the ones that need the whole track; fills in the defaults."""
    if not args.online:
        for option, value in (("--lookahead", args.lookahead), ("--forget", args.forget)):
            if value is not None:
                raise CommandError(f"{option} applies only to --online filtering: add --online")
        args.iterations = 1 if args.iterations is None else args.iterations
        return
    if args.iterations is not None:
        raise CommandError(
            "--iterations does not apply to --online (its filter is one causal pass, "
            "like --iterations 1): drop --iterations"
        )
    if args.autoscale:
        raise CommandError("--autoscale needs the whole track: it cannot be used with --online")
    args.iterations = 1
    args.lookahead = 0 if args.lookahead is None else args.lookahead
    args.forget = 0.99 if args.forget is None else args.forget
    if args.lookahead < 0:
        raise CommandError(f"--lookahead must be an integer >= 0, got {args.lookahead}")
    if not 0.0 < args.forget <= 1.0:  # also refuses nan
        raise CommandError(f"--forget must be in (0, 1], got {args.forget}")


def _check_inputs(sf, args):
    """Validate options, inputs and outputs before any work; return what refine needs."""
    if args.n_fft < 16:
        raise CommandError(f"--n-fft must be at least 16, got {args.n_fft}")
    if not 0 < args.hop <= args.n_fft:
        raise CommandError(f"--hop must be in [1, --n-fft={args.n_fft}], got {args.hop}")
    _check_online_options(args)
    if args.iterations < 0:
        raise CommandError(f"--iterations must be >= 0, got {args.iterations}")
    if not args.alpha > 0:
        raise CommandError(f"--alpha must be > 0, got {args.alpha}")
    if args.autoscale and not args.residual:
        raise CommandError(
            "--autoscale rescales the estimates for the residual model: add --residual"
        )
    if len(args.estimates) + args.residual < 2:
        raise CommandError(
            f"{args.estimates[0]}: too few estimates: a filter needs two or more sources; "
            "give more estimates, or add --residual to model the rest of the mixture"
        )

    mix = _audio_info(sf, args.mixture)
    subtype = args.subtype.upper() if args.subtype else mix.subtype
    if args.subtype and not sf.check_format("WAV", subtype):
        valid = ", ".join(sorted(sf.available_subtypes("WAV")))
        raise CommandError(f"--subtype {args.subtype}: not a WAV subtype (one of {valid})")
    if not sf.check_format("WAV", subtype):  # e.g. VORBIS from an OGG mixture
        subtype = sf.default_subtype("WAV")

    slack = args.n_fft
    infos = []
    for path in args.estimates:
        info = _audio_info(sf, path)
        if info.samplerate != mix.samplerate:
            raise CommandError(
                f"{path}: sample rate {info.samplerate} Hz differs from the mixture's "
                f"{mix.samplerate} Hz"
            )
        if info.channels not in (1, mix.channels):
            raise CommandError(
                f"{path}: {info.channels} channels, but the mixture has {mix.channels} "
                f"(an estimate has 1 or {mix.channels})"
            )
        if abs(info.frames - mix.frames) > slack:
            raise CommandError(
                f"{path}: {info.frames} samples, but the mixture has {mix.frames}: "
                f"more than the {slack} samples of STFT slack that are padded or trimmed"
            )
        infos.append(info)

    names = {}
    for path in args.estimates:
        name = Path(path).stem + ".wav"
        if name in names:
            raise CommandError(
                f"{path}: its output {name} would overwrite that of {names[name]}; "
                "rename one of the estimates"
            )
        names[name] = path
    if args.residual:
        if "residual.wav" in names:
            raise CommandError(
                f"{names['residual.wav']}: its output residual.wav is the name --residual writes; "
                "rename the estimate"
            )
        names["residual.wav"] = "--residual"

    try:  # last: importing scipy.signal is the slow part of the checks
        sft = make_stft(args.n_fft, args.hop)
    except ValueError as err:
        raise CommandError(f"--n-fft {args.n_fft} --hop {args.hop}: {_one_line(err)}") from None

    outdir = Path(args.outdir)
    if outdir.exists() and not outdir.is_dir():
        raise CommandError(f"{outdir}: exists and is not a directory")
    for name in names:
        target = outdir / name
        if target.is_dir():
            raise CommandError(f"{target}: is a directory")
        if target.exists() and not args.force:
            raise CommandError(f"{target}: exists; use --force to overwrite it")
    return sft, mix, infos, subtype, list(names)


def _check_overflow(spectrum, path, args):
    """Samples near float32's largest value are finite in a file, not in its STFT.

    Returns the peak magnitude of ``spectrum``.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        peak = _peak(spectrum)
    if not np.isfinite(peak):
        raise CommandError(
            f"{path}: samples too large: their STFT overflows {args.precision}; scale the file down"
        )
    return peak


def _wav_writer(sf, audio, sample_rate, subtype):
    def write_to(file):
        sf.write(file, audio, sample_rate, subtype=subtype, format="WAV")

    return write_to


def _check_length(path, nb_samples, sft, args):
    """A signal shorter than half a window has no STFT frame to filter."""
    half = sft.m_num - sft.m_num_mid
    if nb_samples < half:
        raise CommandError(
            f"{path}: {nb_samples} samples, fewer than half the STFT window "
            f"(--n-fft {args.n_fft} needs {half}); use a smaller --n-fft"
        )


def _filter(args, x, v, bars):
    """The refined sources' STFTs (norbert.wiener), from the whole tracks' STFTs."""
    passes = contextlib.nullcontext()  # a plain softmask has no EM passes to report
    if args.iterations:
        passes = bars.callback("Wiener filter", unit="frame")
    with passes as progress:
        return filter_stft(
            x,
            v,
            iterations=args.iterations,
            use_softmask=not args.no_softmask,
            residual=args.residual,
            autoscale=args.autoscale,
            alpha=args.alpha,
            workers=args.workers,
            progress=progress,
            overwrite_input=True,  # x and v are ours: no scaled copies
        )


def _stream_level(sf, args, sft, mix, dtype, bars):
    """First pass of --online: the mixture's length and the peak of its STFT."""
    real = np.finfo(dtype).dtype
    block_samples = STREAM_FRAMES * args.hop
    counted, peak = [], 0.0
    estimate = max(sft.p_max(max(mix.frames, sft.m_num)) - sft.p_min, 1)  # a lying header
    with bars.bar("mixture level", total=estimate, unit="frame") as update:
        blocks = _audio_blocks(sf, args.mixture, real.name, block_samples, counted)
        # a signal shorter than half a window has no frames (stft_blocks raises
        # ValueError at its end): said below, with its length
        with contextlib.suppress(ValueError):
            for x in stft_blocks(sft, blocks, dtype, block_frames=STREAM_FRAMES):
                peak = max(peak, _check_overflow(x, args.mixture, args))
                update(len(x))
    nb_samples = counted[0]
    _check_length(args.mixture, nb_samples, sft, args)
    return nb_samples, peak


def _refine_online(sf, args, sft, mix, infos, subtype, names, bars):
    """--online: stream the files through OnlineWiener block by block; return clip counts.

    Two passes over the mixture file, one over each estimate: the first finds
    the mixture's length and STFT peak (the level the filter scales to, which
    a stream cannot know in advance); the second reads the mixture and the
    estimates in blocks of ``STREAM_FRAMES`` hops, transforms them frame by
    frame (:func:`stft_blocks`), filters each block, overlap-adds the frames
    the stream completes (:func:`istft_blocks`) and appends the samples to
    every output's temporary file. Memory is a few blocks, whatever the length.
    """
    dtype = PRECISIONS[args.precision]
    real = np.finfo(dtype).dtype
    nb_samples, peak = _stream_level(sf, args, sft, mix, dtype, bars)
    nb_frames = sft.p_max(nb_samples) - sft.p_min
    nb_estimates = len(args.estimates)
    v_channels = 1 if all(info.channels == 1 for info in infos) else mix.channels
    stream = _OnlineAtPeak(
        peak,
        sft.f_pts,
        mix.channels,
        nb_estimates,
        dtype,
        lookahead=args.lookahead,
        forget=args.forget,
        use_softmask=not args.no_softmask,
        residual=args.residual,
        alpha=args.alpha,
        workers=args.workers,
    )

    def spectra(path):
        blocks = _audio_blocks(sf, path, real.name, STREAM_FRAMES * args.hop)
        return stft_blocks(sft, blocks, dtype, nb_samples, STREAM_FRAMES)

    def filtered(update):  # blocks of source STFTs, (channel, source) pairs as channels
        width = mix.channels * stream.shape[-1]
        for x, *estimates in zip(spectra(args.mixture), *map(spectra, args.estimates)):
            v = np.empty((len(x), sft.f_pts, v_channels, nb_estimates), dtype=real)
            for j, (path, estimate) in enumerate(zip(args.estimates, estimates)):
                with np.errstate(over="ignore", invalid="ignore"):
                    magnitude = np.abs(estimate)
                    v[..., j] = magnitude if args.alpha == 1 else magnitude**args.alpha
                _check_overflow(v[..., j], path, args)
            y = stream.process(x, v, overwrite_input=True)
            yield y.reshape(len(y), sft.f_pts, width)
            update(len(x))
        y = stream.flush()
        yield y.reshape(len(y), sft.f_pts, width)

    clipped = dict.fromkeys(names, 0)
    clip = subtype not in ("FLOAT", "DOUBLE")
    with AtomicOutputs(args.outdir) as outputs, contextlib.ExitStack() as files:
        _remove_stale(outputs, names, args)
        writers = [
            files.enter_context(_wav_stream(sf, outputs, name, mix, subtype)) for name in names
        ]
        with bars.bar("online Wiener filter", total=nb_frames, unit="frame") as update:
            for samples in istft_blocks(sft, filtered(update), nb_samples):
                samples = samples.reshape(len(samples), mix.channels, len(names))
                for j, (name, write) in enumerate(zip(names, writers)):
                    audio = samples[..., j].astype(real)
                    if clip:
                        over = int(np.count_nonzero(np.abs(audio) > 1.0))
                        if over:  # libsndfile would clip too; say so
                            clipped[name] += over
                            np.clip(audio, -1.0, 1.0, out=audio)
                    write(audio)
        files.close()  # every WAV complete and on disk before any is renamed
        outputs.commit()
    return {name: count for name, count in clipped.items() if count}


@contextlib.contextmanager
def _wav_stream(sf, outputs, name, mix, subtype):
    """Yield ``write(audio)`` appending to output ``name``, a WAV like the mixture."""
    with outputs.stream(name) as file:
        wav = None
        try:
            with file.guard():
                wav = sf.SoundFile(file, "w", mix.samplerate, mix.channels, subtype, format="WAV")

            def write(audio):
                with file.guard():
                    wav.write(audio)

            yield write
        except BaseException:
            if wav is not None:  # now, while its file is open (not at garbage collection)
                with contextlib.suppress(Exception):  # the temporary is removed anyway
                    wav.close()
            raise
        with file.guard():
            wav.close()  # writes the header's lengths


def _remove_stale(outputs, names, args):
    stale = outputs.remove_stale(names)
    if stale:
        print(
            f"norbert refine: removed {stale} temporary file(s) that a killed run "
            f"left in {args.outdir}",
            file=sys.stderr,
        )


def _cmd_refine(args):
    sf = _require("soundfile", "cli", "norbert refine")
    sft, mix, infos, subtype, names = _check_inputs(sf, args)
    bars = Progress(enabled=not args.quiet and sys.stderr.isatty())
    refine = _refine_online if args.online else _refine_offline
    clipped = refine(sf, args, sft, mix, infos, subtype, names, bars)
    outdir = Path(args.outdir)
    for name, count in clipped.items():
        print(
            f"norbert refine: warning: {outdir / name}: {count} samples clipped to [-1, 1] "
            f"for {subtype}; use --subtype FLOAT to keep them",
            file=sys.stderr,
        )
    if not args.quiet:
        for name in names:
            print(outdir / name)
    return EXIT_OK


def _refine_offline(sf, args, sft, mix, infos, subtype, names, bars):
    """The whole tracks in memory, filtered by norbert.wiener; return clip counts."""
    dtype = PRECISIONS[args.precision]
    real = np.finfo(dtype).dtype

    mixture = _read_audio(sf, args.mixture, real.name)
    nb_samples, nb_channels = mixture.shape
    _check_length(args.mixture, nb_samples, sft, args)
    nb_frames = sft.p_max(nb_samples) - sft.p_min
    nb_estimates = len(args.estimates)
    v_channels = 1 if all(info.channels == 1 for info in infos) else nb_channels
    with bars.bar("STFT", total=nb_frames * (1 + nb_estimates), unit="frame") as update:
        x = stft(sft, mixture, dtype, progress=update)
        del mixture
        _check_overflow(x, args.mixture, args)
        v = np.empty((nb_frames, sft.f_pts, v_channels, nb_estimates), dtype=real)
        for j, path in enumerate(args.estimates):
            estimate = _fit_length(_read_audio(sf, path, real.name), nb_samples)
            with np.errstate(over="ignore", invalid="ignore"):
                magnitude = np.abs(stft(sft, estimate, dtype, progress=update))
                v[..., j] = magnitude if args.alpha == 1 else magnitude**args.alpha
            del estimate, magnitude
            _check_overflow(v[..., j], path, args)

    y = _filter(args, x, v, bars)
    del x, v

    with bars.bar("inverse STFT", total=len(names), unit="source") as update:
        sources = []
        for j in range(len(names)):
            sources.append(istft(sft, y[..., j], nb_samples).astype(real, copy=False))
            update(1)
    del y

    clipped = {}
    float_subtype = subtype in ("FLOAT", "DOUBLE")
    with AtomicOutputs(args.outdir) as outputs:
        _remove_stale(outputs, names, args)
        with bars.bar("writing", total=len(names), unit="file") as update:
            for name, audio in zip(names, sources):
                if not float_subtype:
                    over = int(np.count_nonzero(np.abs(audio) > 1.0))
                    if over:  # libsndfile would clip too; say so
                        clipped[name] = over
                        np.clip(audio, -1.0, 1.0, out=audio)
                outputs.write(name, _wav_writer(sf, audio, mix.samplerate, subtype))
                update(1)
        outputs.commit()
    return clipped


# --------------------------------------------------------------------------
# norbert info


def _version_of(distribution):
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cmd_info(args):
    import platform

    import scipy

    import norbert

    threads = norbert.get_num_threads(args.workers)
    omp_env = os.environ.get("OMP_NUM_THREADS", "unset")
    rows = [
        ("norbert", f"{norbert.__version__} ({Path(norbert.__file__).parent})"),
        ("OpenMP", "yes" if norbert.openmp_enabled() else "no (serial build)"),
        ("threads", f"{threads} (workers={args.workers}, OMP_NUM_THREADS={omp_env})"),
        ("CPUs", str(os.cpu_count())),
        ("numpy", np.__version__),
        ("scipy", scipy.__version__),
        ("python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("platform", f"{platform.system()} {platform.machine()}"),
    ]
    for module, extra in (
        ("soundfile", "cli"),
        ("tqdm", "cli"),
        ("matplotlib", "plot"),
        ("fast_bss_eval", "eval"),
    ):
        version = _version_of(module)
        if module == "soundfile" and version != "not installed":
            with contextlib.suppress(Exception):  # a broken libsndfile must not break info
                import soundfile

                version += f" (libsndfile {soundfile.__libsndfile_version__})"
        rows.append((module, f"{version} [{extra}]"))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return EXIT_OK


# --------------------------------------------------------------------------
# norbert demo


def _cmd_demo(args):
    if args.plot:  # fail before the work, not after it
        _require("matplotlib", "plot", "--plot")
    from . import _demo  # here, not at the top: refine and info need none of the demo

    _demo.run_demo(args.outdir, args.plot, args.seed, args.precision, args.workers)
    return EXIT_OK


# --------------------------------------------------------------------------
# argument parsing


def _workers(text):
    value = int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("0 threads: give a positive count, or -1 for all cores")
    return value


def _add_shared_options(parser, workers_help, precision_help=None):
    """Add ``--precision`` (when given its help text) and ``--workers`` to a command.

    Each command words the help for itself (``info`` only reports a thread count);
    the choices, defaults and checks are the same everywhere.
    """
    if precision_help is not None:
        parser.add_argument(
            "--precision", choices=sorted(PRECISIONS), default="float32", help=precision_help
        )
    parser.add_argument("--workers", type=_workers, default=None, metavar="N", help=workers_help)


def build_parser():
    """The ``norbert`` argument parser (``refine``, ``info``, ``demo``).

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    import norbert

    parser = argparse.ArgumentParser(
        prog="norbert",
        description="Multichannel Wiener filter for audio source separation.",
    )
    parser.add_argument("--version", action="version", version=f"norbert {norbert.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    refine = commands.add_parser(
        "refine",
        help="refine separated stems with a multichannel Wiener filter",
        description=(
            "Refine estimates of the sources of MIXTURE (e.g. a separator's stems) with "
            "norbert.wiener (norbert.OnlineWiener with --online): the estimates' "
            "magnitudes are the source models, the mixture's STFT is filtered, and "
            "each refined source is written to "
            "OUTDIR/<estimate file stem>.wav with the mixture's length, sample rate and "
            "subtype. Estimates may be mono when the mixture is multichannel; the "
            "refined sources have the mixture's channels."
        ),
    )
    refine.add_argument(
        "mixture", metavar="MIXTURE", help="mixture audio file (WAV, FLAC, OGG, ...)"
    )
    refine.add_argument(
        "estimates",
        metavar="ESTIMATE",
        nargs="+",
        help="estimate of one source, same sample rate as the mixture",
    )
    refine.add_argument(
        "-o",
        "--outdir",
        required=True,
        metavar="OUTDIR",
        help="directory for the refined sources (created if missing)",
    )
    refine.add_argument(
        "--n-fft",
        type=int,
        default=4096,
        metavar="N",
        help="STFT window length in samples, Hann window (default: %(default)s)",
    )
    refine.add_argument(
        "--hop",
        type=int,
        default=1024,
        metavar="N",
        help="STFT hop in samples (default: %(default)s)",
    )
    refine.add_argument(
        "--alpha",
        type=float,
        default=1.0,
        help="exponent of the estimates' magnitudes used as the source "
        "models (default: %(default)s)",
    )
    refine.add_argument(
        "--iterations",
        type=int,
        default=None,
        metavar="N",
        help="EM iterations; 0 is a plain ratio mask (default: 1; not with --online)",
    )
    refine.add_argument(
        "--online",
        action="store_true",
        help="filter causally with norbert.OnlineWiener, streaming the files: they are "
        "read, transformed, filtered and written in blocks of 64 hops, so the memory it "
        "needs does not grow with the length of the track (the outputs appear under their names "
        "only when complete). Frame t uses the spatial statistics of frames up to "
        "t + --lookahead, so a live stream would be delayed by --lookahead hops. Levels "
        "as without --online: the mixture's STFT is scaled so that its peak is 10, so the "
        "mixture file is read twice, first to find that peak (a live stream would give "
        "it as OnlineWiener(level=peak))",
    )
    refine.add_argument(
        "--lookahead",
        type=int,
        default=None,
        metavar="N",
        help="with --online: frames of the future each frame's statistics include "
        "(integer >= 0; default: 0)",
    )
    refine.add_argument(
        "--forget",
        type=float,
        default=None,
        metavar="F",
        help="with --online: forgetting factor of the spatial statistics, in (0, 1]; "
        "their memory is about 1 / (1 - F) frames (default: 0.99)",
    )
    refine.add_argument(
        "--no-softmask",
        action="store_true",
        help="start EM from the estimates' magnitudes with the mixture's "
        "phase instead of a ratio mask",
    )
    refine.add_argument(
        "--residual",
        action="store_true",
        help="add a residual source for what the estimates miss "
        "(norbert.contrib.residual_model), written as residual.wav",
    )
    refine.add_argument(
        "--autoscale",
        action="store_true",
        help="with --residual: rescale the estimates to the mixture first",
    )
    _add_shared_options(
        refine,
        workers_help="threads for the filter (default: all cores, or OMP_NUM_THREADS)",
        precision_help="working precision; float32 halves the memory (default: %(default)s)",
    )
    refine.add_argument(
        "--subtype",
        default=None,
        help="WAV subtype of the outputs, e.g. PCM_16, PCM_24, FLOAT "
        "(default: the mixture's, or PCM_16 if WAV has no such subtype)",
    )
    refine.add_argument(
        "-f", "--force", action="store_true", help="overwrite existing output files"
    )
    refine.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars, and do not list the written files",
    )
    refine.set_defaults(func=_cmd_refine)

    info = commands.add_parser(
        "info",
        help="print the versions and build facts a bug report needs",
        description="Print norbert's version, whether it was built with OpenMP, the "
        "number of threads it will use, and the versions of its dependencies.",
    )
    _add_shared_options(info, workers_help="report the thread count for this --workers value")
    info.set_defaults(func=_cmd_info)

    demo = commands.add_parser(
        "demo",
        help="separate a synthetic stereo mixture and print the SDR of each method",
        description=(
            "Synthesise a deterministic stereo mixture of a voice, a bass line and drums, "
            "with imperfect estimates of them, then refine the estimates with a softmask "
            "and with the Wiener filter (1 and 3 EM iterations, and the residual model) "
            "and its causal counterpart norbert.OnlineWiener (lookahead 0, 2 and 8 frames), "
            "and print each method's SDR and time. Needs no network and no audio files."
        ),
    )
    demo.add_argument(
        "-o",
        "--outdir",
        default=None,
        metavar="OUTDIR",
        help="also write the mixture, references, estimates and refined "
        "sources as WAV files here (existing demo files are replaced)",
    )
    demo.add_argument(
        "--plot",
        action="store_true",
        help="save a PNG of spectrograms and masks (needs matplotlib: "
        "pip install 'norbert[plot]') to OUTDIR/demo.png, or "
        "./norbert-demo.png without -o",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the synthetic example (default: the built-in one)",
    )
    _add_shared_options(
        demo,
        workers_help="threads for the filter (default: all cores)",
        precision_help="working precision (default: %(default)s)",
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None) -> int:
    """Run the ``norbert`` command.

    Parameters
    ----------
    argv : list of str or None
        Arguments after the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 2 on bad input or usage or when an output cannot be
        written, 1 when an optional dependency is missing.

    Examples
    --------
    >>> main(["info"])  # doctest: +SKIP
    norbert  0.3.0 (...)
    OpenMP   yes
    ...
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors (status 2)
        return exit_.code
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args)
    except CommandError as err:
        print(f"norbert {args.command}: error: {err}", file=sys.stderr)
        return err.status
    except OutputError as err:  # disk full, file size limit: the run's conditions, status 2
        print(f"norbert {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"norbert {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
