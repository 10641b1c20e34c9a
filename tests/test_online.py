"""OnlineWiener: the online filter against wiener, the NumPy recursion and its contract."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import reference

import norbert
from norbert import OnlineWiener
from norbert._core import _online, openmp_enabled
from norbert._core._common import pass_info


def _problem(rng, T, F, C, J, Cv=1, dtype=np.complex128, peak=None):
    x = rng.standard_normal((T, F, C)) + 1j * rng.standard_normal((T, F, C))
    if peak is not None:
        x *= peak / np.abs(x).max()
    v = rng.gamma(1.0, 1.0, (T, F, Cv, J)) * rng.gamma(2.0, 1.0, (1, F, 1, J))
    return v.astype(np.finfo(dtype).dtype), x.astype(dtype)


def _run(stream, v, x, blocks):
    """Feed the frames in blocks of the given sizes (cycled), then flush; all outputs."""
    out, t, k = [], 0, 0
    while t < x.shape[0]:
        n = blocks[k % len(blocks)]
        y = stream.process(v[t : t + n], x[t : t + n])
        assert y.shape[1:] == x.shape[1:] + (v.shape[3],)
        out.append(y)
        t, k = t + n, k + 1
    out.append(stream.flush())
    return np.concatenate(out)


@pytest.mark.parametrize("use_softmask", [True, False])
@pytest.mark.parametrize("mono_v", [True, False])
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_forget_one_with_full_lookahead_is_wiener(rng, nb_channels, mono_v, use_softmask):
    T, F, J = 25, 11, 3
    v, x = _problem(rng, T, F, nb_channels, J, Cv=1 if mono_v else nb_channels, peak=9.0)
    expected = norbert.wiener(v, x, iterations=1, use_softmask=use_softmask)
    stream = OnlineWiener(
        F, nb_channels, J, lookahead=T, forget=1.0, use_softmask=use_softmask, dtype=np.complex128
    )
    y = _run(stream, v, x, [4, 1, 9])
    assert y.dtype == np.complex128
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


@pytest.mark.parametrize("nb_channels", [1, 2])
def test_level_gives_wiener_on_a_loud_mixture(rng, nb_channels):
    T, F, J = 20, 7, 2
    v, x = _problem(rng, T, F, nb_channels, J, peak=300.0)
    expected = norbert.wiener(v, x, iterations=1)
    stream = OnlineWiener(
        F,
        nb_channels,
        J,
        lookahead=T,
        forget=1.0,
        dtype=np.complex128,
        level=float(np.abs(x).max()),
    )
    y = _run(stream, v, x, [T])
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


@pytest.mark.parametrize("level", [None, 50.0, 2.0])
@pytest.mark.parametrize("use_softmask", [True, False])
@pytest.mark.parametrize("lookahead", [0, 3])
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_matches_reference_recursion(rng, nb_channels, lookahead, use_softmask, level):
    T, F, J = 16, 6, 3
    # multichannel v: with mono v every source's first y0 y0^H has the same direction, and
    # with lookahead 0 frame 0's Cxx is singular but for sqrt(eps) I (both sides then agree
    # only to ~1e-7: the problem, not the code, loses the digits)
    v, x = _problem(rng, T, F, nb_channels, J, Cv=nb_channels, peak=40.0)
    stream = OnlineWiener(
        F,
        nb_channels,
        J,
        lookahead=lookahead,
        forget=0.8,
        use_softmask=use_softmask,
        dtype=np.complex128,
        level=level,
    )
    y = _run(stream, v, x, [1, 5])
    scale = 1.0 if level is None else 10.0 / level
    expected = reference.online_wiener(
        v, x, lookahead=lookahead, forget=0.8, use_softmask=use_softmask, scale=scale
    )
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


@pytest.mark.parametrize("dtype, rtol", [(np.complex128, 1e-10), (np.complex64, 1e-4)])
@pytest.mark.parametrize("nb_channels", [1, 2, 3, 4, 5, 6])
def test_kernels_match_reference_for_each_channel_count(rng, nb_channels, dtype, rtol):
    # bins past three tiles and a partial one: from 3 channels a thread runs tiles of
    # _online.TILE_BINS bins (_online_tile.h), whose padded lanes must stay out of the result
    T, F, J = 12, 3 * _online.TILE_BINS + 5, 3
    v, x = _problem(rng, T, F, nb_channels, J, Cv=nb_channels, dtype=dtype, peak=40.0)
    stream = OnlineWiener(F, nb_channels, J, lookahead=2, forget=0.8, dtype=dtype)
    y = _run(stream, v, x, [1, 4])
    assert y.dtype == dtype
    expected = reference.online_wiener(v, x, lookahead=2, forget=0.8)
    np.testing.assert_allclose(y, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize("lookahead", [0, 3])
def test_float32_close_to_float64_reference(rng, lookahead):
    T, F, C, J = 30, 17, 2, 4
    v, x = _problem(rng, T, F, C, J, dtype=np.complex64)
    stream = OnlineWiener(F, C, J, lookahead=lookahead, forget=0.95)
    y = _run(stream, v, x, [3])
    assert y.dtype == np.complex64
    expected = reference.online_wiener(v, x, lookahead=lookahead, forget=0.95)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("lookahead", [0, 1, 4])
def test_output_does_not_depend_on_block_sizes(rng, lookahead, dtype):
    T, F, C, J = 23, 9, 2, 3
    v, x = _problem(rng, T, F, C, J, dtype=dtype)
    results = [
        _run(OnlineWiener(F, C, J, lookahead=lookahead, dtype=dtype), v, x, blocks)
        for blocks in ([1], [7], [T], [2, 5, 1])
    ]
    assert results[0].shape == (T, F, C, J)
    for y in results[1:]:
        assert np.array_equal(y, results[0])


@pytest.mark.parametrize("lookahead", [0, 2, 5])
def test_frames_come_out_when_their_lookahead_is_given(rng, lookahead):
    T, F, C, J = 12, 5, 2, 2
    v, x = _problem(rng, T, F, C, J)
    stream = OnlineWiener(F, C, J, lookahead=lookahead)
    for t in range(T):
        y = stream.process(v[t : t + 1], x[t : t + 1])
        assert y.shape[0] == (1 if t >= lookahead else 0)
        assert stream.held == min(t + 1, lookahead)
    assert stream.flush().shape[0] == min(T, lookahead)
    assert stream.held == 0
    assert stream.flush().shape == (0, F, C, J)


@pytest.mark.parametrize("lookahead", [0, 3])
def test_causal_frame_t_ignores_frames_after_t_plus_lookahead(rng, lookahead):
    T, F, C, J = 20, 8, 2, 3
    v, x = _problem(rng, T, F, C, J)
    y = _run(OnlineWiener(F, C, J, lookahead=lookahead), v, x, [1])
    cut = 9  # frames after cut + lookahead change
    v2, x2 = v.copy(), x.copy()
    v2[cut + lookahead + 1 :] = rng.random(v2[cut + lookahead + 1 :].shape) * 5
    x2[cut + lookahead + 1 :] *= -3j
    y2 = _run(OnlineWiener(F, C, J, lookahead=lookahead), v2, x2, [4])
    assert np.array_equal(y[: cut + 1], y2[: cut + 1])
    assert not np.array_equal(y[cut + 1 :], y2[cut + 1 :])


def test_flush_keeps_the_statistics_and_reset_starts_over(rng):
    T, F, C, J = 14, 6, 2, 2
    v, x = _problem(rng, T, F, C, J)
    stream = OnlineWiener(F, C, J, lookahead=3)
    first = np.concatenate([stream.process(v[:8], x[:8]), stream.flush()])
    assert first.shape[0] == 8 and stream.frames_in == stream.frames_out == 8
    # after a flush the stream goes on with its statistics, returning each frame once
    rest = _run(stream, v[8:], x[8:], [2])
    assert rest.shape[0] == T - 8
    fresh = _run(OnlineWiener(F, C, J, lookahead=3), v[8:], x[8:], [2])
    assert not np.array_equal(rest, fresh)
    stream.reset()
    assert stream.frames_in == stream.frames_out == stream.held == 0
    assert np.array_equal(_run(stream, v[8:], x[8:], [6]), fresh)


def test_silence_gives_zeros():
    stream = OnlineWiener(5, 2, 3, lookahead=1, dtype=np.complex128)
    x = np.zeros((6, 5, 2), np.complex128)
    v = np.zeros((6, 5, 1, 3))
    y = _run(stream, v, x, [2])
    assert y.shape == (6, 5, 2, 3)
    assert np.array_equal(y, np.zeros_like(y))


@pytest.mark.parametrize(
    "v_bad, x_bad, error, match",
    [
        (lambda v: v[:, :4], None, ValueError, "nb_frames and nb_bins"),
        (None, lambda x: x[:, :4], ValueError, "nb_bins=6"),
        (None, lambda x: x[:, :, :1], ValueError, "nb_channels=2"),
        (lambda v: v[..., :1], None, ValueError, "nb_sources=2"),
        (
            lambda v: np.where(np.arange(v.size).reshape(v.shape) == 7, np.nan, v),
            None,
            ValueError,
            "non-finite",
        ),
        (
            lambda v: np.where(np.arange(v.size).reshape(v.shape) == 9, -1.0, v),
            None,
            ValueError,
            "negative",
        ),
        (
            None,
            lambda x: np.where(np.arange(x.size).reshape(x.shape) == 3, np.inf, x),
            ValueError,
            "non-finite",
        ),
        (None, lambda x: x.real, TypeError, "complex"),
        (lambda v: v[0], None, ValueError, "4-dimensional"),
        (lambda v: v.astype(np.complex128), None, TypeError, "real"),
    ],
)
def test_bad_block_raises_and_leaves_the_stream_unchanged(rng, v_bad, x_bad, error, match):
    T, F, C, J = 10, 6, 2, 2
    v, x = _problem(rng, T, F, C, J)
    expected = _run(OnlineWiener(F, C, J, lookahead=2), v, x, [3])
    stream = OnlineWiener(F, C, J, lookahead=2)
    out = [stream.process(v[:3], x[:3])]
    vb, xb = v[3:6], x[3:6]
    with pytest.raises(error, match=match):
        stream.process(v_bad(vb) if v_bad else vb, x_bad(xb) if x_bad else xb)
    assert (stream.frames_in, stream.frames_out) == (3, 1)
    out += [stream.process(v[3:6], x[3:6]), stream.process(v[6:], x[6:]), stream.flush()]
    assert np.array_equal(np.concatenate(out), expected)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"forget": 0.0}, ValueError, r"forget must be in \(0, 1\]"),
        ({"forget": 1.5}, ValueError, r"forget must be in \(0, 1\]"),
        ({"forget": "0.9"}, TypeError, "forget"),
        ({"lookahead": -1}, ValueError, "lookahead must be >= 0"),
        ({"lookahead": 1.5}, TypeError, "lookahead"),
        ({"dtype": np.float64}, TypeError, "dtype"),
        ({"dtype": "nonsense"}, TypeError, "dtype"),
        ({"eps": -1.0}, ValueError, "eps"),
        ({"level": 0.0}, ValueError, "level"),
        ({"workers": 0}, ValueError, "workers"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        OnlineWiener(8, 2, 3, **kwargs)


@pytest.mark.parametrize("shape", [(0, 2, 3), (8, 0, 3), (8, 2, 0), (8.0, 2, 3)])
def test_bad_stream_shape(shape):
    with pytest.raises((TypeError, ValueError)):
        OnlineWiener(*shape)


def test_inputs_not_modified_and_read_only_accepted(rng):
    T, F, C, J = 8, 5, 2, 2
    v, x = _problem(rng, T, F, C, J, dtype=np.complex64)
    v0, x0 = v.copy(), x.copy()
    v.flags.writeable = x.flags.writeable = False
    y = _run(OnlineWiener(F, C, J, lookahead=1), v, x, [3])
    assert y.shape == (T, F, C, J)
    assert np.array_equal(v, v0) and np.array_equal(x, x0)


def test_instances_in_threads_match_sequential(rng):
    T, F, C, J = 40, 64, 2, 3
    problems = [_problem(rng, T, F, C, J) for _ in range(4)]
    sequential = [_run(OnlineWiener(F, C, J, lookahead=2), v, x, [1]) for v, x in problems]
    results = [None] * len(problems)

    def work(i):
        v, x = problems[i]
        results[i] = _run(OnlineWiener(F, C, J, lookahead=2, workers=1), v, x, [1])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(problems))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for y, expected in zip(results, sequential):
        assert np.array_equal(y, expected)


def test_one_frame_runs_on_one_thread_without_a_parallel_region(rng):
    F, C, J = 2049, 2, 4
    assert F * C * J < _online.parallel_threshold()
    v, x = _problem(rng, 3, F, C, J, dtype=np.complex64)
    stream = OnlineWiener(F, C, J, workers=2)
    regions = pass_info()[1]
    for t in range(3):
        stream.process(v[t : t + 1], x[t : t + 1])
        assert pass_info()[0] == 1
    assert pass_info()[1] == regions


@pytest.mark.parametrize("C", [2, 6])
def test_large_blocks_use_threads_with_the_same_bits(rng, C):
    # 300 bins split in two is not a whole number of tiles: lanes must not matter
    T, F, J = 40, 300, 4
    assert T * F * C * J >= _online.parallel_threshold()
    v, x = _problem(rng, T, F, C, J)
    one = _run(OnlineWiener(F, C, J, lookahead=2, workers=1), v, x, [T])
    two = OnlineWiener(F, C, J, lookahead=2, workers=2)
    y = two.process(v, x)
    if openmp_enabled():
        assert pass_info()[0] == 2
    assert np.array_equal(one, np.concatenate([y, two.flush()]))


def test_repr_and_attributes():
    stream = OnlineWiener(8, 2, 3, lookahead=4, forget=0.9)
    assert stream.eps == np.finfo(np.float32).eps
    assert stream.dtype == np.complex64
    assert "lookahead=4" in repr(stream)


@pytest.mark.parametrize("arg", ["v", "x"])
@pytest.mark.parametrize(
    "kind, error",
    [
        ("None", TypeError),
        ("float", TypeError),
        ("object-array", TypeError),
        ("bool-array", TypeError),
        ("0d-array", ValueError),
        ("nan", ValueError),
        ("list", None),
    ],
)
def test_process_applies_the_array_policies(rng, arg, kind, error):
    # the kinds of tests/test_validation.py's table, for process's two arrays
    T, F, C, J = 4, 3, 2, 2
    v, x = _problem(rng, T, F, C, J)
    a = {"v": v, "x": x}[arg]
    bad = {
        "None": None,
        "float": 1.5,
        "object-array": a.astype(object),
        "bool-array": a.real > 0,
        "0d-array": np.array(a.flat[0]),
        "nan": np.where(np.arange(a.size).reshape(a.shape) == 5, np.nan, a),
        "list": a.tolist(),
    }[kind]
    args = {"v": v, "x": x, arg: bad}
    stream = OnlineWiener(F, C, J, lookahead=1, dtype=np.complex128)
    if error is None:
        y = np.concatenate([stream.process(args["v"], args["x"]), stream.flush()])
        assert np.array_equal(
            y, _run(OnlineWiener(F, C, J, lookahead=1, dtype=np.complex128), v, x, [T])
        )
        return
    with pytest.raises(error, match=rf"\b{arg}\b"):
        stream.process(args["v"], args["x"])
    assert stream.frames_in == 0


def test_zero_frames_give_an_empty_result(rng):
    stream = OnlineWiener(3, 2, 2, lookahead=1)
    v, x = _problem(rng, 0, 3, 2, 2, dtype=np.complex64)
    assert stream.process(v, x).shape == (0, 3, 2, 2)
    assert stream.frames_in == 0


def _bins_layout_stream(v, x, lookahead, forget, eps):
    """The stream through the public kernels' entries, with the documented (bins, J, C, C, 2)
    sums: process for every other frame, accumulate_frame + filter_frame for the others."""
    T, F, C = x.shape
    J, L1 = v.shape[3], lookahead + 1
    Rnum, weight = np.zeros((F, J, C, C, 2)), np.zeros((F, J))
    x_ring, P_ring = np.zeros((L1, F, C), x.dtype), np.zeros((L1, F, J), v.dtype)
    work = np.empty((2, _online.work_columns(C, J)))
    mode = int(norbert._core.Estimate.SOFTMASK)
    out = []
    for t in range(T):
        if t % 2 == 0:
            y = np.empty((1 if t >= lookahead else 0, F, C, J), x.dtype)
            status = _online.process(
                mode, x[t : t + 1], v[t : t + 1], 1.0, eps, forget, 1.0, t,
                max(0, t - lookahead), x_ring, P_ring, Rnum, weight, y, work, 2,
            )  # fmt: skip
        else:
            x_ring[t % L1] = x[t]
            status = _online.accumulate_frame(
                mode, x[t], v[t], 1.0, eps, forget, P_ring[t % L1], Rnum, weight, work, 2
            )
            assert status == 0
            y = np.empty((1 if t >= lookahead else 0, F, C, J), x.dtype)
            if t >= lookahead:
                s = (t - lookahead) % L1
                status = _online.filter_frame(
                    x_ring[s], P_ring[s], Rnum, weight, 1.0, eps, 1.0, y[0], work, 2
                )
        assert status == 0
        out.append(y)
    for s in range(T - lookahead, T):
        y = np.empty((1, F, C, J), x.dtype)
        status = _online.filter_frame(
            x_ring[s % L1], P_ring[s % L1], Rnum, weight, 1.0, eps, 1.0, y[0], work, 2
        )
        assert status == 0
        out.append(y)
    return np.concatenate(out)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("nb_channels", [3, 6])
def test_public_kernels_give_the_bits_of_the_stream(rng, nb_channels, dtype):
    # OnlineWiener keeps 3+ channels' sums tile by tile; the C API's kernels keep the
    # documented layout and copy tiles in and out: the same arithmetic, the same bits
    T, F, J = 9, 2 * _online.TILE_BINS + 3, 3
    v, x = _problem(rng, T, F, nb_channels, J, Cv=nb_channels, dtype=dtype, peak=10.0)
    stream = OnlineWiener(F, nb_channels, J, lookahead=2, forget=0.9, dtype=dtype)
    expected = _run(stream, v, x, [1])
    assert np.array_equal(_bins_layout_stream(v, x, 2, 0.9, stream.eps), expected)


# A child prints the online tile kernels' instruction set and a digest of streams through
# them (silent points and the phase estimate included).
_ISA_SCRIPT = """
import hashlib, numpy as np, norbert
from norbert._core import _online
rng = np.random.default_rng(7)
h = hashlib.sha256()
for C in (3, 6):
    for dtype in (np.complex128, np.complex64):
        x = (rng.standard_normal((12, 37, C)) + 1j * rng.standard_normal((12, 37, C)))
        v = rng.random((12, 37, C, 3))
        v[3, :20] = 0.0
        for use_softmask in (True, False):
            s = norbert.OnlineWiener(37, C, 3, lookahead=1, use_softmask=use_softmask,
                                     dtype=dtype)
            h.update(s.process(v, x).tobytes())
            h.update(s.flush().tobytes())
print(_online.isa(), h.hexdigest())
"""


def test_every_instruction_set_gives_the_same_bits():
    def run(isa):
        env = {k: val for k, val in os.environ.items() if k != "NORBERT_ISA"}
        if isa is not None:
            env["NORBERT_ISA"] = isa
        out = subprocess.run(
            [sys.executable, "-c", _ISA_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return out.stdout.split()

    runs = {isa: run(isa) for isa in ("base", "avx2", None)}
    assert runs["base"][0] == "base"
    assert runs["base"][1] == runs["avx2"][1] == runs[None][1], runs
