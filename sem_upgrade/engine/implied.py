"""The model-implied moments: Sigma (and the latent covariance Phi), single and batched.

    C = (I - B)^-1,  M = Lambda C,  Phi = C Psi C',  Sigma = M Psi M' + Theta

(LISREL all-y model; lavaan's ``computeSigmaHat``.) Under FIML the means are saturated
(free intercepts), so mu is a parameter, not a function of the matrices.
"""

from __future__ import annotations

import numpy as np

from .partable import SYMMETRIC, MatrixId, ModelStructure

__all__ = ["implied", "implied_batch"]

def implied(st: ModelStructure, theta: np.ndarray):
    """Model-implied covariance Sigma, latent covariance Phi and helpers (M = Lambda C, C)."""
    B, L, P, T = st.matrices(theta)
    C = np.linalg.inv(np.eye(len(B)) - B)
    M = L @ C
    phi = C @ P @ C.T
    sigma = M @ P @ M.T + T
    return sigma, phi, (B, L, P, T, C, M)


def implied_batch(st: ModelStructure, theta: np.ndarray):
    """Model matrices for a batch of parameter vectors ``theta`` (nb, q).

    Returns B, Lambda, Psi, Theta, C = (I - B)^-1, M = Lambda C, Phi = C Psi C' and
    Sigma = M Psi M' + Theta, each stacked along a first axis of length nb.
    """
    nb = len(theta)
    mats = [np.broadcast_to(m, (nb, *m.shape)).copy() for m in st.base]
    for mid in MatrixId:
        sel = st.loc_matrix == mid
        if sel.any():
            r, c, k = st.loc_row[sel], st.loc_col[sel], st.loc_param[sel]
            mats[mid][:, r, c] = theta[:, k]
            if mid in SYMMETRIC:
                mats[mid][:, c, r] = theta[:, k]
    B, L, P, T = mats
    C = np.linalg.inv(np.eye(B.shape[1])[None] - B)
    M = L @ C
    phi = C @ P @ C.transpose(0, 2, 1)
    sigma = M @ P @ M.transpose(0, 2, 1) + T
    return B, L, P, T, C, M, phi, sigma
