"""The covariance matrix of the estimates: the inverse of the information matrix.

Complete data: the expected information times N (N - 1 under wishart), lavaan's default
``information = "expected"``. FIML: the observed information (central differences of the
analytic gradient), lavaan's default for ``missing = "ml"``. A singular information matrix
is told apart as non-identification (an error) or empirical under-identification at these
estimates (a warning, no standard errors): see :mod:`.identification`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..errors import ModelNotIdentifiedError
from .identification import identified_elsewhere

__all__ = ["invert_information", "parameter_name", "with_means"]

def invert_information(info, st, converged=True, info_at=None, theta=None):
    """Covariance matrix of the estimates.

    A singular information matrix where the optimiser stopped gives no standard errors (a
    warning naming the parameters involved) when the fit did not converge or the model is
    identified at generic points (``info_at(theta)`` of full rank near ``theta``); otherwise
    the model is not identified: an error naming those parameters."""
    warn = []
    try:
        w = np.linalg.eigvalsh(info)
    except np.linalg.LinAlgError:
        return None, ["the information matrix could not be decomposed; no standard errors"]
    if w.min() <= 1e-10 * max(w.max(), 1.0):
        vals, vecs = np.linalg.eigh(info)
        worst = np.argsort(-np.abs(vecs[:, 0]))[:3]
        names = [parameter_name(st, k) for k in worst]
        if not converged:
            return None, ["no standard errors: the information matrix is singular where the "
                          f"optimiser stopped (the parameters involved: {', '.join(names)}); the model "
                          "may be empirically under-identified for these data"]
        if info_at is not None and identified_elsewhere(info_at, theta, st.start):
            return None, ["no standard errors: the model is identified, but at these estimates the "
                          f"information matrix is singular (the parameters involved: {', '.join(names)}): "
                          "empirical under-identification (e.g. a factor variance near zero, or a two-item "
                          "factor uncorrelated with the others)"]
        raise ModelNotIdentifiedError("the model is not identified: the information matrix is singular; "
                              f"the parameters involved: {', '.join(names)}")
    return np.linalg.inv(info), warn


def parameter_name(st, k):
    row = st.table[st.table["index"] == k].iloc[0]
    return f"{row['lhs']} {row['op']} {row['rhs']}"


def with_means(st, p):
    """A structure stand-in whose parameter names cover the intercepts too (for messages)."""
    extra = pd.DataFrame([{"lhs": v, "op": "~1", "rhs": "", "index": st.n_free + j} for j, v in enumerate(st.observed)])
    clone = dataclasses.replace(st, table=pd.concat([st.table, extra], ignore_index=True))
    return clone
