"""The questionnaire's ``covariances:`` key, end to end, and the standardized covariance of two
outcome residuals, against lavaan.

Expected values: reference/covariances.json (reference/r/covariances.R: lavaan 0.6.14
``cfa``/``sem`` with ``nsc1 ~~ nsc2``, ``kaq3 ~~ kcr3`` and ``KCR ~~ UPG`` on the bundled survey,
``semTools::compRelSEM(fit, obs.var = FALSE)``) and reference/lavaan_extra.json
["liaoning_two_outcomes"] (make_reference.R section 9).
"""

import numpy as np
import pandas as pd
import pytest
import yaml
from numpy.testing import assert_allclose

from sem_upgrade import pipeline
from sem_upgrade.engine.fit import fit_model
from sem_upgrade.questionnaire import parse_questionnaire
from sem_upgrade.reliability import omega_total

from references import CLOSED_FORM, EST, ML, ML_REL, RELATIVE_KEYS, REF, Z, load_json

FIT_KEYS = ["chisq", "df", "npar", "cfi", "tli", "rmsea", "srmr", "aic", "bic", "logl", "gfi"]


@pytest.fixture(scope="module")
def ref():
    return load_json("covariances.json")


@pytest.fixture(scope="module")
def spec(ref):
    _, qpath = pipeline.bundled_paths()
    doc = yaml.safe_load(qpath.read_text(encoding="utf-8"))
    doc["paths"] = list(ref["paths"])
    doc["covariances"] = list(ref["item_covariances"]) + list(ref["construct_covariances"])
    doc.pop("hypotheses"), doc.pop("population")
    return doc


@pytest.fixture(scope="module")
def survey():
    data = pd.read_csv(REF / "liaoning_2012_survey.csv")
    data["nhe4"] = 8 - data["nhe4"]  # reverse-keyed on 1..7, as the R script recodes it
    return data


def _unordered(t):
    """A covariance a ~~ b is b ~~ a: key covariances by the sorted pair."""
    t = t.copy()
    cov = t["op"] == "~~"
    pairs = np.sort(t.loc[cov, ["lhs", "rhs"]].to_numpy(), axis=1)
    t.loc[cov, "lhs"], t.loc[cov, "rhs"] = pairs[:, 0], pairs[:, 1]
    return t


def _compare_params(fit, ref_params):
    want = pd.DataFrame(ref_params).rename(columns={"std.all": "std_all"})
    want = _unordered(want[want["op"].isin(["=~", "~", "~~"])])
    got = _unordered(fit.table()).merge(want, on=["lhs", "op", "rhs"], suffixes=("", "_r"))
    assert len(got) == len(fit.table()) == len(want)
    free = got["free"]
    assert_allclose(got["estimate"], got["est"], **EST)
    assert_allclose(got.loc[free, "se"], got.loc[free, "se_r"], **EST)
    assert_allclose(got.loc[free, "z"], got.loc[free, "z_r"], **Z)
    assert_allclose(got["std_estimate"], got["std_all"], **EST)
    return got.set_index(["lhs", "op", "rhs"])


@pytest.mark.parametrize("model", ["measurement", "structural"])
def test_declared_covariances_reach_the_model_as_in_lavaan(spec, survey, ref, model):
    q = parse_questionnaire(yaml.safe_dump(spec, allow_unicode=True))
    syntax = q.measurement_syntax() if model == "measurement" else q.structural_syntax()
    fit = fit_model(syntax, survey)
    got = _compare_params(fit, ref[f"params_{model}"])
    for row in [("nsc1", "~~", "nsc2"), ("kaq3", "~~", "kcr3")]:
        assert got.loc[row, "free"]
    assert fit.df == ref[f"fit_{model}"]["df"]


def test_covariances_key_end_to_end(spec, ref, tmp_path):
    # The whole run with `covariances:` in the questionnaire: fit indices of both models equal
    # lavaan's, and omega counts the residual covariance inside NSC (compRelSEM, obs.var = FALSE).
    src, _ = pipeline.bundled_paths()
    q = tmp_path / "cov.yaml"
    q.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    res = pipeline.run(src, q, None, bootstrap=0, progress=False)
    for model in ("measurement", "structural"):
        for key in FIT_KEYS:
            assert_allclose(res["fit"][model][key], ref[f"fit_{model}"][key],
                            **(ML_REL if key in RELATIVE_KEYS else ML), err_msg=f"{model}: {key}")
    for c, omega in ref["omega"].items():
        assert_allclose(res["reliability"][c]["omega"], omega, **EST, err_msg=c)


def test_omega_with_a_residual_covariance_closed_form():
    # omega = (sum l)^2 phi / ((sum l)^2 phi + 1' Theta 1) (McDonald 1999; compRelSEM):
    # l = (.7, .8, .6), phi = 1, theta = diag(.51, .36, .64) with theta_12 = .1:
    # (2.1)^2 / (4.41 + 1.51 + 2 * .1) = 4.41 / 6.12
    theta = np.diag([0.51, 0.36, 0.64])
    theta[0, 1] = theta[1, 0] = 0.1
    assert_allclose(omega_total(np.array([0.7, 0.8, 0.6]), 1.0, theta), 4.41 / 6.12, **CLOSED_FORM)


def test_standardized_covariance_of_two_outcome_residuals_equals_lavaan():
    # std.all of KCR ~~ UPG (both only outcomes) is the correlation of the two residuals:
    # psi_12 / sqrt(psi_11 psi_22), not psi_12 over the total variances (lavaan_extra.json,
    # liaoning_two_outcomes: std.all 0.2004...).
    ref = load_json("lavaan_extra.json")["liaoning_two_outcomes"]
    data = pd.read_csv(REF / "liaoning_2012_survey.csv")
    data["nhe4"] = 8 - data["nhe4"]
    q = parse_questionnaire(pipeline.bundled_paths()[1].read_text(encoding="utf-8"))
    syntax = "\n".join([q.measurement_syntax(), "KAQ ~ NSC + NHE", "KCR ~ TST + KAQ", "UPG ~ KAQ",
                        "KCR ~~ UPG"])
    got = _compare_params(fit_model(syntax, data), ref["params"])
    want = pd.DataFrame(ref["params"]).set_index(["lhs", "op", "rhs"]).loc[("KCR", "~~", "UPG"), "std.all"]
    assert_allclose(got.loc[("KCR", "~~", "UPG"), "std_estimate"], want, **EST)
