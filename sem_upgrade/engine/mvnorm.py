"""The complete-data maximum-likelihood discrepancy of the multivariate normal model.

    F_ML = log|Sigma| + tr(S Sigma^-1) - log|S| - p

(lavaan ``estimator = "ML"``; Joreskog 1969), its gradient
g_k = tr(Sigma^-1 (Sigma - S) Sigma^-1 dSigma_k) and expected Hessian
H_kl = tr(Sigma^-1 dSigma_k Sigma^-1 dSigma_l).
"""

from __future__ import annotations

import numpy as np

from .derivatives import sigma_jacobian, trace_products
from .implied import implied
from .linalg import chol_inv

__all__ = ["LOG2PI", "ml_objective", "ml_gradient_parts", "ml_gradient", "ml_gradient_information"]

LOG2PI = np.log(2.0 * np.pi)

def ml_objective(st, theta, S, logdet_s):
    sigma = implied(st, theta)[0]
    ci = chol_inv(sigma)
    if ci is None:
        return np.inf
    inv, logdet = ci
    return logdet + np.sum(S * inv) - logdet_s - S.shape[0]


def ml_gradient_parts(st, S, theta):
    """Sigma^-1, dSigma and the gradient of F_ML: g_k = tr(Sigma^-1 (Sigma - S) Sigma^-1 dSigma_k)."""
    sigma = implied(st, theta)[0]
    inv, _ = chol_inv(sigma)
    dS = sigma_jacobian(st, theta)
    W = inv @ (sigma - S) @ inv
    return inv, dS, dS.reshape(len(dS), -1) @ W.ravel()


def ml_gradient(st, S):
    """Gradient of F_ML as a function of theta."""
    return lambda theta: ml_gradient_parts(st, S, theta)[2]


def ml_gradient_information(st, S):
    """Gradient of F_ML and its expected Hessian H_kl = tr(Sigma^-1 dSigma_k Sigma^-1 dSigma_l)."""
    def grad_info(theta):
        inv, dS, g = ml_gradient_parts(st, S, theta)
        return g, trace_products(inv @ dS)
    return grad_info
