"""Moderation: latent interactions by product indicators, simple slopes, moderated mediation.

The latent product ``X:Z`` of two constructs is measured by the products of their items, built as
``semTools::indProd(data, var1, var2, match = FALSE, meanC = TRUE, residualC = FALSE,
doubleMC = TRUE)`` builds them (Marsh, Wen & Hau 2004; Lin et al. 2010):

* every pair (x_i, z_j) of the two constructs' items, x first (semTools' order and ``x.z`` names);
* each item mean-centred before the product, and each product mean-centred again (double mean
  centring), so that no mean structure is needed;
* residual covariances between every two product indicators that share an item.

Simple slopes follow ``semTools::probe2WayMC``: with the construct means at 0, the effect of X on
Y at moderator value w is b_X + b_XZ w, with variance
Var(b_X) + 2 w Cov(b_X, b_XZ) + w^2 Var(b_XZ) (the delta method, exact for this linear form).

The conditional indirect effect of X -> M -> Y with Z moderating one link, and the index of
moderated mediation (Hayes 2015), are products of path coefficients; their intervals come from
the bootstrap draws of those coefficients (:func:`conditional_indirect_draws`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .errors import SemUpgradeError

__all__ = ["MAX_PRODUCT_INDICATORS", "product_names", "product_indicators", "product_residual_covariances",
           "simple_slopes", "conditional_indirect", "conditional_indirect_draws"]

MAX_PRODUCT_INDICATORS = 100


def product_indicators(x: pd.DataFrame, items_x: list[str], items_z: list[str],
                       taken: set[str] | None = None) -> pd.DataFrame:
    """Double-mean-centred products of every item of X with every item of Z.

    Parameters
    ----------
    x : DataFrame
        The cleaned survey (rows used by the model). NaN cells give NaN products.
    items_x, items_z : list of str
        The two constructs' items.
    taken : set of str, optional
        Names already in use (items, constructs); a product whose name would clash is an error.

    Returns
    -------
    DataFrame
        One column per product, named ``<x item>.<z item>``, in semTools' order (x outer, z
        inner), each with mean 0 over the rows where it is defined.

    Notes
    -----
    Validated against: ``semTools::indProd(dat2way[1:500, ], 1:3, 4:6, match = FALSE,
    meanC = TRUE, residualC = FALSE, doubleMC = TRUE)`` (tests/reference/r/models.R).
    """
    n_products = len(items_x) * len(items_z)
    if n_products > MAX_PRODUCT_INDICATORS:
        raise SemUpgradeError(f"the interaction would have {n_products} product indicators "
                              f"({len(items_x)} x {len(items_z)} items); at most {MAX_PRODUCT_INDICATORS}")
    centred = x[items_x + items_z] - x[items_x + items_z].mean()
    out = {}
    for name, i, j in product_names(items_x, items_z):
        if taken and name in taken:
            raise SemUpgradeError(f"the product indicator of {i} and {j} would be named '{name}', "
                                  "which is already an item or construct name; rename one of them")
        out[name] = centred[i] * centred[j]
    products = pd.DataFrame(out, index=x.index)
    return products - products.mean()


def product_names(items_x: list[str], items_z: list[str]) -> list[tuple[str, str, str]]:
    """(name, x item, z item) of every product indicator, in semTools' order (x outer, z inner)."""
    return [(f"{i}.{j}", i, j) for i in items_x for j in items_z]


def product_residual_covariances(items_x: list[str], items_z: list[str]) -> list[tuple[str, str]]:
    """Pairs of product indicators that share an item (x1.z1 with x1.z2, or x1.z1 with x2.z1)."""
    triples = product_names(items_x, items_z)
    return [(a, b) for k, (a, xa, za) in enumerate(triples) for b, xb, zb in triples[k + 1:]
            if xa == xb or za == zb]


def simple_slopes(b_x: float, b_xz: float, vcov: np.ndarray, moderator_values) -> pd.DataFrame:
    """Effect of X on Y at given values of the moderator Z (means at 0).

    Parameters
    ----------
    b_x, b_xz : float
        Unstandardized paths Y ~ X and Y ~ X:Z.
    vcov : (2, 2) array
        Their sampling covariance (order b_x, b_xz).
    moderator_values : sequence of float
        Values of Z, e.g. -SD, 0, +SD of the latent moderator.

    Returns
    -------
    DataFrame
        Columns ``moderator_value, estimate, se, z, pvalue``.

    Notes
    -----
    Validated against: ``semTools::probe2WayMC(fit, nameX = c("f1", "f2", "f12"), nameY = "f3",
    modVar = "f2", valProbe = c(-1, 0, 1) * SD(f2))`` (tests/reference/r/models.R).
    """
    w = np.asarray(moderator_values, dtype=float)
    est = b_x + b_xz * w
    var = vcov[0, 0] + 2.0 * w * vcov[0, 1] + w**2 * vcov[1, 1]
    se = np.sqrt(var)
    z = est / se
    return pd.DataFrame({"moderator_value": w, "estimate": est, "se": se, "z": z,
                         "pvalue": 2.0 * stats.norm.sf(np.abs(z))})


def conditional_indirect(a: float, a_mod: float, b: float, b_mod: float, w) -> np.ndarray:
    """Indirect effect of X -> M -> Y at moderator value(s) w: (a + a_mod w)(b + b_mod w).

    ``a_mod`` is the interaction path on the X -> M link (0 when Z moderates only M -> Y), ``b_mod``
    the one on M -> Y. With one moderated link the effect is linear in w and its slope is the
    index of moderated mediation (Hayes 2015): ``a_mod * b`` or ``a * b_mod``.
    """
    w = np.asarray(w, dtype=float)
    return (a + a_mod * w) * (b + b_mod * w)


def conditional_indirect_draws(a, a_mod, b, b_mod, w) -> np.ndarray:
    """Bootstrap draws of the conditional indirect effect: one row per draw, one column per w.

    Each argument is an array of draws (NaN for failed resamples) or a scalar 0 for a link that is
    not moderated; ``w`` may itself be an array of draws (the moderator's SD changes per resample),
    one row per draw, one column per level.
    """
    a, a_mod, b, b_mod = (np.asarray(v, dtype=float)[:, None] if np.ndim(v) else float(v)
                          for v in (a, a_mod, b, b_mod))
    w = np.asarray(w, dtype=float)
    return (a + a_mod * w) * (b + b_mod * w)
