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
        e = S[r, c] - sigma[r, c]
        B = wd.T @ (gamma + np.outer(e, e)) @ wd  # mean cross-product of the casewise scores (d_i - sigma)' W Delta
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
    variances equals the expected one, so MLM and MLR differ only in the h1 part (MLR: W at S)
    and in B (MLR adds the misfit e e' of the off-diagonal moments to Gamma).
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
    e = np.where(r == c, 0.0, S[r, c])
    B0 = wd.T @ (gamma + np.outer(e, e)) @ wd
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
