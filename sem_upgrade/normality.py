"""Normality of the items: Mardia's multivariate skewness and kurtosis, each item's skewness and kurtosis.

ML's standard errors and chi-square assume multivariate normal items; Likert answers rarely are.
Mardia (1970), as psych::mardia computes it: with D = X_c S^-1 X_c' (S with divisor N - 1, R's cov),

    b1p = sum_ij D_ij^3 / N^2,  skew = N b1p / 6 ~ chi2(p (p + 1) (p + 2) / 6),
    small-sample skew = N k b1p / 6 with k = (p + 1)(N + 1)(N + 3) / (N ((N + 1)(p + 1) - 6)),
    b2p = sum_i D_ii^2 / N,      kurtosis z = (b2p - p (p + 2)) / sqrt(8 p (p + 2) / N) ~ N(0, 1).

Item skewness and excess kurtosis are psych's type 3 (the default of ``psych::describe``), from
scipy's moment estimates g1, g2: b1 = g1 ((N - 1) / N)^(3/2), b2 = (g2 + 3) ((N - 1) / N)^2 - 3.
Each item's Jarque-Bera test, JB = N/6 (g1^2 + g2^2 / 4) ~ chi2(2), is statsmodels'
``jarque_bera``; its p values are Holm-adjusted across the items (statsmodels ``multipletests``),
since one test per item would otherwise flag some item by chance.

Validated against: ``psych::mardia(items)`` and ``psych::describe(items)`` (tests/reference/r/normality.R).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.stattools import jarque_bera

__all__ = ["mardia", "item_normality", "normality"]


def mardia(x: np.ndarray) -> dict:
    """Mardia's multivariate skewness and kurtosis of complete rows ``x`` (N, p); see the module docstring."""
    n, p = x.shape
    xc = x - x.mean(axis=0)
    S = xc.T @ xc / (n - 1)
    D = xc @ np.linalg.solve(S, xc.T)
    b1p = float(np.sum(D**3) / n**2)
    b2p = float(np.sum(np.diag(D) ** 2) / n)
    df = p * (p + 1) * (p + 2) / 6
    k = (p + 1) * (n + 1) * (n + 3) / (n * ((n + 1) * (p + 1) - 6))
    skew, small = n * b1p / 6, n * k * b1p / 6
    z = (b2p - p * (p + 2)) / np.sqrt(8 * p * (p + 2) / n)
    return {"n": n, "b1p": b1p, "b2p": b2p, "skew": skew, "skew_df": df, "skew_pvalue": float(stats.chi2.sf(skew, df)),
            "small_skew": small, "small_skew_pvalue": float(stats.chi2.sf(small, df)), "kurtosis_z": float(z),
            "kurtosis_pvalue": float(2 * stats.norm.sf(abs(z)))}


def item_normality(x: pd.DataFrame) -> pd.DataFrame:
    """Each item's skewness and excess kurtosis (psych's type 3) and Jarque-Bera test, with columns
    ``item, skew, kurtosis, jb, jb_pvalue, jb_pvalue_holm``."""
    n = len(x)
    values = x.to_numpy(float)
    g1 = stats.skew(values, axis=0, bias=True)
    g2 = stats.kurtosis(values, axis=0, bias=True)
    jb, jb_p, _, _ = jarque_bera(values, axis=0)
    return pd.DataFrame({"item": list(x.columns), "skew": g1 * ((n - 1) / n) ** 1.5,
                         "kurtosis": (g2 + 3) * ((n - 1) / n) ** 2 - 3, "jb": jb, "jb_pvalue": jb_p,
                         "jb_pvalue_holm": multipletests(jb_p, method="holm")[1]})


def normality(x: pd.DataFrame, alpha: float = 0.05) -> dict:
    """Mardia's tests and item statistics on the complete rows, with ``violated`` when either
    Mardia test rejects at ``alpha`` (then ML's standard errors and chi-square are suspect).
    With too few complete rows (a singular covariance matrix) the tests are not given, and the
    note says why."""
    complete = x.dropna()
    values = complete.to_numpy(float)
    if len(complete) <= x.shape[1] + 1 or np.linalg.matrix_rank(np.cov(values, rowvar=False)) < x.shape[1]:
        return {"mardia": None, "items": None, "violated": None, "sample": f"complete rows (N = {len(complete)})",
                "note": "too few complete rows for Mardia's tests (their covariance matrix is singular)"}
    m = mardia(values)
    items = item_normality(complete)
    violated = bool(m["small_skew_pvalue"] < alpha or m["kurtosis_pvalue"] < alpha)
    return {"mardia": m, "items": items.to_dict(orient="records"), "violated": violated,
            "sample": f"complete rows (N = {len(complete)})",
            "note": "Mardia (1970); item skewness and excess kurtosis as psych::describe (type 3); "
                    "Jarque-Bera per item (statsmodels), Holm-adjusted across items"}
