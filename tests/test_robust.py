"""Robust ML: MLM (Satorra-Bentler) and MLR (Huber-White, Yuan-Bentler Mplus) against lavaan.

Expected values: tests/reference/estimators.json, made by tests/reference/r/estimators.R
(lavaan 0.6.14: cfa/sem(..., estimator = "MLM" / "MLR"), lavTestLRT(method =
"satorra.bentler.2001")). lavaan's optimum agrees with the engine's to ~1e-7, so scaled figures
agree to 1e-6; standard errors of MLR use a numerical Hessian (observed information), 1e-5.
"""

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from sem_upgrade import fit_indices, run
from sem_upgrade.cli import main
from sem_upgrade.engine.fit import fit_model
from sem_upgrade.engine.robust import moments_gamma, normal_weight, scaled_difference, vech_indices
from sem_upgrade.errors import SemUpgradeError
from references import HS_MODEL, PD_MODEL, REF

ROBUST_KEYS = ["chisq_scaled", "df_scaled", "pvalue_scaled", "chisq_scaling_factor", "cfi_scaled", "tli_scaled",
               "rmsea_scaled", "cfi_robust", "tli_robust", "rmsea_robust", "rmsea_ci_lower_robust",
               "rmsea_ci_upper_robust", "baseline_chisq_scaled", "baseline_chisq_scaling_factor"]
CASES = [("hs_mlm", HS_MODEL, "holzinger_swineford.csv"), ("hs_mlr", HS_MODEL, "holzinger_swineford.csv"),
         ("pd_mlm", PD_MODEL, "political_democracy.csv"), ("pd_mlr", PD_MODEL, "political_democracy.csv")]


@pytest.fixture(scope="module")
def ref():
    return json.loads((REF / "estimators.json").read_text())


def _fit(key, model, csv):
    return fit_model(model, pd.read_csv(REF / csv), estimator=key[3:])


@pytest.mark.parametrize("key, model, csv", CASES)
def test_scaled_and_robust_fit_measures_equal_lavaan(ref, key, model, csv):
    m = fit_indices.fit_measures(_fit(key, model, csv))
    exp = ref[key]["fit"]
    for k in ROBUST_KEYS:
        if k in ("chisq_scaled", "baseline_chisq_scaled"):
            assert_allclose(m[k], exp[k], rtol=1e-6, atol=0, err_msg=k)
        else:
            assert_allclose(m[k], exp[k], rtol=0, atol=1e-6, err_msg=k)
    # the unscaled statistic is ML's
    assert_allclose(m["chisq"], exp["chisq"], rtol=1e-8, atol=0)


@pytest.mark.parametrize("key, model, csv", CASES)
def test_robust_standard_errors_equal_lavaan(ref, key, model, csv):
    fit = _fit(key, model, csv)
    t = fit.table()
    got = {(r.lhs, r.op, r.rhs): r.se for r in t.itertuples()}
    got.update({(r.rhs, r.op, r.lhs): r.se for r in t.itertuples() if r.op == "~~"})
    n = 0
    for row in ref[key]["params"]:
        if row["op"] in ("=~", "~", "~~") and row["se"] and row["se"] > 0:
            assert_allclose(got[(row["lhs"], row["op"], row["rhs"])], row["se"], rtol=0, atol=1e-5,
                            err_msg=str(row))
            n += 1
    assert n == fit.structure.n_free


@pytest.mark.parametrize("estimator", ["mlm", "mlr"])
def test_scaled_difference_equals_lavtestlrt(ref, estimator):
    hs = pd.read_csv(REF / "holzinger_swineford.csv")
    three = fit_model(HS_MODEL, hs, estimator=estimator)
    one = fit_model("g =~ " + " + ".join(f"x{i}" for i in range(1, 10)), hs, estimator=estimator)
    d = scaled_difference(one.chisq, one.df, one.robust["scaling_factor"], three.chisq, three.df,
                          three.robust["scaling_factor"])
    exp = ref[f"hs_{estimator}_diff"]
    assert d["df_diff"] == exp["df_diff"]
    assert_allclose(d["chisq_diff"], exp["chisq_diff"], rtol=1e-5, atol=0)


def test_scaled_difference_undefined_when_scaling_is_negative():
    # closed form: cd = (10 * 1.0 - 8 * 1.5) / 2 = -1 < 0
    d = scaled_difference(30.0, 10, 1.0, 20.0, 8, 1.5)
    assert np.isnan(d["chisq_diff"]) and "negative" in d["note"]
    d = scaled_difference(30.0, 10, 1.2, 20.0, 8, 1.1)  # cd = (12 - 8.8) / 2 = 1.6
    assert_allclose(d["chisq_diff"], 10.0 / 1.6, rtol=1e-15, atol=0)


def test_normal_weight_is_the_normal_theory_inverse_of_gamma():
    # closed form: under normality Gamma_NT = 2 D+ (S x S) D+'; W is its inverse
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    S = a @ a.T + 4 * np.eye(4)
    r, c = vech_indices(4)
    gamma_nt = S[np.ix_(r, r)] * S[np.ix_(c, c)] + S[np.ix_(r, c)] * S[np.ix_(c, r)]
    assert_allclose(normal_weight(S) @ gamma_nt, np.eye(len(r)), rtol=0, atol=1e-10)


def test_gamma_is_the_covariance_of_casewise_moments():
    x = np.array([[1.0, 2.0], [2.0, 1.0], [4.0, 5.0], [3.0, 3.0]])
    d, gamma = moments_gamma(x)
    xc = x - x.mean(axis=0)
    assert_allclose(d[:, 1], xc[:, 0] * xc[:, 1], rtol=0, atol=1e-15)  # vech order: 11, 21, 22
    assert_allclose(gamma, np.cov(d, rowvar=False, ddof=0), rtol=0, atol=1e-14)


def test_bundled_run_under_mlr_equals_lavaan(ref, tmp_path):
    res = run(bootstrap=0, estimator="mlr", progress=False)
    exp = ref["liaoning_mlr"]
    fit = res["fit"]["structural"]
    for k in ("chisq_scaled", "cfi_robust", "rmsea_robust", "chisq_scaling_factor"):
        assert_allclose(fit[k], exp["fit"][k], rtol=1e-6, atol=1e-6, err_msg=k)
    paths = res.table("paths").set_index(["lhs", "rhs"])
    for row in exp["params"]:
        if row["op"] == "~":
            assert_allclose(paths.loc[(row["lhs"], row["rhs"]), ["se", "pvalue"]].to_numpy(float),
                            [row["se"], row["pvalue"]], rtol=0, atol=1e-5, err_msg=str(row))
    basis = {v["index"]: v["basis"] for v in res["fit_verdicts"]["structural"]}
    assert basis["cfi"] == "cfi_robust" and basis["rmsea"] == "rmsea_robust"
    assert res["common_method"]["one_factor_cfa"]["method"].startswith("Satorra-Bentler")
    # the report's fit table leads with the figures the verdicts use, and its note says so
    from sem_upgrade.report import build_tables

    fit_table = next(t for t in build_tables(res, "en") if t.key == "fit")
    first = [row[0].text for row in fit_table.rows[:6]]
    assert first == ["Scaled χ²", "Scaling factor", "p (scaled)", "Robust CFI", "Robust TLI", "Robust RMSEA [90% CI]"]
    assert fit_table.rows[3][1].text == "≥ .95" and "verdicts use the scaled χ²" in fit_table.note


@pytest.mark.parametrize("args, message", [
    (["--estimator", "foo"], "--estimator: 'foo' is not one of ml, mlr, mlm"),
    (["--estimator", "mlm", "--missing", "fiml"], "mlm is defined for complete data only"),
    (["--estimator", "mlr", "--likelihood", "wishart"], "drop --likelihood wishart"),
    (["--estimator", "wlsmv"], "not available yet"),
])
def test_bad_estimator_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(["run", "-o", str(tmp_path / "o"), "--bootstrap", "0", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_estimator_error_from_the_api():
    with pytest.raises(SemUpgradeError, match="not one of"):
        run(bootstrap=0, estimator="MLX")


def test_mlr_under_fiml_equals_lavaan(ref):
    """lavaan: cfa(hs_model, data = hs_missing, estimator = "MLR", missing = "ml")."""
    exp = ref["hs_missing_mlr"]
    fit = fit_model(HS_MODEL, pd.read_csv(REF / "holzinger_swineford_missing.csv"), missing="fiml", estimator="mlr")
    m = fit_indices.fit_measures(fit)
    assert_allclose(m["chisq_scaled"], exp["fit"]["chisq_scaled"], rtol=1e-6, atol=0)
    for k in ("chisq_scaling_factor", "baseline_chisq_scaling_factor", "cfi_scaled", "tli_scaled", "rmsea_scaled"):
        assert_allclose(m[k], exp["fit"][k], rtol=0, atol=1e-6, err_msg=k)
    # robust CFI/TLI/RMSEA from Zhang & Savalei's FIML-corrected statistics (lavaan 0.6.14's
    # lav_fit_fiml_corrected, V3); the numerical observed information limits agreement to ~1e-6
    for k in ("cfi_robust", "tli_robust", "rmsea_robust", "rmsea_ci_lower_robust", "rmsea_ci_upper_robust"):
        assert_allclose(m[k], exp["fit"][k], rtol=0, atol=2e-6, err_msg=k)
    basis = {v["index"]: v["basis"] for v in fit_indices.verdicts(m)}
    assert basis["cfi"] == "cfi_robust" and basis["rmsea"] == "rmsea_robust"
    t = fit.table()
    got = {(r.lhs, r.op, r.rhs): r.se for r in t.itertuples()}
    got.update({(r.rhs, r.op, r.lhs): r.se for r in t.itertuples() if r.op == "~~"})
    for row in exp["params"]:
        if row["op"] in ("=~", "~~") and row["se"] and row["se"] > 0:
            assert_allclose(got[(row["lhs"], row["op"], row["rhs"])], row["se"], rtol=0, atol=1e-5, err_msg=str(row))
    means = [row["se"] for row in exp["params"] if row["op"] == "~1" and row["lhs"].startswith("x")]
    assert_allclose(np.sqrt(np.diag(fit.vcov_means)), means, rtol=0, atol=1e-5)


def test_saturated_scores_closed_form():
    # one complete row of a bivariate normal at mu = 0, Sigma = I: d l / d mu = x,
    # d l / d sigma_11 = (x1^2 - 1) / 2, d l / d sigma_21 = x1 x2 (off-diagonal counts twice)
    from sem_upgrade.engine.robust import saturated_scores

    s = saturated_scores(np.array([[1.0, 2.0], [3.0, np.nan]]), np.zeros(2), np.eye(2))
    assert_allclose(s[0], [1.0, 2.0, 0.0, 2.0, 1.5], rtol=0, atol=1e-15)
    assert_allclose(s[1], [3.0, 0.0, 4.0, 0.0, 0.0], rtol=0, atol=1e-15)


def test_robust_cfi_is_zero_when_the_model_misfits_more_than_the_baseline():
    # closed form (Brosseau-Liard & Savalei 2014): d = 100 - 10 = 90 > d_b = 50 - 20 = 30 gives
    # CFI = 1 - 90 / max(90, 30, 0) = 0; RMSEA = sqrt(90 / (100 * 10)) = 0.3
    from sem_upgrade.fit_indices import robust_measures

    m = robust_measures(100.0, 10, 50.0, 20, 100, 1.0, 1.0)
    assert m["cfi_robust"] == 0.0
    assert_allclose(m["rmsea_robust"], 0.3, rtol=1e-15, atol=0)
    assert_allclose(m["tli_robust"], 1 - (90 * 20) / (30 * 10), rtol=1e-15, atol=0)
