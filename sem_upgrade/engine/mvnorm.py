"""The complete-data maximum-likelihood discrepancy of the multivariate normal model, written once.

    F_ML = log|Sigma| + tr(S Sigma^-1) - log|S| - p

(lavaan ``estimator = "ML"``; Joreskog 1969), with dF/dSigma = Sigma^-1 - Sigma^-1 S Sigma^-1
taken to the free parameters by the matrix chain rule (:func:`.derivatives.chain_gradient`),
and the expected Hessian H_kl = tr(Sigma^-1 dSigma_k Sigma^-1 dSigma_l)
(:func:`.derivatives.expected_information`). Every function takes a batch of parameter
vectors: one fit is a batch of one, a bootstrap chunk a batch of many.

The log-likelihood of N rows with sample covariance S (divisor N) is
logl = -N/2 (p log 2 pi + log|Sigma| + tr(S Sigma^-1)).
"""

from __future__ import annotations

import numpy as np

from .derivatives import chain_gradient, expected_information
from .implied import implied
from .linalg import batch_cholesky
from .partable import ModelStructure

__all__ = ["LOG2PI", "ml_objective", "ml_information", "ml_gradient_information", "normal_loglik"]

LOG2PI = np.log(2.0 * np.pi)


def ml_objective(st: ModelStructure, theta: np.ndarray, S: np.ndarray, logdet_s) -> tuple[np.ndarray, np.ndarray]:
    """F_ML and its gradient for a batch of parameter vectors.

    Parameters
    ----------
    theta : (nb, q) array
    S : (p, p) array shared by the batch, or (nb, p, p), one per row of ``theta``
    logdet_s : float or (nb,) array, log|S|

    Returns
    -------
    F : (nb,) array, inf where Sigma is not positive definite
    g : (nb, q) array, dF/dtheta, NaN where F is inf
    """
    imp = implied(st, theta)
    chol, ok = batch_cholesky(imp.sigma)
    F = np.full(len(theta), np.inf)
    g = np.full(theta.shape, np.nan)
    if ok.any():
        if not ok.all():
            imp, chol = imp.take(ok), chol[ok]
        Sk = S[ok] if S.ndim == 3 else S
        ld_s = np.asarray(logdet_s)[ok] if np.ndim(logdet_s) else logdet_s
        inv = np.linalg.inv(imp.sigma)
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        F[ok] = logdet + (Sk * inv).sum(axis=(1, 2)) - ld_s - S.shape[-1]
        g[ok] = chain_gradient(st, imp, inv - inv @ Sk @ inv)
    return F, g


def ml_information(st: ModelStructure, theta: np.ndarray) -> np.ndarray:
    """Expected Hessian of F_ML, H_kl = tr(Sigma^-1 dSigma_k Sigma^-1 dSigma_l), for a batch
    (nb, q) -> (nb, q, q). It does not depend on S. Twice the per-case information."""
    return expected_information(st, implied(st, theta))


def ml_gradient_information(st: ModelStructure, S: np.ndarray):
    """The function theta (q,) -> (dF_ML/dtheta, expected Hessian) for the sample covariance S."""
    def grad_info(theta):
        th = np.asarray(theta, float)[None]
        return ml_objective(st, th, S, 0.0)[1][0], ml_information(st, th)[0]
    return grad_info


def normal_loglik(sigma: np.ndarray, S: np.ndarray, n: int) -> float:
    """Normal log-likelihood of n rows with covariance S (divisor n) under Sigma; NaN when Sigma
    is not positive definite. With Sigma = S it is the saturated (H1) log-likelihood."""
    chol, ok = batch_cholesky(sigma[None])
    if not ok[0]:
        return float("nan")
    inv_l = np.linalg.inv(chol[0])
    logdet = 2.0 * np.log(np.diag(chol[0])).sum()
    return float(-0.5 * n * (S.shape[0] * LOG2PI + logdet + np.sum(S * (inv_l.T @ inv_l))))
