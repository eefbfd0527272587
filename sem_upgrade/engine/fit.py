"""Fitting a model: the Fit object and the complete-data ML and FIML fits.

Conventions (lavaan 0.6 defaults, Rosseel 2012):

* ``likelihood="normal"`` (default): S has divisor N, chisq = N * F_ML, standard
  errors from the expected information times N. ``likelihood="wishart"`` (AMOS):
  S has divisor N - 1 and N - 1 replaces N in chisq and information.
* F_ML (:mod:`.mvnorm`) is minimised by Fisher scoring with step halving, then BFGS updates
  near the optimum, to a gradient below 1e-9 (:mod:`.optimize`).
* FIML (``missing="fiml"``, lavaan ``missing = "ml"``): saturated intercepts, casewise
  likelihood (:mod:`.mvnorm_missing`) minimised by BFGS from the complete-data fit to the EM
  moments; the saturated (H1) model is fitted by EM; standard errors from the observed
  information (:mod:`.vcov`).

semopy's own optimiser stops short of the optimum (about 5e-4 in standardized loadings),
bounds variances at zero (so Heywood cases are hidden), and its FIML is slow and its FIML
chi-square/df are wrong; here only its parser and starting values are used.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ModelNotIdentifiedError, SemUpgradeError
from .derivatives import numerical_hessian
from .identification import check_rows, not_pd_message
from .implied import implied
from .linalg import chol_inv, positive_definite
from .mvnorm import LOG2PI, ml_gradient_information, normal_loglik
from .mvnorm_missing import em_saturated, fiml_objective, row_layout
from .optimize import fiml_minimise, ml_minimise
from .partable import ModelStructure, build_structure
from .robust import ESTIMATORS, robust_fiml, robust_ml
from .standardize import standardized
from .vcov import invert_information, with_means

__all__ = ["Fit", "check_estimator", "fit_model", "fit_ml", "fit_covariance", "fit_fiml"]

@dataclass
class Fit:
    """A fitted model: estimates, information, likelihoods and the data summaries used.

    ``table()`` gives lavaan's parameterEstimates-style table.
    """

    structure: ModelStructure
    theta: np.ndarray
    n: int
    method: str  # "ml" or "fiml"
    likelihood: str  # "normal" or "wishart"
    sample_cov: np.ndarray  # S (divisor N; N-1 under wishart; EM estimate under FIML)
    sample_mean: np.ndarray
    converged: bool
    iterations: int
    message: str
    vcov: np.ndarray | None
    fmin: float  # F_ML at the optimum (complete data) or -2 logl / N difference (FIML)
    chisq: float
    df: int
    npar: int
    logl: float
    logl_h1: float
    baseline_chisq: float
    baseline_df: int
    mean_hat: np.ndarray | None = None
    vcov_means: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    data: np.ndarray | None = None  # FIML: the rows fitted, NaN where missing
    estimator: str = "ml"  # "ml", or "mlm" / "mlr": vcov is then the robust one (see .robust)
    robust: dict | None = None  # scaling factors and scaled statistics (engine.robust.robust_ml)

    @property
    def sigma(self) -> np.ndarray:
        return implied(self.structure, self.theta)[0]

    @property
    def phi(self) -> np.ndarray:
        return implied(self.structure, self.theta)[1]

    @property
    def n_eff(self) -> int:
        return self.n - 1 if self.likelihood == "wishart" else self.n

    def table(self) -> pd.DataFrame:
        """Parameter table.

        Returns
        -------
        DataFrame with columns ``lhs, op, rhs, free, estimate, se, z, pvalue, std_estimate``
        (se, z, p are NaN for fixed parameters; ``std_estimate`` is lavaan's std.all).
        """
        st = self.structure
        t = st.table[["lhs", "op", "rhs", "free", "index", "matrix", "row", "col"]].copy()
        est = np.where(t["free"], self.theta[t["index"].clip(lower=0)], st.table["value"])
        t["estimate"] = est
        se = np.full(len(t), np.nan)
        if self.vcov is not None:
            diag = np.diag(self.vcov)
            with np.errstate(invalid="ignore"):
                se = np.where(t["free"], np.sqrt(np.where(diag[t["index"].clip(lower=0)] >= 0,
                                                          diag[t["index"].clip(lower=0)], np.nan)), np.nan)
        t["se"] = se
        with np.errstate(divide="ignore", invalid="ignore"):
            t["z"] = t["estimate"] / t["se"]
        t["pvalue"] = 2.0 * stats.norm.sf(np.abs(t["z"]))
        t["std_estimate"] = standardized(self)
        return t.drop(columns=["index", "matrix", "row", "col"]).reset_index(drop=True)

    def r2(self) -> dict[str, float]:
        """Squared multiple correlation of every endogenous variable (indicators and constructs)."""
        st = self.structure
        sigma, phi, B, L, P, T, C, M = implied(st, self.theta)
        out = {}
        for i, v in enumerate(st.observed):
            if v not in st.inner:
                out[v] = float(1.0 - T[i, i] / sigma[i, i])
        for i, v in enumerate(st.inner):
            if np.any(B[i] != 0) or np.any(st.table.query("op == '~'")["lhs"] == v):
                out[v] = float(1.0 - P[i, i] / phi[i, i])
        return out

    def admissibility(self) -> list[str]:
        """Problems that make a solution inadmissible (Heywood cases, |r| > 1, non-PD Psi)."""
        problems = []
        t = self.table()
        for _, row in t[(t["op"] == "~~") & (t["lhs"] == t["rhs"])].iterrows():
            if row["estimate"] < 0:
                problems.append(f"negative variance of {row['lhs']} ({row['estimate']:.4f})")
        for _, row in t[t["op"] == "=~"].iterrows():
            if abs(row["std_estimate"]) > 1:
                problems.append(f"standardized loading of {row['rhs']} on {row['lhs']} is {row['std_estimate']:.3f} (beyond 1)")
        for _, row in t[(t["op"] == "~~") & (t["lhs"] != t["rhs"])].iterrows():
            if abs(row["std_estimate"]) > 1:
                problems.append(f"correlation of {row['lhs']} and {row['rhs']} is {row['std_estimate']:.3f} (beyond 1)")
        phi = self.phi
        lat = [self.structure.inner.index(v) for v in self.structure.latent]
        if lat and np.linalg.eigvalsh(phi[np.ix_(lat, lat)]).min() < -1e-10:
            problems.append("the latent covariance matrix is not positive definite")
        return problems


def fit_model(syntax: str, data: pd.DataFrame, missing: str = "listwise", likelihood: str = "normal",
              estimator: str = "ml") -> Fit:
    """Build and fit a model: listwise ML (complete rows) or FIML.

    ``estimator``: ``"ml"``, or the robust ``"mlm"`` / ``"mlr"`` (ML estimates with sandwich
    standard errors and a scaled test, :mod:`.robust`; MLR also under FIML).

    Raises SemUpgradeError for an unidentified model, a non-PD sample covariance
    matrix, too few rows, wishart together with FIML, or a robust estimator with FIML.
    """
    st = build_structure(syntax, data)
    x = data[st.observed]
    if estimator != "ml" and missing == "fiml":
        check_estimator(estimator, missing, likelihood)
        x = x[x.notna().any(axis=1)]
        check_rows(len(x), st)
        fit = fit_fiml(st, x)
        r = robust_fiml(fit)
        return replace(fit, vcov=r.pop("vcov"), vcov_means=r.pop("vcov_means"), estimator=estimator, robust=r)
    if estimator != "ml":
        check_estimator(estimator, missing, likelihood)
        x = x.dropna()
        check_rows(len(x), st)
        fit = fit_ml(st, x, likelihood=likelihood)
        r = robust_ml(fit, x.to_numpy(float), estimator)
        return replace(fit, vcov=r.pop("vcov"), estimator=estimator, robust=r)
    if missing == "fiml":
        if likelihood == "wishart":
            raise SemUpgradeError("--likelihood wishart applies to complete data; use it with --missing listwise")
        x = x[x.notna().any(axis=1)]
        check_rows(len(x), st)
        return fit_fiml(st, x)
    x = x.dropna()
    check_rows(len(x), st)
    return fit_ml(st, x, likelihood=likelihood)


def check_estimator(estimator: str, missing: str = "listwise", likelihood: str = "normal") -> None:
    """A clear error for an estimator the options do not allow."""
    if estimator == "wlsmv":
        raise SemUpgradeError("--estimator wlsmv: ordinal (WLSMV) estimation is not available yet; "
                              f"choose one of {', '.join(ESTIMATORS)}")
    if estimator not in ESTIMATORS:
        raise SemUpgradeError(f"--estimator: '{estimator}' is not one of {', '.join(ESTIMATORS)}")
    if estimator != "ml" and missing == "fiml":
        if estimator == "mlr":
            return
        what = "mlm is defined for complete data only (lavaan: MLM with missing = 'ml' is not available)"
        raise SemUpgradeError(f"--estimator {estimator}: {what}")
    if estimator != "ml" and likelihood == "wishart":
        raise SemUpgradeError(f"--estimator {estimator}: robust estimators use lavaan's N convention; "
                              "drop --likelihood wishart")


def fit_ml(st: ModelStructure, data: pd.DataFrame | np.ndarray, likelihood: str = "normal",
           start: np.ndarray | None = None) -> Fit:
    """Fit by ML to complete data (rows with NaN must be removed before).

    Validated against: ``lavaan::cfa/sem(model, data)`` (``likelihood = "wishart"`` for
    the N - 1 convention).
    """
    x = np.asarray(data[st.observed] if isinstance(data, pd.DataFrame) else data, float)
    n, p = x.shape
    if likelihood not in ("normal", "wishart"):
        raise SemUpgradeError(f"likelihood: '{likelihood}' is not 'normal' or 'wishart'")
    ddof = 1 if likelihood == "wishart" else 0
    mean = x.mean(axis=0)
    S = np.cov(x, rowvar=False, ddof=ddof).reshape(p, p)
    return fit_covariance(st, S, mean, n, likelihood, start)


def fit_covariance(st, S, mean, n, likelihood, start=None, method="ml") -> Fit:
    p = S.shape[0]
    n_eff = n - 1 if likelihood == "wishart" else n
    cs = chol_inv(S)
    if cs is None:
        raise SemUpgradeError(not_pd_message(S, st.observed))
    _, logdet_s = cs
    npar = st.n_free
    xs = st.fixed_x
    n_mom = p * (p + 1) // 2 - len(xs) * (len(xs) + 1) // 2  # moments of the covariates are given
    df = n_mom - npar
    if xs:
        st = with_sample_x(st, S)
    if df < 0:
        raise ModelNotIdentifiedError(f"the model is not identified: it has {npar} free parameters but the "
                              f"{p} items give only {p * (p + 1) // 2} variances and covariances (df = {df})")
    theta, f, converged, iters, msg = ml_minimise(st, S, logdet_s, start, n)
    grad_info = ml_gradient_information(st, S)
    _, H = grad_info(theta)
    vcov, warn = invert_information(0.5 * n_eff * H, st, converged,
                                     info_at=lambda t: grad_info(t)[1], theta=theta)
    # lavaan's log-likelihoods keep N and use the S the model was fitted to (divisor N - 1
    # under wishart), so only the chi-square scale changes with the convention.
    logl = normal_loglik(implied(st, theta).sigma, S, n)
    logl_h1 = -0.5 * n * (p * LOG2PI + logdet_s + p)
    if xs:  # lavaan's fixed.x log-likelihoods are conditional on the covariates
        _, logdet_x = np.linalg.slogdet(S[np.ix_(xs, xs)])
        logl_x = -0.5 * n * (len(xs) * LOG2PI + logdet_x + len(xs))
        logl, logl_h1 = logl - logl_x, logl_h1 - logl_x
    base = n_eff * baseline_discrepancy(S, xs)
    fit = Fit(structure=st, theta=theta, n=n, method=method, likelihood=likelihood, sample_cov=S,
              sample_mean=mean, converged=converged, iterations=iters, message=msg, vcov=vcov,
              fmin=f / 2.0, chisq=max(n_eff * f, 0.0), df=df, npar=npar, logl=logl, logl_h1=logl_h1,
              baseline_chisq=base, baseline_df=n_mom - (p - len(xs)), warnings=warn)
    return fit


def baseline_discrepancy(S: np.ndarray, fixed_x: list[int]) -> float:
    """F_ML of the baseline (independence) model.

    Every variable independent of every other, except the exogenous covariates (lavaan's
    fixed.x), whose covariance block is kept at its sample value: Sigma_b = diag(S) outside that
    block. With no covariates this is sum(log diag S) - log|S|.

    Validated against: ``fitMeasures(sem(model, data), "baseline.chisq")`` with and without
    observed covariates (tests/reference/models.json, hs_controls).
    """
    p = S.shape[0]
    base = np.diag(np.diag(S))
    if fixed_x:
        base[np.ix_(fixed_x, fixed_x)] = S[np.ix_(fixed_x, fixed_x)]
    _, logdet_b = np.linalg.slogdet(base)
    _, logdet_s = np.linalg.slogdet(S)
    return float(logdet_b + np.trace(np.linalg.solve(base, S)) - logdet_s - p)


def with_sample_x(st: ModelStructure, S: np.ndarray) -> ModelStructure:
    """The structure with the covariates' fixed (co)variances set to the sample values in S."""
    t = st.table.copy()
    exo = t["exo"] == 1
    pos = {v: i for i, v in enumerate(st.observed)}
    t.loc[exo, "value"] = [S[pos[a], pos[b]] for a, b in zip(t.loc[exo, "lhs"], t.loc[exo, "rhs"])]
    return ModelStructure.from_table(st.syntax, st.observed, st.inner, st.latent, t)


def fit_fiml(st: ModelStructure, data: pd.DataFrame | np.ndarray, start: np.ndarray | None = None) -> Fit:
    """Fit by full-information ML with saturated intercepts (lavaan ``missing = "ml"``).

    The chi-square is 2 (logl_H1 - logl_H0) with H1 the EM-estimated saturated model; the
    baseline model has free means and variances and zero covariances. Standard errors from
    the observed information (central differences of the analytic gradient).

    Optimisation: complete-data ML fitted to the EM moments gives the start and, with
    2 Sigma^-1 for the intercepts, the first Hessian; BFGS then minimises -2 logl / N
    (row-wise likelihood, see ``fiml_objective``). Should BFGS stall, Newton steps on the
    observed information take over. ``start`` (theta followed by intercepts) skips the
    complete-data pre-fit.

    Validated against: ``lavaan::cfa(model, data, missing = "ml")``.
    """
    x = np.asarray(data[st.observed] if isinstance(data, pd.DataFrame) else data, float)
    if st.fixed_x:
        raise SemUpgradeError("observed covariates (control variables) are fitted with listwise deletion; "
                              "--missing fiml does not take them yet")
    x = x[~np.isnan(x).all(axis=1)]
    n, p = x.shape
    rows = row_layout(x)
    mu_h1, sig_h1, ll_h1, _ = em_saturated(x)
    if chol_inv(sig_h1) is None:
        raise SemUpgradeError(not_pd_message(sig_h1, st.observed))
    q = st.n_free
    npar = q + p
    df = p * (p + 1) // 2 + p - npar
    if df < 0:
        raise ModelNotIdentifiedError(f"the model is not identified: {npar} free parameters (with intercepts) "
                              f"but only {p * (p + 1) // 2 + p} moments (df = {df})")

    def gradient(par):
        return fiml_objective(st, rows, par)[1]

    ml_info = ml_gradient_information(st, sig_h1)  # complete-data ML on the EM moments: start and first metric
    if start is None:
        theta0 = ml_minimise(st, sig_h1, chol_inv(sig_h1)[1], n=n)[0]
        start = np.concatenate([theta0, mu_h1])
        hess = np.zeros((npar, npar))
        hess[:q, :q] = ml_info(theta0)[1]
        hess[q:, q:] = 2.0 * np.linalg.inv(sig_h1)
    else:
        hess = positive_definite(numerical_hessian(gradient, start))
    par, f, converged, iterations = fiml_minimise(st, rows, start, hess)
    msg = "converged" if converged else "no convergence: the likelihood could not be decreased further"
    ll = -0.5 * n * f
    info_obs = numerical_hessian(gradient, par) * n / 2.0
    # the covariance structure decides identification
    vcov, warn = invert_information(info_obs, with_means(st, p), converged,
                                     info_at=lambda t: ml_info(t[:q])[1], theta=par)
    # baseline: independent variables, each with its own mean and variance (per-variable MLE)
    ll_b = 0.0
    for j in range(p):
        v = x[:, j][~np.isnan(x[:, j])]
        ll_b += -0.5 * len(v) * (LOG2PI + np.log(v.var()) + 1.0)
    return Fit(structure=st, theta=par[:q], n=n, method="fiml", likelihood="normal", sample_cov=sig_h1,
               sample_mean=mu_h1, converged=converged, iterations=iterations, message=msg,
               vcov=vcov[:q, :q] if vcov is not None else None, fmin=(ll_h1 - ll) / n,
               chisq=max(2.0 * (ll_h1 - ll), 0.0), df=df, npar=npar, logl=ll, logl_h1=ll_h1,
               baseline_chisq=2.0 * (ll_h1 - ll_b), baseline_df=p * (p - 1) // 2, mean_hat=par[q:],
               warnings=warn, vcov_means=vcov[q:, q:] if vcov is not None else None,
               data=x)
