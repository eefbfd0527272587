"""Mardia's multivariate normality tests and item skewness / kurtosis against psych.

Expected values: tests/reference/normality.json, made by tests/reference/r/normality.R
(psych 2.2.9: mardia(items, plot = FALSE), describe(items)) on the bundled survey, nhe4 recoded.
"""

import json

import numpy as np

from numpy.testing import assert_allclose

from sem_upgrade import normality, run
from sem_upgrade.ingest import read_survey
from sem_upgrade.pipeline import bundled_paths
from sem_upgrade.questionnaire import load_questionnaire
from references import REF


def _items():
    data, q = bundled_paths()
    return read_survey(data, load_questionnaire(q)).analysis_frame()


def test_mardia_equals_psych():
    ref = json.loads((REF / "normality.json").read_text())
    m = normality.mardia(_items().to_numpy(float))
    for ours, theirs in (("b1p", "b1p"), ("b2p", "b2p"), ("skew", "skew"), ("small_skew", "small_skew"),
                         ("kurtosis_z", "kurtosis")):
        assert_allclose(m[ours], ref[theirs], rtol=1e-10, atol=0, err_msg=ours)
    for ours, theirs in (("skew_pvalue", "p_skew"), ("small_skew_pvalue", "p_small"), ("kurtosis_pvalue", "p_kurt")):
        assert_allclose(m[ours], ref[theirs], rtol=0, atol=1e-10, err_msg=ours)


def test_item_skew_and_kurtosis_equal_psych_describe():
    ref = json.loads((REF / "normality.json").read_text())
    t = normality.item_normality(_items()).set_index("item")
    assert_allclose(t["skew"], [ref["item_skew"][i] for i in t.index], rtol=0, atol=1e-10)
    assert_allclose(t["kurtosis"], [ref["item_kurtosis"][i] for i in t.index], rtol=0, atol=1e-10)


def test_run_reports_normality_and_suggests_mlr_only_when_violated():
    res = run(bootstrap=0, progress=False)
    nrm = res["normality"]
    # psych: small-sample skew p = .043 on the bundled survey, so normality is rejected
    assert nrm["violated"] is True
    assert any("--estimator mlr" in w for w in res["warnings"])
    res = run(bootstrap=0, progress=False, estimator="mlr")
    assert not any("--estimator mlr" in w for w in res["warnings"])


def test_item_jarque_bera_and_holm_equal_the_closed_form():
    # JB = N/6 (g1^2 + g2^2/4) with the moment estimates g1 = m3/m2^1.5, g2 = m4/m2^2 - 3
    # (Jarque & Bera 1987); chi2(2) survival is exp(-x/2). Holm (1979): the i-th smallest of m
    # p values times (m - i + 1), made monotone by a running maximum, capped at 1.
    x = _items()
    v = x.to_numpy(float)
    n = len(v)
    d = v - v.mean(axis=0)
    m2, m3, m4 = (d**2).mean(0), (d**3).mean(0), (d**4).mean(0)
    jb = n / 6 * ((m3 / m2**1.5) ** 2 + (m4 / m2**2 - 3) ** 2 / 4)
    p = np.exp(-jb / 2)
    order = np.argsort(p)
    holm = np.empty_like(p)
    holm[order] = np.minimum(np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))), 1)
    got = normality.item_normality(x)
    assert_allclose(got["jb"], jb, rtol=1e-12)
    assert_allclose(got["jb_pvalue"], p, rtol=1e-10, atol=1e-300)
    assert_allclose(got["jb_pvalue_holm"], holm, rtol=1e-10, atol=1e-300)
    assert (got["jb_pvalue_holm"] >= got["jb_pvalue"]).all()
