"""Bootstrap engine: agreement with lavaan's intervals, with a full refit, determinism, failures.

Expected values: reference/political_democracy.json["defined"]: lavaan 0.6.14,
sem(..., se = "bootstrap", bootstrap = 1000), percentile ("perc") and bias-corrected
("bca.simple") intervals of ind := a*b and total := c + a*b.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from references import PD_MODEL, load_csv, load_json

from sem_upgrade.bootstrap import (
    bc_ci,
    bootstrap,
    draw_counts,
    percentile_ci,
    resample_plan,
)
from sem_upgrade.engine.fit import fit_covariance as _fit_cov
from sem_upgrade.engine.fit import fit_model
from sem_upgrade.errors import SemUpgradeError

CHAIN = {"ind_ind60_dem65": ("ind60", "dem60", "dem65")}
TOTAL = [("ind60", "dem65")]


@pytest.fixture(scope="module")
def pd_data():
    return load_csv("political_democracy.csv")


@pytest.fixture(scope="module")
def pd_fit(pd_data):
    return fit_model(PD_MODEL, pd_data)


def test_intervals_agree_with_lavaan(pd_fit, pd_data):
    # 5000 resamples: our Monte-Carlo error is ~0.015; lavaan's 1000-resample bounds carry ~0.03.
    res = bootstrap(pd_fit, pd_data, 5000, seed=11, indirect=CHAIN, totals=TOTAL, n_jobs=2, progress=False)
    ref = {d["name"]: d for d in load_json("political_democracy.json")["defined"]}
    got = {("ind_ind60_dem65" if e["kind"] == "indirect" else "total_ind60_dem65"): e for e in res.effects}
    for name in ("ind_ind60_dem65", "total_ind60_dem65"):
        assert_allclose(got[name]["estimate"], ref[name]["est"], atol=1e-4)
        for key in ("perc_lower", "perc_upper", "bc_lower", "bc_upper"):
            assert_allclose(got[name][key], ref[name][key], atol=0.1, err_msg=f"{name} {key}")
        assert_allclose(got[name]["boot_se"], ref[name]["boot_se"], atol=0.05)
    assert res.n_ok + res.n_failed == 5000


def _counts(seed, n_boot, n):
    return np.vstack([draw_counts(task, n) for task in resample_plan(seed, n_boot, n)]).astype(int)


def test_each_resample_equals_a_full_refit(pd_fit, pd_data):
    # The engine forms each resample's covariance from counts; the reference copies the rows.
    res = bootstrap(pd_fit, pd_data, 30, seed=3, indirect=CHAIN, n_jobs=1, progress=False)
    x = pd_data[pd_fit.structure.observed].to_numpy()
    counts = _counts(3, 30, len(x))
    assert (counts.sum(axis=1) == len(x)).all()
    q = pd_fit.structure.n_free
    for b in range(30):
        xb = np.repeat(x, counts[b], axis=0)
        full = _fit_cov(pd_fit.structure, np.cov(xb, rowvar=False, ddof=0), None, len(xb), "normal")
        assert_allclose(res.draws.iloc[b, :q].to_numpy(), full.theta, atol=1e-6)
        ind = full.theta[pd_fit.structure.table.query("op == '~' and rhs == 'ind60' and lhs == 'dem60'")["index"].iloc[0]] \
            * full.theta[pd_fit.structure.table.query("op == '~' and rhs == 'dem60'")["index"].iloc[0]]
        assert_allclose(res.draws.loc[b, "indirect:ind_ind60_dem65"], ind, atol=1e-6)


def test_same_seed_same_bits_whatever_the_cores(pd_fit, pd_data):
    a = bootstrap(pd_fit, pd_data, 400, seed=5, indirect=CHAIN, totals=TOTAL, n_jobs=1, progress=False)
    b = bootstrap(pd_fit, pd_data, 400, seed=5, indirect=CHAIN, totals=TOTAL, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(a.draws, b.draws, check_exact=True)
    c = bootstrap(pd_fit, pd_data, 400, seed=6, indirect=CHAIN, n_jobs=1, progress=False)
    assert not a.draws.equals(c.draws)


def test_failed_resamples_are_counted_and_excluded():
    # x3 differs from 0 in two rows only: resamples drawing neither have a constant x3 and a
    # singular covariance matrix; they cannot be fitted and must be counted, not replaced.
    rng = np.random.default_rng(0)
    f = rng.normal(size=60)
    data = pd.DataFrame({"x1": f + rng.normal(size=60) * 0.5, "x2": f + rng.normal(size=60) * 0.5,
                         "x3": np.r_[1.0, -1.0, np.zeros(58)], "x4": f + rng.normal(size=60) * 0.5})
    fit = fit_model("F =~ x1 + x2 + x3 + x4", data)
    res = bootstrap(fit, data, 300, seed=2, n_jobs=1, progress=False)
    # P(a resample misses both rows) = (58/60)^60 = 0.131: about 39 of 300 expected
    assert 15 <= res.n_failed <= 70
    assert res.n_ok + res.n_failed == 300
    failed = res.draws.isna().all(axis=1)
    assert failed.sum() == res.n_failed


def test_bad_input(pd_fit, pd_data):
    with pytest.raises(SemUpgradeError, match="--seed: must be an integer"):
        bootstrap(pd_fit, pd_data, 10, seed="x")
    with pytest.raises(SemUpgradeError, match="--seed: must be a whole number >= 0, got -1"):
        bootstrap(pd_fit, pd_data, 10, seed=-1)
    with pytest.raises(SemUpgradeError, match="--bootstrap-max-failure: must be a share between 0 and 1, got 1.5"):
        bootstrap(pd_fit, pd_data, 10, seed=1, max_failure=1.5)
    small = fit_model(PD_MODEL, pd_data.head(20))
    with pytest.raises(SemUpgradeError, match="too few rows to bootstrap: 20 rows for 31 free parameters"):
        bootstrap(small, pd_data.head(20), 10, seed=1)


def test_interval_formulas_closed_form():
    # R = 999 draws 1..999: (R + 1) * 0.05 = 50 and (R + 1) * 0.95 = 950 are whole, so the 90%
    # bounds are the 50th and 950th order statistics exactly (Davison & Hinkley 1997, eq. 5.8)
    draws = np.arange(1, 1000, dtype=float)[::-1]
    assert percentile_ci(draws, 0.90) == (50.0, 950.0)
    # estimate with half the draws below it: z0 = Phi^-1(0.5) = 0, so BC equals the percentile interval
    draws = np.arange(1, 1001, dtype=float)
    assert_allclose(bc_ci(draws, 500.5, 0.90), percentile_ci(draws, 0.90), rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def hsm():
    from references import HS_MODEL

    data = load_csv("holzinger_swineford_missing.csv")
    fit = fit_model(HS_MODEL, data, missing="fiml")
    x = data[fit.structure.observed]
    return fit, x[x.notna().any(axis=1)].reset_index(drop=True)


def test_fiml_resamples_equal_full_fiml_refits(hsm):
    # The chunked engine (weighted rows, BFGS) against fit_fiml on the resampled rows themselves.
    from sem_upgrade.engine.fit import fit_fiml

    fit, x = hsm
    res = bootstrap(fit, x, 12, seed=8, n_jobs=1, progress=False)
    counts = _counts(8, 12, len(x))
    q = fit.structure.n_free
    assert res.n_ok == 12
    for b in range(12):
        full = fit_fiml(fit.structure, np.repeat(x.to_numpy(), counts[b], axis=0))
        assert_allclose(res.draws.iloc[b, :q].to_numpy(), full.theta, atol=1e-6)


def test_fiml_bootstrap_same_bits_whatever_the_cores(hsm):
    fit, x = hsm
    a = bootstrap(fit, x, 400, seed=5, n_jobs=1, progress=False)
    b = bootstrap(fit, x, 400, seed=5, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(a.draws, b.draws, check_exact=True)
    assert a.n_ok >= 395
