"""Robust ML for non-normal (Likert) data: sandwich standard errors and scaled test statistics.

Two estimators, as lavaan defines them (Rosseel 2012; complete data):

* ``mlm`` (lavaan ``estimator = "MLM"``): ML estimates; standard errors from the sandwich
  A^-1 B A^-1 / N with A the expected information Delta' W Delta and B = Delta' W Gamma W Delta;
  the Satorra-Bentler (1994) scaled statistic T / c with c = tr(U Gamma) / df,
  U = W - W Delta A^-1 Delta' W.
* ``mlr`` (lavaan ``estimator = "MLR"``): ML estimates; Huber-White standard errors
  A^-1 B0 A^-1 / N with A the observed information (the Hessian of F_ML / 2) and B0 the mean
  cross-product of the casewise scores; the Yuan-Bentler scaled statistic in its Mplus form,
  c = [tr(B1 A1^-1) - tr(B0 A^-1)] / df, A1 and B1 the unrestricted model's expected and
  first-order information (Yuan & Bentler 2000; Asparouhov & Muthen 2005).

Notation: W = 1/2 D' (Sigma^-1 x Sigma^-1) D, the normal-theory weight of the p* = p(p+1)/2
non-duplicated moments; Delta = d vech(Sigma) / d theta'; Gamma the asymptotic covariance of
the sample moments, (1/N) sum (d_i - s)(d_i - s)' with d_i = vech((x_i - xbar)(x_i - xbar)')
(divisor N, lavaan's default). Everything is per observation.

Fit indices from the scaled statistics (lavaan's ``fitMeasures`` names):
``cfi_scaled`` / ``tli_scaled`` / ``rmsea_scaled`` put the scaled statistics of the model and the
baseline into the usual formulas; ``cfi_robust``, ``tli_robust`` and ``rmsea_robust`` are the
population-corrected versions of Brosseau-Liard, Savalei & Li (2012) and Brosseau-Liard & Savalei
(2014).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .derivatives import numerical_hessian, sigma_jacobian
from .implied import implied

__all__ = ["ESTIMATORS", "vech_indices", "moments_gamma", "normal_weight", "robust_ml", "scaled_difference"]

ESTIMATORS = ("ml", "mlr", "mlm")


def vech_indices(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each non-duplicated element, lavaan's vech order (column-wise lower)."""
    rows, cols = [], []
    for j in range(p):
        for i in range(j, p):
            rows.append(i)
            cols.append(j)
    return np.array(rows), np.array(cols)


def moments_gamma(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Casewise moment vectors d_i = vech((x_i - xbar)(x_i - xbar)') and their covariance Gamma (divisor N)."""
    xc = x - x.mean(axis=0)
    r, c = vech_indices(x.shape[1])
    d = xc[:, r] * xc[:, c]
    dc = d - d.mean(axis=0)
    return d, dc.T @ dc / len(x)


def normal_weight(sigma: np.ndarray) -> np.ndarray:
    """W = 1/2 D' (Sigma^-1 x Sigma^-1) D in vech coordinates (the information of one case)."""
    inv = np.linalg.inv(sigma)
    r, c = vech_indices(sigma.shape[0])
    # W_ab = 1/2 tr(K dSigma_a K dSigma_b), dSigma_a = E_ij + E_ji (E_ii on the diagonal), K = Sigma^-1:
    # 1/4 (K_ik K_jl + K_il K_jk) m_a m_b with m = 2 off the diagonal, 1 on it
    m = np.where(r == c, 1.0, 2.0)
    return 0.25 * (inv[np.ix_(r, r)] * inv[np.ix_(c, c)] + inv[np.ix_(r, c)] * inv[np.ix_(c, r)]) * np.outer(m, m)


def _delta(st, theta) -> np.ndarray:
    dS = sigma_jacobian(st, theta)
    r, c = vech_indices(dS.shape[1])
    return dS[:, r, c].T  # (p*, q)


def _observed_information(st, theta, S) -> np.ndarray:
    """Hessian of F_ML / 2 per observation (lavaan's observed information, 'hessian')."""
    from .mvnorm import ml_objective

    logdet_s = np.linalg.slogdet(S)[1]

    def grad(t):
        return 0.5 * ml_objective(st, t, S, logdet_s)[1]

    return numerical_hessian(grad, theta)


def robust_ml(fit, x: np.ndarray, estimator: str, baseline: bool = True) -> dict:
    """Robust standard errors and scaled test statistics of an ML fit to complete data.

    Parameters
    ----------
    fit : Fit
        A complete-data ML fit (``likelihood="normal"``).
    x : (N, p) array
        The rows it was fitted to, columns in ``fit.structure.observed`` order.
    estimator : {"mlm", "mlr"}

    Returns
    -------
    dict with ``vcov`` (q x q), ``scaling_factor``, ``chisq_scaled``, ``df_scaled``,
    ``pvalue_scaled`` and, when ``baseline``, ``baseline_scaling_factor`` and
    ``baseline_chisq_scaled``.

    Validated against: ``lavaan::cfa/sem(..., estimator = "MLM")`` and ``"MLR"``
    (tests/reference/r/estimators.R).
    """
    st, theta, n = fit.structure, fit.theta, fit.n
    sigma = implied(st, theta).sigma
    S = fit.sample_cov
    r, c = vech_indices(sigma.shape[0])
    d, gamma = moments_gamma(x)
    W = normal_weight(sigma)
    delta = _delta(st, theta)
    wd = W @ delta  # (p*, q); every trace below is arranged to need no p* x p* inverse
    if estimator == "mlm":
        A = delta.T @ wd
        B = wd.T @ gamma @ wd
        A_inv = np.linalg.inv(A)
        trace = float(np.sum(W * gamma) - np.sum(A_inv * B))  # tr(U Gamma), U = W - W D A^-1 D' W
    elif estimator == "mlr":
        A = _observed_information(st, theta, S)
        # mean cross-product of the casewise scores (d_i - sigma)' W Delta: Delta' W (Gamma + e e') W Delta
        # with e = s - sigma, where e drops out because Delta' W e = 0 at the ML optimum
        B = wd.T @ gamma @ wd
        A_inv = np.linalg.inv(A)
        # tr(B1 A1^-1) with A1 = W(S), B1 = A1 Gamma A1 is tr(W(S) Gamma)
        trace = float(np.sum(normal_weight(S) * gamma) - np.sum(B * A_inv))
    else:
        raise ValueError(f"estimator must be 'mlm' or 'mlr', not {estimator!r}")
    vcov = A_inv @ B @ A_inv / n
    df = fit.df
    c_factor = trace / df if df > 0 else float("nan")
    out = {"vcov": vcov, "scaling_factor": c_factor, "chisq_scaled": fit.chisq / c_factor, "df_scaled": df,
           "pvalue_scaled": float(stats.chi2.sf(fit.chisq / c_factor, df)) if df > 0 else float("nan")}
    if baseline:
        cb = _baseline_scaling(S, gamma, estimator)
        out["baseline_scaling_factor"] = cb
        out["baseline_chisq_scaled"] = fit.baseline_chisq / cb
    return out


def _baseline_scaling(S: np.ndarray, gamma: np.ndarray, estimator: str) -> float:
    """Scaling factor of the independence model (variances free, covariances 0), at its optimum diag(S).

    Its Delta selects the diagonal moments. At that optimum the observed information of the
    variances equals the expected one, so MLM and MLR differ only in the h1 part (MLR: W at S).
    """
    p = S.shape[0]
    r, c = vech_indices(p)
    on_diag = np.flatnonzero(r == c)
    W0 = normal_weight(np.diag(np.diag(S)))
    wd = W0[:, on_diag]
    A_inv = np.linalg.inv(wd[on_diag])
    df = p * (p + 1) // 2 - p
    if estimator == "mlm":
        return float(np.sum(W0 * gamma) - np.sum(A_inv * (wd.T @ gamma @ wd))) / df
    B0 = wd.T @ gamma @ wd  # the misfit term drops out at the optimum, as for the model
    return float(np.sum(normal_weight(S) * gamma) - np.sum(B0 * A_inv)) / df


def scaled_difference(chisq0: float, df0: int, c0: float, chisq1: float, df1: int, c1: float) -> dict:
    """Satorra-Bentler (2001) scaled chi-square difference of nested models (0 restricted, 1 free).

    cd = (df0 c0 - df1 c1) / (df0 - df1); T = (chisq0 - chisq1) / cd. When cd is not positive
    the difference is undefined (lavaan then suggests the 2010 version); it is returned as NaN
    with a note.
    """
    ddf = df0 - df1
    cd = (df0 * c0 - df1 * c1) / ddf
    if cd <= 0:
        return {"chisq_diff": float("nan"), "df_diff": ddf, "pvalue": float("nan"),
                "note": "the Satorra-Bentler 2001 scaling of this difference is negative"}
    t = (chisq0 - chisq1) / cd
    return {"chisq_diff": t, "df_diff": ddf, "pvalue": float(stats.chi2.sf(t, ddf)), "scaling_factor": cd}


def saturated_scores(x: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Casewise gradients of the normal log-likelihood of incomplete rows in (mu, vech Sigma).

    Row i with observed variables o, d = x_o - mu_o and K = Sigma_oo^-1 contributes
    d l_i / d mu_o = K d and d l_i / d Sigma_oo = G = (K d d' K - K) / 2, a unique off-diagonal
    element counting twice (2 G_ab). Columns: the p means, then vech(Sigma) in
    :func:`vech_indices` order. NaN marks a missing cell.
    """
    n, p = x.shape
    r, c = vech_indices(p)
    m = np.where(r == c, 1.0, 2.0)
    out = np.zeros((n, p + len(r)))
    mask = ~np.isnan(x)
    patterns, inverse = np.unique(mask, axis=0, return_inverse=True)
    for k, pat in enumerate(patterns):
        rows = np.flatnonzero(inverse.ravel() == k)
        o = np.flatnonzero(pat)
        if len(o) == 0:
            continue
        K = np.linalg.inv(sigma[np.ix_(o, o)])
        d = x[np.ix_(rows, o)] - mu[o]
        kd = d @ K  # (rows, |o|)
        out[np.ix_(rows, o)] = kd
        G = np.zeros((len(rows), p, p))
        G[:, o[:, None], o[None, :]] = 0.5 * (kd[:, :, None] * kd[:, None, :] - K[None])
        out[rows, p:] = G[:, r, c] * m
    return out


def _jacobian(fun, par: np.ndarray, h: float = 1e-6) -> np.ndarray:
    steps = h * np.maximum(1.0, np.abs(par))
    cols = [(fun(par + np.eye(len(par))[j] * steps[j]) - fun(par - np.eye(len(par))[j] * steps[j])) / (2 * steps[j])
            for j in range(len(par))]
    jac = np.array(cols).T
    return 0.5 * (jac + jac.T)


def robust_fiml(fit) -> dict:
    """MLR under FIML (lavaan ``estimator = "MLR", missing = "ml"``): Huber-White standard errors
    and the Yuan-Bentler (Mplus) scaled statistic for incomplete data.

    Parameters are theta and the p intercepts. With s_i the casewise scores of the saturated
    likelihood at the model's (mu, Sigma): the model's scores are [Delta' s_i(Sigma), s_i(mu)],
    B0 their mean cross-product, A the observed information per case (the Hessian of -logl / N),
    vcov = A^-1 B0 A^-1 / N. The scaling factor is [tr(B1 A1^-1) - tr(B0 A^-1)] / df with A1 and
    B1 the saturated model's observed and first-order information at its EM estimates.

    Validated against: ``lavaan::cfa(model, data, estimator = "MLR", missing = "ml")``
    (tests/reference/r/estimators.R).
    """
    st, x, n, p = fit.structure, fit.data, fit.n, fit.data.shape[1]
    q = st.n_free
    sigma = implied(st, fit.theta).sigma
    mu = fit.mean_hat
    delta = _delta(st, fit.theta)
    s_sat = saturated_scores(x, mu, sigma)
    scores = np.hstack([s_sat[:, p:] @ delta, s_sat[:, :p]])
    B0 = scores.T @ scores / n
    r, c = vech_indices(p)

    def unpack(par_sat):
        mu_, v = par_sat[:p], par_sat[p:]
        sig = np.zeros((p, p))
        sig[r, c] = v
        sig[c, r] = v
        return mu_, sig

    def model_score(par):
        th, mu_ = par[:q], par[q:]
        s = saturated_scores(x, mu_, implied(st, th).sigma)
        return -np.hstack([s[:, p:] @ _delta(st, th), s[:, :p]]).mean(axis=0)

    A = _jacobian(model_score, np.concatenate([fit.theta, mu]))
    A_inv = np.linalg.inv(A)
    vcov = A_inv @ B0 @ A_inv / n
    # the saturated (h1) model at its EM estimates
    mu1, sig1 = fit.sample_mean, fit.sample_cov
    s1 = saturated_scores(x, mu1, sig1)
    B1 = s1.T @ s1 / n
    A1 = _jacobian(lambda ps: -saturated_scores(x, *unpack(ps)).mean(axis=0), np.concatenate([mu1, sig1[r, c]]))
    A1_inv = np.linalg.inv(A1)
    h1_trace = float(np.sum(B1 * A1_inv.T))
    trace = h1_trace - float(np.sum(B0 * A_inv.T))
    df = fit.df
    cf = trace / df if df > 0 else float("nan")
    # the baseline model: free means and variances, zero covariances, at its per-variable MLE
    obs = ~np.isnan(x)
    mu_b = np.array([x[obs[:, j], j].mean() for j in range(p)])
    var_b = np.array([x[obs[:, j], j].var() for j in range(p)])
    diag = np.flatnonzero(r == c)

    def base_score(par):
        s = saturated_scores(x, par[:p], np.diag(par[p:]))
        return np.hstack([s[:, :p], s[:, p:][:, diag]])

    sb = base_score(np.concatenate([mu_b, var_b]))
    A_b = _jacobian(lambda ps: -base_score(ps).mean(axis=0), np.concatenate([mu_b, var_b]))
    df_b = fit.baseline_df
    cb = (h1_trace - float(np.sum((sb.T @ sb / n) * np.linalg.inv(A_b).T))) / df_b
    # Zhang & Savalei's FIML-corrected ingredients of the robust CFI, TLI and RMSEA
    p_star = len(r)
    model_delta = np.zeros((p + p_star, q + p))
    model_delta[:p, q:] = np.eye(p)
    model_delta[p:, :q] = delta
    base_delta = np.zeros((p + p_star, 2 * p))
    base_delta[:p, :p] = np.eye(p)
    base_delta[p + diag, p + np.arange(p)] = 1.0
    corrected = fiml_corrected_test(n, df, df_b, mu1, sig1, A1, A1_inv, B1, (mu, sigma, model_delta),
                                    (mu_b, np.diag(var_b), base_delta))
    return {"vcov": vcov[:q, :q], "vcov_means": vcov[q:, q:], "scaling_factor": cf,
            "chisq_scaled": fit.chisq / cf, "df_scaled": df,
            "pvalue_scaled": float(stats.chi2.sf(fit.chisq / cf, df)) if df > 0 else float("nan"),
            "baseline_scaling_factor": cb, "baseline_chisq_scaled": fit.baseline_chisq / cb,
            "fiml_corrected": corrected}


def fiml_corrected_test(n: int, df: int, df_b: int, mu1: np.ndarray, sig1: np.ndarray, Wm: np.ndarray,
                        Wm_inv: np.ndarray, Jm: np.ndarray, model: tuple, baseline: tuple) -> dict:
    """The FIML-corrected statistics behind the robust CFI, TLI and RMSEA with incomplete data.

    Zhang & Savalei (2023, Psychological Methods 28(2)), "FIML-C (V3)", lavaan's
    ``lav_fit_fiml_corrected``: the model's FIML estimates are evaluated against the EM
    (saturated) moments as if they were complete-data statistics, T3 = N F_ML(mu, Sigma; xbar~, S~),
    and T3 gets its own scaling factor c3 = k / df with

        k = tr(U Wm^-1 Wc Wm^-1 U Gamma),  U = Wm - Wm Delta (Delta' Wm Delta)^-1 Delta' Wm,
        Gamma = Wm^-1 Jm Wm^-1,

    Wm and Jm the observed and first-order information of the saturated model for the incomplete
    rows (per case, at the EM estimates), Wc the complete-data information at the EM moments and
    Delta = d(mu, vech Sigma) / d(parameters). The same for the baseline (independence) model.
    ``model`` and ``baseline`` are (mu, Sigma, Delta) at the FIML estimates.

    Validated against: ``fitMeasures(cfa(model, data, estimator = "MLR", missing = "ml"))``
    cfi.robust, tli.robust, rmsea.robust and its interval, lavaan 0.6.14 (tests/reference/estimators.json).
    """
    p = len(mu1)
    inv1 = np.linalg.inv(sig1)
    Wc = np.zeros_like(Wm)
    Wc[:p, :p] = inv1
    Wc[p:, p:] = normal_weight(sig1)
    gamma = Wm_inv @ Jm @ Wm_inv
    middle = Wm_inv @ Wc @ Wm_inv
    logdet1 = np.linalg.slogdet(sig1)[1]

    def statistic(mu, sigma, delta):
        inv = np.linalg.inv(sigma)
        d = mu1 - mu
        t = n * (np.linalg.slogdet(sigma)[1] - logdet1 + np.sum(sig1 * inv) - p + d @ inv @ d)
        wd = Wm @ delta
        U = Wm - wd @ np.linalg.solve(delta.T @ wd, wd.T)
        return float(t), float(np.sum((U @ middle @ U) * gamma.T))

    t3, k = statistic(*model)
    t3_b, k_b = statistic(*baseline)
    return {"chisq": t3, "df": df, "scaling_factor": k / df if df > 0 else float("nan"),
            "baseline_chisq": t3_b, "baseline_df": df_b, "baseline_scaling_factor": k_b / df_b}
