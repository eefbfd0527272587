"""An unstable or too small bootstrap is a finding: counts, effort limit, verdict gates, progress, spawn.

Expected values are closed forms: the probability that a resample misses given rows, the
minimum-resample rule of ``minimum_resamples`` (Davison & Hinkley 1997; Efron & Tibshirani 1993),
the effort limit the engine promises, and bit-identity across process start methods.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from references import PD_MODEL, load_csv

import sem_upgrade.bootstrap as sb
from sem_upgrade.bootstrap import (
    bootstrap,
    indirect_results,
    mediation_type,
    resample_plan,
)
from sem_upgrade.engine.fit import fit_model

SIM_MODEL = """
X =~ x1 + x2 + x3
M =~ m1 + m2 + m3
Y =~ y1 + y2 + y3
M ~ X
Y ~ M + X
"""
SIM_CHAIN = {"H": ("X", "M", "Y")}


def _ill_conditioned(n=60, seed=0):
    """M strongly tied to X (standardized path ~ .9) and an item of Y that differs from 0 in two
    rows only (a near-constant item: an ill-conditioned covariance matrix): a resample that
    draws neither row has a constant y3 and a singular covariance matrix, with probability
    (1 - 2/n)^n = (58/60)^60 = 0.131."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=n)
    M = 0.9 * X + 0.44 * rng.normal(size=n)
    Y = 0.5 * M + rng.normal(size=n) * 0.8
    d = {}
    for name, f in (("x", X), ("m", M), ("y", Y)):
        for k in (1, 2, 3):
            d[f"{name}{k}"] = f + 0.5 * rng.normal(size=n)
    d["y3"] = np.r_[1.0, -1.0, np.zeros(n - 2)] + 1e-3 * Y
    d["y3"][2:] = 0.0
    return pd.DataFrame(d)


@pytest.fixture(scope="module")
def unstable():
    data = _ill_conditioned()
    fit = fit_model(SIM_MODEL, data)
    # 80% intervals: 249 resamples are enough to judge (minimum_resamples), so instability is the reason
    return fit, bootstrap(fit, data, 250, seed=1, indirect=SIM_CHAIN, level=0.80, n_jobs=1, progress=False)


def test_unstable_bootstrap_judges_no_hypothesis(unstable):
    fit, boot = unstable
    # about 33 of 250 resamples have a singular S (binomial sd ~ 5.3), far above the 5% threshold
    assert 17 <= boot.n_failed <= 55 and boot.n_ok + boot.n_failed == 250
    assert boot.unstable
    s = boot.summary("percentile")
    assert (s["n_requested"], s["n_ok"], s["n_failed"], s["seed"]) == (250, boot.n_ok, boot.n_failed, 1)
    assert s["failure_threshold"] == 0.05 and s["unstable"] is True and s["interval_for_hypotheses"] == "percentile"
    rows, reasons, extra = indirect_results(boot, fit, SIM_CHAIN, "percentile")
    assert reasons["H"] == f"not tested: the bootstrap is unstable ({boot.n_failed} of 250 resamples failed)"
    assert np.isfinite(rows["H"]["ci_lower"]) and np.isfinite(rows["H"]["ci_upper"])  # still given, marked
    assert extra["H"]["interval_note"].startswith("interval not used: the bootstrap is unstable")
    assert extra["H"]["mediation_type"] is None
    # a threshold above the failure share: no longer unstable, but the fitted resamples are
    # fewer than the 249 an 80% percentile interval needs, and the reason says so
    lenient = dataclasses.replace(boot, max_failure=0.5)
    assert not lenient.unstable
    assert indirect_results(lenient, fit, SIM_CHAIN, "percentile")[1]["H"] == (
        f"not tested: only {boot.n_ok} of 250 resamples fitted; the 80% percentile interval needs at least 249")


def test_failing_resamples_cost_at_most_the_effort_limit(monkeypatch):
    # Force every batch to come back unsettled: each resample then gets its second chance alone,
    # which may spend at most effort_limit = 3 x max(full-sample iterations, 20) iterations, and
    # still reaches the same optimum as the batch.
    data = load_csv("political_democracy.csv")
    fit = fit_model(PD_MODEL, data)
    ref = bootstrap(fit, data, 8, seed=2, n_jobs=1, progress=False)
    real = sb.quasi_newton
    batch_iters = []

    def unsettled(*args, **kwargs):
        th, f, conv, iters = real(*args, **kwargs)
        batch_iters.append(iters.copy())
        return th, f, np.zeros_like(conv), iters

    monkeypatch.setattr(sb, "quasi_newton", unsettled)
    res = bootstrap(fit, data, 8, seed=2, n_jobs=1, progress=False)
    assert res.effort_limit == 3 * max(fit.iterations, 20)
    second = res.iterations - np.concatenate(batch_iters)
    assert (second >= 1).all() and (second <= res.effort_limit).all()
    assert res.n_ok == 8
    assert_allclose(res.draws.to_numpy(), ref.draws.to_numpy(), rtol=0, atol=1e-6)
    # with no budget at all, the second chance cannot run: every resample fails and is counted
    monkeypatch.setattr(sb, "_EFFORT", 0)
    with pytest.raises(sb.SemUpgradeError, match="none of the 8 resamples could be fitted"):
        bootstrap(fit, data, 8, seed=2, n_jobs=1, progress=False)


def test_too_few_resamples_for_the_interval_asked_are_not_tested():
    # --bootstrap 2 --ci bc: both resamples fit, and the reason says so (Issue: it said
    # "no resample could be fitted" while 2 of 2 were fitted)
    data = load_csv("political_democracy.csv")
    fit = fit_model(PD_MODEL, data)
    chain = {"H": ("ind60", "dem60", "dem65")}
    boot = bootstrap(fit, data, 2, seed=3, indirect=chain, n_jobs=1, progress=False)
    assert boot.n_ok == 2
    _, reasons, _ = indirect_results(boot, fit, chain, "bc")
    assert reasons["H"] == "not tested: 2 resamples requested (2 fitted); the 95% BC interval needs at least 1000"
    _, reasons, _ = indirect_results(boot, fit, chain, "percentile")
    assert reasons["H"] == "not tested: 2 resamples requested (2 fitted); the 95% percentile interval needs at least 999"


def test_pipeline_tiny_bc_bootstrap_count_and_reason_agree(tmp_path):
    from sem_upgrade import pipeline
    res = pipeline.run(outdir=tmp_path, bootstrap=2, ci="bc", progress=False, formats=("md",))
    b = res["bootstrap"]
    assert (b["n_requested"], b["n_ok"], b["interval_for_hypotheses"], b["minimum_resamples"]) == (2, 2, "bc", 1000)
    assert b["unstable"] is False and b["failure_threshold"] == 0.05 and b["seed"] == 2012
    indirect = [h for h in res["hypotheses"] if h["kind"] == "indirect"]
    assert indirect
    for h in indirect:
        assert h["method"] == "bootstrap-bc" and h["supported"] is False
        assert h["reason"] == "not tested: 2 resamples requested (2 fitted); the 95% BC interval needs at least 1000"
    assert all("mediation_type" in r and r["mediation_type"] is None for r in res["indirect"])
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert ("Bootstrap: 2 of 2 resamples fitted, 0 failed, 0 inadmissible (kept); seed 2012; hypotheses judged "
            "by the bias-corrected interval.") in text
    assert ("Intervals marked † judge no hypothesis: 2 resamples requested (2 fitted); the 95% BC interval needs "
            "at least 1000.") in text and "] †" in text


@pytest.mark.parametrize("ind,direct,est,expected", [
    ((0.1, 0.5), (0.2, 0.6), (0.3, 0.4), ("partial complementary", "complementary")),
    ((0.1, 0.5), (-0.6, -0.2), (0.3, -0.4), ("partial competitive", "competitive")),
    ((0.1, 0.5), (-0.1, 0.6), (0.3, 0.2), ("full", "indirect-only")),
    ((-0.1, 0.5), (0.2, 0.6), (0.2, 0.4), ("no mediation", "direct-only")),
    ((-0.1, 0.5), (-0.2, 0.6), (0.2, 0.2), ("no mediation", "no-effect")),
])
def test_mediation_type_zhao_lynch_chen(ind, direct, est, expected):
    # Zhao, Lynch & Chen (2010, Figure 2): the decision tree on a*b, c' and the sign of a*b*c'
    assert mediation_type(ind, direct, *est) == expected


def test_resample_counts_are_drawn_per_batch_within_memory():
    # 2000 resamples of 1,000,000 rows: never a 2000 x 1e6 index matrix; batches of 20 resamples
    # (20e6 counts, 160 MB), the same plan whatever the number of processes
    plan = resample_plan(2012, 2000, 1_000_000)
    assert sum(size for _, size in plan) == 2000 and max(size for _, size in plan) == 20
    assert [s for _, s in resample_plan(2012, 250, 218)] == [100, 100, 50]


def test_spawn_workers_give_the_same_bits():
    data = load_csv("political_democracy.csv")
    fit = fit_model(PD_MODEL, data)
    chain = {"H": ("ind60", "dem60", "dem65")}
    one = bootstrap(fit, data, 400, seed=5, indirect=chain, n_jobs=1, progress=False)
    spawned = bootstrap(fit, data, 400, seed=5, indirect=chain, n_jobs=2, progress=False, mp_context="spawn")
    pd.testing.assert_frame_equal(one.draws, spawned.draws, check_exact=True)


def test_progress_lines_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sb, "_LOG_EVERY", 0.0)
    data = load_csv("political_democracy.csv")
    fit = fit_model(PD_MODEL, data)
    bootstrap(fit, data, 300, seed=5, n_jobs=1, progress=None)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("bootstrap: ")]
    assert [ln.split(" resamples")[0] for ln in lines] == ["bootstrap: 100 of 300", "bootstrap: 200 of 300"]
    assert all("(0 failed)" in ln and "s left" in ln for ln in lines)
    bootstrap(fit, data, 300, seed=5, n_jobs=1, progress=False)
    assert "bootstrap:" not in capsys.readouterr().err


def test_cli_bootstrap_max_failure_is_checked(capsys):
    from sem_upgrade.cli import main

    assert main(["run", "--bootstrap-max-failure", "1.5", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == (
        "sem-upgrade: error: --bootstrap-max-failure: must be a share between 0 and 1, got 1.5")
