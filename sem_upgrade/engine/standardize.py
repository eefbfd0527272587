"""Standardized solution: lavaan's ``std.all`` for every row of the parameter table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .implied import implied
from .partable import MatrixId

if TYPE_CHECKING:
    from .fit import Fit

__all__ = ["standardized"]

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
        if mid == MatrixId.LAMBDA:
            out[n] = L[r, c] * sd_inner[c] / sd_obs[r]
        elif mid == MatrixId.BETA:
            out[n] = B[r, c] * sd_inner[c] / sd_inner[r]
        elif mid == MatrixId.PSI:
            out[n] = P[r, c] / (phi[r, r] if r == c else np.sqrt(P[r, r] * P[c, c]))
        else:
            out[n] = T[r, c] / (sigma[r, r] if r == c else np.sqrt(T[r, r] * T[c, c]))
    return out
