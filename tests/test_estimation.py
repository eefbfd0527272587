"""ML / FIML estimates, standard errors, standardized solution and fit indices against lavaan.

Expected values: tests/references.py (lavaan 0.6.14; each case names its R call).
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from sem_upgrade.errors import SemUpgradeError
from sem_upgrade.engine.fit import fit_model
from sem_upgrade.fit_indices import fit_measures

from references import EST, FIT_CASES, HS_MODEL, Z, load_csv, load_json

_FITS = {}


def _fit(case):
    if case.id not in _FITS:
        _FITS[case.id] = fit_model(case.model, load_csv(case.data), missing=case.missing,
                                   likelihood=case.likelihood)
    return _FITS[case.id]


@pytest.mark.parametrize("case", FIT_CASES, ids=[c.id for c in FIT_CASES])
def test_fit_measures_equal_lavaan(case):
    fit = _fit(case)
    assert fit.converged
    got = fit_measures(fit)
    expected = case.expected()
    keys = case.indices or [k for k in expected if k in got]
    assert len(keys) >= 20
    for key in keys:
        want = expected[key]
        if want is None:
            continue
        assert_allclose(got[key], want, **case.tolerance(key), err_msg=f"{case.id}: {key}")
    assert got["df"] == expected["df"] and got["npar"] == expected["npar"]


def test_fiml_gives_lavaan_fit_not_pairwise():
    # lavaan missing = "ml" chisq 75.392 (df 24); listwise would give 64.681 at N = 181
    case = next(c for c in FIT_CASES if c.id == "hsm_fiml")
    fit = _fit(case)
    assert fit.n == 301
    assert_allclose(fit.chisq, 75.3918724779144, rtol=1e-6)


@pytest.mark.parametrize("case_id,key", [("hs_ml", ("holzinger_swineford.json", "loadings")),
                                         ("hsm_fiml", ("holzinger_swineford_missing.json", "fiml", "loadings")),
                                         ("hsm_listwise", ("holzinger_swineford_missing.json", "listwise", "loadings"))])
def test_standardized_loadings_equal_lavaan(case_id, key):
    fit = _fit(next(c for c in FIT_CASES if c.id == case_id))
    ref = load_json(key[0])
    for k in key[1:]:
        ref = ref[k]
    tab = fit.table()
    tab = tab[tab["op"] == "=~"].set_index(["lhs", "rhs"])
    got = [tab.loc[(r["construct"], r["item"]), "std_estimate"] for r in ref]
    assert_allclose(got, [r["std_loading"] for r in ref], **EST)


@pytest.mark.parametrize("case_id,source", [
    ("pd_ml", ("political_democracy.json", "paths")),
    ("hs_wishart", ("lavaan_extra.json", "hs_wishart", "params")),
    ("pd_wishart", ("lavaan_extra.json", "pd_wishart", "params")),
])
def test_parameter_table_equals_lavaan(case_id, source):
    # parameterEstimates(fit, standardized = TRUE): est, se, z, pvalue, std.all
    fit = _fit(next(c for c in FIT_CASES if c.id == case_id))
    ref = load_json(source[0])
    for k in source[1:]:
        ref = ref[k]
    ref = pd.DataFrame(ref).rename(columns={"std.all": "std_all"})
    got = fit.table().merge(ref, on=["lhs", "op", "rhs"], suffixes=("", "_r"))
    assert len(got) == len(fit.table()) == len(ref)
    free = got["free"]
    assert_allclose(got["estimate"], got["est"], **EST)
    assert_allclose(got.loc[free, "se"], got.loc[free, "se_r"], **EST)
    assert_allclose(got.loc[free, "z"], got.loc[free, "z_r"], **Z)
    assert_allclose(got.loc[free, "pvalue"], got.loc[free, "pvalue_r"], **EST)
    assert_allclose(got["std_estimate"], got["std_all"], **EST)


def test_r2_equals_lavaan():
    fit = _fit(next(c for c in FIT_CASES if c.id == "pd_ml"))
    ref = load_json("political_democracy.json")["r2"]
    got = fit.r2()
    assert set(ref) == set(got)
    assert_allclose([got[k] for k in ref], list(ref.values()), **EST)


def test_optimum_is_tighter_than_semopy_default():
    # Our optimum must be lavaan's: the gradient there is ~0 (semopy's default stops ~5e-4 short).
    from sem_upgrade.engine.mvnorm import ml_gradient_information as _ml_grad_info
    fit = _fit(next(c for c in FIT_CASES if c.id == "hs_ml"))
    g, _ = _ml_grad_info(fit.structure, fit.sample_cov)(fit.theta)
    assert np.max(np.abs(g)) < 1e-7


def test_not_identified_model_is_named():
    data = load_csv("holzinger_swineford.csv")
    with pytest.raises(SemUpgradeError, match="not identified"):
        fit_model("f =~ x1 + x2\nf ~~ f\nx1 ~~ x2", data)


def test_structurally_unidentified_model_is_an_error_even_with_positive_df():
    # A three-item factor whose residuals all covary is not identified anywhere (df = 21 > 0).
    data = load_csv("holzinger_swineford.csv")
    with pytest.raises(SemUpgradeError, match="not identified: the information matrix is singular"):
        fit_model("A =~ x1 + x2 + x3\nB =~ x4 + x5 + x6\nC =~ x7 + x8 + x9\nC ~ A + B\n"
                  "x7 ~~ x8 + x9\nx8 ~~ x9", data)


def test_empirical_underidentification_is_a_warning_not_an_error():
    # Closed form: a two-item factor B whose items have exactly zero sample covariance with A's
    # items. The model is identified (full-rank information at generic points), but at these data
    # B's loading and variance trade off along a ridge: the fit converges with chi-square exactly 0
    # (every moment reproduced, cov(A, B) = 0), and there are no standard errors, said so.
    rng = np.random.default_rng(3)
    n = 300
    f1, f2 = rng.normal(size=n), rng.normal(size=n)
    xa = np.column_stack([f1 + 0.7 * rng.normal(size=n) for _ in range(3)])
    xb = np.column_stack([f2 + 0.7 * rng.normal(size=n) for _ in range(2)])
    design = np.column_stack([np.ones(n), xa])
    xb = xb - design @ np.linalg.lstsq(design, xb, rcond=None)[0] + 5.0
    data = pd.DataFrame(np.column_stack([xa, xb]), columns=["a1", "a2", "a3", "b1", "b2"])
    fit = fit_model("A =~ a1 + a2 + a3\nB =~ b1 + b2", data)
    assert fit.converged and fit.df == 4 and fit.chisq < 1e-8
    assert fit.vcov is None
    assert any("empirical under-identification" in w for w in fit.warnings)


def test_duplicated_item_named_in_non_pd_message():
    data = load_csv("holzinger_swineford.csv").copy()
    data["x3"] = data["x2"]
    with pytest.raises(SemUpgradeError, match=r"duplicated items: x3 and x2"):
        fit_model(HS_MODEL, data)


def test_constant_item_named():
    data = load_csv("holzinger_swineford.csv").copy()
    data["x5"] = 3.0
    with pytest.raises(SemUpgradeError, match=r"zero variance: x5"):
        fit_model(HS_MODEL, data)


def test_too_few_rows_says_how_many():
    data = load_csv("holzinger_swineford.csv").head(8)
    with pytest.raises(SemUpgradeError, match=r"8 usable rows for 9 items; at least 10"):
        fit_model(HS_MODEL, data)


def _exact_sample(cov, n, seed=0):
    """Data whose divisor-N covariance equals ``cov`` exactly (whitened draws)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, len(cov)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / n)).T
    return z @ np.linalg.cholesky(cov).T


def test_heywood_case_is_reported_with_closed_form_value():
    # One factor, three indicators, df = 0: theta_a = s_aa - s_ab s_ac / s_bc (closed form)
    # = 1 - .8 * .8 / .5 = -0.28, a negative residual variance (Heywood case).
    cov = np.array([[1.0, 0.8, 0.8], [0.8, 1.0, 0.5], [0.8, 0.5, 1.0]])
    data = pd.DataFrame(_exact_sample(cov, 300), columns=["a", "b", "c"])
    fit = fit_model("F =~ a + b + c", data)
    table = fit.table().set_index(["lhs", "op", "rhs"])
    assert_allclose(table.loc[("a", "~~", "a"), "estimate"], -0.28, atol=1e-6)
    problems = fit.admissibility()
    assert any(p.startswith("negative variance of a") for p in problems)
    assert any("standardized loading of a on F" in p for p in problems)


# ---------------------------------------------------------------- the row-wise FIML likelihood
def _incomplete_sample(seed=4, n=120, p=6, share=0.2):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 2))
    x = np.column_stack([f[:, j // 3] + rng.normal(scale=0.7, size=n) for j in range(p)])
    x[rng.random(x.shape) < share] = np.nan
    return pd.DataFrame(x[~np.isnan(x).all(axis=1)], columns=[f"y{j + 1}" for j in range(p)])


TWO_FACTORS = "f1 =~ y1 + y2 + y3\nf2 =~ y4 + y5 + y6"


def test_rowwise_fiml_likelihood_equals_the_normal_density():
    # Closed form: -2 logl = -2 sum_i log N(x_io; mu_o, Sigma_oo), evaluated by scipy row by row.
    from scipy import stats as sps

    from sem_upgrade.engine.implied import implied
    from sem_upgrade.engine.mvnorm_missing import fiml_objective as _fiml_batch
    from sem_upgrade.engine.mvnorm_missing import row_layout as _rows
    from sem_upgrade.engine.partable import build_structure

    data = _incomplete_sample()
    st = build_structure(TWO_FACTORS, data)
    x = data.to_numpy()
    rng = np.random.default_rng(1)
    par = np.concatenate([st.start + rng.normal(scale=0.05, size=st.n_free), rng.normal(size=6)])
    sigma = implied(st, par[:st.n_free])[0]
    want = 0.0
    for row in x:
        o = ~np.isnan(row)
        want -= 2.0 * sps.multivariate_normal(par[st.n_free:][o], sigma[np.ix_(o, o)]).logpdf(row[o])
    F, _ = _fiml_batch(st, _rows(x), par[None])
    assert_allclose(F[0] * len(x), want, rtol=1e-10)
    # resampling weights: a row drawn twice counts twice
    w = np.ones((1, len(x)))
    w[0, 0], w[0, 1] = 2.0, 0.0
    row0, row1 = x[0], x[1]
    o0, o1 = ~np.isnan(row0), ~np.isnan(row1)
    extra = (-2.0 * sps.multivariate_normal(par[st.n_free:][o0], sigma[np.ix_(o0, o0)]).logpdf(row0[o0])
             + 2.0 * sps.multivariate_normal(par[st.n_free:][o1], sigma[np.ix_(o1, o1)]).logpdf(row1[o1]))
    Fw, _ = _fiml_batch(st, _rows(x), par[None], w)
    assert_allclose(Fw[0] * len(x), want + extra, rtol=1e-10)


def test_rowwise_fiml_gradient_equals_finite_differences():
    from sem_upgrade.engine.mvnorm_missing import fiml_objective as _fiml_batch
    from sem_upgrade.engine.mvnorm_missing import row_layout as _rows
    from sem_upgrade.engine.partable import build_structure

    data = _incomplete_sample(seed=7)
    st = build_structure(TWO_FACTORS, data)
    rows = _rows(data.to_numpy())
    rng = np.random.default_rng(2)
    par = np.concatenate([st.start + rng.normal(scale=0.05, size=st.n_free), rng.normal(scale=0.1, size=6)])
    w = rng.integers(0, 3, size=(1, len(data))).astype(float)
    _, g = _fiml_batch(st, rows, par[None], w)
    h = 1e-6
    num = [(_fiml_batch(st, rows, (par + h * e)[None], w)[0][0] - _fiml_batch(st, rows, (par - h * e)[None], w)[0][0])
           / (2 * h) for e in np.eye(len(par))]
    assert_allclose(g[0], num, rtol=1e-5, atol=1e-7)


def test_em_saturated_is_the_maximum_of_the_incomplete_data_likelihood():
    # Independent check with scipy's normal density: the EM log-likelihood is the observed-data
    # log-likelihood at the EM estimates, and its derivatives in every mean and (co)variance vanish
    # (below 1e-4 for a log-likelihood of about -370: EM stops at a relative change of 1e-12).
    from scipy import stats as sps

    from sem_upgrade.engine.mvnorm_missing import em_saturated

    x = _incomplete_sample(seed=9, n=80, p=4).to_numpy()

    def loglik(mu, sigma):
        return sum(sps.multivariate_normal(mu[o], sigma[np.ix_(o, o)]).logpdf(r[o])
                   for r in x for o in [~np.isnan(r)])

    mu, sigma, ll, _ = em_saturated(x)
    assert_allclose(loglik(mu, sigma), ll, rtol=1e-12)
    h = 1e-5
    for j in range(4):
        e = np.eye(4)[j] * h
        assert abs(loglik(mu + e, sigma) - loglik(mu - e, sigma)) / (2 * h) < 1e-4
        for k in range(j, 4):
            d = np.zeros((4, 4))
            d[j, k] = d[k, j] = h
            assert abs(loglik(mu, sigma + d) - loglik(mu, sigma - d)) / (2 * h) < 1e-4


def test_fiml_on_complete_data_is_ml():
    # With no cell missing the casewise likelihood is the ML likelihood plus saturated means:
    # the same estimates, chi-square, df, log-likelihood and modification indices (exact identity).
    from references import PD_MODEL
    from sem_upgrade.structural import modification_indices

    data = load_csv("political_democracy.csv")
    ml, fi = fit_model(PD_MODEL, data), fit_model(PD_MODEL, data, missing="fiml")
    assert fi.converged and fi.df == ml.df
    assert_allclose(fi.theta, ml.theta, atol=1e-7)
    assert_allclose([fi.chisq, fi.logl], [ml.chisq, ml.logl], rtol=1e-9)
    assert_allclose(modification_indices(fi)["mi"], modification_indices(ml)["mi"], rtol=1e-6)
