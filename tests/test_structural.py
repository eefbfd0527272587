"""Paths, indirect effects, hypothesis verdicts and modification indices against lavaan.

Expected values: reference/lavaan_extra.json (make_reference.R, lavaan 0.6.14).
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from sem_upgrade.engine.fit import fit_model
from sem_upgrade.questionnaire import Hypothesis
from sem_upgrade.structural import hypothesis_table, indirect_delta, modification_indices, path_table

from references import EST, HS_MODEL, MODIND, PD_MODEL, load_csv, load_json


@pytest.fixture(scope="module")
def pd_fit():
    return fit_model(PD_MODEL, load_csv("political_democracy.csv"))


@pytest.mark.parametrize("key,data,model", [("hs_modindices", "holzinger_swineford.csv", HS_MODEL),
                                            ("pd_modindices", "political_democracy.csv", PD_MODEL)])
def test_modification_indices_equal_lavaan(key, data, model):
    # modindices(fit, sort. = TRUE, maximum.number = 20)
    ref = pd.DataFrame(load_json("lavaan_extra.json")[key]["table"])
    got = modification_indices(fit_model(model, load_csv(data)), top=20)
    assert list(zip(got["lhs"], got["op"], got["rhs"])) == list(zip(ref["lhs"], ref["op"], ref["rhs"]))
    assert_allclose(got["mi"], ref["mi"], **MODIND)
    assert_allclose(got["epc"], ref["epc"], **MODIND)
    assert_allclose(got["sepc_all"], ref["sepc.all"], **MODIND)


def test_fiml_modification_indices_equal_lavaan():
    # modindices(cfa(hs_model, data = hsm, missing = "ml"), sort. = TRUE, maximum.number = 20):
    # expected information over the missingness patterns, intercepts among the free parameters
    ref = pd.DataFrame(load_json("lavaan_extra.json")["hsm_fiml_modindices"]["table"])
    got = modification_indices(fit_model(HS_MODEL, load_csv("holzinger_swineford_missing.csv"), missing="fiml"), top=20)
    assert list(zip(got["lhs"], got["op"], got["rhs"])) == list(zip(ref["lhs"], ref["op"], ref["rhs"]))
    assert_allclose(got["mi"], ref["mi"], **MODIND)
    assert_allclose(got["epc"], ref["epc"], **MODIND)
    assert_allclose(got["sepc_all"], ref["sepc.all"], **MODIND)


def test_indirect_delta_method_equals_lavaan(pd_fit):
    # ind := a*b with lavaan's default (delta-method) standard error
    ref = load_json("lavaan_extra.json")["pd_defined_delta"]["table"][0]
    got = indirect_delta(pd_fit, ("ind60", "dem60", "dem65"))
    assert_allclose(got["estimate"], ref["est"], **EST)
    assert_allclose(got["se"], ref["se"], **EST)
    assert_allclose(got["std_estimate"], ref["std.all"], **EST)
    assert_allclose([got["ci_lower"], got["ci_upper"]], [ref["ci.lower"], ref["ci.upper"]], **EST)


def test_path_table_columns_and_values(pd_fit):
    ref = pd.DataFrame(load_json("political_democracy.json")["paths"])
    ref = ref[ref["op"] == "~"]
    got = path_table(pd_fit, ["ind60", "dem60", "dem65"])
    assert list(got.columns) == ["lhs", "rhs", "estimate", "se", "z", "pvalue", "std_estimate"]
    merged = got.merge(ref, on=["lhs", "rhs"])
    assert len(merged) == 3
    assert_allclose(merged["estimate"], merged["est"], **EST)
    assert_allclose(merged["std_estimate"], merged["std_all"], **EST)


def test_hypothesis_verdicts(pd_fit):
    hyps = [Hypothesis("H1", "path", ("ind60", "dem60"), +1),   # b = 1.48, p = .0002 -> supported
            Hypothesis("H2", "path", ("ind60", "dem65"), -1),   # b = .57 > 0, p = .0097 -> opposite sign
            Hypothesis("H3", "indirect", ("ind60", "dem60", "dem65"), +1)]
    t = hypothesis_table(pd_fit, hyps, alpha=0.05).set_index("id")
    assert t.loc["H1", "supported"] and t.loc["H1", "reason"] == ""
    assert not t.loc["H2", "supported"] and t.loc["H2", "reason"] == "opposite sign"
    assert t.loc["H3", "supported"] and t.loc["H3", "method"] == "delta (Sobel)"
    strict = hypothesis_table(pd_fit, hyps, alpha=0.001).set_index("id")
    assert strict.loc["H1", "supported"]
    assert strict.loc["H2", "reason"] == "not significant (p >= 0.001)"
    bootstrap = {"H3": {"estimate": 1.24, "std_estimate": 0.4, "se": 0.3, "z": np.nan, "pvalue": np.nan,
                        "ci_lower": -0.1, "ci_upper": 2.0, "method": "bootstrap-percentile"}}
    t = hypothesis_table(pd_fit, hyps, indirect=bootstrap).set_index("id")
    assert not t.loc["H3", "supported"] and t.loc["H3", "reason"] == "interval includes 0"


def test_hypotheses_without_standard_errors_are_not_tested(pd_fit):
    # A fit without standard errors (empirical under-identification) or a bootstrap without a
    # single fitted resample cannot judge a hypothesis: it is not supported, and the row says why.
    import dataclasses

    bare = dataclasses.replace(pd_fit, vcov=None)
    hyps = [Hypothesis("H1", "path", ("ind60", "dem60"), +1),
            Hypothesis("H2", "indirect", ("ind60", "dem60", "dem65"), +1)]
    t = hypothesis_table(bare, hyps).set_index("id")
    assert t.loc["H1", "estimate"] == pytest.approx(1.483, abs=1e-3)  # lavaan: est 1.483
    for h in ("H1", "H2"):
        assert not t.loc[h, "supported"]
        assert t.loc[h, "reason"] == "not tested: no standard error (see the fit's warnings)"
    stuck = dataclasses.replace(pd_fit, converged=False)
    t = hypothesis_table(stuck, hyps).set_index("id")
    assert list(t["reason"]) == ["not tested: the model did not converge"] * 2 and not t["supported"].any()
    failed = {"H2": {"estimate": 1.24, "std_estimate": 0.4, "se": np.nan, "z": np.nan, "pvalue": np.nan,
                     "ci_lower": np.nan, "ci_upper": np.nan, "method": "bootstrap-percentile"}}
    t = hypothesis_table(pd_fit, hyps, indirect=failed).set_index("id")
    assert t.loc["H2", "reason"] == "not tested: no bootstrap interval (no resample could be fitted)"
