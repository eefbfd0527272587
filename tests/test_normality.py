"""Mardia's multivariate normality tests and item skewness / kurtosis against psych.

Expected values: tests/reference/normality.json, made by tests/reference/r/normality.R
(psych 2.2.9: mardia(items, plot = FALSE), describe(items)) on the bundled survey, nhe4 recoded.
"""

import json

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
