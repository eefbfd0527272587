"""Measurement model: CFA of all constructs, loadings, CR, AVE, omega, Fornell-Larcker, HTMT.

Pure formulas (``composite_reliability``, ``average_variance_extracted``, ``htmt``) and an
adapter (:func:`validity`) that takes a fitted CFA.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .engine.robust import scaled_difference
from .reliability import THRESHOLDS, omega_observed, omega_total

__all__ = ["composite_reliability", "average_variance_extracted", "htmt", "cfa_syntax",
           "loadings_table", "validity", "one_factor_comparison", "reverse_key_suspects",
           "higher_order_reliability"]


def composite_reliability(std_loadings) -> float:
    """CR = (sum l)^2 / ((sum l)^2 + sum(1 - l^2)) (Fornell & Larcker 1981; Joreskog 1971)."""
    lam = np.asarray(std_loadings, float)
    s = lam.sum() ** 2
    return float(s / (s + np.sum(1.0 - lam ** 2)))


def average_variance_extracted(std_loadings) -> float:
    """AVE = mean of squared standardized loadings (Fornell & Larcker 1981)."""
    lam = np.asarray(std_loadings, float)
    return float(np.mean(lam ** 2))


def htmt(corr: pd.DataFrame, blocks: dict[str, list[str]], variant: str = "htmt",
         absolute: bool = True) -> pd.DataFrame:
    """Heterotrait-monotrait ratio of correlations (Henseler, Ringle & Sarstedt 2015).

    HTMT_ij = mean heterotrait correlation / sqrt(mean monotrait_i * mean monotrait_j),
    averaged over absolute item correlations. ``variant="htmt2"`` uses geometric means
    (Roemer, Schuberth & Henseler 2021). A construct with one item has no monotrait
    correlations: its row is NaN (reported as not defined).

    Validated against: ``semTools::htmt(model, data, htmt2 = FALSE)`` (and ``htmt2 = TRUE``).
    """
    r = corr.abs() if (absolute or variant == "htmt2") else corr
    def geometric(v):  # a correlation of exactly 0 makes the geometric mean 0 (log 0 = -inf)
        with np.errstate(divide="ignore"):
            return float(np.exp(np.mean(np.log(v))))
    agg = geometric if variant == "htmt2" else (lambda v: float(np.mean(v)))
    names = list(blocks)
    mono = {}
    for c in names:
        it = blocks[c]
        vals = r.loc[it, it].to_numpy()[np.triu_indices(len(it), 1)]
        mono[c] = agg(vals) if len(vals) else np.nan
    out = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[:i]:
            hetero = agg(r.loc[blocks[a], blocks[b]].to_numpy().ravel())
            out.loc[a, b] = out.loc[b, a] = hetero / np.sqrt(mono[a] * mono[b])
    return out


def cfa_syntax(blocks: dict[str, list[str]], extra: str = "") -> str:
    """CFA syntax; a single-item construct gets its residual variance fixed to 0, as lavaan does."""
    lines = [f"{c} =~ {' + '.join(items)}" for c, items in blocks.items()]
    lines += [f"{items[0]} ~~ 0*{items[0]}" for items in blocks.values() if len(items) == 1]
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def loadings_table(fit) -> pd.DataFrame:
    """Loadings of a fitted model.

    Returns
    -------
    DataFrame with columns ``construct, item, estimate, se, z, pvalue, std_loading``
    (AMOS's "Regression Weights" of the measurement part with "Standardized Regression
    Weights"; a marker loading fixed to 1 has no se, z or p).
    """
    t = fit.table()
    t = t[t["op"] == "=~"]
    return pd.DataFrame({"construct": t["lhs"], "item": t["rhs"], "estimate": t["estimate"],
                         "se": t["se"], "z": t["z"], "pvalue": t["pvalue"],
                         "std_loading": t["std_estimate"]}).reset_index(drop=True)


def validity(fit, blocks: dict[str, list[str]], item_corr: pd.DataFrame) -> dict:
    """Convergent and discriminant validity from a fitted CFA.

    Returns
    -------
    dict with ``loadings`` (DataFrame, see :func:`loadings_table`), ``constructs``
    {construct: {cr, ave, omega, sqrt_ave, (reason)}}, ``factor_correlations`` (DataFrame),
    ``fornell_larcker`` (DataFrame: sqrt(AVE) on the diagonal, factor correlations
    below and above), ``fornell_larcker_ok`` {construct: bool}, ``htmt`` and ``htmt2``
    (DataFrames), ``htmt_flags`` (pairs at or above .85 / .90).
    """
    load = loadings_table(fit)
    sigma = fit.sigma
    obs = fit.structure.observed
    inner = fit.structure.inner
    phi = fit.phi
    table = fit.table()
    constructs = {}
    for c, items in blocks.items():
        lam_std = load.loc[load["construct"] == c, "std_loading"].to_numpy()
        if len(items) < 2:
            constructs[c] = {"cr": None, "ave": None, "omega": None, "omega_obs": None, "sqrt_ave": None,
                             "reason": "single-item construct: CR, AVE and omega need two or more items"}
            continue
        idx = [obs.index(i) for i in items]
        lam = load.loc[load["construct"] == c, "estimate"].to_numpy()
        resid = sigma[np.ix_(idx, idx)] - np.outer(lam, lam) * phi[inner.index(c), inner.index(c)]
        ave = average_variance_extracted(lam_std)
        constructs[c] = {"cr": composite_reliability(lam_std), "ave": ave, "sqrt_ave": float(np.sqrt(ave)),
                         "omega": omega_total(lam, phi[inner.index(c), inner.index(c)], resid),
                         "omega_obs": omega_observed(lam, phi[inner.index(c), inner.index(c)],
                                                     fit.sample_cov[np.ix_(idx, idx)])}
    names = list(blocks)
    fcor = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    lat = table[(table["op"] == "~~") & (table["lhs"] != table["rhs"])
                & table["lhs"].isin(names) & table["rhs"].isin(names)]
    for _, row in lat.iterrows():
        fcor.loc[row["lhs"], row["rhs"]] = fcor.loc[row["rhs"], row["lhs"]] = row["std_estimate"]
    fl = fcor.copy()
    ok = {}
    for c in names:
        root = constructs[c]["sqrt_ave"]
        fl.loc[c, c] = np.nan if root is None else root
        others = fcor.loc[c].drop(c).abs()
        ok[c] = None if root is None else bool(root > (others.max() if len(others) else 0.0))
    h = htmt(item_corr, blocks)
    h2 = htmt(item_corr, blocks, variant="htmt2")
    flags = []
    for i, a in enumerate(names):
        for b in names[:i]:
            v = h.loc[a, b]
            if np.isfinite(v) and v >= THRESHOLDS["htmt_strict"][0]:
                flags.append({"pair": [b, a], "htmt": float(v),
                              "verdict": "above .90 (liberal)" if v >= THRESHOLDS["htmt_liberal"][0] else "above .85 (strict)"})
    return {"loadings": load, "constructs": constructs, "factor_correlations": fcor, "fornell_larcker": fl,
            "fornell_larcker_ok": ok, "htmt": h, "htmt2": h2, "htmt_flags": flags}


def one_factor_comparison(one_factor_fit, measurement_fit) -> dict:
    """Chi-square difference of a one-factor CFA against the measurement model (common-method check).

    A much worse single factor (significant difference) argues against one common-method
    factor explaining the covariances (Podsakoff et al. 2003).
    Under MLM / MLR the Satorra-Bentler (2001) scaled difference is used.
    Validated against: ``anova(cfa(one-factor), cfa(measurement))`` in lavaan, and
    ``lavTestLRT(..., method = "satorra.bentler.2001")`` for the robust estimators.
    """
    d_df = one_factor_fit.df - measurement_fit.df
    if one_factor_fit.robust and measurement_fit.robust:  # Satorra-Bentler (2001) scaled difference
        diff = scaled_difference(one_factor_fit.chisq, one_factor_fit.df, one_factor_fit.robust["scaling_factor"],
                                 measurement_fit.chisq, measurement_fit.df, measurement_fit.robust["scaling_factor"])
        d_chi, p = diff["chisq_diff"], diff["pvalue"]
        method = "Satorra-Bentler (2001) scaled difference"
    else:
        d_chi = one_factor_fit.chisq - measurement_fit.chisq
        p = float(stats.chi2.sf(d_chi, d_df)) if d_df > 0 else float("nan")
        method = "likelihood-ratio difference"
    return {"one_factor_chisq": one_factor_fit.chisq, "one_factor_df": one_factor_fit.df,
            "chisq_diff": d_chi, "df_diff": d_df, "pvalue": p, "method": method,
            "one_factor_worse": bool(d_df > 0 and p < 0.05)}


def reverse_key_suspects(loadings: pd.DataFrame, citc: dict[str, dict[str, float | None]]) -> dict[str, list[dict]]:
    """Items that look reverse-keyed but are not declared so.

    An item is a suspect when its standardized loading or its corrected item-total correlation is
    negative while most loadings of its construct are positive: the usual trace of a negatively
    worded item left out of ``reverse``.

    Parameters
    ----------
    loadings : DataFrame
        :func:`loadings_table` (``construct, item, std_loading``).
    citc : dict
        construct -> {item: CITC or None}.

    Returns
    -------
    dict
        construct -> list of ``{item, std_loading, citc}`` (constructs without suspects left out).
    """
    out: dict[str, list[dict]] = {}
    for c, block in loadings.groupby("construct", sort=False):
        positive = int((block["std_loading"] > 0).sum())
        for _, r in block.iterrows():
            r_citc = citc.get(c, {}).get(r["item"])
            negative = r["std_loading"] < 0 or (r_citc is not None and r_citc < 0)
            others_positive = positive - int(r["std_loading"] > 0) > (len(block) - 1) / 2
            if negative and others_positive:
                out.setdefault(c, []).append({"item": r["item"], "std_loading": float(r["std_loading"]),
                                              "citc": r_citc})
    return out


def higher_order_reliability(fit, factor: str, blocks: dict[str, list[str]]) -> dict:
    """Reliability of a second-order construct: omega of the higher-order factor and its AVE.

    omega_L2 = var(g) (1' Lambda gamma)^2 / 1' S 1: the share of the observed variance of the sum of
    all items under g's first-order constructs that g explains (semTools ``compRelSEM(fit,
    higher = "g")``, observed total variance; Jorgensen et al.). ``Lambda`` holds the items'
    loadings on the first-order constructs, ``gamma`` those constructs' loadings on g. The AVE is
    the mean squared standardized second-order loading.

    Validated against: ``semTools::compRelSEM(cfa(g =~ visual + textual + speed, ...), higher = "g")``
    (tests/reference/r/models.R).
    """
    t = fit.table()
    second = t[(t["op"] == "=~") & (t["lhs"] == factor)]
    firsts = list(second["rhs"])
    gamma = second["estimate"].to_numpy()
    obs = fit.structure.observed
    items = [i for f in firsts for i in blocks[f]]
    lam = np.zeros((len(items), len(firsts)))
    row = 0
    for k, f in enumerate(firsts):
        for item in blocks[f]:
            lam[row, k] = t.loc[(t["op"] == "=~") & (t["lhs"] == f) & (t["rhs"] == item), "estimate"].item()
            row += 1
    var_g = t.loc[(t["op"] == "~~") & (t["lhs"] == factor) & (t["rhs"] == factor), "estimate"].item()
    idx = [obs.index(i) for i in items]
    omega = float(var_g * (lam @ gamma).sum() ** 2 / fit.sample_cov[np.ix_(idx, idx)].sum())
    std = second["std_estimate"].to_numpy()
    return {"omega": omega, "ave": average_variance_extracted(std), "cr": composite_reliability(std),
            "of": firsts, "std_loadings": dict(zip(firsts, std.tolist()))}
