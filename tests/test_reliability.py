"""Item analysis, omega, KMO/Bartlett, CR/AVE, HTMT, Fornell-Larcker against psych / semTools / lavaan.

Expected values: reference/holzinger_swineford.json (psych::alpha, lavaan std.all, semTools::htmt)
and reference/lavaan_extra.json (make_reference.R: compRelSEM, KMO, cortest.bartlett, one-factor CFA).
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from sem_upgrade.engine.fit import fit_model
from sem_upgrade.measurement import (average_variance_extracted, cfa_syntax, composite_reliability, htmt,
                                     one_factor_comparison, validity)
from sem_upgrade.reliability import efa, harman_single_factor, item_analysis, kmo_bartlett, parallel_analysis

from references import CLOSED_FORM, ML, load_csv, load_json

BLOCKS = {"visual": ["x1", "x2", "x3"], "textual": ["x4", "x5", "x6"], "speed": ["x7", "x8", "x9"]}
ITEMS = [i for b in BLOCKS.values() for i in b]


@pytest.fixture(scope="module")
def hs():
    return load_csv("holzinger_swineford.csv")


@pytest.fixture(scope="module")
def hs_validity(hs):
    fit = fit_model(cfa_syntax(BLOCKS), hs)
    return fit, validity(fit, BLOCKS, hs[ITEMS].corr())


@pytest.mark.parametrize("construct", list(BLOCKS))
def test_item_analysis_equals_psych_alpha(hs, construct):
    ref = load_json("holzinger_swineford.json")["alpha"][construct]
    got = item_analysis(hs[BLOCKS[construct]])
    assert_allclose(got["alpha"], ref["alpha"], **CLOSED_FORM)
    assert_allclose(got["std_alpha"], ref["std_alpha"], **CLOSED_FORM)
    for item in BLOCKS[construct]:
        assert_allclose(got["items"][item]["citc"], ref["citc"][item], **CLOSED_FORM)
        assert_allclose(got["items"][item]["alpha_if_deleted"], ref["alpha_if_deleted"][item], **CLOSED_FORM)
        assert_allclose(got["items"][item]["sd"], hs[item].std(ddof=1), rtol=1e-12)


def test_single_item_construct_alpha_undefined(hs):
    got = item_analysis(hs[["x1"]])
    assert got["alpha"] is None and "single-item" in got["reason"]


def test_cr_ave_closed_form():
    # Two loadings .8 and .6: (1.4)^2 / (1.96 + .36 + .64) = 0.662162...; AVE = (.64 + .36) / 2
    assert_allclose(composite_reliability([0.8, 0.6]), 1.96 / 2.96, **CLOSED_FORM)
    assert_allclose(average_variance_extracted([0.8, 0.6]), 0.5, **CLOSED_FORM)


def test_cr_ave_omega_equal_lavaan_semtools(hs_validity):
    _, v = hs_validity
    ref = load_json("holzinger_swineford.json")["reliability"]
    omega = load_json("lavaan_extra.json")["hs_omega"]["omega"]
    for c in BLOCKS:
        assert_allclose(v["constructs"][c]["cr"], ref[c]["cr"], **ML)
        assert_allclose(v["constructs"][c]["ave"], ref[c]["ave"], **ML)
        assert_allclose(v["constructs"][c]["omega"], omega[c], **ML)


def test_factor_correlations_and_fornell_larcker(hs_validity):
    _, v = hs_validity
    ref = np.array(load_json("holzinger_swineford.json")["factor_cor"])
    assert_allclose(v["factor_correlations"].to_numpy(), ref, **ML)
    fl = v["fornell_larcker"]
    ave = load_json("holzinger_swineford.json")["reliability"]
    for c in BLOCKS:
        assert_allclose(fl.loc[c, c], np.sqrt(ave[c]["ave"]), **ML)
    # visual: sqrt(.371) = .609 > max r .471 -> criterion met
    assert v["fornell_larcker_ok"] == {"visual": True, "textual": True, "speed": True}


@pytest.mark.parametrize("variant,key", [("htmt", "htmt"), ("htmt2", "htmt2")])
def test_htmt_equals_semtools(hs, variant, key):
    ref = np.array(load_json("holzinger_swineford.json")[key], dtype=float)
    got = htmt(hs[ITEMS].corr(), BLOCKS, variant=variant).to_numpy()
    low = np.tril_indices(3, -1)
    assert_allclose(got[low], ref[low], **ML)
    assert_allclose(got, got.T)


def test_kmo_bartlett_equal_psych(hs):
    ref = load_json("lavaan_extra.json")["hs_kmo"]
    got = kmo_bartlett(hs[ITEMS])
    assert_allclose(got["kmo"]["overall"], ref["overall"], **CLOSED_FORM)
    assert_allclose([got["kmo"]["items"][i] for i in ITEMS], [ref["items"][i] for i in ITEMS], **CLOSED_FORM)
    assert_allclose(got["bartlett"]["chi2"], ref["bartlett"]["chi2"], rtol=1e-9)
    assert got["bartlett"]["df"] == ref["bartlett"]["df"]


def test_statistics_from_a_correlation_matrix_equal_those_from_data(hs):
    # The correlation-matrix form (used under FIML when complete rows are too few) against the
    # same psych::KMO / cortest.bartlett values, and EFA, parallel analysis and Harman against
    # the data form on the same correlations.
    from sem_upgrade.reliability import Correlations, efa, harman_single_factor, parallel_analysis

    ref = load_json("lavaan_extra.json")["hs_kmo"]
    corr = Correlations(hs[ITEMS].corr(), len(hs))
    got = kmo_bartlett(corr)
    assert_allclose(got["kmo"]["overall"], ref["overall"], **CLOSED_FORM)
    assert_allclose([got["kmo"]["items"][i] for i in ITEMS], [ref["items"][i] for i in ITEMS], **CLOSED_FORM)
    assert_allclose(got["bartlett"]["chi2"], ref["bartlett"]["chi2"], rtol=1e-9)
    blocks = {"visual": ["x1", "x2", "x3"], "textual": ["x4", "x5", "x6"], "speed": ["x7", "x8", "x9"]}
    a, b = efa(hs[ITEMS], 3, blocks), efa(corr, 3, blocks)
    assert_allclose([b["loadings"][i] for i in ITEMS], [a["loadings"][i] for i in ITEMS], atol=1e-7)
    assert a["statement"] == b["statement"]
    assert parallel_analysis(corr)["n_factors"] == parallel_analysis(hs[ITEMS])["n_factors"]
    assert_allclose(harman_single_factor(corr)["harman_first_factor_share"],
                    harman_single_factor(hs[ITEMS])["harman_first_factor_share"], **CLOSED_FORM)


def test_one_factor_comparison_equals_lavaan_anova(hs, hs_validity):
    fit, _ = hs_validity
    one = fit_model("g =~ " + " + ".join(ITEMS), hs)
    ref = load_json("lavaan_extra.json")["hs_one_factor"]
    got = one_factor_comparison(one, fit)
    assert_allclose(got["chisq_diff"], ref["chisq_diff"], rtol=1e-3)
    assert got["df_diff"] == ref["df_diff"] and got["one_factor_worse"]


def test_parallel_analysis_recovers_simulated_factor_count():
    # Three independent factors, four items each, loadings .7: parallel analysis must say 3.
    rng = np.random.default_rng(11)
    f = rng.normal(size=(500, 3))
    x = np.repeat(f, 4, axis=1) * 0.7 + rng.normal(size=(500, 12)) * np.sqrt(1 - 0.49)
    df = pd.DataFrame(x, columns=[f"i{k}" for k in range(12)])
    assert parallel_analysis(df, rng=1)["n_factors"] == 3
    res = efa(df, 3, {"A": ["i0", "i1", "i2", "i3"], "B": ["i4", "i5", "i6", "i7"], "C": ["i8", "i9", "i10", "i11"]})
    assert res["as_designed"] and res["misplaced"] == [] and res["cross_loadings"] == []


def test_efa_names_an_item_that_belongs_elsewhere():
    rng = np.random.default_rng(5)
    f = rng.normal(size=(600, 2))
    x = np.column_stack([f[:, [0]] * 0.8 + rng.normal(size=(600, 1)) * 0.6 for _ in range(3)]
                        + [f[:, [1]] * 0.8 + rng.normal(size=(600, 1)) * 0.6 for _ in range(4)])
    df = pd.DataFrame(x, columns=["a1", "a2", "a3", "b1", "b2", "b3", "b4"])
    # the questionnaire wrongly puts b4 under A
    res = efa(df, 2, {"A": ["a1", "a2", "a3", "b4"], "B": ["b1", "b2", "b3"]})
    assert not res["as_designed"]
    assert [m["item"] for m in res["misplaced"]] == ["b4"]
    assert "b4 (A -> " in res["statement"]


def test_harman_share_closed_form():
    # Equicorrelated items (r = .5, k = 4): first eigenvalue 1 + 3 * .5 = 2.5, share = .625
    cov = np.full((4, 4), 0.5) + 0.5 * np.eye(4)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 4))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T @ np.linalg.cholesky(cov).T
    got = harman_single_factor(pd.DataFrame(z))
    assert_allclose(got["harman_first_factor_share"], 0.625, atol=1e-9)
    assert got["flag"]
