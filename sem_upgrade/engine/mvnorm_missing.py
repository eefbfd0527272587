"""Full-information ML for incomplete normal data (FIML, lavaan ``missing = "ml"``).

The casewise log-likelihood, evaluated row by row through the partitioned inverse of Sigma
(no inverse per missingness pattern), its gradient for a batch of parameter vectors and row
weights; the EM estimate of the saturated model (H1); the expected information over the
missingness patterns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .derivatives import chain_gradient, sigma_jacobian
from .implied import implied
from .linalg import batch_cholesky, chol_inv
from .mvnorm import LOG2PI
from .partable import ModelStructure

__all__ = ["em_saturated", "RowLayout", "row_layout", "row_solve", "fiml_objective", "pattern_inverses",
           "fiml_expected_information"]

def em_saturated(x: np.ndarray, max_iter: int = 10000, tol: float = 1e-12):
    """EM estimates of the saturated mean and covariance of incomplete normal data.

    Returns (mu, sigma, loglik, iterations). Rows with every value missing must be removed.
    E-step row by row through the partitioned inverse (see ``row_solve``): a row's missing
    items have conditional mean mu_m + (Sigma r)_m and covariance K[m, m]^-1. Stops when the
    log-likelihood changes by less than ``tol`` (relative). Reference: Little & Rubin (2002), ch. 11.
    """
    rows = row_layout(x)
    n, p = x.shape
    ones = np.ones((1, n))
    mu = np.nanmean(x, axis=0)
    sigma = np.diag(np.nanvar(x, axis=0))
    ll_old = -np.inf
    for it in range(1, max_iter + 1):
        ci = chol_inv(sigma)
        if ci is None:
            break
        K, logdet = ci
        z = rows.mask * (rows.x0 - mu)
        r, log_a, mid = row_solve(rows, K[None], z[None], ones)
        ll = -0.5 * float(np.sum(rows.n_obs * LOG2PI + logdet + log_a[0] + np.einsum("np,np->n", z, r[0])))
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
class RowLayout:
    """Incomplete data laid out for the row-wise FIML likelihood."""

    x0: np.ndarray  # (n, p) values, 0 where missing
    mask: np.ndarray  # (n, p) 1.0 where observed
    n_obs: np.ndarray  # (n,) observed items of each row
    groups: list  # [(rows (r,), missing item indices (r, pm))], one entry per number pm >= 1 of missing items


def row_layout(x: np.ndarray) -> RowLayout:
    mask = ~np.isnan(x)
    n_mis = (~mask).sum(axis=1)
    groups = []
    for m in np.unique(n_mis[n_mis > 0]):
        rows = np.where(n_mis == m)[0]
        groups.append((rows, np.array([np.where(~mask[i])[0] for i in rows])))
    return RowLayout(np.where(mask, x, 0.0), mask.astype(float), mask.sum(axis=1), groups)


def row_solve(rows: RowLayout, K: np.ndarray, z: np.ndarray, ww: np.ndarray | None = None):
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


def fiml_objective(st: ModelStructure, rows: RowLayout, par: np.ndarray, w: np.ndarray | None = None):
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
    mats = implied(st, par[:, :q])
    chol, ok = batch_cholesky(mats.sigma)
    F = np.full(nb, np.inf)
    g = np.full(par.shape, np.nan)
    if not ok.any():
        return F, g
    sub = np.where(ok)[0]
    m = len(sub)
    logdet = 2.0 * np.log(np.diagonal(chol[sub], axis1=1, axis2=2)).sum(axis=1)
    K = np.linalg.inv(mats.sigma[sub])
    K = 0.5 * (K + K.transpose(0, 2, 1))
    ww = np.ones((m, len(rows.x0))) if w is None else np.asarray(w, float)[sub]
    z = rows.mask[None] * (rows.x0[None] - par[sub, None, q:])
    r, log_a, mid = row_solve(rows, K, z, ww)
    m2ll = rows.n_obs * LOG2PI + logdet[:, None] + log_a + np.einsum("bnp,bnp->bn", z, r)
    n_w = ww.sum(axis=1)
    F[sub] = np.einsum("bn,bn->b", ww, m2ll) / n_w
    wr = ww[:, :, None] * r
    G = n_w[:, None, None] * K - K @ mid @ K - wr.transpose(0, 2, 1) @ r
    G = 0.5 * (G + G.transpose(0, 2, 1)) / n_w[:, None, None]
    g[sub, :q] = chain_gradient(st, mats.take(sub), G)
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
