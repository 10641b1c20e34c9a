"""refine_files: many tracks on a dask.distributed cluster, files to files."""

import os

from norbert._validation import ParameterError, check_positive_int
from norbert.dask._files import _remove, from_npy, store_npy
from norbert.dask._filters import wiener


def refine_files(
    jobs,
    *,
    client=None,
    iterations=1,
    use_softmask=True,
    eps=None,
    workers=1,
    frames_per_chunk=None,
    progress=None,
):
    """Refine many tracks stored as ``.npy`` files on a ``dask.distributed`` cluster.

    Each job is one track, ``(mixture, estimates, output)``: the mixture STFT `x`, the
    spectrograms `v` of the sources, and where to write ``y = wiener(v, x, ...)``.
    Every track is computed by :func:`wiener` over chunks of frames read with
    :func:`from_npy` and written with :func:`to_npy`, so a worker holds a few chunks at a
    time however long the tracks are; the tracks are submitted together as futures and
    the cluster interleaves their chunks.

    Parameters
    ----------
    jobs : iterable of (path, path, path)
        ``(mixture, estimates, output)``: `x` as a ``.npy`` of shape
        (nb_frames, nb_bins, nb_channels), complex; `v` as a ``.npy`` of shape
        (nb_frames, nb_bins, {1, nb_channels}, nb_sources); the ``.npy`` file to write `y`
        into (nb_frames, nb_bins, nb_channels, nb_sources), x's complex dtype. The client
        and the workers must see these paths.
    client : distributed.Client or None, keyword-only
        the cluster to use (None: the current client).
    iterations, use_softmask, eps, workers : keyword-only
        as in :func:`wiener`.
    frames_per_chunk : int or None, keyword-only
        frames per task (None: about 8 MB of x per chunk).
    progress : None, True or callable, keyword-only
        called as ``progress(completed, total)`` each time a track is done; True prints
        a line per track.

    Returns
    -------
    list of str
        the output paths, in the order of `jobs`.

    Raises
    ------
    OSError
        before any track is computed, if an output file cannot be created with its space
        reserved (e.g. disk full, ENOSPC, or over a file size limit, EFBIG); it names
        the file.
    RuntimeError
        after every track has finished, if some failed: it names them, and chains the
        first error (e.g. an ``OSError`` naming the output file when the disk is full).
        A failed track leaves no file under its output name (each is written under a
        temporary name and renamed when complete), and a file that was there is
        unchanged.

    Examples
    --------
    >>> from distributed import Client, LocalCluster          # doctest: +SKIP
    >>> with LocalCluster(n_workers=4, threads_per_worker=1) as cluster, \\
    ...         Client(cluster) as client:                    # doctest: +SKIP
    ...     norbert.dask.refine_files(
    ...         [("song1_x.npy", "song1_v.npy", "song1_y.npy"),
    ...          ("song2_x.npy", "song2_v.npy", "song2_y.npy")],
    ...         client=client, iterations=1, progress=True)
    """
    try:
        from distributed import as_completed, get_client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "norbert.dask.refine_files needs dask.distributed; "
            "install the extra: pip install 'norbert[dask]'"
        ) from exc
    jobs = [tuple(job) for job in jobs]
    for job in jobs:
        if len(job) != 3:
            raise ParameterError(f"each job must be (mixture, estimates, output), got {job!r}")
    frames_per_chunk = check_positive_int(frames_per_chunk, "frames_per_chunk")
    if progress is True:

        def progress(done, total):
            print(f"norbert: {done}/{total} tracks refined", flush=True)

    client = get_client() if client is None else client
    futures, temporaries, graphs = {}, [], []
    try:
        for x_path, v_path, y_path in jobs:
            # v read in x's chunks of frames: no rechunk between file and kernel
            chunks = None if frames_per_chunk is None else (frames_per_chunk,)
            x = from_npy(x_path, chunks=chunks)
            y = wiener(
                from_npy(v_path, chunks=x.chunks[:1]),
                x,
                iterations=iterations,
                use_softmask=use_softmask,
                eps=eps,
                workers=workers,
            )
            stored, tmp = store_npy(y, y_path)  # a full disk fails here, before any compute
            temporaries.append(tmp)
            graphs.append(stored)
        for i, stored in enumerate(graphs):
            futures[client.compute(stored)] = i
        failed = []
        for done, future in enumerate(as_completed(list(futures), loop=client.loop), 1):
            if future.status != "finished":
                failed.append((futures[future], future.exception()))
            if progress is not None:
                progress(done, len(jobs))
    finally:
        for future in futures:
            if future.status != "finished":
                future.cancel()
        for tmp in temporaries:  # renamed when its track finished; else half-written
            _remove(tmp)
    if failed:
        failed.sort(key=lambda item: item[0])
        names = ", ".join(repr(jobs[i][0]) for i, _ in failed)
        raise RuntimeError(
            f"refine_files: {len(failed)} of {len(jobs)} tracks failed: {names}"
        ) from failed[0][1]
    return [os.fspath(job[2]) for job in jobs]
