"""norbert on Dask arrays: the whole-track multichannel Wiener filter, chunk by chunk.

``pip install norbert[dask]``. `wiener`, `expectation_maximization` and `softmask` take
``dask.array`` inputs chunked along frames (and optionally bins) and return lazy Dask
arrays chunked like `x`; they equal the functions of :mod:`norbert` on the same data
(relative error ~1e-15 in float64) for any chunking, and give the same bits on every run
with the same chunking. `from_npy`, `to_npy` and `refine_files` keep tracks larger than
a worker's memory on disk.

How the EM maps onto Dask
-------------------------
The spatial covariances R_j are estimated over the whole track, as the in-memory
function does (open-unmix and demucs estimate them per window). Each EM iteration is a
map-reduce with a barrier between its halves::

    stats pass k     blockwise: per chunk, per bin, sums of y_j y_j^H and of v_j (double),
                     packed as (1, bins, sources, 2 C^2 + 1) partials
    reduction        a tree sum of the partials over chunks, in chunk order (fixed
                     order: same bits on every run), then R_{k+1} = sums / (eps + weight)
    filter pass      blockwise: y_j = v_j R_j Cxx^-1 x, with the small R (bins x sources x
                     C x C) sent to every task

Each task runs the in-memory driver's own passes (``norbert._drivers.EMState``) over one
chunk, with an explicit thread count (`workers`; Dask's worker processes set
OMP_NUM_THREADS=1) and the track's R set before each pass that uses it.

The PSDs P between iterations: recomputed, not stored. The in-memory EM keeps P_k (one
real per TF point and source) between passes, with P_k at a TF point a function of
P_{k-1}, x and R_k. Here every task recomputes the chain P_0 -> ... -> P_{k-1} of its own
chunk from (v, x, R_1..R_{k-1}). Carrying P as a chunked array would have to hold it --
half the size of a stereo v -- across each whole-track barrier (in worker memory, or
spilled to disk by Dask), because no filter task can start before every statistics task
has finished. Recomputing keeps the memory of a run at a few chunks per worker thread
whatever the track length, keeps every task a pure function of files on disk (a lost
worker costs only its own chunks), and costs extra kernel passes: K iterations make
K (K + 3) / 2 + 1 passes over each chunk instead of K + 1 (3 instead of 2 for the
default K = 1, 6 instead of 3 for K = 2). The extra passes are compute, not I/O: the
kernels run at memory speed, and each pass reads x and v again anyway.

Each pass reads its inputs afresh, so that a chunk read by a statistics pass is released
at once instead of being held, with every other chunk, until the filter pass after the
barrier can use it. Files (`from_npy`, ``np.memmap``) are read by the pass's own tasks,
which then hold nothing but their chunk; other inputs get new keys per pass
(``dask.graph_manipulation.bind``), so inputs computed rather than read (e.g. an STFT in
the same graph) are computed again by each pass -- ``persist()`` them first if they fit
in the cluster's memory. Graphs that Dask cannot copy (a ``rechunk`` in dask >=
2024.12) are shared between passes and held, with a warning when they are large.

Modules: ``_inputs`` checks the arguments, ``_tasks`` is what one task does, ``_graph``
builds a run's graph from them, ``_filters`` holds the three filters, ``_files`` the
``.npy`` reads and writes, ``_refine`` the batch runs.
"""

try:
    import dask.array  # noqa: F401 - here, so that a missing extra fails with this message
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "norbert.dask needs dask[array] (and dask.distributed for refine_files); "
        "install the extra: pip install 'norbert[dask]'"
    ) from exc

from norbert.dask._files import from_npy, to_npy
from norbert.dask._filters import expectation_maximization, softmask, wiener
from norbert.dask._refine import refine_files

__all__ = [
    "expectation_maximization",
    "from_npy",
    "refine_files",
    "softmask",
    "to_npy",
    "wiener",
]
