"""The graph of a run: one map-reduce per EM iteration, then the filter pass (lazy)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import dask.array as da
import dask.core
import numpy as np
from dask.base import tokenize
from dask.blockwise import Blockwise
from dask.graph_manipulation import bind
from dask.highlevelgraph import MaterializedLayer

from norbert._validation import real_dtype
from norbert.dask import _tasks
from norbert.dask._files import FILES, graph_name
from norbert.dask._inputs import aligned, indices, merged_channels

# Inputs that must be held between passes (see pass_inputs) warn above this size.
_HELD_WARNING_BYTES = 256 << 20


@dataclass(frozen=True)
class Run:
    """The parameters of one run, the same for every task of its graph.

    Small and frozen: Dask pickles it into every task, and the graph's names are tokens
    of it.
    """

    func: str  # the public function, named in error messages
    mode: int  # the initial estimate (Estimate.SOFTMASK, PHASE or GIVEN)
    cdtype: np.dtype  # x's complex precision, the one the kernels compute in
    eps: float
    workers: int | None  # threads per task, resolved on the worker that runs it
    logit: float = -1.0  # softmask's threshold (-1: none)
    iterations: int = 0
    split_every: int | dict | None = None  # fan-in of the tree reductions


def mixture_scale(x, cdtype, split_every):
    """The scale wiener applies to x, a 0-d array: a pass over x before the EM's."""
    template = merged_channels(x)
    t_index, f_index = indices(template)
    source = FILES.source(x)
    per_chunk = da.blockwise(
        _tasks.max_abs2_task,
        "tf",
        *((source, None) if source is not None else (template, "tfc")),
        t_index,
        "t",
        f_index,
        "f",
        adjust_chunks={"t": 1, "f": 1},
        concatenate=False,
        dtype=np.float64,
        meta=np.empty((0, 0), np.float64),
        name=graph_name("max-abs2", x.name),
        cdtype=cdtype,
    )
    m = per_chunk.max(split_every=split_every)  # a maximum: exact in any order
    return m.map_blocks(
        _tasks.scale_task,
        dtype=np.float64,
        meta=np.empty((), np.float64),
        name=graph_name("scale", m.name),
    )


def _task_args(x, v, y, t_index, f_index, scale, Rs):
    """blockwise's (argument, index) pairs: dask arrays by index, files and None as values."""
    args = []
    for a, index in ((x, "tfc"), (v, "tfwj"), (y, "tfcj")):
        args += [a, index] if isinstance(a, da.Array) else [a, None]
    args += [t_index, "t", f_index, "f"]
    args += [None, None] if scale is None else [scale, ()]
    for R in Rs:
        args += [R, "fjabr"]
    return args


def _new_axes(out_index, args, sizes):
    """Axes of out_index that no array argument carries (their inputs are files)."""
    present = set()
    for index in args[1::2]:
        present.update(index or ())
    return {i: sizes[i] for i in out_index if i not in present}


def _refers_to_keys(task, graph):
    """Whether task is a Task object (dask >= 2024.12) that refers to other keys of graph.

    dask.graph_manipulation rewrites the keys inside tuple tasks, but not those inside
    Task objects of materialised layers: it would leave them pointing to the old keys.
    dask.core's istask and keys_in_tasks (public) tell them apart and find their keys;
    before 2024.12 every task is a tuple, and this is always False.
    """
    if isinstance(task, tuple) or not dask.core.istask(task):
        return False
    return bool(dask.core.keys_in_tasks(graph, [task]))


def cloneable(a):
    """Whether dask.graph_manipulation can give a's graph new keys.

    It can for Blockwise layers (from_npy, da.from_array, da.from_zarr, elementwise
    operations) and for layers of data or of tasks in tuple form, but not for
    materialised layers of Task objects (e.g. a rechunk in dask >= 2024.12).
    """
    graph = a.__dask_graph__()
    for layer in graph.layers.values():
        if isinstance(layer, Blockwise):
            continue
        if isinstance(layer, MaterializedLayer) and not any(
            _refers_to_keys(task, graph) for task in layer.mapping.values()
        ):
            continue
        return False
    return True


def pass_inputs(inputs, parent, seed):
    """The inputs of one pass, each read afresh by the pass where possible.

    A pass that shared its input chunks with the pass before the barrier would make Dask
    hold every chunk of x and v until after the barrier. Files (from_npy, np.memmap) are
    read by the pass's tasks themselves: no separate read task, nothing to hold. Other
    inputs get new keys bound to parent (dask.graph_manipulation.bind), so they are read or
    computed again once parent is done; those whose graph cannot be copied (cloneable)
    are shared, and then held: read them with from_npy (or da.from_zarr), or persist them.
    """
    files = [FILES.source(a) for a in inputs]
    live = [a for a, f in zip(inputs, files) if a is not None and f is None]
    fresh = live
    if parent is not None and live:
        if all(cloneable(a) for a in live):
            fresh = bind(live, parent, seed=seed)
        else:
            nbytes = sum(a.nbytes for a in live)
            if nbytes > _HELD_WARNING_BYTES:
                warnings.warn(
                    f"norbert.dask: the inputs ({nbytes / 2**20:.0f} MiB) cannot be read "
                    "afresh by each pass (their graph has layers Dask cannot copy, e.g. a "
                    "rechunk), so their chunks are held in memory between passes; read "
                    "them with norbert.dask.from_npy or da.from_zarr in the chunks you "
                    "want, or persist them",
                    stacklevel=4,
                )
    fresh = iter(fresh)
    return [
        f if f is not None else (None if a is None else next(fresh)) for a, f in zip(inputs, files)
    ]


def em_graph(x, v, y, run, scale=None, with_psd=False):
    """R_1 .. R_K by K = run.iterations map-reduce passes, then the filter pass.

    x, v, y as given (v for SOFTMASK and PHASE, y for GIVEN, the other None); each pass
    aligns its own copy. scale: the 0-d array of mixture_scale, or None (no scaling).
    Returns (y, P or None, [R_1 .. R_K]); P (the PSDs of the last filter) with_psd.
    """
    C = x.shape[2]
    J = (v if y is None else y).shape[3]
    token = tokenize(x.name, None if v is None else v.name, None if y is None else y.name, run)
    template = merged_channels(x)  # the chunks of frames and bins of every pass
    t_index, f_index = indices(template)
    sizes = {"c": C, "j": J, "s": 2 * C * C + 1}
    Rs = []
    parent = scale
    for k in range(run.iterations + 1):
        xk, vk, yk = pass_inputs([x, v, y], parent, seed=(token, k))
        if isinstance(xk, da.Array):
            xk = merged_channels(xk)
        vk, yk = aligned(template, vk, yk)
        args = _task_args(xk, vk, yk, t_index, f_index, scale, Rs)
        if k == run.iterations:
            break
        partial = da.blockwise(
            _tasks.stats_task,
            "tfjs",
            *args,
            new_axes=_new_axes("tfjs", args, sizes),
            adjust_chunks={"t": 1},
            concatenate=False,
            dtype=np.float64,
            meta=np.empty((0, 0, 0, 0), np.float64),
            name=graph_name(f"stats{k}", token),
            run=run,
        )
        sums = partial.sum(axis=0, split_every=run.split_every)
        R = da.blockwise(
            _tasks.finalize_task,
            "fjabr",
            sums,
            "fjs",
            new_axes={"a": C, "b": C, "r": 2},
            concatenate=False,
            dtype=np.float64,
            meta=np.empty((0,) * 5, np.float64),
            name=graph_name(f"covariance{k}", token),
            nb_channels=C,
            run=run,
        )
        Rs.append(R)
        parent = R
    if not with_psd:
        y_out = da.blockwise(
            _tasks.filter_task,
            "tfcj",
            *args,
            new_axes=_new_axes("tfcj", args, sizes),
            concatenate=False,
            dtype=run.cdtype,
            meta=np.empty((0,) * 4, run.cdtype),
            name=graph_name("filter", token),
            run=run,
        )
        return y_out, None, Rs
    rdtype = real_dtype(run.cdtype)
    pair = da.blockwise(
        _tasks.filter_task,
        "tfj",
        *args,
        new_axes=_new_axes("tfj", args, sizes),
        concatenate=False,
        dtype=rdtype,
        meta=np.empty((0, 0, 0), rdtype),
        name=graph_name("filter-psd", token),
        with_psd=True,
        run=run,
    )
    y_out = pair.map_blocks(
        _tasks.pick,
        0,
        new_axis=2,
        chunks=template.chunks[:2] + ((C,), (J,)),
        dtype=run.cdtype,
        meta=np.empty((0,) * 4, run.cdtype),
        name=graph_name("y", token),
    )
    P = pair.map_blocks(
        _tasks.pick, 1, dtype=rdtype, meta=np.empty((0,) * 3, rdtype), name=graph_name("psd", token)
    )
    return y_out, P, Rs
