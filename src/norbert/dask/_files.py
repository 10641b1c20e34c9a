"""Arrays on disk, read and written one region at a time: from_npy, to_npy, and the table
that lets norbert's passes recognise a from_npy array and read its file themselves."""

import errno
import mmap
import os
import stat
import uuid

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize

from norbert._validation import ParameterError

# Bytes of x per chunk when norbert chooses the chunks (from_npy, numpy inputs). A task
# holds about (1 + nb_sources) times this (x, v, the PSDs and its share of y).
CHUNK_BYTES = 8 << 20


def graph_name(kind, *args):
    return f"norbert-{kind}-{tokenize(*args)}"


def frame_chunks(shape, itemsize, chunk_bytes=CHUNK_BYTES):
    per_frame = max(1, int(np.prod(shape[1:], dtype=np.int64)) * itemsize)
    return (max(1, chunk_bytes // per_frame),) + tuple(-1 for _ in shape[1:])


def as_dask(a, name):
    """a as a Dask array: Dask arrays as they are, np.memmap read from its file, other
    arrays wrapped in chunks of whole frames."""
    if isinstance(a, da.Array):
        if any(np.isnan(n) for n in a.shape):
            raise ParameterError(
                f"{name} has unknown chunk sizes (shape {a.shape}); call "
                f"{name}.compute_chunk_sizes() first"
            )
        return a
    if isinstance(a, np.memmap):
        return from_npy(a)
    if a is None:
        raise TypeError(f"{name} must be a dask array, got None")
    a = np.asarray(a)
    if a.ndim == 0:
        raise TypeError(f"{name} must be an array, got the scalar {a!r}")
    return da.from_array(a, chunks=frame_chunks(a.shape, a.dtype.itemsize))


class RawFile:
    """An array stored raw in a file, read or written one region at a time.

    Only the path, dtype, shape, offset and order are pickled, so nothing of the data
    travels through the scheduler. A region that is one run of the file (whole frames of
    a C-ordered array) is read or written with one system call; others go through a
    memory map that is closed at once. A worker never holds more than its chunks.
    """

    def __init__(self, path, dtype, shape, offset, order, label=None):
        self.path = os.path.abspath(os.fspath(path))  # workers may not share our cwd
        self.label = self.path if label is None else os.fspath(label)  # named in errors
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(n) for n in shape)
        self.offset = int(offset)
        self.order = order

    @property
    def ndim(self):
        return len(self.shape)

    def _run(self, key):
        """(byte offset, shape) of the region key when it is one run of the file, else None."""
        if self.order != "C":
            return None
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > self.ndim or not all(isinstance(k, slice) for k in key):
            return None
        bounds = [k.indices(n) for k, n in zip(key, self.shape)]
        bounds += [(0, n, 1) for n in self.shape[len(key) :]]
        if any(step != 1 for _, _, step in bounds):
            return None
        shape = tuple(max(0, stop - start) for start, stop, _ in bounds)
        partial = [i for i, (n, b) in enumerate(zip(self.shape, bounds)) if b[:2] != (0, n)]
        if partial and any(shape[i] > 1 for i in range(partial[-1])):
            return None  # strided: more than one run
        first = np.ravel_multi_index([b[0] for b in bounds], self.shape) if all(shape) else 0
        return self.offset + int(first) * self.dtype.itemsize, shape

    def _map(self, mode):
        return np.memmap(
            self.path,
            dtype=self.dtype,
            mode=mode,
            shape=self.shape,
            offset=self.offset,
            order=self.order,
        )

    def __getitem__(self, key):
        run = self._run(key)
        if run is not None:
            offset, shape = run
            count = int(np.prod(shape, dtype=np.int64))
            if count == 0:
                return np.empty(shape, self.dtype)
            return np.fromfile(self.path, self.dtype, count, offset=offset).reshape(shape)
        m = self._map("r")
        try:
            return np.array(m[key])
        finally:
            del m  # unmap: the pages read leave the worker's resident memory

    def __setitem__(self, key, value):
        try:
            self._write(key, value)
        except OSError as exc:  # e.g. ENOSPC, EFBIG: say which file
            raise named_error(exc, "writing", self.label) from exc

    def _write(self, key, value):
        run = self._run(key)
        if run is not None:
            offset, shape = run
            data = np.ascontiguousarray(np.broadcast_to(value, shape), self.dtype)
            data = memoryview(data.reshape(-1)).cast("B")
            fd = os.open(self.path, os.O_WRONLY)
            try:  # os.pwrite, not ndarray.tofile: a short write (disk full) says ENOSPC
                while data:
                    n = os.pwrite(fd, data, offset)
                    if n <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
                    data, offset = data[n:], offset + n
            finally:
                os.close(fd)
            return
        m = self._map("r+")
        try:
            m[key] = value
        finally:
            del m  # unmapping hands the dirty pages to the OS, which writes them back

    def token(self):
        st = os.stat(self.path)
        return (
            os.path.abspath(self.path),
            self.dtype.str,
            self.shape,
            self.offset,
            self.order,
            st.st_size,
            st.st_mtime_ns,
        )


class FileTable:
    """The files behind from_npy arrays, by Dask array name (FIFO, at most `capacity`).

    It exists because a Dask array does not say that it is a plain view of a file, and
    norbert's passes need to know: each pass reads such an array's chunks inside its own
    tasks, so no chunk is held from one pass to the next (see _graph.pass_inputs).
    from_npy records its array here under the array's name, a token of the file's path,
    dtype, shape, offset, mtime and the chunks; an array derived from it has another name
    and is read through its graph like any other input. The oldest entries are dropped
    beyond `capacity`, so that a long-lived process opening many files keeps a bounded
    table; an array whose entry was dropped is still computed correctly, through its graph.
    """

    def __init__(self, capacity):
        self.capacity = capacity
        self._files = {}

    def add(self, name, source):
        if len(self._files) >= self.capacity:
            self._files.pop(next(iter(self._files)))  # dicts iterate in insertion order
        self._files[name] = source

    def source(self, a):
        """The RawFile that a (a from_npy array, untouched since) reads, or None."""
        if not isinstance(a, da.Array):
            return None
        source = self._files.get(a.name)
        return source if source is not None and source.shape == a.shape else None


FILES = FileTable(capacity=4096)


def memmap_offset(a):
    """Byte offset in its file of the first element of a, an np.memmap or a view of one.

    np.memmap's `offset` is where the array it mapped starts, and its views inherit it
    unchanged. That array is the last ndarray on a view's chain of `base` (its own base is
    the mmap object), so a view starts as many bytes further as their data pointers differ.
    Public attributes only: np.memmap's private `_mmap` would give the mapping directly.
    """
    mapped = a
    while isinstance(mapped.base, np.ndarray):
        mapped = mapped.base
    if not isinstance(mapped.base, mmap.mmap):
        raise ParameterError(
            "this np.memmap is not a view of a memory map that np.memmap made; "
            "save the array with np.save and use norbert.dask.from_npy(path)"
        )
    return a.offset + (a.ctypes.data - mapped.ctypes.data)


def _memmap_file(a):
    """A contiguous np.memmap (or a contiguous view of one) as a RawFile."""
    if not (a.flags.c_contiguous or a.flags.f_contiguous) or a.filename is None:
        raise ParameterError(
            "only C- or Fortran-contiguous np.memmap arrays can be read chunk by chunk; "
            "save the array with np.save and use norbert.dask.from_npy(path)"
        )
    if a.mode == "c":
        raise ParameterError(
            "a copy-on-write np.memmap (mode='c') can differ from its file; "
            "pass it as a dask array (da.from_array) instead"
        )
    order = "C" if a.flags.c_contiguous else "F"
    return RawFile(a.filename, a.dtype, a.shape, memmap_offset(a), order)


def from_npy(file, chunks=None):
    """A Dask array that reads a ``.npy`` file (or an ``np.memmap``) chunk by chunk.

    Each task reads its own chunk (one read for chunks of whole frames); only the file's
    name travels through the graph, so this works on a ``dask.distributed`` cluster whose
    workers see the same file system (``da.from_array(np.load(path, mmap_mode="r"))``
    would send the whole array through the scheduler). The functions of this module read
    such arrays inside their own tasks, pass after pass, and hold nothing in between.

    Parameters
    ----------
    file : str, os.PathLike or np.memmap
        a ``.npy`` file, or a C- or Fortran-contiguous ``np.memmap``.
    chunks : Dask chunks or None
        None: chunks of whole frames (the first axis) of about 8 MB. A tuple shorter than
        the array's dimensions leaves the other axes whole: ``(240,)`` is 240 frames a chunk.

    Returns
    -------
    dask.array.Array
        the array, with the file's shape and dtype

    Examples
    --------
    >>> import numpy as np, norbert.dask, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.arange(12.0).reshape(6, 2))
    >>> a = norbert.dask.from_npy(path, chunks=(4, 2))
    >>> a.chunks, float(a.sum().compute())
    (((4, 2), (2,)), 66.0)
    """
    if isinstance(file, np.memmap):
        source = _memmap_file(file)
    else:
        m = np.load(os.fspath(file), mmap_mode="r")
        if not isinstance(m, np.memmap):
            raise ParameterError(f"{file!r} is not a .npy file of a numeric array")
        order = "C" if m.flags.c_contiguous else "F"
        source = RawFile(file, m.dtype, m.shape, m.offset, order)
        del m
    if chunks is None:
        chunks = frame_chunks(source.shape, source.dtype.itemsize)
    elif isinstance(chunks, tuple) and len(chunks) < source.ndim:
        chunks = chunks + (-1,) * (source.ndim - len(chunks))
    chunks = da.core.normalize_chunks(chunks, source.shape, dtype=source.dtype)
    a = da.from_array(
        source,
        chunks=chunks,
        name=graph_name("npy", source.token(), chunks),
        lock=False,
        asarray=False,
        fancy=False,
        meta=np.empty((0,) * source.ndim, source.dtype),
    )
    FILES.add(a.name, source)
    return a


def named_error(exc, doing, path):
    """exc (an OSError) again, with `path` in its message and as its filename."""
    path = os.fspath(path)
    if exc.filename == path:
        return exc
    if exc.errno is None:
        return OSError(f"{exc} ({doing} {path})")
    return OSError(exc.errno, f"{exc.strerror} ({doing} {path})", path)


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _new_npy(path, dtype, shape):
    """A new .npy file beside `path` (a hidden temporary name), with its header written and
    its space reserved: (temporary path, data offset, final path). Disk full or over
    quota is an OSError here, naming `path`, and leaves no file behind."""
    final = os.path.realpath(os.fspath(path))  # a symlink: replace the file it points to
    directory, name = os.path.split(final)
    tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.part")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # umask applies
    except OSError as exc:
        raise named_error(exc, "creating a temporary beside", path) from exc
    try:
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(final).st_mode))  # overwriting: keep its mode
        except FileNotFoundError:
            pass
        header = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        offset = header.offset
        del header
        size = offset + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if size > 0 and hasattr(os, "posix_fallocate"):
            # reserve the space now: a full disk fails here, not later in a task (where a
            # write through a memory map would be a SIGBUS rather than an OSError)
            with open(tmp, "r+b") as f:
                try:
                    os.posix_fallocate(f.fileno(), 0, size)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError):
            raise named_error(exc, "writing", path) from exc
        raise
    return tmp, offset, final


def _finish(_stored, tmp, final):
    """The store's last task: the complete file takes its final name."""
    os.replace(tmp, final)


def store_npy(a, path):
    """(delayed write of a into the .npy `path`, the temporary it writes first).

    The chunks are written into the temporary, which a last task renames to `path` once
    every chunk is in: no file ever has the final name before it is complete. On failure
    the caller removes the temporary."""
    a = as_dask(a, "a")
    tmp, offset, final = _new_npy(path, a.dtype, a.shape)
    try:
        target = RawFile(tmp, a.dtype, a.shape, offset, "C", label=os.fspath(path))
        stored = da.store(a, target, lock=False, compute=False)
        done = dask.delayed(_finish, pure=True)(
            stored, tmp, final, dask_key_name=graph_name("npy-finish", tmp)
        )
    except BaseException:
        _remove(tmp)
        raise
    return done, tmp


def to_npy(a, path, *, compute=True, **compute_kwargs):
    """Store a Dask array into a new ``.npy`` file, each task writing its own chunk.

    The file is created under a temporary name in the same directory, with its header
    first and its space reserved (so a full disk or a quota fails at once); each task
    then writes its chunk into it (one write for chunks of whole frames, else through a
    memory map), so nothing larger than a chunk is ever in memory and the result travels
    through no scheduler. A last task renames the complete file to `path`
    (``os.replace``): `path` is never a half-written file. Workers must see the file at
    the same path.

    Parameters
    ----------
    a : dask.array.Array
        e.g. the result of :func:`wiener`.
    path : str or os.PathLike
        where to write (overwritten).
    compute : bool, keyword-only
        False: return a ``dask.delayed`` object that writes when computed (e.g. with
        ``client.compute``). If that computation fails, the temporary file
        (``.<name>.<random>.part`` beside `path`) is left for the caller to remove.
    **compute_kwargs
        passed to ``dask.compute`` (e.g. ``scheduler="synchronous"``).

    Returns
    -------
    np.memmap or dask.delayed.Delayed
        the stored array, opened read-only (compute=True), or the delayed write.

    Raises
    ------
    OSError
        e.g. disk full (ENOSPC) or over the file size limit (EFBIG), naming `path`; the
        temporary is removed and a file that was at `path` is left as it was.

    Examples
    --------
    >>> import dask.array as da, norbert.dask, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "y.npy")
    >>> out = norbert.dask.to_npy(da.ones((6, 2), chunks=(4, 2)), path)
    >>> out.shape, float(out.sum())
    ((6, 2), 12.0)
    """
    path = os.fspath(path)
    stored, tmp = store_npy(a, path)
    if not compute:
        return stored
    try:
        dask.compute(stored, **compute_kwargs)
    except BaseException:
        _remove(tmp)
        raise
    return np.load(path, mmap_mode="r")
