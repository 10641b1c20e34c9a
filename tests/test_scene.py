"""benchmarks/scene.py --quick: the simulated room of docs/steering.rst still runs and still
shows what the docs say (pyroomacoustics is in the [test] extra; skipped without it)."""

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyroomacoustics")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import scene  # noqa: E402


@pytest.fixture(scope="module")
def quick_run():
    return scene.main(["--quick"])


def test_oracle_covariances_beat_the_soft_mask(quick_run):
    comparison, _, _ = quick_run
    target = {name: sdrs[0] for name, sdrs in comparison.items()}
    assert target["oracle R (true images)"] > target["soft mask (no EM)"] + 0.5
    assert target["oracle R (true images)"] > target["estimated R"]


def test_mu_trades_distortion_for_noise_reduction(quick_run):
    _, mus, _ = quick_run
    distortion = [r["distortion"] for r in mus]
    assert [r["mu"] for r in mus] == list(scene.MUS)
    assert np.all(np.diff(distortion) > 0)  # more suppression, more distortion
    assert mus[-1]["residual"] < mus[0]["residual"] - 2.0


def test_the_em_climbs_its_log_likelihood(quick_run):
    _, _, curves = quick_run
    L = [r.log_likelihood for r in curves["estimated R"]]
    assert len(L) == 10 and np.all(np.diff(L) > 0)
