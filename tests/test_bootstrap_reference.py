"""Bootstrap intervals and resampling pinned to independent references.

* lavaan's own draws: reference/bootstrap.json, made by reference/r/bootstrap.R (lavaan 0.6.14):
  ``set.seed(20121); sem(model, data = PoliticalDemocracy, se = "bootstrap", bootstrap = 1000)``,
  ``lavInspect(fit, "boot")`` with the ``:=`` effects of each draw, and
  ``parameterEstimates(fit, boot.ci.type = "perc" / "bca.simple", level = .95 / .90)``.
  Fed to our interval functions, the bounds must equal lavaan's at 1e-10.
* closed forms: ML scale invariance (likelihood = "wishart" resamples), lavaan's listwise N,
  the verdict rule of a one-sided hypothesis.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from references import HS_MODEL, PD_MODEL, load_csv, load_json

from sem_upgrade.bootstrap import (
    bc_ci,
    bias_correction,
    bootstrap,
    indirect_results,
    minimum_resamples,
    percentile_ci,
)
from sem_upgrade.engine.fit import fit_model
from sem_upgrade.questionnaire import Hypothesis
from sem_upgrade.structural import hypothesis_table

REF = load_json("bootstrap.json")
NAMES = ["a", "b", "c", "ind", "total"]
CHAIN = {"H": ("ind60", "dem60", "dem65")}


@pytest.mark.parametrize("level,tag", [(0.95, "95"), (0.90, "90")])
@pytest.mark.parametrize("name", NAMES)
def test_percentile_and_bc_bounds_equal_lavaan_on_its_own_draws(name, level, tag):
    draws = np.asarray(REF["draws"][name])
    est = REF["estimates"][name]
    assert len(draws) == REF["n_draws"] == 1000
    assert_allclose(percentile_ci(draws, level), REF[f"perc_{tag}"][name], rtol=0, atol=1e-10)
    assert_allclose(bc_ci(draws, est, level), REF[f"bc_{tag}"][name], rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_bc_uses_z0_of_the_estimate(name):
    # z0 = qnorm(mean(draws < estimate)) as lavaan's bca.simple computes it; each case has z0 != 0,
    # so BC must differ from the percentile interval (a BC without z0 would equal it)
    draws = np.asarray(REF["draws"][name])
    z0 = bias_correction(draws, REF["estimates"][name])
    assert_allclose(z0, REF["z0"][name], rtol=0, atol=1e-12)
    assert z0 != 0
    assert np.max(np.abs(np.subtract(REF["bc_95"][name], REF["perc_95"][name]))) > 1e-3
    # z0 from the bootstrap mean instead of the estimate moves the bounds away from lavaan's
    wrong = bc_ci(draws, float(np.mean(draws)), 0.95)
    assert np.max(np.abs(np.subtract(wrong, REF["bc_95"][name]))) > 1e-6


def test_minimum_resamples():
    # ceil(25 / a) - 1 for a = (1 - level) / 2 (Davison & Hinkley 1997: R = 999 at 95%);
    # BC at least 1000 (Efron & Tibshirani 1993)
    assert minimum_resamples("percentile", 0.95) == 999
    assert minimum_resamples("percentile", 0.90) == 499
    assert minimum_resamples("percentile", 0.99) == 4999
    assert minimum_resamples("bc", 0.95) == 1000
    assert minimum_resamples("bc", 0.90) == 1000
    assert minimum_resamples("bc", 0.99) == 5000


@pytest.fixture(scope="module")
def pd_data():
    return load_csv("political_democracy.csv")


@pytest.fixture(scope="module")
def pd_boot(pd_data):
    fit = fit_model(PD_MODEL, pd_data)
    return fit, bootstrap(fit, pd_data, 1000, seed=4, indirect=CHAIN, n_jobs=1, progress=False)


def test_ci_bc_judges_by_the_bc_interval(pd_boot):
    fit, boot = pd_boot
    d = boot.draws["indirect:H"].dropna().to_numpy()
    est = boot.effects[0]["estimate"]
    rows, reasons, _ = indirect_results(boot, fit, CHAIN, "bc")
    assert reasons["H"] == "" and rows["H"]["method"] == "bootstrap-bc"
    assert_allclose((rows["H"]["ci_lower"], rows["H"]["ci_upper"]), bc_ci(d, est, 0.95), rtol=0, atol=0)
    perc, _, _ = indirect_results(boot, fit, CHAIN, "percentile")
    assert_allclose((perc["H"]["ci_lower"], perc["H"]["ci_upper"]), percentile_ci(d, 0.95), rtol=0, atol=0)
    assert abs(rows["H"]["ci_lower"] - perc["H"]["ci_lower"]) > 1e-4


def test_mediation_type_agrees_with_lavaans_intervals(pd_boot):
    # lavaan's 95% percentile intervals (bootstrap.json): ind = a*b [0.60, 1.98] and the direct
    # path c [0.11, 1.07] both exclude 0 with the same sign: partial, complementary mediation
    # (Zhao, Lynch & Chen 2010). Ours, from our own 1000 resamples, must classify the same.
    assert REF["perc_95"]["ind"][0] > 0 and REF["perc_95"]["c"][0] > 0
    fit, boot = pd_boot
    _, _, extra = indirect_results(boot, fit, CHAIN, "percentile")
    assert extra["H"]["mediation_type"] == "partial complementary"
    assert extra["H"]["mediation_zhao"] == "complementary"
    assert extra["H"]["chain"] == ["ind60", "dem60", "dem65"]
    assert_allclose(extra["H"]["direct_ci"], REF["perc_95"]["c"], rtol=0, atol=0.1)  # Monte-Carlo tolerance


def test_indirect_effects_carry_their_chain(pd_boot):
    _, boot = pd_boot
    (e,) = [e for e in boot.effects if e["kind"] == "indirect"]
    assert e["chain"] == ["ind60", "dem60", "dem65"]


def test_wishart_resamples_use_n_minus_1(pd_data):
    # ML is scale invariant: a resample's S with divisor N - 1 is N/(N-1) times the one with
    # divisor N, so its variances and covariances are N/(N-1) times the normal-likelihood
    # ones and its loadings and regressions are unchanged. Same seed, same resamples.
    n = len(pd_data)
    normal = fit_model(PD_MODEL, pd_data)
    wishart = fit_model(PD_MODEL, pd_data, likelihood="wishart")
    a = bootstrap(normal, pd_data, 20, seed=9, n_jobs=1, progress=False)
    b = bootstrap(wishart, pd_data, 20, seed=9, n_jobs=1, progress=False)
    assert a.n_ok == b.n_ok == 20
    cols = [c for c in a.draws.columns if " " in c]
    cov = [c for c in cols if " ~~ " in c]
    other = [c for c in cols if " ~~ " not in c]
    assert cov and other
    assert_allclose(b.draws[cov].to_numpy(), a.draws[cov].to_numpy() * n / (n - 1), rtol=1e-6, atol=0)
    assert_allclose(b.draws[other].to_numpy(), a.draws[other].to_numpy(), rtol=1e-6, atol=1e-9)


def test_listwise_bootstrap_never_resamples_rows_with_missing_cells():
    # lavaan's listwise fit of the HS data with missing cells uses N = 181 complete rows
    # (holzinger_swineford_missing.json["listwise"]["n"]); its bootstrap resamples those only.
    from sem_upgrade import structural

    data = load_csv("holzinger_swineford_missing.csv")
    fit = fit_model(HS_MODEL, data)
    assert fit.n == load_json("holzinger_swineford_missing.json")["listwise"]["n"] == 181
    x = data[fit.structure.observed]
    with_gaps = bootstrap(fit, x, 40, seed=6, n_jobs=1, progress=False)
    complete = bootstrap(fit, x.dropna(), 40, seed=6, n_jobs=1, progress=False)
    assert with_gaps.n_ok == 40
    pd.testing.assert_frame_equal(with_gaps.draws, complete.draws, check_exact=True)
    via_pipeline = bootstrap(fit, x, 40, seed=6, totals=structural.total_effect_pairs(fit.structure), n_jobs=1, progress=False)
    pd.testing.assert_frame_equal(via_pipeline.draws, complete.draws, check_exact=True)


@pytest.mark.parametrize("sign,interval,supported,reason", [
    (-1, (-0.5, -0.1), True, ""),
    (+1, (-0.5, -0.1), False, "opposite sign"),
    (+1, (0.1, 0.5), True, ""),
    (-1, (0.1, 0.5), False, "opposite sign"),
    (-1, (-0.5, 0.2), False, "interval includes 0"),
])
def test_bootstrap_verdict_respects_the_expected_sign(pd_data, sign, interval, supported, reason):
    # A one-sided hypothesis is supported only when its interval lies wholly on the expected side of 0.
    fit = fit_model(PD_MODEL, pd_data)
    hyp = [Hypothesis("H", "indirect", ("ind60", "dem60", "dem65"), sign)]
    row = {"H": {"estimate": float(np.mean(interval)), "std_estimate": 0.1, "se": 0.1, "z": np.nan,
                 "pvalue": np.nan, "ci_lower": interval[0], "ci_upper": interval[1], "method": "bootstrap-bc"}}
    t = hypothesis_table(fit, hyp, indirect=row).set_index("id")
    assert bool(t.loc["H", "supported"]) is supported and t.loc["H", "reason"] == reason
