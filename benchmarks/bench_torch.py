"""Timings of norbert from PyTorch: tensors in/out, and open-unmix's Separator patched.

    pip install torch==2.13.0 && pip install openunmix==1.3.0 --no-deps
    python benchmarks/bench_torch.py              # about 3 minutes on 2 cores

1. ``norbert.wiener(iterations=1)`` on the song workload, x (7752, 2049, 2) complex64 and
   v (7752, 2049, 2, 4) float32, NumPy arrays vs CPU tensors in and out: median of 7
   alternated calls, and the peak memory of a fresh process doing one call each way.
2. open-unmix's ``Separator`` (4 randomly initialised ``OpenUnmix`` models, n_fft 4096,
   hop 1024, 300-frame Wiener windows, ``niter=1``) on a 60 s stereo track at 44.1 kHz
   (float32): whole separation and time spent in the filter, with open-unmix's filter and
   under ``norbert.compat.openunmix.patched()``.
3. The compat layer vs a plain ``norbert.wiener`` call on the same data (one 300-frame
   window and the whole track).
4. The batch axis: 16 windows of 300 frames (stereo, 4 sources, 2049 bins, complex64,
   ``iterations=1``) in one ``norbert.wiener`` call vs a Python loop of 16 calls (results
   stacked, as a loop usually ends, and written into one ``out=`` array): medians of 5
   alternated rounds. Needs no torch.

Every part runs with ``--threads`` threads (default 2) for torch and norbert.
"""

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types


def _median_time(func, repeat=7):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


SONG_FRAMES = 7752  # the 3-minute song of benchmarks/_workloads.py (n_fft 4096, hop 1024)


def _inputs(frames=300):
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (frames, 2049, 2)
    x = np.empty(shape, np.complex64)  # filled in float32: no float64 temporaries
    rng.standard_normal(
        shape + (2,), dtype=np.float32, out=x.view(np.float32).reshape(shape + (2,))
    )
    v = rng.random(shape + (4,), dtype=np.float32)
    return v, x


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _memory_child(kind, threads, frames=SONG_FRAMES):
    """One call in this (fresh) process; prints its peak resident memory, in MB.

    ``peak_mb`` is ``ru_maxrss`` (the process's peak, imports included); ``call_mb`` is
    the peak during the call beyond the resident memory just before it (Linux: the
    high-water mark VmHWM is reset through /proc/self/clear_refs before the call).
    """
    import numpy as np
    import torch

    import norbert

    v, x = _inputs(frames)
    if kind == "torch":
        v, x = torch.from_numpy(v), torch.from_numpy(x)
    norbert.wiener(v[:2], x[:2], iterations=1, workers=threads)  # load the kernels
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = _status_kb("VmRSS")
    y = norbert.wiener(v, x, iterations=1, workers=threads)
    call = _status_kb("VmHWM") - before
    assert type(y).__module__.startswith("torch" if kind == "torch" else "numpy")
    print(
        json.dumps(
            {
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "call_mb": call / 1024,
                "output_mb": float(np.prod(y.shape) * 8 / 2**20),
            }
        )
    )


def tensors_vs_arrays(threads, frames=SONG_FRAMES):
    import torch

    import norbert

    v, x = _inputs(frames)
    tv, tx = torch.from_numpy(v), torch.from_numpy(x)
    times = {"numpy": [], "torch": []}
    norbert.wiener(v, x, iterations=1, workers=threads)  # warm up
    for _ in range(7):  # alternated, so that drifts of the machine hit both alike
        for kind, (vv, xx) in (("numpy", (v, x)), ("torch", (tv, tx))):
            times[kind].append(_median_time(lambda: norbert.wiener(vv, xx, 1, workers=threads), 1))  # noqa: B023
    t_numpy, t_torch = (statistics.median(times[k]) for k in ("numpy", "torch"))
    memory = {}
    for kind in ("numpy", "torch"):
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-child", kind, "--threads", str(threads)],
            capture_output=True,
            text=True,
            check=True,
        )
        memory[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"numpy_s": t_numpy, "torch_s": t_torch, "memory": memory}


def batch_vs_loop(threads, windows=16):
    import numpy as np

    import norbert

    v1, x1 = _inputs()
    rng = np.random.default_rng(1)
    # distinct windows of distinct levels: every element has its own covariances and scale
    gains = rng.uniform(0.5, 2.0, windows).astype(np.float32)
    x = np.stack([x1 * g for g in gains])
    v = np.stack([v1[::-1] * g for g in gains]) if windows > 1 else v1[None]

    def batch():
        return norbert.wiener(v, x, 1, workers=threads)

    def loop_stacked():
        return np.stack([norbert.wiener(v[b], x[b], 1, workers=threads) for b in range(windows)])

    def loop_out():
        out = np.empty(x.shape + (v.shape[-1],), x.dtype)
        for b in range(windows):
            norbert.wiener(v[b], x[b], 1, workers=threads, out=out[b])
        return out

    calls = {"batch": batch, "loop_stacked": loop_stacked, "loop_out": loop_out}
    assert np.array_equal(batch(), loop_out())  # the same bits, element by element
    times = {k: [] for k in calls}
    for _ in range(5):  # alternated, so that drifts of the machine hit all alike
        for k, f in calls.items():
            times[k].append(_median_time(f, 1))
    result = {k + "_s": statistics.median(t) for k, t in times.items()}
    result["loop_stacked_over_batch"] = result["loop_stacked_s"] / result["batch_s"]
    result["loop_out_over_batch"] = result["loop_out_s"] / result["batch_s"]
    return result


def _openunmix():
    """openunmix.model and .filtering, with a stub torchaudio when it is missing."""
    try:
        import torchaudio  # noqa: F401
    except ImportError:
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    import openunmix.filtering
    import openunmix.model

    return openunmix


class _FilterTimer:
    """Wraps openunmix.model.wiener (whatever it is at call time) and adds up its time."""

    def __init__(self, module):
        self.module, self.total, self.calls = module, 0.0, []

    def __enter__(self):
        inner = self.module.wiener

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            out = inner(*args, **kwargs)
            self.total += time.perf_counter() - t0
            self.calls.append((args[0], args[1]))
            return out

        self.inner, self.module.wiener = inner, timed
        return self

    def __exit__(self, *exc):
        self.module.wiener = self.inner


def separator(threads, seconds):
    import torch

    from norbert.compat import openunmix as nc

    ou = _openunmix()
    torch.manual_seed(0)
    models = {
        name: ou.model.OpenUnmix(nb_bins=2049, nb_channels=2).eval()
        for name in ("vocals", "drums", "bass", "other")
    }
    sep = ou.model.Separator(models, niter=1).eval()
    audio = torch.randn(1, 2, int(44100 * seconds)) * 0.1
    results = {}
    with torch.no_grad():
        sep(audio[..., :44100])  # warm up both paths
        with nc.patched():
            sep(audio[..., :44100])
        best = {}
        for _ in range(3):  # alternated, so that drifts of the machine hit both alike
            for label in ("openunmix", "norbert"):
                with nc.patched() if label == "norbert" else _null():
                    with _FilterTimer(ou.model) as timer:
                        t0 = time.perf_counter()
                        estimates = sep(audio)
                        total = time.perf_counter() - t0
                if label not in best or total < best[label][0]:
                    best[label] = (total, timer.total, len(timer.calls))
                results[label + "_estimates"] = estimates
        for label, (total, filter_s, calls) in best.items():
            results[label] = {"separation_s": total, "filter_s": filter_s, "filter_calls": calls}
        results["filter_speedup"] = best["openunmix"][1] / best["norbert"][1]
        diff = torch.linalg.vector_norm(
            results["norbert_estimates"] - results["openunmix_estimates"]
        )
        ref = torch.linalg.vector_norm(results["openunmix_estimates"])
        results["relative_difference"] = float(diff / ref)
        del results["norbert_estimates"], results["openunmix_estimates"]

        # 3. compat layer vs plain norbert.wiener on the Separator's own filter inputs
        import norbert

        sep.wiener_win_len = None  # one call over the whole track
        with _FilterTimer(ou.model) as timer:
            sep(audio)
        v_all, mix_all = timer.calls[0]
        for label, (v, mix) in {
            "window_300": (v_all[:300], mix_all[:300]),
            "whole_track": (v_all, mix_all),
        }.items():
            x = torch.view_as_complex(mix.contiguous()).numpy()
            vn = v.numpy()
            calls = {
                "compat_s": lambda: nc.wiener(v, mix, 1),  # noqa: B023
                "norbert_wiener_s": lambda: norbert.wiener(vn, x, 1, use_softmask=False,  # noqa: B023
                                                           eps=1e-10),
            }
            times = {k: [] for k in calls}
            for _ in range(7):  # alternated, as above
                for k, f in calls.items():
                    times[k].append(_median_time(f, 1))
            results[label] = {"frames": int(v.shape[0])}
            results[label].update({k: statistics.median(t) for k, t in times.items()})
            results[label]["compat_over_wiener"] = (
                results[label]["compat_s"] / results[label]["norbert_wiener_s"])
    return results


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--memory-child", choices=["numpy", "torch"])
    parser.add_argument("--skip-separator", action="store_true")
    parser.add_argument("--batch-only", action="store_true", help="part 4 only (no torch)")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.batch_only:
        print(json.dumps({"threads": args.threads, "batch_vs_loop": batch_vs_loop(args.threads)},
                         indent=1))
        return
    import torch

    torch.set_num_threads(args.threads)
    if args.memory_child:
        return _memory_child(args.memory_child, args.threads)
    report = {"threads": args.threads, "torch": torch.__version__}
    report["tensors_vs_arrays"] = tensors_vs_arrays(args.threads)
    report["batch_vs_loop"] = batch_vs_loop(args.threads)
    print(json.dumps(report, indent=1), flush=True)
    if not args.skip_separator:
        if importlib.util.find_spec("openunmix") is None:
            print("open-unmix is not installed: pip install openunmix==1.3.0 --no-deps")
        else:
            report["separator"] = separator(args.threads, args.seconds)
            print(json.dumps(report["separator"], indent=1))


if __name__ == "__main__":
    main()
