"""Identification and data checks: generic-point rank of the information matrix, a non-PD
sample covariance matrix explained, enough rows for the model."""

from __future__ import annotations

import numpy as np

from ..errors import SemUpgradeError

__all__ = ["identified_elsewhere", "not_pd_message", "check_rows"]

def identified_elsewhere(info_at, theta, start) -> bool:
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


def check_rows(n, st):
    p = len(st.observed)
    if n <= p:
        raise SemUpgradeError(f"too few rows for the model: {n} usable rows for {p} items; at least {p + 1} "
                              f"are needed for a positive-definite covariance matrix (and far more, "
                              f"about {max(5 * st.n_free, 100)}, for trustworthy estimates)")
