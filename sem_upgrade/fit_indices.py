"""Fit indices: pure formulas on numbers, and one adapter that reads them off a fitted model.

Every index carries lavaan's name (``lavaan::fitMeasures``). Conventions, as lavaan 0.6
with its default ``likelihood = "normal"``: chisq = N * F_ML, RMSEA uses N (not N - 1),
log-likelihoods use the divisor-N covariance. Under ``likelihood = "wishart"`` (AMOS),
N - 1 replaces N in chisq, RMSEA and ECVI. semopy's own ``calc_stats`` is not used: its GFI
is the NFI formula, its AGFI uses the baseline df, it uses N - 1 for RMSEA and has no SRMR,
RMR or RMSEA interval.

References: Bentler (1990) CFI; Tucker & Lewis (1973) TLI; Bentler & Bonett (1980) NFI;
Bollen (1986) RFI; Bollen (1989) IFI; James, Mulaik & Brett (1982) PNFI;
Steiger (1990), Browne & Cudeck (1993) RMSEA and its interval; Joreskog & Sorbom (1984)
GFI, AGFI; Mulaik et al. (1989) PGFI; Bentler (1995) SRMR; Browne & Cudeck (1989) ECVI.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from .engine.mvnorm_missing import pattern_inverses

__all__ = [
    "cfi", "tli", "nfi", "rfi", "ifi", "rmsea", "rmsea_ci", "rmsea_pvalue", "gfi", "agfi",
    "srmr", "rmr", "residual_correlations", "information_criteria", "fit_measures", "CUTOFFS", "verdicts",
]


def cfi(chisq: float, df: float, chisq_b: float, df_b: float) -> float:
    """Comparative fit index: 1 - max(chisq - df, 0) / max(chisq - df, chisq_b - df_b, 0)."""
    num = max(chisq - df, 0.0)
    den = max(chisq - df, chisq_b - df_b, 0.0)
    return 1.0 if den == 0 else 1.0 - num / den


def tli(chisq: float, df: float, chisq_b: float, df_b: float) -> float:
    """Tucker-Lewis index (NNFI): (chisq_b/df_b - chisq/df) / (chisq_b/df_b - 1)."""
    if df == 0:
        return 1.0
    return (chisq_b / df_b - chisq / df) / (chisq_b / df_b - 1.0)


def nfi(chisq: float, chisq_b: float) -> float:
    """Normed fit index: (chisq_b - chisq) / chisq_b."""
    return (chisq_b - chisq) / chisq_b


def rfi(chisq: float, df: float, chisq_b: float, df_b: float) -> float:
    """Relative fit index: (chisq_b/df_b - chisq/df) / (chisq_b/df_b)."""
    if df == 0:
        return 1.0
    return (chisq_b / df_b - chisq / df) / (chisq_b / df_b)


def ifi(chisq: float, df: float, chisq_b: float) -> float:
    """Incremental fit index: (chisq_b - chisq) / (chisq_b - df)."""
    return (chisq_b - chisq) / (chisq_b - df)


def rmsea(chisq: float, df: float, n: float) -> float:
    """RMSEA = sqrt(max(chisq - df, 0) / (df * n)); pass N (lavaan) or N - 1 (AMOS) as ``n``."""
    if df == 0:
        return 0.0
    return float(np.sqrt(max(chisq - df, 0.0) / (df * n)))


def _ncp_for(chisq: float, df: float, prob: float) -> float:
    """The noncentrality lambda with P(X <= chisq | df, lambda) = prob (0 if none is positive)."""
    if stats.chi2.cdf(chisq, df) < prob:
        return 0.0
    f = lambda lam: stats.ncx2.cdf(chisq, df, lam) - prob  # noqa: E731 - decreasing in lam
    hi = max(chisq, 1.0)
    while f(hi) > 0:
        hi *= 2.0
    return optimize.brentq(f, 0.0, hi, xtol=1e-12, rtol=1e-12, maxiter=500)


def rmsea_ci(chisq: float, df: float, n: float, level: float = 0.90) -> tuple[float, float]:
    """Confidence interval of the RMSEA from the noncentral chi-square (Browne & Cudeck 1993).

    The lower bound solves P(X <= chisq | lambda) = (1 + level)/2, the upper one
    P(X <= chisq | lambda) = (1 - level)/2; each bound is sqrt(lambda / (n df)).
    """
    if df == 0:
        return 0.0, 0.0
    lo = _ncp_for(chisq, df, (1 + level) / 2)
    hi = _ncp_for(chisq, df, (1 - level) / 2)
    return float(np.sqrt(lo / (n * df))), float(np.sqrt(hi / (n * df)))


def rmsea_pvalue(chisq: float, df: float, n: float, close: float = 0.05) -> float:
    """PCLOSE: P(RMSEA <= close), i.e. 1 - F_ncx2(chisq; df, n df close^2)."""
    if df == 0:
        return float("nan")
    return float(stats.ncx2.sf(chisq, df, n * df * close ** 2))


def gfi(S: np.ndarray, sigma: np.ndarray, mean: np.ndarray | None = None, mean_hat: np.ndarray | None = None,
        data: np.ndarray | None = None, fixed_x: list[int] | None = None) -> float:
    """Joreskog-Sorbom GFI for ML in lavaan's general (weighted least squares) form.

    GFI = 1 - e' W e / s' W s, with s the sample moments, e = s - model moments and W the
    expected information of the unrestricted model at the model-implied Sigma (per case):
    e' W e = (m - mu)' K (m - mu) + tr[(K (S - Sigma))^2] / 2, K = Sigma^-1. Without a mean
    structure this is 1 - tr[(Sigma^-1 S - I)^2] / tr[(Sigma^-1 S)^2] (Joreskog & Sorbom
    1984). Under FIML (``data``: the rows fitted, NaN where missing) W averages over the missingness
    patterns, K becoming each pattern's zero-padded Sigma_oo^-1 (as lavaan's h1 expected
    information for missing = "ml"; Tanaka & Huba 1985; Mulaik et al. 1989).

    ``fixed_x``: positions of observed exogenous covariates (lavaan's fixed.x); their own
    (co)variances are given, not modelled, and leave the total s' W s (lavaan's conditional
    sample statistics), so GFI measures the modelled moments only.

    Validated against: lavaan 0.6.14 ``fitMeasures(fit, "gfi")``, to 1e-8 for complete data;
    under ``missing = "ml"`` to about 1e-4 (AGFI 2e-4; the source of that remaining
    difference is not established).
    """
    e_cov, s_cov = S - sigma, S
    if fixed_x:
        s_cov = S.copy()
        s_cov[np.ix_(fixed_x, fixed_x)] = 0.0
    with_means = mean is not None and mean_hat is not None
    t_e = t_s = 0.0
    for share, K in pattern_inverses(sigma, data):
        a, b = K @ e_cov, K @ s_cov
        qe, qs = 0.5 * np.sum(a * a.T), 0.5 * np.sum(b * b.T)
        if with_means:
            d = mean - mean_hat
            qe, qs = qe + d @ K @ d, qs + mean @ K @ mean
        t_e, t_s = t_e + share * qe, t_s + share * qs
    return float(1.0 - t_e / t_s)


def agfi(gfi_value: float, df: float, nel: float) -> float:
    """AGFI = 1 - (nel / df) (1 - GFI), nel the number of sample moments: p(p+1)/2, plus p
    with a mean structure (FIML)."""
    return float(1.0 - nel / df * (1.0 - gfi_value)) if df > 0 else 1.0


def srmr(S: np.ndarray, sigma: np.ndarray, mean: np.ndarray | None = None,
         mean_hat: np.ndarray | None = None) -> float:
    """Standardized root mean square residual (Bentler 1995, lavaan's ``srmr``).

    Residuals S - Sigma are scaled by sqrt(s_ii s_jj) of the *sample* variances and averaged
    over the p(p+1)/2 non-duplicated elements; with a mean structure the p residual means,
    scaled by sqrt(s_ii), join the average.
    """
    sd = np.sqrt(np.diag(S))
    r = residual_correlations(S, sigma)
    tri = r[np.tril_indices_from(r)]
    ss, e = np.sum(tri ** 2), len(tri)
    if mean is not None and mean_hat is not None:
        rm = (mean - mean_hat) / sd
        ss, e = ss + np.sum(rm ** 2), e + len(rm)
    return float(np.sqrt(ss / e))


def residual_correlations(S: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """(S - Sigma) scaled by sqrt(s_ii s_jj): the matrix whose root mean square is the SRMR."""
    sd = np.sqrt(np.diag(S))
    return (S - sigma) / np.outer(sd, sd)


def rmr(S: np.ndarray, sigma: np.ndarray, mean: np.ndarray | None = None,
        mean_hat: np.ndarray | None = None) -> float:
    """Root mean square residual (unstandardized), over the non-duplicated elements."""
    tri = (S - sigma)[np.tril_indices_from(S)]
    ss, e = np.sum(tri ** 2), len(tri)
    if mean is not None and mean_hat is not None:
        ss, e = ss + np.sum((mean - mean_hat) ** 2), e + len(mean)
    return float(np.sqrt(ss / e))


def information_criteria(logl: float, npar: int, n: int) -> dict[str, float]:
    """AIC = -2 logl + 2 npar; BIC = -2 logl + log(N) npar; sample-size-adjusted BIC."""
    return {
        "aic": -2.0 * logl + 2.0 * npar,
        "bic": -2.0 * logl + np.log(n) * npar,
        "bic2": -2.0 * logl + np.log((n + 2) / 24.0) * npar,
    }


# ---------------------------------------------------------------- adapter
def fit_measures(fit) -> dict[str, float]:
    """Every index for a fitted model (:class:`sem_upgrade.engine.fit.Fit`), by lavaan's names.

    Under FIML, S and the means are the EM estimates of the saturated model (as in lavaan),
    and the means join RMR, SRMR, GFI, AGFI and PGFI (lavaan's mean structure).
    """
    n_eff = fit.n_eff
    chisq, df = fit.chisq, fit.df
    cb, dfb = fit.baseline_chisq, fit.baseline_df
    sigma = fit.sigma
    S = fit.sample_cov
    p = S.shape[0]
    means = (fit.sample_mean, fit.mean_hat) if fit.method == "fiml" else (None, None)
    out = {
        "npar": fit.npar, "ntotal": fit.n, "chisq": chisq, "df": df,
        "pvalue": float(stats.chi2.sf(chisq, df)) if df > 0 else float("nan"),
        "cmin_df": chisq / df if df > 0 else float("nan"),
        "baseline_chisq": cb, "baseline_df": dfb,
        "baseline_pvalue": float(stats.chi2.sf(cb, dfb)),
        "cfi": cfi(chisq, df, cb, dfb), "tli": tli(chisq, df, cb, dfb),
        "nfi": nfi(chisq, cb), "rfi": rfi(chisq, df, cb, dfb), "ifi": ifi(chisq, df, cb),
    }
    out["pnfi"] = df / dfb * out["nfi"]
    out["pcfi"] = df / dfb * out["cfi"]
    out["rmsea"] = rmsea(chisq, df, n_eff)
    out["rmsea_ci_lower"], out["rmsea_ci_upper"] = rmsea_ci(chisq, df, n_eff)
    out["rmsea_pvalue"] = rmsea_pvalue(chisq, df, n_eff)
    out["rmr"] = rmr(S, sigma, *means)
    out["srmr"] = srmr(S, sigma, *means)
    out["gfi"] = gfi(S, sigma, *means, data=fit.data, fixed_x=fit.structure.fixed_x)
    nel = p * (p + 1) / 2 + (p if fit.method == "fiml" else 0)
    out["agfi"] = agfi(out["gfi"], df, nel)
    out["pgfi"] = df / nel * out["gfi"]
    out["logl"] = fit.logl
    out["unrestricted_logl"] = fit.logl_h1
    out.update(information_criteria(fit.logl, fit.npar, fit.n))
    out["ecvi"] = chisq / n_eff + 2.0 * fit.npar / n_eff
    if getattr(fit, "robust", None):
        out.update(robust_measures(chisq, df, cb, dfb, n_eff, fit.robust["scaling_factor"],
                                   fit.robust["baseline_scaling_factor"], corrected=fit.robust.get("fiml_corrected")))
    return out


def robust_measures(chisq: float, df: int, chisq_b: float, df_b: int, n: float, c: float, c_b: float,
                    corrected: dict | None = None) -> dict:
    """Scaled and robust fit indices of a robust (MLM / MLR) fit, by lavaan's names.

    ``*_scaled``: the usual formulas on the scaled statistics T / c and T_b / c_b.
    ``cfi_robust``, ``tli_robust`` (Brosseau-Liard & Savalei 2014) and ``rmsea_robust``
    (Brosseau-Liard, Savalei & Li 2012) estimate the population values: with the unscaled T and the
    scaling factor c, RMSEA = sqrt(max(T - c df, 0) / (N df)), CFI = 1 - max(T - c df, 0) /
    max(T - c df, T_b - c_b df_b, 0), TLI = 1 - (T - c df) df_b / ((T_b - c_b df_b) df); the
    robust RMSEA interval is the noncentrality interval of T / c times sqrt(c).
    With incomplete data (FIML) the same formulas take Zhang & Savalei's FIML-corrected statistics
    and scaling factors (``corrected``, from :func:`sem_upgrade.engine.robust.fiml_corrected_test`)
    in place of T, T_b, c and c_b, as lavaan does.

    Validated against: ``fitMeasures(cfa/sem(..., estimator = "MLM" / "MLR"))`` and, for FIML,
    ``cfa(..., estimator = "MLR", missing = "ml")``, lavaan 0.6.14 (tests/reference/estimators.json).
    """
    ts, tbs = chisq / c, chisq_b / c_b
    out = {"chisq_scaled": ts, "df_scaled": df, "pvalue_scaled": float(stats.chi2.sf(ts, df)) if df > 0 else float("nan"),
           "chisq_scaling_factor": c, "baseline_chisq_scaled": tbs, "baseline_df_scaled": df_b,
           "baseline_pvalue_scaled": float(stats.chi2.sf(tbs, df_b)), "baseline_chisq_scaling_factor": c_b,
           "cfi_scaled": cfi(ts, df, tbs, df_b), "tli_scaled": tli(ts, df, tbs, df_b),
           "rmsea_scaled": rmsea(ts, df, n)}
    if corrected is not None:
        chisq, df, c = corrected["chisq"], corrected["df"], corrected["scaling_factor"]
        chisq_b, df_b, c_b = corrected["baseline_chisq"], corrected["baseline_df"], corrected["baseline_scaling_factor"]
    d, d_b = chisq - c * df, chisq_b - c_b * df_b
    out["cfi_robust"] = 1.0 - max(d, 0.0) / max(d, d_b, 0.0) if max(d, d_b) > 0 else 1.0
    out["tli_robust"] = 1.0 - (d * df_b) / (d_b * df) if d_b > 0 and df > 0 else float("nan")
    out["rmsea_robust"] = float(np.sqrt(max(d, 0.0) / (n * df))) if df > 0 else float("nan")
    lo, hi = rmsea_ci(chisq / c, df, n)
    out["rmsea_ci_lower_robust"], out["rmsea_ci_upper_robust"] = lo * np.sqrt(c), hi * np.sqrt(c)
    return out


# Conventional cut-offs, each with its source; (direction, threshold).
CUTOFFS: dict[str, tuple[str, float, str]] = {
    "pvalue": (">", 0.05, "exact-fit chi-square test (non-significant is good)"),
    "cmin_df": ("<", 3.0, "Carmines & McIver (1981); Kline (2016)"),
    "cfi": (">=", 0.95, "Hu & Bentler (1999)"),
    "tli": (">=", 0.95, "Hu & Bentler (1999)"),
    "nfi": (">=", 0.90, "Bentler & Bonett (1980)"),
    "rfi": (">=", 0.90, "Bollen (1986)"),
    "ifi": (">=", 0.90, "Bollen (1989)"),
    "pnfi": (">=", 0.50, "Mulaik et al. (1989)"),
    "pcfi": (">=", 0.50, "Mulaik et al. (1989)"),
    "rmsea": ("<=", 0.06, "Hu & Bentler (1999); < .08 acceptable, Browne & Cudeck (1993)"),
    "rmsea_pvalue": (">", 0.05, "PCLOSE, Browne & Cudeck (1993)"),
    "srmr": ("<=", 0.08, "Hu & Bentler (1999)"),
    "gfi": (">=", 0.90, "Joreskog & Sorbom (1984)"),
    "agfi": (">=", 0.80, "Joreskog & Sorbom (1984); Baumgartner & Homburg (1996)"),
    "pgfi": (">=", 0.50, "Mulaik et al. (1989)"),
}


# Under a robust estimator the verdicts read these in place of the normal-theory ones, as
# lavaan's summary(fit.measures = TRUE) leads with them.
ROBUST_BASIS = {"pvalue": "pvalue_scaled", "cmin_df": "chisq_scaled", "cfi": "cfi_robust", "tli": "tli_robust",
                "rmsea": "rmsea_robust"}


def verdicts(measures: dict[str, float]) -> list[dict]:
    """One row per index with a conventional cut-off: index, value, cutoff, verdict, source, basis.

    ``basis`` names the figure judged: the index itself, or under MLM / MLR its scaled or robust
    counterpart (``ROBUST_BASIS``; chi2/df becomes the scaled chi-square over df).
    """
    ops = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}
    robust = "chisq_scaled" in measures
    rows = []
    for name, (op, thr, source) in CUTOFFS.items():
        basis = ROBUST_BASIS.get(name, name) if robust else name
        if robust and basis.endswith("_robust") and basis not in measures:  # FIML: the scaled index
            basis = basis.replace("_robust", "_scaled")
        value = measures.get(basis)
        if robust and name == "cmin_df":
            value = measures["chisq_scaled"] / measures["df"] if measures.get("df") else None
        if measures.get("valid") is False:
            verdict = "not valid (no convergence)"
        elif value is None or not np.isfinite(value):
            verdict = "not available"
        else:
            verdict = "good" if ops[op](value, thr) else "poor"
            if name == "rmsea" and verdict == "poor" and value <= 0.08:
                verdict = "acceptable"
        rows.append({"index": name, "value": value, "cutoff": f"{op} {thr:g}", "verdict": verdict,
                     "source": source, "basis": "chisq_scaled / df" if robust and name == "cmin_df" else basis})
    return rows
