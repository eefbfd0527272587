"""Small dense linear-algebra helpers shared by the engine's stages."""

from __future__ import annotations

import numpy as np

__all__ = ["chol_inv", "batch_cholesky", "safe_inverse", "positive_definite", "cov_to_cor"]

def chol_inv(a: np.ndarray):
    """Inverse and log-determinant of a symmetric positive-definite matrix, or None."""
    try:
        Lc = np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        return None
    inv_l = np.linalg.inv(Lc)
    return inv_l.T @ inv_l, 2.0 * np.log(np.diag(Lc)).sum()


def batch_cholesky(a: np.ndarray):
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


def safe_inverse(h: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(h)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(h)


def positive_definite(h: np.ndarray) -> np.ndarray:
    """The nearest matrix with eigenvalues at least 1e-6 of the largest (a safe Newton metric)."""
    w, v = np.linalg.eigh(h)
    w = np.maximum(w, 1e-6 * max(w.max(), 1e-12))
    return (v * w) @ v.T


def cov_to_cor(S: np.ndarray) -> np.ndarray:
    """The correlation matrix of a covariance matrix, D^-1/2 S D^-1/2 (lavaan's cov2cor)."""
    sd = np.sqrt(np.diag(S))
    return S / np.outer(sd, sd)
