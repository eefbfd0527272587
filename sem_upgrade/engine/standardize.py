"""The standardized solution, written once for parameters and effects: lavaan's ``std.all``.

A parameter or effect from x to y is scaled by sd(x) / sd(y), the model-implied standard
deviations (Sigma for observed variables, Phi for inner ones):

* loading lambda (factor f -> item i):  lambda sd(f) / sd(i)
* regression beta (x -> y):             beta sd(x) / sd(y)
* an effect (indirect, total) x -> y:   effect sd(x) / sd(y)
* a (residual) variance:                divided by the implied total variance
* a covariance of two (residual) terms: divided by the square roots of their own variance
  parameters, i.e. the correlation of those terms (lavaan 0.6).

Validated against: ``lavaan::standardizedSolution(fit)`` (``est.std``), tests/test_estimation.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .implied import Implied, implied
from .partable import MatrixId, ModelStructure

if TYPE_CHECKING:
    from .fit import Fit

__all__ = ["std_all", "standardized", "inner_sd", "std_effect"]


def inner_sd(imp: Implied) -> np.ndarray:
    """Model-implied standard deviations of the inner variables, sqrt(diag Phi) (batched alike)."""
    return np.sqrt(np.clip(np.diagonal(imp.phi, axis1=-2, axis2=-1), 0, None))


def std_effect(effect: np.ndarray, imp: Implied, source: int, target: int) -> np.ndarray:
    """An effect of inner variable ``source`` on inner variable ``target`` in std.all units."""
    sd = inner_sd(imp)
    return effect * sd[..., source] / sd[..., target]


def std_all(st: ModelStructure, theta: np.ndarray) -> np.ndarray:
    """std.all of every row of the parameter table, for ``theta`` (q,) or a batch (nb, q).

    Returns
    -------
    array (rows,) or (nb, rows), in the order of ``st.table``.
    """
    imp = implied(st, theta)
    sigma, phi, B, L, P, T = imp.sigma, imp.phi, imp.B, imp.L, imp.P, imp.T
    sd_obs = np.sqrt(np.diagonal(sigma, axis1=-2, axis2=-1))
    sd_inner = inner_sd(imp)
    t = st.table
    out = np.empty(sigma.shape[:-2] + (len(t),))
    for n, (mid, r, c) in enumerate(zip(t["matrix"], t["row"], t["col"])):
        if mid == MatrixId.LAMBDA:
            out[..., n] = L[..., r, c] * sd_inner[..., c] / sd_obs[..., r]
        elif mid == MatrixId.BETA:
            out[..., n] = B[..., r, c] * sd_inner[..., c] / sd_inner[..., r]
        elif mid == MatrixId.PSI:
            out[..., n] = P[..., r, c] / (phi[..., r, r] if r == c else np.sqrt(P[..., r, r] * P[..., c, c]))
        else:
            out[..., n] = T[..., r, c] / (sigma[..., r, r] if r == c else np.sqrt(T[..., r, r] * T[..., c, c]))
    return out


def standardized(fit: Fit) -> np.ndarray:
    """std.all of every row of the fitted model's parameter table."""
    return std_all(fit.structure, fit.theta)
