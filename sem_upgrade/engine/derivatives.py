"""Derivatives of Sigma in the free parameters: the Jacobian, the chain rule from dF/dSigma to
dF/dtheta, the expected information of F_ML, and a central-difference Hessian."""

from __future__ import annotations

import numpy as np

from .implied import Implied, implied
from .partable import MatrixId, ModelStructure

__all__ = ["sigma_jacobian", "trace_products", "chain_gradient", "expected_information", "incidence",
           "numerical_hessian"]

def sigma_jacobian(st: ModelStructure, theta: np.ndarray) -> np.ndarray:
    """dSigma/dtheta_k for every free parameter, shape (q, p, p)."""
    sigma, phi, B, L, P, T, C, M = implied(st, theta)
    p = sigma.shape[0]
    D = phi @ L.T  # = C Psi C' Lambda'
    q = st.n_free
    out = np.zeros((q, p, p))
    mid, r, c, k = st.loc_matrix, st.loc_row, st.loc_col, st.loc_param
    n = len(mid)
    U = np.zeros((n, p))
    V = np.zeros((n, p))
    sel = mid == MatrixId.LAMBDA
    U[sel, r[sel]] = 1.0
    V[sel] = D[c[sel]]
    sel = mid == MatrixId.BETA
    U[sel] = M[:, r[sel]].T
    V[sel] = D[c[sel]]
    sel = mid == MatrixId.PSI
    U[sel] = M[:, r[sel]].T
    V[sel] = M[:, c[sel]].T
    sel = mid == MatrixId.THETA
    U[sel, r[sel]] = 1.0
    V[sel, c[sel]] = 1.0
    outer = U[:, :, None] * V[:, None, :]
    # Lambda and Beta enter twice (x and x'); Psi and Theta off-diagonal elements too.
    twice = (mid == MatrixId.LAMBDA) | (mid == MatrixId.BETA) | (r != c)
    contrib = np.where(twice[:, None, None], outer + outer.transpose(0, 2, 1), outer)
    if len(k) == q and np.array_equal(k, np.arange(q)):
        return contrib  # one location per parameter, in order: no accumulation needed
    np.add.at(out, k, contrib)
    return out


def trace_products(A: np.ndarray) -> np.ndarray:
    """H_kl = tr(A_k A_l) for a stack of matrices A (q, p, p), via one matrix product."""
    q = A.shape[0]
    return A.reshape(q, -1) @ A.transpose(0, 2, 1).reshape(q, -1).T


def chain_gradient(st: ModelStructure, mats: Implied, W: np.ndarray) -> np.ndarray:
    """dF/dtheta (nb, q) from dF/dSigma = W (nb, p, p), W symmetric, for a batch.

    Matrix chain rule (Joreskog 1977; Neudecker & Satorra 1991):
    dF/dLambda = 2 W Lambda Phi, dF/dB = 2 M' W M Psi C', dF/dPsi = M' W M, dF/dTheta = W,
    with an off-diagonal element of the symmetric Psi and Theta counted twice.
    """
    sigma, phi, B, L, P, T, C, M = mats
    mid, r, c = st.loc_matrix, st.loc_row, st.loc_col
    g_loc = np.empty((len(W), len(mid)))
    MWM = None
    for m_id in (MatrixId.LAMBDA, MatrixId.BETA, MatrixId.PSI, MatrixId.THETA):
        sel = mid == m_id
        if not sel.any():
            continue
        if m_id in (MatrixId.BETA, MatrixId.PSI) and MWM is None:
            MWM = M.transpose(0, 2, 1) @ W @ M
        if m_id == MatrixId.LAMBDA:
            d = 2.0 * (W @ L @ phi)
        elif m_id == MatrixId.BETA:
            d = 2.0 * (MWM @ P @ C.transpose(0, 2, 1))
        elif m_id == MatrixId.PSI:
            d = MWM
        else:
            d = W
        g = d[:, r[sel], c[sel]]
        g_loc[:, sel] = g * np.where(r[sel] != c[sel], 2.0, 1.0) if m_id in (MatrixId.PSI, MatrixId.THETA) else g
    inc = incidence(st)
    return g_loc if inc is None else g_loc @ inc


def expected_information(st: ModelStructure, mats: Implied) -> np.ndarray:
    """Expected information of F_ML, H_kl = tr(K dSigma_k K dSigma_l) (K = Sigma^-1), for a batch.

    Every dSigma_k is (c_k / 2)(U_k V_k' + V_k U_k') with c_k = 2 for Lambda, B and off-diagonal
    terms, 1 for variances (where U_k = V_k). With tr(K a b' K c d') = (b'K c)(d'K a):
    H_kl = c_k c_l / 2 * (Guv_kl Guv_lk + Guu_kl Gvv_kl), Guu = U K U', Guv = U K V', Gvv = V K V',
    three small Gram matrices instead of the (q, p, p) stack of dSigma.
    """
    sigma, phi, B, L, P, T, C, M = mats
    nb, p = len(sigma), sigma.shape[1]
    mid, r, c = st.loc_matrix, st.loc_row, st.loc_col
    n_loc = len(mid)
    D = phi @ L.transpose(0, 2, 1)
    U = np.zeros((nb, n_loc, p))
    V = np.zeros((nb, n_loc, p))
    for m_id in (MatrixId.LAMBDA, MatrixId.BETA, MatrixId.PSI, MatrixId.THETA):
        sel = mid == m_id
        if not sel.any():
            continue
        if m_id == MatrixId.LAMBDA:
            U[:, sel, r[sel]] = 1.0
            V[:, sel] = D[:, c[sel]]
        elif m_id == MatrixId.BETA:
            U[:, sel] = M[:, :, r[sel]].transpose(0, 2, 1)
            V[:, sel] = D[:, c[sel]]
        elif m_id == MatrixId.PSI:
            U[:, sel] = M[:, :, r[sel]].transpose(0, 2, 1)
            V[:, sel] = M[:, :, c[sel]].transpose(0, 2, 1)
        else:
            U[:, sel, r[sel]] = 1.0
            V[:, sel, c[sel]] = 1.0
    K = np.linalg.inv(sigma)
    cvec = np.where((mid == MatrixId.LAMBDA) | (mid == MatrixId.BETA) | (r != c), 2.0, 1.0)
    UK = U @ K
    Guu = UK @ U.transpose(0, 2, 1)
    Guv = UK @ V.transpose(0, 2, 1)
    Gvv = (V @ K) @ V.transpose(0, 2, 1)
    H = 0.5 * np.outer(cvec, cvec)[None] * (Guv * Guv.transpose(0, 2, 1) + Guu * Gvv)
    inc = incidence(st)
    return H if inc is None else inc.T[None] @ H @ inc[None]


def incidence(st: ModelStructure):
    """Matrix locations x free parameters (1 where a location holds the parameter), or None when
    each parameter has its own location in order; several locations share a parameter under
    equality constraints."""
    n_loc = len(st.loc_matrix)
    if n_loc == st.n_free and np.array_equal(st.loc_param, np.arange(st.n_free)):
        return None
    inc = np.zeros((n_loc, st.n_free))
    inc[np.arange(n_loc), st.loc_param] = 1.0
    return inc


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
