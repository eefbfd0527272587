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
  (expected information) with step halving, then BFGS updates near the optimum, to a
  gradient below 1e-9.
* FIML (``missing="ml"``): saturated intercepts, casewise likelihood evaluated row by
  row through the partitioned inverse of Sigma (no inverse per missingness pattern),
  minimised by BFGS from the complete-data fit to the EM moments; the saturated (H1)
  model is fitted by EM; standard errors from the observed information (lavaan's
  default for missing = "ml").
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
            raise SemUpgradeError(not_pd_message(np.cov(start_data.to_numpy(), rowvar=False), obs)) from None
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


# ---------------------------------------------------------------- batched model algebra
def implied_batch(st: ModelStructure, theta: np.ndarray):
    """Model matrices for a batch of parameter vectors ``theta`` (nb, q).

    Returns B, Lambda, Psi, Theta, C = (I - B)^-1, M = Lambda C, Phi = C Psi C' and
    Sigma = M Psi M' + Theta, each stacked along a first axis of length nb.
    """
    nb = len(theta)
    mats = [np.broadcast_to(m, (nb, *m.shape)).copy() for m in st.base]
    for mid in range(4):
        sel = st.loc_matrix == mid
        if sel.any():
            r, c, k = st.loc_row[sel], st.loc_col[sel], st.loc_param[sel]
            mats[mid][:, r, c] = theta[:, k]
            if mid in (_PSI, _THETA):
                mats[mid][:, c, r] = theta[:, k]
    B, L, P, T = mats
    C = np.linalg.inv(np.eye(B.shape[1])[None] - B)
    M = L @ C
    phi = C @ P @ C.transpose(0, 2, 1)
    sigma = M @ P @ M.transpose(0, 2, 1) + T
    return B, L, P, T, C, M, phi, sigma


def chain_gradient(st: ModelStructure, mats, W: np.ndarray) -> np.ndarray:
    """dF/dtheta (nb, q) from dF/dSigma = W (nb, p, p), W symmetric, for a batch.

    Matrix chain rule (Joreskog 1977; Neudecker & Satorra 1991):
    dF/dLambda = 2 W Lambda Phi, dF/dB = 2 M' W M Psi C', dF/dPsi = M' W M, dF/dTheta = W,
    with an off-diagonal element of the symmetric Psi and Theta counted twice.
    """
    B, L, P, T, C, M, phi, sigma = mats
    mid, r, c = st.loc_matrix, st.loc_row, st.loc_col
    g_loc = np.empty((len(W), len(mid)))
    MWM = None
    for m_id in (_LAMBDA, _BETA, _PSI, _THETA):
        sel = mid == m_id
        if not sel.any():
            continue
        if m_id in (_BETA, _PSI) and MWM is None:
            MWM = M.transpose(0, 2, 1) @ W @ M
        if m_id == _LAMBDA:
            d = 2.0 * (W @ L @ phi)
        elif m_id == _BETA:
            d = 2.0 * (MWM @ P @ C.transpose(0, 2, 1))
        elif m_id == _PSI:
            d = MWM
        else:
            d = W
        g = d[:, r[sel], c[sel]]
        g_loc[:, sel] = g * np.where(r[sel] != c[sel], 2.0, 1.0) if m_id in (_PSI, _THETA) else g
    inc = _incidence(st)
    return g_loc if inc is None else g_loc @ inc


def expected_information_batch(st: ModelStructure, mats) -> np.ndarray:
    """Expected information of F_ML, H_kl = tr(K dSigma_k K dSigma_l) (K = Sigma^-1), for a batch.

    Every dSigma_k is (c_k / 2)(U_k V_k' + V_k U_k') with c_k = 2 for Lambda, B and off-diagonal
    terms, 1 for variances (where U_k = V_k). With tr(K a b' K c d') = (b'K c)(d'K a):
    H_kl = c_k c_l / 2 * (Guv_kl Guv_lk + Guu_kl Gvv_kl), Guu = U K U', Guv = U K V', Gvv = V K V',
    three small Gram matrices instead of the (q, p, p) stack of dSigma.
    """
    B, L, P, T, C, M, phi, sigma = mats
    nb, p = len(sigma), sigma.shape[1]
    mid, r, c = st.loc_matrix, st.loc_row, st.loc_col
    n_loc = len(mid)
    D = phi @ L.transpose(0, 2, 1)
    U = np.zeros((nb, n_loc, p))
    V = np.zeros((nb, n_loc, p))
    for m_id in (_LAMBDA, _BETA, _PSI, _THETA):
        sel = mid == m_id
        if not sel.any():
            continue
        if m_id == _LAMBDA:
            U[:, sel, r[sel]] = 1.0
            V[:, sel] = D[:, c[sel]]
        elif m_id == _BETA:
            U[:, sel] = M[:, :, r[sel]].transpose(0, 2, 1)
            V[:, sel] = D[:, c[sel]]
        elif m_id == _PSI:
            U[:, sel] = M[:, :, r[sel]].transpose(0, 2, 1)
            V[:, sel] = M[:, :, c[sel]].transpose(0, 2, 1)
        else:
            U[:, sel, r[sel]] = 1.0
            V[:, sel, c[sel]] = 1.0
    K = np.linalg.inv(sigma)
    cvec = np.where((mid == _LAMBDA) | (mid == _BETA) | (r != c), 2.0, 1.0)
    UK = U @ K
    Guu = UK @ U.transpose(0, 2, 1)
    Guv = UK @ V.transpose(0, 2, 1)
    Gvv = (V @ K) @ V.transpose(0, 2, 1)
    H = 0.5 * np.outer(cvec, cvec)[None] * (Guv * Guv.transpose(0, 2, 1) + Guu * Gvv)
    inc = _incidence(st)
    return H if inc is None else inc.T[None] @ H @ inc[None]


def _incidence(st: ModelStructure):
    """Matrix locations x free parameters (1 where a location holds the parameter), or None when
    each parameter has its own location in order; several locations share a parameter under
    equality constraints."""
    n_loc = len(st.loc_matrix)
    if n_loc == st.n_free and np.array_equal(st.loc_param, np.arange(st.n_free)):
        return None
    inc = np.zeros((n_loc, st.n_free))
    inc[np.arange(n_loc), st.loc_param] = 1.0
    return inc


def _batch_cholesky(a: np.ndarray):
    """Batched Cholesky factors and a mask of the matrices that are positive definite."""
    try:
        return np.linalg.cholesky(a), np.ones(len(a), bool)
    except np.linalg.LinAlgError:
        chol = np.zeros_like(a)
        ok = np.zeros(len(a), bool)
        for b in range(len(a)):
            try:
                chol[b] = np.linalg.cholesky(a[b])
                ok[b] = True
            except np.linalg.LinAlgError:
                pass
        return chol, ok


def _quasi_newton_batch(evaluate, theta: np.ndarray, hessian: np.ndarray, max_iter: int = 200,
                        gtol: float = 1e-9, xtol: float = 1e-8, information=None, n_fisher: int = 0):
    """Minimise many independent problems at once by quasi-Newton steps with step halving.

    ``evaluate(theta_sub, sel)`` -> (F, dF/dtheta) of the problems ``sel`` at the rows
    ``theta_sub``; F is inf where the point is not admissible. ``hessian`` (nb, k, k), or (k, k)
    shared by all, holds each problem's first Hessian approximation (positive definite), the
    metric of the first step. Given ``information(theta_sub, sel)``, the next ``n_fisher`` steps are Fisher
    scoring steps (the expected information at the current point), the safe metric far from
    the optimum.
    After that the inverse Hessians are updated by BFGS (Nocedal & Wright 2006, eq. 6.17),
    which converges superlinearly where Fisher scoring is only linear (model misfit). A
    problem has converged when max |g| < gtol or a full step is below xtol; one whose
    objective cannot be decreased stops unconverged.

    Returns theta, F, converged, iterations (per problem).
    """
    nb, k = theta.shape
    theta = theta.copy()
    F, G = evaluate(theta, np.arange(nb))
    active = np.isfinite(F)
    converged = np.zeros(nb, bool)
    iters = np.zeros(nb, int)
    if hessian.ndim == 2:  # one matrix shared by every problem
        hinv = np.tile(_safe_inverse(hessian), (nb, 1, 1))
    else:
        hinv = _safe_inverse(hessian)
    g_prev = np.zeros((nb, k))
    th_prev = theta.copy()
    for it in range(max_iter):
        a = np.where(active & ~converged)[0]
        if not len(a):
            break
        g = G[a]
        if 0 < it <= n_fisher:
            hinv[a] = _safe_inverse(information(theta[a], a))
        elif it > 0:
            s, y = theta[a] - th_prev[a], g - g_prev[a]
            ys = np.einsum("bi,bi->b", y, s)
            upd = ys > 1e-12 * np.linalg.norm(y, axis=1) * np.linalg.norm(s, axis=1)
            if upd.any():
                u = a[upd]
                s, y, rho = s[upd], y[upd], 1.0 / ys[upd]
                whole = len(u) == nb  # every problem at once: work in place, no copies
                h_u = hinv if whole else hinv[u]
                hy = (h_u @ y[:, :, None])[:, :, 0]
                yhy = np.einsum("bi,bi->b", y, hy)
                # rank-two update as one product: [s hy] [[rho^2 yhy + rho, -rho], [-rho, 0]] [s hy]'
                V = np.stack([s, hy], axis=2)
                coef = np.zeros((len(u), 2, 2))
                coef[:, 0, 0] = rho * rho * yhy + rho
                coef[:, 0, 1] = coef[:, 1, 0] = -rho
                h_u += (V @ coef) @ V.transpose(0, 2, 1)
                if not whole:
                    hinv[u] = h_u
        g_prev[a], th_prev[a] = g, theta[a]
        done = np.max(np.abs(g), axis=1) < gtol
        converged[a[done]] = True
        a, g = a[~done], g[~done]
        if not len(a):
            break
        iters[a] += 1
        step = -((hinv if len(a) == nb else hinv[a]) @ g[:, :, None])[:, :, 0]
        alpha = np.ones(len(a))
        pending = np.ones(len(a), bool)
        for _ in range(40):  # step halving, problem by problem
            idx = np.where(pending)[0]
            cand = theta[a[idx]] + alpha[idx, None] * step[idx]
            Fc, Gc = evaluate(cand, a[idx])
            good = np.isfinite(Fc) & (Fc <= F[a[idx]] + 1e-14 * np.abs(F[a[idx]]))
            hit = idx[good]
            theta[a[hit]], F[a[hit]], G[a[hit]] = cand[good], Fc[good], Gc[good]
            tiny = np.max(np.abs(alpha[hit, None] * step[hit]), axis=1) < xtol
            converged[a[hit[tiny]]] = True
            pending[hit] = False
            alpha[pending] *= 0.5
            if not pending.any():
                break
        active[a[pending]] = False  # no decrease along the step: stop here, unconverged
    return theta, F, converged, iters


def _safe_inverse(h: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(h)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(h)


def numerical_hessian(gradient, par: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian of an analytic gradient, every perturbation in one batch.

    ``gradient(batch)`` maps parameter vectors (m, k) to gradients (m, k). Symmetrised.
    """
    k = len(par)
    steps = h * np.maximum(1.0, np.abs(par))
    pts = np.concatenate([par + np.diag(steps), par - np.diag(steps)])
    g = gradient(pts)
    H = (g[:k] - g[k:]).T / (2.0 * steps)[None, :]
    return 0.5 * (H + H.T)


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
    data: np.ndarray | None = None  # FIML: the rows fitted, NaN where missing

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


def ml_minimise(st, S, logdet_s, start=None, n=None, max_iter: int = 500):
    """Minimise F_ML for the covariance matrix S (log|S| = ``logdet_s``): the optimisation alone,
    without standard errors or fit figures.

    From ``start``, or else from semopy's starting values and, should that not converge,
    from semopy's own solution (``n`` rows), keeping the better attempt. Returns
    (theta, F, converged, iterations, message); raises SemUpgradeError when no start gives a
    positive-definite implied matrix. ``max_iter`` caps the Fisher scoring steps of each attempt
    (the bootstrap's per-resample effort limit).
    """
    objective = lambda th: _f_ml(st, th, S, logdet_s)  # noqa: E731
    grad_info = _ml_grad_info(st, S)
    grad = _ml_grad(st, S)
    result = _fisher_scoring(objective, grad_info, st.start if start is None else start, grad=grad,
                             max_iter=max_iter)
    if not result[2] and start is None:
        theta1 = _semopy_start(st, S, n)
        if theta1 is not None:
            second = _fisher_scoring(objective, grad_info, theta1, grad=grad)
            if second[2] or (np.isfinite(second[1]) and not second[1] > result[1]):  # keep the better attempt
                result = second
    if not np.isfinite(result[1]):
        raise SemUpgradeError("the model could not be fitted: no starting values give a positive-definite "
                              "model-implied covariance matrix")
    return result


def _fit_cov(st, S, mean, n, likelihood, start=None, method="ml") -> Fit:
    p = S.shape[0]
    n_eff = n - 1 if likelihood == "wishart" else n
    cs = _chol_inv(S)
    if cs is None:
        raise SemUpgradeError(not_pd_message(S, st.observed))
    _, logdet_s = cs
    npar = st.n_free
    df = p * (p + 1) // 2 - npar
    if df < 0:
        raise SemUpgradeError(f"the model is not identified: it has {npar} free parameters but the "
                              f"{p} items give only {p * (p + 1) // 2} variances and covariances (df = {df})")
    theta, f, converged, iters, msg = ml_minimise(st, S, logdet_s, start, n)
    grad_info = _ml_grad_info(st, S)
    _, H = grad_info(theta)
    vcov, warn = _invert_information(0.5 * n_eff * H, st, converged,
                                     info_at=lambda t: grad_info(t)[1], theta=theta)
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
            logging.disable(logging.WARNING)  # semopy logs its own optimiser's troubles
            model.fit(cov=pd.DataFrame(S, index=st.observed, columns=st.observed), n_samples=n, obj="MLW")
            est = model.inspect()
    except Exception:  # semopy failing here means: no better start available
        return None
    finally:
        logging.disable(logging.NOTSET)
    theta = st.start.copy()
    for _, row in st.table[st.table["free"]].iterrows():
        hit = est[(est["lval"].astype(str) == str(row["lhs"] if row["op"] != "=~" else row["rhs"]))
                  & (est["rval"].astype(str) == str(row["rhs"] if row["op"] != "=~" else row["lhs"]))]
        if len(hit):
            theta[row["index"]] = float(hit["Estimate"].iloc[0])
    return theta


def _identified_elsewhere(info_at, theta, start) -> bool:
    """Whether the information matrix has full rank at generic points near ``theta`` or near
    the starting values ``start`` (a point where the implied matrix is positive definite).

    Local identification is the rank of the information matrix at a generic point (Rothenberg
    1971): full rank there but not at the estimates means the model is identified and these
    data put the solution on a singular point (empirical under-identification, e.g. a factor
    variance near zero), not that the model itself is unidentified."""
    rng = np.random.default_rng(0)
    for base in [theta] * 3 + [start] * 3:
        t = base + rng.normal(scale=0.05, size=base.shape) * (1.0 + np.abs(base))
        try:
            w = np.linalg.eigvalsh(info_at(t))
        except (np.linalg.LinAlgError, ValueError, TypeError, FloatingPointError):
            continue  # the point gives no positive-definite implied matrix: try another
        if np.all(np.isfinite(w)) and w.min() > 1e-8 * max(w.max(), 1.0):
            return True
    return False


def _invert_information(info, st, converged=True, info_at=None, theta=None):
    """Covariance matrix of the estimates.

    A singular information matrix where the optimiser stopped gives no standard errors (a
    warning naming the parameters involved) when the fit did not converge or the model is
    identified at generic points (``info_at(theta)`` of full rank near ``theta``); otherwise
    the model is not identified: an error naming those parameters."""
    warn = []
    try:
        w = np.linalg.eigvalsh(info)
    except np.linalg.LinAlgError:
        return None, ["the information matrix could not be decomposed; no standard errors"]
    if w.min() <= 1e-10 * max(w.max(), 1.0):
        vals, vecs = np.linalg.eigh(info)
        worst = np.argsort(-np.abs(vecs[:, 0]))[:3]
        names = [_param_name(st, k) for k in worst]
        if not converged:
            return None, ["no standard errors: the information matrix is singular where the "
                          f"optimiser stopped (the parameters involved: {', '.join(names)}); the model "
                          "may be empirically under-identified for these data"]
        if info_at is not None and _identified_elsewhere(info_at, theta, st.start):
            return None, ["no standard errors: the model is identified, but at these estimates the "
                          f"information matrix is singular (the parameters involved: {', '.join(names)}): "
                          "empirical under-identification (e.g. a factor variance near zero, or a two-item "
                          "factor uncorrelated with the others)"]
        raise SemUpgradeError("the model is not identified: the information matrix is singular; "
                              f"the parameters involved: {', '.join(names)}")
    return np.linalg.inv(info), warn


def _param_name(st, k):
    row = st.table[st.table["index"] == k].iloc[0]
    return f"{row['lhs']} {row['op']} {row['rhs']}"


def not_pd_message(S, names):
    """Why a sample covariance matrix is not positive definite, naming the items to blame:
    constant items, duplicated pairs (|r| > .9999), or the items of a constant linear combination."""
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
def em_saturated(x: np.ndarray, max_iter: int = 10000, tol: float = 1e-12):
    """EM estimates of the saturated mean and covariance of incomplete normal data.

    Returns (mu, sigma, loglik, iterations). Rows with every value missing must be removed.
    E-step row by row through the partitioned inverse (see ``_row_solve``): a row's missing
    items have conditional mean mu_m + (Sigma r)_m and covariance K[m, m]^-1. Stops when the
    log-likelihood changes by less than ``tol`` (relative). Reference: Little & Rubin (2002), ch. 11.
    """
    rows = _rows(x)
    n, p = x.shape
    ones = np.ones((1, n))
    mu = np.nanmean(x, axis=0)
    sigma = np.diag(np.nanvar(x, axis=0))
    ll_old = -np.inf
    for it in range(1, max_iter + 1):
        ci = _chol_inv(sigma)
        if ci is None:
            break
        K, logdet = ci
        z = rows.mask * (rows.x0 - mu)
        r, log_a, mid = _row_solve(rows, K[None], z[None], ones)
        ll = -0.5 * float(np.sum(rows.n_obs * _LOG2PI + logdet + log_a[0] + np.einsum("np,np->n", z, r[0])))
        if abs(ll - ll_old) < tol * max(1.0, abs(ll)):
            return mu, sigma, ll, it
        ll_old = ll
        d = r[0] @ sigma  # completed rows, centred at the current mu
        shift = d.mean(axis=0)
        d -= shift
        mu = mu + shift
        sigma = (d.T @ d + mid[0]) / n
    return mu, sigma, ll_old, it


@dataclass
class _Rows:
    """Incomplete data laid out for the row-wise FIML likelihood."""

    x0: np.ndarray  # (n, p) values, 0 where missing
    mask: np.ndarray  # (n, p) 1.0 where observed
    n_obs: np.ndarray  # (n,) observed items of each row
    groups: list  # [(rows (r,), missing item indices (r, pm))], one entry per number pm >= 1 of missing items


def _rows(x: np.ndarray) -> _Rows:
    mask = ~np.isnan(x)
    n_mis = (~mask).sum(axis=1)
    groups = []
    for m in np.unique(n_mis[n_mis > 0]):
        rows = np.where(n_mis == m)[0]
        groups.append((rows, np.array([np.where(~mask[i])[0] for i in rows])))
    return _Rows(np.where(mask, x, 0.0), mask.astype(float), mask.sum(axis=1), groups)


def _row_solve(rows: _Rows, K: np.ndarray, z: np.ndarray, ww: np.ndarray | None = None):
    """Per row: r = Sigma_oo^-1 z (zero-padded), log|K[m, m]| and, given row weights ww,
    sum_i ww_i [K[m, m]^-1 padded]; K = Sigma^-1 (b, p, p), z centred rows (b, n, p).

    Sigma r_i is the row completed by its conditional expectation (centred), and
    K[m, m]^-1 the conditional covariance of its missing items (the E-step of EM).
    """
    b, n, p = z.shape
    r = z @ K
    log_a = np.zeros((b, n))
    mid = np.zeros((b, p, p)) if ww is not None else None
    for idx, mis in rows.groups:
        A = K[:, mis[:, :, None], mis[:, None, :]]  # (b, r, pm, pm)
        log_a[:, idx] = 2.0 * np.log(np.diagonal(np.linalg.cholesky(A), axis1=2, axis2=3)).sum(axis=2)
        a_inv = np.linalg.inv(A)
        c = np.einsum("brij,brj->bri", a_inv, r[:, idx[:, None], mis])
        r[:, idx] -= np.einsum("bprj,brj->brp", K[:, :, mis], c)
        if ww is not None:
            flat = (mis[:, :, None] * p + mis[:, None, :])[None] + (np.arange(b) * p * p)[:, None, None, None]
            vals = ww[:, idx, None, None] * a_inv
            mid += np.bincount(flat.ravel(), weights=vals.ravel(), minlength=b * p * p).reshape(b, p, p)
    return r, log_a, mid


def _fiml_batch(st: ModelStructure, rows: _Rows, par: np.ndarray, w: np.ndarray | None = None):
    """-2 log-likelihood / N of incomplete normal data and its gradient, for a batch.

    ``par`` (nb, q + p): the free parameters followed by the intercepts; ``w`` (nb, n): row
    weights (resampling counts; None for ones). Returns F (nb,), inf where Sigma is not
    positive definite, and dF/dpar (nb, q + p), NaN there.

    Row by row without inverting each row's Sigma_oo: with K = Sigma^-1 and m the row's
    missing items, the zero-padded Sigma_oo^-1 is K - K[:, m] K[m, m]^-1 K[m, :] and
    log|Sigma_oo| = log|Sigma| + log|K[m, m]| (partitioned inverse; Schur complement), so a
    row costs a pm x pm solve. With r_i = Sigma_oo^-1 z_i (z_i the centred row, 0 where
    missing):  -2 logl_i = p_o log 2 pi + log|Sigma_oo| + z_i' r_i,  d/dmu = -2 r_i,
    d/dSigma = Sigma_oo^-1 - r_i r_i'  (padded), summed as
    N K - K (sum_i [K[m, m]^-1 padded]) K - sum_i r_i r_i'.
    """
    q = st.n_free
    nb = len(par)
    mats = implied_batch(st, par[:, :q])
    chol, ok = _batch_cholesky(mats[-1])
    F = np.full(nb, np.inf)
    g = np.full(par.shape, np.nan)
    if not ok.any():
        return F, g
    sub = np.where(ok)[0]
    m = len(sub)
    logdet = 2.0 * np.log(np.diagonal(chol[sub], axis1=1, axis2=2)).sum(axis=1)
    K = np.linalg.inv(mats[-1][sub])
    K = 0.5 * (K + K.transpose(0, 2, 1))
    ww = np.ones((m, len(rows.x0))) if w is None else np.asarray(w, float)[sub]
    z = rows.mask[None] * (rows.x0[None] - par[sub, None, q:])
    r, log_a, mid = _row_solve(rows, K, z, ww)
    m2ll = rows.n_obs * _LOG2PI + logdet[:, None] + log_a + np.einsum("bnp,bnp->bn", z, r)
    n_w = ww.sum(axis=1)
    F[sub] = np.einsum("bn,bn->b", ww, m2ll) / n_w
    wr = ww[:, :, None] * r
    G = n_w[:, None, None] * K - K @ mid @ K - wr.transpose(0, 2, 1) @ r
    G = 0.5 * (G + G.transpose(0, 2, 1)) / n_w[:, None, None]
    g[sub, :q] = chain_gradient(st, [a[sub] for a in mats], G)
    g[sub, q:] = -2.0 * wr.sum(axis=1) / n_w[:, None]
    return F, g


def pattern_inverses(sigma: np.ndarray, x: np.ndarray | None = None) -> list:
    """[(share of the rows, zero-padded Sigma_oo^-1)] for each missingness pattern of ``x``;
    [(1, Sigma^-1)] without ``x`` (complete data)."""
    if x is None:
        return [(1.0, np.linalg.inv(sigma))]
    masks, counts = np.unique(~np.isnan(x), axis=0, return_counts=True)
    out = []
    for mask, count in zip(masks, counts):
        K = np.zeros_like(sigma)
        K[np.ix_(mask, mask)] = np.linalg.inv(sigma[np.ix_(mask, mask)])
        out.append((count / len(x), K))
    return out


def fiml_expected_information(st: ModelStructure, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Expected information per case of the FIML model (free parameters, then intercepts).

    With K_k the zero-padded inverse of pattern k's Sigma_oo and w_k its share of the rows:
    I_ab = sum_k w_k tr(K_k dSigma_a K_k dSigma_b) / 2 for covariance parameters,
    sum_k w_k K_k for the intercepts, 0 between the two (lavaan's expected information for
    ``missing = "ml"``, valid under MCAR; Savalei 2010). The pattern sum is taken once,
    W = sum_k w_k (K_k (x) K_k), so the cost does not grow with the number of parameters
    times patterns.
    """
    sigma = implied(st, theta)[0]
    p = len(sigma)
    W = np.zeros((p * p, p * p))
    K_mean = np.zeros((p, p))
    for w, K in pattern_inverses(sigma, x):
        W += w * np.kron(K, K)
        K_mean += w * K
    D = sigma_jacobian(st, theta).reshape(st.n_free, -1)
    q = st.n_free
    info = np.zeros((q + p, q + p))
    info[:q, :q] = 0.5 * D @ W @ D.T
    info[q:, q:] = K_mean
    return info


def fit_fiml(st: ModelStructure, data: pd.DataFrame | np.ndarray, start: np.ndarray | None = None) -> Fit:
    """Fit by full-information ML with saturated intercepts (lavaan ``missing = "ml"``).

    The chi-square is 2 (logl_H1 - logl_H0) with H1 the EM-estimated saturated model; the
    baseline model has free means and variances and zero covariances. Standard errors from
    the observed information (central differences of the analytic gradient).

    Optimisation: complete-data ML fitted to the EM moments gives the start and, with
    2 Sigma^-1 for the intercepts, the first Hessian; BFGS then minimises -2 logl / N
    (row-wise likelihood, see ``_fiml_batch``). Should BFGS stall, Newton steps on the
    observed information take over. ``start`` (theta followed by intercepts) skips the
    complete-data pre-fit.

    Validated against: ``lavaan::cfa(model, data, missing = "ml")``.
    """
    x = np.asarray(data[st.observed] if isinstance(data, pd.DataFrame) else data, float)
    x = x[~np.isnan(x).all(axis=1)]
    n, p = x.shape
    rows = _rows(x)
    mu_h1, sig_h1, ll_h1, _ = em_saturated(x)
    if _chol_inv(sig_h1) is None:
        raise SemUpgradeError(not_pd_message(sig_h1, st.observed))
    q = st.n_free
    npar = q + p
    df = p * (p + 1) // 2 + p - npar
    if df < 0:
        raise SemUpgradeError(f"the model is not identified: {npar} free parameters (with intercepts) "
                              f"but only {p * (p + 1) // 2 + p} moments (df = {df})")

    def gradient(par):
        return _fiml_batch(st, rows, par)[1]

    ml_info = _ml_grad_info(st, sig_h1)  # complete-data ML on the EM moments: start and first metric
    if start is None:
        theta0 = ml_minimise(st, sig_h1, _chol_inv(sig_h1)[1], n=n)[0]
        start = np.concatenate([theta0, mu_h1])
        hess = np.zeros((npar, npar))
        hess[:q, :q] = ml_info(theta0)[1]
        hess[q:, q:] = 2.0 * np.linalg.inv(sig_h1)
    else:
        hess = _positive_definite(numerical_hessian(gradient, start))
    par, f, converged, iterations = _fiml_optimize(st, rows, start, hess)
    msg = "converged" if converged else "no convergence: the likelihood could not be decreased further"
    ll = -0.5 * n * f
    info_obs = numerical_hessian(gradient, par) * n / 2.0
    # the covariance structure decides identification
    vcov, warn = _invert_information(info_obs, _with_means(st, p), converged,
                                     info_at=lambda t: ml_info(t[:q])[1], theta=par)
    # baseline: independent variables, each with its own mean and variance (per-variable MLE)
    ll_b = 0.0
    for j in range(p):
        v = x[:, j][~np.isnan(x[:, j])]
        ll_b += -0.5 * len(v) * (_LOG2PI + np.log(v.var()) + 1.0)
    return Fit(structure=st, theta=par[:q], n=n, method="fiml", likelihood="normal", sample_cov=sig_h1,
               sample_mean=mu_h1, converged=converged, iterations=iterations, message=msg,
               vcov=vcov[:q, :q] if vcov is not None else None, fmin=(ll_h1 - ll) / n,
               chisq=max(2.0 * (ll_h1 - ll), 0.0), df=df, npar=npar, logl=ll, logl_h1=ll_h1,
               baseline_chisq=2.0 * (ll_h1 - ll_b), baseline_df=p * (p - 1) // 2, mean_hat=par[q:],
               warnings=warn, vcov_means=vcov[q:, q:] if vcov is not None else None,
               data=x)


def _fiml_optimize(st: ModelStructure, rows: _Rows, start: np.ndarray, hess: np.ndarray):
    """Minimise -2 logl / N from ``start``: BFGS with ``hess`` as the first metric; should it
    stall, Newton steps on the observed information (at most three restarts of 50 steps;
    where those do not converge, more rarely helps: the likelihood is flat or unbounded).

    Returns (par, F, converged, iterations).
    """
    def evaluate(par, sel):
        return _fiml_batch(st, rows, par)

    par, f, conv, iters = _quasi_newton_batch(evaluate, start[None], hess)
    iterations = int(iters[0])
    for _ in range(3):
        if conv[0] or not np.isfinite(f[0]):
            break
        hess = numerical_hessian(lambda b: _fiml_batch(st, rows, b)[1], par[0])
        if not np.all(np.isfinite(hess)):
            break  # stopped where the likelihood is undefined nearby: no Newton metric
        par, f, conv, iters = _quasi_newton_batch(evaluate, par, _positive_definite(hess), max_iter=50)
        iterations += int(iters[0])
    return par[0], float(f[0]), bool(conv[0]), iterations


def _positive_definite(h: np.ndarray) -> np.ndarray:
    """The nearest matrix with eigenvalues at least 1e-6 of the largest (a safe Newton metric)."""
    w, v = np.linalg.eigh(h)
    w = np.maximum(w, 1e-6 * max(w.max(), 1e-12))
    return (v * w) @ v.T


def _with_means(st, p):
    """A structure stand-in whose parameter names cover the intercepts too (for messages)."""
    extra = pd.DataFrame([{"lhs": v, "op": "~1", "rhs": "", "index": st.n_free + j} for j, v in enumerate(st.observed)])
    clone = ModelStructure(**{**st.__dict__, "table": pd.concat([st.table, extra], ignore_index=True)})
    return clone


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
