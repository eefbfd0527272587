"""The engine on the model shapes real studies fit: observed covariates (lavaan's fixed.x) and a
second-order construct.

Expected values: tests/reference/models.json, made by tests/reference/r/models.R with lavaan
0.6.14: ``sem(controls_model, data = hs)`` (fixed.x = TRUE, the default) on
HolzingerSwineford1939 with a numeric and a three-level categorical covariate
(tests/reference/hs_controls.csv), and ``cfa(g =~ visual + textual + speed)``.
"""

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from sem_upgrade import fit_indices
from sem_upgrade.engine.fit import fit_model
from references import REF

RELATIVE = {"chisq", "baseline_chisq", "aic", "bic", "bic2", "logl", "unrestricted_logl"}
# lavaan stops its optimiser at about 1e-6 of the optimum: fit measures agree to 1e-6,
# estimates to 1e-5.
FIT_TOL, EST_TOL = 1e-6, 1e-5
KEYS = ["npar", "df", "chisq", "baseline_chisq", "baseline_df", "cfi", "tli", "nfi", "ifi", "rmsea",
        "rmsea_ci_lower", "rmsea_ci_upper", "srmr", "rmr", "gfi", "agfi", "logl", "unrestricted_logl",
        "aic", "bic"]


def _models():
    return json.loads((REF / "models.json").read_text())


def _controls_data():
    d = pd.read_csv(REF / "hs_controls.csv")
    for level in ("summer", "autumn"):  # dummies against the first level, "winter"
        d[f"season_{level}"] = (d["season"] == level).astype(float)
    return d[[f"x{i}" for i in range(1, 10)] + ["ageyr", "season_summer", "season_autumn"]]


def _check(fit, ref):
    m = fit_indices.fit_measures(fit)
    for key in KEYS:
        if key in ("npar", "df", "baseline_df"):
            assert m[key] == ref["fit"][key], key
        elif key in RELATIVE:
            assert_allclose(m[key], ref["fit"][key], rtol=FIT_TOL, atol=0, err_msg=key)
        else:
            assert_allclose(m[key], ref["fit"][key], rtol=0, atol=FIT_TOL, err_msg=key)
    t = fit.table().set_index(["lhs", "op", "rhs"])
    for row in ref["params"]:
        key = (row["lhs"], row["op"], row["rhs"])
        got = t.loc[key]
        assert_allclose([got["estimate"], got["std_estimate"]], [row["est"], row["std.all"]],
                        rtol=0, atol=EST_TOL, err_msg=str(key))
        if row["se"] and row["se"] > 0:
            assert_allclose(got["se"], row["se"], rtol=0, atol=EST_TOL, err_msg=str(key))
    return m


def test_observed_covariates_equal_lavaan_fixed_x():
    ref = _models()["hs_controls"]
    fit = fit_model(ref["model"], _controls_data())
    _check(fit, ref)
    # the covariates' moments are given: 78 moments less the 6 of the covariates
    assert fit.df == 78 - 6 - 25
    r2 = fit.r2()
    for name, value in ref["r2"].items():
        assert_allclose(r2[name], value, rtol=0, atol=EST_TOL, err_msg=name)


def test_fixed_x_changes_df_and_baseline_only_through_the_covariates():
    # A closed-form check: with no covariate the baseline chi-square is N (sum log diag S - log|S|).
    d = _controls_data()
    fit = fit_model("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6", d)
    S = np.cov(d[[f"x{i}" for i in range(1, 7)]].to_numpy(), rowvar=False, ddof=0)
    expected = len(d) * (np.log(np.diag(S)).sum() - np.linalg.slogdet(S)[1])
    assert_allclose(fit.baseline_chisq, expected, rtol=1e-12, atol=0)
    assert fit.baseline_df == 15 and fit.structure.fixed_x == []


def test_covariates_under_fiml_are_a_clear_error():
    from sem_upgrade.errors import SemUpgradeError
    ref = _models()["hs_controls"]
    with pytest.raises(SemUpgradeError, match="listwise"):
        fit_model(ref["model"], _controls_data(), missing="fiml")


def test_second_order_construct_equals_lavaan():
    ref = _models()["hs_second_order"]
    hs = pd.read_csv(REF / "holzinger_swineford.csv")
    fit = fit_model(ref["model"], hs[[f"x{i}" for i in range(1, 10)]])
    _check(fit, ref)  # every lavaan row, g =~ visual included, under lavaan's own lhs, op, rhs
    from sem_upgrade.measurement import loadings_table

    load = loadings_table(fit)
    second = load[load["construct"] == "g"]
    assert list(second["item"]) == ["visual", "textual", "speed"]
    assert not (fit.table()["op"] == "~").any()
    from sem_upgrade.measurement import higher_order_reliability

    rel = higher_order_reliability(fit, "g", {"visual": ["x1", "x2", "x3"], "textual": ["x4", "x5", "x6"],
                                              "speed": ["x7", "x8", "x9"]})
    assert_allclose(rel["omega"], ref["omega_higher"]["g"], rtol=0, atol=1e-5)  # compRelSEM(higher = "g")
    std = [r["std.all"] for r in ref["params"] if r["lhs"] == "g" and r["op"] == "=~"]
    assert_allclose(rel["ave"], np.mean(np.square(std)), rtol=0, atol=1e-5)
