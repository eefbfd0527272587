"""The model-implied moments: Sigma and the latent covariance Phi, for one parameter vector or
a batch of them, computed once (lavaan's ``computeSigmaHat``, LISREL all-y model):

    C = (I - B)^-1,  M = Lambda C,  Phi = C Psi C',  Sigma = M Psi M' + Theta

Under FIML the means are saturated (free intercepts), so mu is a parameter, not a function of
the matrices.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .partable import SYMMETRIC, ModelStructure

__all__ = ["Implied", "implied", "model_matrices"]


class Implied(NamedTuple):
    """Sigma, Phi and the matrices they come from; each has a leading batch axis when the
    parameters had one."""

    sigma: np.ndarray  # Sigma = M Psi M' + Theta
    phi: np.ndarray  # Phi = C Psi C', the covariance of the inner variables
    B: np.ndarray
    L: np.ndarray  # Lambda
    P: np.ndarray  # Psi
    T: np.ndarray  # Theta
    C: np.ndarray  # (I - B)^-1
    M: np.ndarray  # Lambda C

    def take(self, sel) -> Implied:
        """The members ``sel`` of a batch."""
        return Implied(*(a[sel] for a in self))


def model_matrices(st: ModelStructure, theta: np.ndarray) -> list[np.ndarray]:
    """B, Lambda, Psi, Theta (indexed by MatrixId) for a batch of parameter vectors (nb, q):
    the fixed entries of the parameter table, then the free ones."""
    nb = len(theta)
    mats = [np.repeat(m[None], nb, axis=0) for m in st.base]
    for mid, r, c, k in st.free_locations:
        vals = theta[:, k]
        mats[mid][:, r, c] = vals
        if mid in SYMMETRIC:
            mats[mid][:, c, r] = vals
    return mats


def implied(st: ModelStructure, theta: np.ndarray) -> Implied:
    """Model-implied Sigma and Phi for ``theta`` (q,) or a batch (nb, q).

    Returns
    -------
    Implied
        ``sigma, phi, B, L, P, T, C, M``; 2-D arrays for one parameter vector, stacks of them
        (first axis nb) for a batch.
    """
    theta = np.asarray(theta, float)
    single = theta.ndim == 1
    B, L, P, T = model_matrices(st, theta[None] if single else theta)
    C = np.linalg.inv(np.eye(B.shape[1])[None] - B)
    M = L @ C
    phi = C @ P @ C.transpose(0, 2, 1)
    sigma = M @ P @ M.transpose(0, 2, 1) + T
    out = Implied(sigma, phi, B, L, P, T, C, M)
    return out.take(0) if single else out
