"""What the ``norbert`` commands write: progress bars and all-or-nothing output files.

Both ``norbert refine`` and ``norbert demo -o`` write through
:class:`AtomicOutputs`, so that a run that fails (disk full, a file-size
quota, a kill) never leaves a partial file under a final name:

* each output is written to a hidden temporary beside it,
  ``.NAME.norbert-PID-RANDOM.part``, then flushed to disk (``fsync``);
* only when every output is written are they renamed to their final names
  (``os.replace``, atomic on one filesystem), so a file that existed before
  the run is either untouched or replaced whole;
* on any error the temporaries, and the directories the run created, are
  removed, and the error is an :class:`OutputError` naming the file and the
  system's cause (``No space left on device``, ``File too large``);
* a process killed with ``SIGKILL`` cannot clean up: the next run into the
  same directory removes the temporaries of dead processes (POSIX only:
  their names carry the PID) and says so on stderr.

The writer callbacks get an open binary file, not a path: libsndfile reports
a failed ``write(2)`` only as "System error", so the file object records the
``OSError`` itself and the message can give the cause.

Only the standard library is imported here; tqdm when a bar is shown.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sys
from pathlib import Path

__all__ = ["AtomicOutputs", "OutputError", "Progress", "one_line"]

_HINTS = {  # what to do about the usual causes, after the system's words
    errno.EFBIG: "the file size limit (ulimit -f) or the filesystem's largest file",
    errno.ENOSPC: "free some space or choose another -o",
}
if hasattr(errno, "EDQUOT"):
    _HINTS[errno.EDQUOT] = "the disk quota is used up"


class OutputError(Exception):
    """An output could not be written; the message names the file and the cause."""


def one_line(err):
    """An exception's message on one line (libsndfile's can span several)."""
    text = getattr(err, "error_string", None) or str(err) or type(err).__name__
    return " ".join(str(text).split())


def _cause(err):
    """``OSError`` -> "No space left on device (free some space ...)"; others as one line."""
    if isinstance(err, OSError) and err.strerror:
        hint = _HINTS.get(err.errno)
        return f"{err.strerror} ({hint})" if hint else err.strerror
    return one_line(err)


class Progress:
    """tqdm bars on stderr, or nothing (``--quiet``, stderr not a terminal, no tqdm)."""

    def __init__(self, enabled):
        self._tqdm = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                print(
                    "norbert: tqdm is not installed, no progress bars (pip install 'norbert[cli]')",
                    file=sys.stderr,
                )
            else:
                self._tqdm = tqdm

    @contextlib.contextmanager
    def bar(self, desc, total, unit):
        """Yield ``update(n)`` for a bar of ``total`` units."""
        if self._tqdm is None:
            yield lambda n=1: None
            return
        with self._tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False) as bar:
            yield bar.update

    @contextlib.contextmanager
    def callback(self, desc, unit):
        """Yield a ``progress(completed, total)`` callback, as ``norbert.wiener`` calls it."""
        if self._tqdm is None:
            yield None
            return
        with self._tqdm(total=None, desc=desc, unit=unit, file=sys.stderr, leave=False) as bar:

            def progress(completed, total):
                if bar.total != total:
                    bar.total = total
                bar.update(completed - bar.n)

            yield progress


class _RecordingFile:
    """A raw binary file that keeps its first ``OSError`` instead of raising it.

    libsndfile calls ``write`` from a C callback, where an exception would be
    printed as a traceback and lost; a short count (0) makes it stop instead,
    and :meth:`AtomicOutputs.write` raises the recorded error afterwards.
    """

    def __init__(self, raw, final):
        self.raw = raw
        self.final = final
        self.error = None

    @contextlib.contextmanager
    def guard(self):
        """Report the writer's failure as an :class:`OutputError` naming the output.

        The recorded ``OSError`` explains libsndfile's vaguer errors (or its
        ``AssertionError`` on a short write), so it is the cause given when
        there is one; other exceptions than the writer's pass unchanged.
        """
        try:
            yield
        except Exception as err:
            if self.error is None and not isinstance(err, (OSError, RuntimeError, ValueError)):
                raise
            raise OutputError(f"{self.final}: cannot write: {_cause(self.error or err)}") from None
        if self.error is not None:
            raise OutputError(f"{self.final}: cannot write: {_cause(self.error)}")

    def write(self, data):
        # a short write(2) (EFBIG, ENOSPC at the edge) is followed by one that fails
        view = memoryview(data).cast("B")
        done = 0
        while self.error is None and done < len(view):
            try:
                written = self.raw.write(view[done:])
            except OSError as err:
                self.error = err
                break
            if not written:  # no progress and no errno: do not spin
                self.error = OSError(errno.EIO, os.strerror(errno.EIO))
            done += written or 0
        return done if self.error is None else 0

    def seek(self, offset, whence=os.SEEK_SET):
        return self.raw.seek(offset, whence)

    def tell(self):
        return self.raw.tell()

    def read(self, size=-1):
        return self.raw.read(size)

    def flush(self):
        pass


def _part_name(name, pid=None):
    pid = os.getpid() if pid is None else pid
    return f".{name}.norbert-{pid}-{secrets.token_hex(4)}.part"


def _dead(pid):
    try:
        os.kill(pid, 0)  # POSIX only: on Windows this would terminate the process
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, someone else's
        return False
    return False


class AtomicOutputs:
    """Write each output to a hidden temporary beside it; rename them all at the end.

    On any error (or if :meth:`commit` is never reached) the temporaries are
    removed, and so are the directories this object created, so a failed run
    leaves nothing behind.

    Parameters
    ----------
    outdir : str or path-like
        Directory of the outputs, created if missing; output names are
        relative to it and may contain subdirectories.
    """

    def __init__(self, outdir):
        self.outdir = Path(outdir)
        self._pending = []
        self._created = []  # deepest first

    def _makedirs(self, directory):
        missing = []
        parent = directory
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"{directory}: cannot create directory: {_cause(err)}") from None
        self._created[:0] = missing

    def __enter__(self):
        self._makedirs(self.outdir)
        return self

    def remove_stale(self, names):
        """Remove temporaries of ``names`` left by killed runs; return how many.

        Only temporaries whose process is gone are removed, so a run writing
        into the same directory at the same time keeps its own.
        """
        if os.name != "posix":
            return 0
        removed = 0
        for name in names:
            final = self.outdir / name
            prefix = f".{final.name}.norbert-"
            with contextlib.suppress(OSError):
                for path in final.parent.glob(f"{prefix}*.part"):
                    pid = path.name[len(prefix) :].split("-", 1)[0]
                    if pid.isdigit() and _dead(int(pid)):
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()
                            removed += 1
        return removed

    def write(self, name, write_to):
        """Write output ``name`` with ``write_to(file)``, ``file`` a binary file object."""
        with self.stream(name) as file, file.guard():
            write_to(file)

    @contextlib.contextmanager
    def stream(self, name):
        """Yield the binary file of output ``name``, for the caller to write as it goes.

        The caller writes inside ``file.guard()``, which turns the writer's
        errors into an :class:`OutputError` naming the output; several outputs
        can be open at once (``norbert refine --online`` writes each block of
        every source as it is filtered). When the block ends the file is
        flushed to disk; it is renamed by :meth:`commit`.
        """
        final = self.outdir / name
        self._makedirs(final.parent)
        tmp = final.parent / _part_name(final.name)
        try:
            # open(), not mkstemp: mkstemp's 0600 mode would stick to the output
            raw = open(tmp, "xb", buffering=0)  # closed by the with below
        except OSError as err:
            raise OutputError(f"{final}: cannot write: {_cause(err)}") from None
        with raw:
            self._pending.append((tmp, final))
            file = _RecordingFile(raw, final)
            yield file  # the caller's exceptions pass: only the guard knows which are ours
            with file.guard():
                os.fsync(raw.fileno())  # the rename must not outrun the data

    def commit(self):
        """Rename every temporary to its final name."""
        directories = set()
        while self._pending:
            tmp, final = self._pending[0]
            try:
                os.replace(tmp, final)
            except OSError as err:
                raise OutputError(f"{final}: cannot write: {_cause(err)}") from None
            self._pending.pop(0)
            directories.add(final.parent)
        self._created = []
        for directory in directories:  # make the renames themselves durable
            with contextlib.suppress(OSError, AttributeError):
                fd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def __exit__(self, *exc):
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._pending = []
        for directory in self._created:
            with contextlib.suppress(OSError):
                directory.rmdir()
        return False
