"""Estimation: maximum likelihood (complete data) and full-information ML (missing data).

semopy parses the model syntax, lays out the LISREL-type matrices

    Sigma = Lambda (I - B)^-1 Psi (I - B)^-T Lambda' + Theta

and supplies starting values. The optimisation, standard errors and standardized
solution are computed here, because semopy's optimiser stops short of the optimum
(about 5e-4 in standardized loadings), bounds variances at zero (so Heywood cases
are hidden), and its FIML is slow and its FIML chi-square/df are wrong.

Conventions (lavaan 0.6 defaults, Rosseel 2012):

* ``likelihood="normal"`` (default): S has divisor N, chisq = N * F_ML, standard
  errors from the expected information times N. ``likelihood="wishart"`` (AMOS):
  S has divisor N - 1 and N - 1 replaces N in chisq and information.
* F_ML = log|Sigma| + tr(S Sigma^-1) - log|S| - p, minimised by Fisher scoring
  (expected information) with step halving, to a gradient below 1e-9.
* FIML (``missing="ml"``): saturated intercepts, casewise likelihood summed over
  missingness patterns; the saturated (H1) model is fitted by EM; standard errors
  from the observed information (lavaan's default for missing = "ml").
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .errors import SemUpgradeError

__all__ = ["ModelStructure", "Fit", "build_structure", "fit_ml", "fit_fiml", "fit_model", "em_saturated"]

_LOG2PI = np.log(2.0 * np.pi)
_BETA, _LAMBDA, _PSI, _THETA = 0, 1, 2, 3


@dataclass
class ModelStructure:
    """The parameter layout of a model, read once from semopy's parsed model."""

    syntax: str
    observed: list[str]
    inner: list[str]
    latent: list[str]
    base: list[np.ndarray]  # B, Lambda, Psi, Theta with fixed values filled in
    loc_matrix: np.ndarray  # per free location: matrix id
    loc_row: np.ndarray
    loc_col: np.ndarray
    loc_param: np.ndarray  # parameter index of each location
    table: pd.DataFrame  # lhs, op, rhs, free, index, value, matrix, row, col
    start: np.ndarray

    @property
    def n_free(self) -> int:
        return len(self.start)

    def matrices(self, theta: np.ndarray) -> list[np.ndarray]:
        mats = [m.copy() for m in self.base]
        for mid in range(4):
            sel = self.loc_matrix == mid
            if sel.any():
                r, c, k = self.loc_row[sel], self.loc_col[sel], self.loc_param[sel]
                mats[mid][r, c] = theta[k]
                if mid in (_PSI, _THETA):
                    mats[mid][c, r] = theta[k]
        return mats


def build_structure(syntax: str, data: pd.DataFrame) -> ModelStructure:
    """Parse ``syntax`` with semopy and read off matrices, parameters and starting values.

    ``data`` (may hold NaN) only serves semopy's starting values.
    """
    import semopy

    try:
        model = semopy.Model(syntax)
    except Exception as exc:  # semopy raises bare Exceptions for syntax errors
        raise SemUpgradeError(f"model syntax: {exc}") from None
    obs = list(model.vars["observed"])
    missing = [v for v in obs if v not in data.columns]
    if missing:
        raise SemUpgradeError(f"model syntax: variables not in the data: {', '.join(missing)}")
    start_data = data[obs].fillna(data[obs].mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            model.load(data=start_data)
        except np.linalg.LinAlgError:
            raise SemUpgradeError(_not_pd_message(np.cov(start_data.to_numpy(), rowvar=False), obs)) from None
        finally:
            logging.disable(logging.NOTSET)
    inner = list(model.vars["inner"])
    latent = [v for v in inner if v in model.vars["latent"]]
    mats = model.matrices[:4]
    names = model.names[:4]
    base = [np.zeros_like(m, dtype=float) for m in mats]
    base[_LAMBDA][:] = 0.0
    # observed variables that take part in the structural part carry a fixed unit loading
    for v in obs:
        if v in inner:
            base[_LAMBDA][obs.index(v), inner.index(v)] = 1.0
    loc_m, loc_r, loc_c, loc_p, rows, start = [], [], [], [], [], []
    k = 0
    for pname, prm in model.parameters.items():
        for n_loc, loc in enumerate(prm.locations):
            mid = next(i for i in range(4) if mats[i] is loc.matrix)
            r, c = loc.indices
            if prm.active:
                loc_m.append(mid), loc_r.append(r), loc_c.append(c), loc_p.append(k)
            else:
                base[mid][r, c] = prm.start
                if mid in (_PSI, _THETA):
                    base[mid][c, r] = prm.start
            if n_loc == 0:
                rows.append(_table_row(mid, r, c, names, prm.active, k if prm.active else -1,
                                       float(prm.start), pname))
        if prm.active:
            start.append(float(prm.start))
            k += 1
    table = _lavaan_order(pd.DataFrame(rows), syntax)
    return ModelStructure(syntax=syntax, observed=obs, inner=inner, latent=latent, base=base,
                          loc_matrix=np.array(loc_m, int), loc_row=np.array(loc_r, int),
                          loc_col=np.array(loc_c, int), loc_param=np.array(loc_p, int),
                          table=table, start=np.array(start, float))


def syntax_order(syntax: str) -> dict[str, int]:
    """Rank of each name by first appearance in the model syntax (lavaan's variable order)."""
    order: dict[str, int] = {}
    for tok in re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", syntax):
        order.setdefault(tok, len(order))
    return order


def _lavaan_order(table: pd.DataFrame, syntax: str) -> pd.DataFrame:
    """Write each covariance pair in order of first appearance in the syntax, as lavaan does."""
    order = syntax_order(syntax)
    swap = (table["op"] == "~~") & (table["lhs"].map(order) > table["rhs"].map(order))
    table.loc[swap, ["lhs", "rhs"]] = table.loc[swap, ["rhs", "lhs"]].to_numpy()
    return table


def _table_row(mid, r, c, names, free, index, value, pname):
    rn, cn = names[mid]
    if mid == _BETA:
        lhs, op, rhs = rn[r], "~", cn[c]
    elif mid == _LAMBDA:
        lhs, op, rhs = cn[c], "=~", rn[r]
    else:
        lhs, op, rhs = rn[r], "~~", cn[c]
    return {"lhs": lhs, "op": op, "rhs": rhs, "free": bool(free), "index": index,
            "value": value, "matrix": mid, "row": r, "col": c, "name": pname}


# ---------------------------------------------------------------- model algebra
def implied(st: ModelStructure, theta: np.ndarray):
    """Model-implied covariance Sigma, latent covariance Phi and helpers (M = Lambda C, C)."""
    B, L, P, T = st.matrices(theta)
    C = np.linalg.inv(np.eye(len(B)) - B)
    M = L @ C
    phi = C @ P @ C.T
    sigma = M @ P @ M.T + T
    return sigma, phi, (B, L, P, T, C, M)


def sigma_jacobian(st: ModelStructure, theta: np.ndarray) -> np.ndarray:
    """dSigma/dtheta_k for every free parameter, shape (q, p, p)."""
    sigma, phi, (B, L, P, T, C, M) = implied(st, theta)
    p = sigma.shape[0]
    D = phi @ L.T  # = C Psi C' Lambda'
    q = st.n_free
    out = np.zeros((q, p, p))
    mid, r, c, k = st.loc_matrix, st.loc_row, st.loc_col, st.loc_param
    n = len(mid)
    U = np.zeros((n, p))
    V = np.zeros((n, p))
    sel = mid == _LAMBDA
    U[sel, r[sel]] = 1.0
    V[sel] = D[c[sel]]
    sel = mid == _BETA
    U[sel] = M[:, r[sel]].T
    V[sel] = D[c[sel]]
    sel = mid == _PSI
    U[sel] = M[:, r[sel]].T
    V[sel] = M[:, c[sel]].T
    sel = mid == _THETA
    U[sel, r[sel]] = 1.0
    V[sel, c[sel]] = 1.0
    outer = U[:, :, None] * V[:, None, :]
    # Lambda and Beta enter twice (x and x'); Psi and Theta off-diagonal elements too.
    twice = (mid == _LAMBDA) | (mid == _BETA) | (r != c)
    contrib = np.where(twice[:, None, None], outer + outer.transpose(0, 2, 1), outer)
    if len(k) == q and np.array_equal(k, np.arange(q)):
        return contrib  # one location per parameter, in order: no accumulation needed
    np.add.at(out, k, contrib)
    return out


def _trace_products(A: np.ndarray) -> np.ndarray:
    """H_kl = tr(A_k A_l) for a stack of matrices A (q, p, p), via one matrix product."""
    q = A.shape[0]
    return A.reshape(q, -1) @ A.transpose(0, 2, 1).reshape(q, -1).T


def _chol_inv(a: np.ndarray):
    """Inverse and log-determinant of a symmetric positive-definite matrix, or None."""
    try:
        Lc = np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        return None
    inv_l = np.linalg.inv(Lc)
    return inv_l.T @ inv_l, 2.0 * np.log(np.diag(Lc)).sum()


# ---------------------------------------------------------------- results
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
        sigma, phi, (B, L, P, T, C, M) = implied(st, self.theta)
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


def standardized(fit: Fit) -> np.ndarray:
    """lavaan's std.all for every row of the parameter table.

    Loadings and regressions are scaled by model-implied standard deviations;
    a (residual) variance is divided by the implied total variance; a covariance
    between two (residual) terms is divided by the square roots of their own
    variance parameters, i.e. it becomes the correlation of those terms, as lavaan 0.6 does.
    """
    st = fit.structure
    sigma, phi, (B, L, P, T, C, M) = implied(st, fit.theta)
    sd_obs = np.sqrt(np.diag(sigma))
    sd_inner = np.sqrt(np.clip(np.diag(phi), 0, None))
    t = st.table
    out = np.empty(len(t))
    for n, (mid, r, c) in enumerate(zip(t["matrix"], t["row"], t["col"])):
        if mid == _LAMBDA:
            out[n] = L[r, c] * sd_inner[c] / sd_obs[r]
        elif mid == _BETA:
            out[n] = B[r, c] * sd_inner[c] / sd_inner[r]
        elif mid == _PSI:
            out[n] = P[r, c] / (phi[r, r] if r == c else np.sqrt(P[r, r] * P[c, c]))
        else:
            out[n] = T[r, c] / (sigma[r, r] if r == c else np.sqrt(T[r, r] * T[c, c]))
    return out


# ---------------------------------------------------------------- complete-data ML
def _f_ml(st, theta, S, logdet_s):
    sigma = implied(st, theta)[0]
    ci = _chol_inv(sigma)
    if ci is None:
        return np.inf
    inv, logdet = ci
    return logdet + np.sum(S * inv) - logdet_s - S.shape[0]


def _fisher_scoring(objective, grad_info, theta0, max_iter=500, tol=1e-9, grad=None):
    """Fisher scoring with step halving, then BFGS updates near the optimum.

    ``grad_info(theta)`` -> (gradient, expected information); ``grad(theta)`` -> gradient
    alone (defaults to the first part of grad_info). Far from the optimum the expected
    information is a safe positive-definite metric; near it (max |g| < 1e-4) BFGS updates of
    that matrix take over, because Fisher scoring converges only linearly when the model
    misfits, while quasi-Newton steps converge superlinearly.
    """
    grad = grad or (lambda z: grad_info(z)[0])
    theta = theta0.copy()
    f = objective(theta)
    if not np.isfinite(f):
        return theta, f, False, 0, "the starting values give a non-positive-definite implied matrix"
    B = g_prev = th_prev = None
    for it in range(1, max_iter + 1):
        if B is None:
            g, H = grad_info(theta)
            if np.max(np.abs(g)) < 1e-4:
                B = H
        else:
            g = grad(theta)
            s_vec, y_vec = theta - th_prev, g - g_prev
            ys, Bs = y_vec @ s_vec, B @ s_vec
            if ys > 1e-12 * np.linalg.norm(y_vec) * np.linalg.norm(s_vec) and s_vec @ Bs > 0:
                B = B + np.outer(y_vec, y_vec) / ys - np.outer(Bs, Bs) / (s_vec @ Bs)
            H = B
        g_prev, th_prev = g, theta
        try:
            step = -np.linalg.solve(H + 1e-12 * np.eye(len(g)), g)
        except np.linalg.LinAlgError:
            step = -np.linalg.lstsq(H, g, rcond=None)[0]
        alpha = 1.0
        for _ in range(40):
            cand = theta + alpha * step
            fc = objective(cand)
            if np.isfinite(fc) and fc <= f + 1e-14 * abs(f):
                break
            alpha *= 0.5
        else:
            return theta, f, bool(np.max(np.abs(g)) < 1e-6), it, "line search failed"
        theta, f_old, f = cand, f, fc
        if np.max(np.abs(alpha * step)) < tol or (np.max(np.abs(g)) < tol and abs(f_old - f) < 1e-15):
            return theta, f, True, it, "converged"
    g = grad(theta)
    return theta, f, bool(np.max(np.abs(g)) < 1e-6), max_iter, "iteration limit reached"


def _ml_gradient_parts(st, S, theta):
    """Sigma^-1, dSigma and the gradient of F_ML: g_k = tr(Sigma^-1 (Sigma - S) Sigma^-1 dSigma_k)."""
    sigma = implied(st, theta)[0]
    inv, _ = _chol_inv(sigma)
    dS = sigma_jacobian(st, theta)
    W = inv @ (sigma - S) @ inv
    return inv, dS, dS.reshape(len(dS), -1) @ W.ravel()


def _ml_grad(st, S):
    """Gradient of F_ML as a function of theta."""
    return lambda theta: _ml_gradient_parts(st, S, theta)[2]


def _ml_grad_info(st, S):
    """Gradient of F_ML and its expected Hessian H_kl = tr(Sigma^-1 dSigma_k Sigma^-1 dSigma_l)."""
    def grad_info(theta):
        inv, dS, g = _ml_gradient_parts(st, S, theta)
        return g, _trace_products(inv @ dS)
    return grad_info


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
    return _fit_cov(st, S, mean, n, likelihood, start)


def _fit_cov(st, S, mean, n, likelihood, start=None, method="ml") -> Fit:
    p = S.shape[0]
    n_eff = n - 1 if likelihood == "wishart" else n
    cs = _chol_inv(S)
    if cs is None:
        raise SemUpgradeError(_not_pd_message(S, st.observed))
    _, logdet_s = cs
    npar = st.n_free
    df = p * (p + 1) // 2 - npar
    if df < 0:
        raise SemUpgradeError(f"the model is not identified: it has {npar} free parameters but the "
                              f"{p} items give only {p * (p + 1) // 2} variances and covariances (df = {df})")
    objective = lambda th: _f_ml(st, th, S, logdet_s)  # noqa: E731
    grad_info = _ml_grad_info(st, S)
    theta0 = st.start if start is None else start
    grad = _ml_grad(st, S)
    theta, f, converged, iters, msg = _fisher_scoring(objective, grad_info, theta0, grad=grad)
    if not converged and start is None:
        theta1 = _semopy_start(st, S, n)
        if theta1 is not None:
            theta, f, converged, iters, msg = _fisher_scoring(objective, grad_info, theta1, grad=grad)
    _, H = grad_info(theta)
    vcov, warn = _invert_information(0.5 * n_eff * H, st)
    sigma = implied(st, theta)[0]
    inv, logdet = _chol_inv(sigma) or (None, np.nan)
    # lavaan's log-likelihoods keep N and use the S the model was fitted to (divisor N - 1
    # under wishart), so only the chi-square scale changes with the convention.
    logl = -0.5 * n * (p * _LOG2PI + logdet + np.sum(S * inv)) if inv is not None else np.nan
    logl_h1 = -0.5 * n * (p * _LOG2PI + logdet_s + p)
    base = n_eff * (np.sum(np.log(np.diag(S))) - logdet_s)
    fit = Fit(structure=st, theta=theta, n=n, method=method, likelihood=likelihood, sample_cov=S,
              sample_mean=mean, converged=converged, iterations=iters, message=msg, vcov=vcov,
              fmin=f / 2.0, chisq=max(n_eff * f, 0.0), df=df, npar=npar, logl=logl, logl_h1=logl_h1,
              baseline_chisq=base, baseline_df=p * (p - 1) // 2, warnings=warn)
    return fit


def _semopy_start(st, S, n):
    """Fallback start: semopy's own optimiser on the covariance matrix."""
    import semopy

    try:
        model = semopy.Model(st.syntax)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(cov=pd.DataFrame(S, index=st.observed, columns=st.observed), n_samples=n, obj="MLW")
        est = model.inspect()
    except Exception:  # semopy failing here means: no better start available
        return None
    theta = st.start.copy()
    for _, row in st.table[st.table["free"]].iterrows():
        hit = est[(est["lval"].astype(str) == str(row["lhs"] if row["op"] != "=~" else row["rhs"]))
                  & (est["rval"].astype(str) == str(row["rhs"] if row["op"] != "=~" else row["lhs"]))]
        if len(hit):
            theta[row["index"]] = float(hit["Estimate"].iloc[0])
    return theta


def _invert_information(info, st):
    warn = []
    try:
        w = np.linalg.eigvalsh(info)
    except np.linalg.LinAlgError:
        return None, ["the information matrix could not be decomposed; no standard errors"]
    if w.min() <= 1e-10 * max(w.max(), 1.0):
        vals, vecs = np.linalg.eigh(info)
        worst = np.argsort(-np.abs(vecs[:, 0]))[:3]
        names = [_param_name(st, k) for k in worst]
        raise SemUpgradeError("the model is not identified: the information matrix is singular; "
                              f"the parameters involved: {', '.join(names)}")
    return np.linalg.inv(info), warn


def _param_name(st, k):
    row = st.table[st.table["index"] == k].iloc[0]
    return f"{row['lhs']} {row['op']} {row['rhs']}"


def _not_pd_message(S, names):
    sd = np.sqrt(np.clip(np.diag(S), 0, None))
    const = [names[i] for i in range(len(names)) if sd[i] < 1e-12]
    if const:
        return f"the sample covariance matrix is not positive definite: item(s) with zero variance: {', '.join(const)}"
    with np.errstate(invalid="ignore", divide="ignore"):
        R = S / np.outer(sd, sd)
    pairs = [f"{names[i]} and {names[j]} (r = {R[i, j]:.4f})" for i in range(len(names))
             for j in range(i) if abs(R[i, j]) > 0.9999]
    if pairs:
        return f"the sample covariance matrix is not positive definite: duplicated items: {', '.join(pairs)}"
    vals, vecs = np.linalg.eigh(R)
    v = vecs[:, 0]
    involved = [names[i] for i in np.argsort(-np.abs(v))[:4] if abs(v[i]) > 0.1]
    return ("the sample covariance matrix is not positive definite: collinear items: "
            f"{', '.join(involved)} (a linear combination of them is constant)")


# ---------------------------------------------------------------- FIML
@dataclass
class _Group:
    """Missingness patterns with the same number of observed items, stacked for batched algebra."""

    obs: np.ndarray  # (k, po) observed indices of each pattern
    mis: np.ndarray  # (k, pm) missing indices
    n: np.ndarray  # (k,) rows per pattern
    mean: np.ndarray  # (k, po) pattern means
    cov: np.ndarray  # (k, po, po) pattern covariances (divisor n_k, around the pattern mean)


def _patterns(x: np.ndarray) -> list[_Group]:
    """Group rows by missingness pattern; the likelihood only needs each pattern's n, mean, cov."""
    mask = ~np.isnan(x)
    keys, inverse = np.unique(mask, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    by_size: dict[int, list] = {}
    for k, key in enumerate(keys):
        if not key.any():
            continue
        rows = x[np.ix_(inverse == k, key)]
        m = rows.mean(axis=0)
        d = rows - m
        by_size.setdefault(int(key.sum()), []).append((np.where(key)[0], np.where(~key)[0], len(rows), m, d.T @ d / len(rows)))
    return [_Group(np.array([e[0] for e in g]), np.array([e[1] for e in g]).reshape(len(g), -1),
                   np.array([e[2] for e in g], float), np.array([e[3] for e in g]), np.array([e[4] for e in g]))
            for _, g in sorted(by_size.items())]


def _block(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Stack of sub-matrices a[rows_k][:, cols_k]."""
    return a[rows[:, :, None], cols[:, None, :]]


def _scatter(vals: np.ndarray, rows: np.ndarray, cols: np.ndarray, p: int) -> np.ndarray:
    """Sum a stack of blocks (k, a, b) into a p x p matrix at rows x cols."""
    flat = (rows[:, :, None] * p + cols[:, None, :]).ravel()
    return np.bincount(flat, weights=vals.ravel(), minlength=p * p).reshape(p, p)


def _group_inverse(sig_oo: np.ndarray):
    """Batched inverse and log-determinant of positive-definite blocks, or None."""
    try:
        chol = np.linalg.cholesky(sig_oo)
    except np.linalg.LinAlgError:
        return None
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    return np.linalg.inv(sig_oo), logdet


def _fiml_m2ll(groups: list[_Group], mu: np.ndarray, sigma: np.ndarray) -> float:
    """-2 log-likelihood of incomplete normal data, from pattern means and covariances."""
    total = 0.0
    for g in groups:
        res = _group_inverse(_block(sigma, g.obs, g.obs))
        if res is None:
            return np.inf
        inv, logdet = res
        d = g.mean - mu[g.obs]
        quad = np.einsum("ki,kij,kj->k", d, inv, d)
        total += np.sum(g.n * (g.obs.shape[1] * _LOG2PI + logdet + np.einsum("kij,kji->k", inv, g.cov) + quad))
    return float(total)


def em_saturated(x: np.ndarray, max_iter: int = 10000, tol: float = 1e-12):
    """EM estimates of the saturated mean and covariance of incomplete normal data.

    Returns (mu, sigma, loglik, iterations). Rows with every value missing must be removed.
    The E-step works on pattern means and covariances (sufficient statistics), so its cost
    does not grow with the number of rows. Reference: Little & Rubin (2002), ch. 11.
    """
    groups = _patterns(x)
    n, p = x.shape
    mu = np.nanmean(x, axis=0)
    sigma = np.diag(np.nanvar(x, axis=0))
    ll_old = -np.inf
    for it in range(1, max_iter + 1):
        t1 = np.zeros(p)
        t2 = np.zeros((p, p))
        for g in groups:
            nk = g.n
            second = g.cov + g.mean[:, :, None] * g.mean[:, None, :]  # E[y y'] over the pattern's rows
            t1 += np.bincount(g.obs.ravel(), weights=(nk[:, None] * g.mean).ravel(), minlength=p)
            t2 += _scatter(nk[:, None, None] * second, g.obs, g.obs, p)
            if g.mis.shape[1] == 0:
                continue
            s_oo = _block(sigma, g.obs, g.obs)
            s_om = _block(sigma, g.obs, g.mis)
            b = np.linalg.solve(s_oo, s_om).transpose(0, 2, 1)  # (k, pm, po): regression of missing on observed
            c0 = mu[g.mis] - np.einsum("kmo,ko->km", b, mu[g.obs])  # intercepts
            zm = c0 + np.einsum("kmo,ko->km", b, g.mean)  # mean of the imputed values
            cond = _block(sigma, g.mis, g.mis) - np.einsum("kmo,kol->kml", b, s_om)
            mo = c0[:, :, None] * g.mean[:, None, :] + np.einsum("kmo,kol->kml", b, second)
            mm = (np.einsum("kmo,kol,knl->kmn", b, g.cov, b) + zm[:, :, None] * zm[:, None, :] + cond)
            t1 += np.bincount(g.mis.ravel(), weights=(nk[:, None] * zm).ravel(), minlength=p)
            w = nk[:, None, None]
            t2 += _scatter(w * mo, g.mis, g.obs, p) + _scatter(w * mo.transpose(0, 2, 1), g.obs, g.mis, p)
            t2 += _scatter(w * mm, g.mis, g.mis, p)
        mu = t1 / n
        sigma = t2 / n - np.outer(mu, mu)
        ll = -0.5 * _fiml_m2ll(groups, mu, sigma)
        if abs(ll - ll_old) < tol * max(1.0, abs(ll)):
            return mu, sigma, ll, it
        ll_old = ll
    return mu, sigma, ll, max_iter


def fit_fiml(st: ModelStructure, data: pd.DataFrame | np.ndarray, start: np.ndarray | None = None,
             full: bool = True) -> Fit:
    """Fit by full-information ML with saturated intercepts (lavaan ``missing = "ml"``).

    The chi-square is 2 (logl_H1 - logl_H0) with H1 the EM-estimated saturated model; the
    baseline model has free means and variances and zero covariances. Standard errors from
    the observed information (numerical derivative of the analytic gradient).

    With ``full=False`` (bootstrap refits, which need the estimates only) the EM saturated
    model, the baseline and the standard errors are skipped; chi-square, baseline and SEs are
    then NaN. ``start`` must then be given (theta followed by the intercepts).

    Validated against: ``lavaan::cfa(model, data, missing = "ml")``.
    """
    x = np.asarray(data[st.observed] if isinstance(data, pd.DataFrame) else data, float)
    x = x[~np.isnan(x).all(axis=1)]
    n, p = x.shape
    groups = _patterns(x)
    if full:
        mu_h1, sig_h1, ll_h1, _ = em_saturated(x)
        if _chol_inv(sig_h1) is None:
            raise SemUpgradeError(_not_pd_message(sig_h1, st.observed))
    elif start is None:
        raise ValueError("fit_fiml(full=False) needs start values")
    q = st.n_free
    npar = q + p
    df = p * (p + 1) // 2 + p - npar
    if df < 0:
        raise SemUpgradeError(f"the model is not identified: {npar} free parameters (with intercepts) "
                              f"but only {p * (p + 1) // 2 + p} moments (df = {df})")
    # Start: the complete-data ML fit to the EM moments, then FIML proper.
    if start is None:
        pre = _fit_cov(st, sig_h1, mu_h1, n, "normal")
        start = np.concatenate([pre.theta, mu_h1])

    def objective(par):
        sigma = implied(st, par[:q])[0]
        return _fiml_m2ll(groups, par[q:], sigma) / n

    def grad_info(par):
        g, H, _ = _fiml_derivatives(st, groups, par, q, p, n)
        return g, H

    grad = lambda z: _fiml_derivatives(st, groups, z, q, p, n, with_info=False)[0]  # noqa: E731
    par, f, converged, iters, msg = _fisher_scoring(objective, grad_info, start, grad=grad)
    ll = -0.5 * n * f
    if not full:
        nan = float("nan")
        return Fit(structure=st, theta=par[:q], n=n, method="fiml", likelihood="normal", sample_cov=None,
                   sample_mean=None, converged=converged, iterations=iters, message=msg, vcov=None, fmin=nan,
                   chisq=nan, df=df, npar=npar, logl=ll, logl_h1=nan, baseline_chisq=nan,
                   baseline_df=p * (p - 1) // 2, mean_hat=par[q:])
    info_obs = _observed_information(grad, par) * n / 2.0
    vcov, warn = _invert_information(0.5 * (info_obs + info_obs.T), _with_means(st, p))
    # baseline: independent variables, each with its own mean and variance (per-variable MLE)
    ll_b = 0.0
    for j in range(p):
        v = x[:, j][~np.isnan(x[:, j])]
        ll_b += -0.5 * len(v) * (_LOG2PI + np.log(v.var()) + 1.0)
    fit = Fit(structure=st, theta=par[:q], n=n, method="fiml", likelihood="normal", sample_cov=sig_h1,
              sample_mean=mu_h1, converged=converged, iterations=iters, message=msg,
              vcov=vcov[:q, :q] if vcov is not None else None, fmin=(ll_h1 - ll) / n,
              chisq=max(2.0 * (ll_h1 - ll), 0.0), df=df, npar=npar, logl=ll, logl_h1=ll_h1,
              baseline_chisq=2.0 * (ll_h1 - ll_b), baseline_df=p * (p - 1) // 2, mean_hat=par[q:],
              warnings=warn, vcov_means=vcov[q:, q:] if vcov is not None else None)
    return fit


def _with_means(st, p):
    """A structure stand-in whose parameter names cover the intercepts too (for messages)."""
    extra = pd.DataFrame([{"lhs": v, "op": "~1", "rhs": "", "index": st.n_free + j} for j, v in enumerate(st.observed)])
    clone = ModelStructure(**{**st.__dict__, "table": pd.concat([st.table, extra], ignore_index=True)})
    return clone


def _fiml_derivatives(st, groups, par, q, p, n, with_info=True):
    """Gradient of -2 logl / n and (optionally) its expected information (Fisher scoring matrix).

    With I_k the inverse of a pattern's Sigma_oo embedded in p x p zeros, the expected
    information of the covariance parameters is sum_k n_k tr(I_k dSigma_a I_k dSigma_b),
    computed for all patterns at once as D W D' with W = sum_k n_k (I_k (x) I_k).
    """
    theta, mu = par[:q], par[q:]
    sigma = implied(st, theta)[0]
    dS = sigma_jacobian(st, theta)
    G = np.zeros((p, p))
    g_mu = np.zeros(p)
    H = np.zeros((q + p, q + p))
    W = np.zeros((p, p, p, p)) if with_info else None
    for g in groups:
        inv, _ = _group_inverse(_block(sigma, g.obs, g.obs))
        d = g.mean - mu[g.obs]
        t = g.cov + d[:, :, None] * d[:, None, :]
        w = g.n[:, None, None]
        G += _scatter(w * (inv - inv @ t @ inv), g.obs, g.obs, p)
        g_mu += np.bincount(g.obs.ravel(), weights=(-2.0 * g.n[:, None] * np.einsum("kij,kj->ki", inv, d)).ravel(),
                            minlength=p)
        if with_info:
            full = np.zeros((len(g.n), p, p))
            full[np.arange(len(g.n))[:, None, None], g.obs[:, :, None], g.obs[:, None, :]] = inv
            # W[b, a, c, d] = sum_k n_k I_k[b, a] I_k[c, d]
            W += np.tensordot(g.n[:, None, None] * full, full, axes=([0], [0]))
            H[q:, q:] += 2.0 * np.tensordot(g.n, full, axes=1)
    if with_info:
        D = dS.reshape(q, -1)
        H[:q, :q] = D @ W.transpose(0, 2, 3, 1).reshape(p * p, p * p) @ D.T
    g = np.concatenate([dS.reshape(q, -1) @ G.ravel(), g_mu]) / n
    return g, H / n, None


def _observed_information(grad, par, h=1e-6):
    """Numerical Jacobian of an analytic gradient (central differences)."""
    k = len(par)
    out = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = h * max(1.0, abs(par[j]))
        out[:, j] = (grad(par + e) - grad(par - e)) / (2 * e[j])
    return out


def fit_model(syntax: str, data: pd.DataFrame, missing: str = "listwise", likelihood: str = "normal") -> Fit:
    """Build and fit a model: listwise ML (complete rows) or FIML.

    Raises SemUpgradeError for an unidentified model, a non-PD sample covariance
    matrix, too few rows, or wishart together with FIML.
    """
    st = build_structure(syntax, data)
    x = data[st.observed]
    if missing == "fiml":
        if likelihood == "wishart":
            raise SemUpgradeError("--likelihood wishart applies to complete data; use it with --missing listwise")
        x = x[x.notna().any(axis=1)]
        _check_rows(len(x), st)
        return fit_fiml(st, x)
    x = x.dropna()
    _check_rows(len(x), st)
    return fit_ml(st, x, likelihood=likelihood)


def _check_rows(n, st):
    p = len(st.observed)
    if n <= p:
        raise SemUpgradeError(f"too few rows for the model: {n} usable rows for {p} items; at least {p + 1} "
                              f"are needed for a positive-definite covariance matrix (and far more, "
                              f"about {max(5 * st.n_free, 100)}, for trustworthy estimates)")
