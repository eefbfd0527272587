"""Reliability and exploratory structure: item analysis, alpha, omega, KMO/Bartlett, EFA, Harman.

Pure functions on data frames and matrices. The CFA-based figures (loadings, CR, AVE,
HTMT, Fornell-Larcker) are in :mod:`sem_upgrade.measurement`.

Libraries: Cronbach's alpha from pingouin; KMO, Bartlett and the EFA from factor_analyzer.
Written here because those libraries lack them: standardized alpha, corrected item-total
correlations, omega total from a fitted factor model, parallel analysis and the
Harman single-factor share.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "item_analysis", "standardized_alpha", "omega_total", "kmo_bartlett", "parallel_analysis",
    "efa", "harman_single_factor", "Correlations", "THRESHOLDS",
]

# Conventional thresholds with their sources (shown beside each verdict in the report).
THRESHOLDS = {
    "alpha": (0.70, "Nunnally (1978)"),
    "citc": (0.30, "Nunnally & Bernstein (1994)"),
    "cr": (0.70, "Fornell & Larcker (1981); Hair et al. (2019)"),
    "ave": (0.50, "Fornell & Larcker (1981); Hair et al. (2019)"),
    "omega": (0.70, "McDonald (1999); Hayes & Coutts (2020)"),
    "kmo": (0.60, "Kaiser (1974)"),
    "htmt_strict": (0.85, "Henseler, Ringle & Sarstedt (2015)"),
    "htmt_liberal": (0.90, "Henseler, Ringle & Sarstedt (2015)"),
    "harman": (0.50, "Podsakoff et al. (2003)"),
    "cross_loading": (0.40, "Hair et al. (2019)"),
}


def standardized_alpha(corr: np.ndarray) -> float:
    """Standardized alpha k r / (1 + (k - 1) r), r the mean inter-item correlation.

    Validated against: ``psych::alpha(x)$total$std.alpha``.
    """
    k = corr.shape[0]
    r = corr[np.triu_indices(k, 1)].mean()
    return float(k * r / (1 + (k - 1) * r))


def item_analysis(x: pd.DataFrame) -> dict:
    """Item analysis of one construct (complete rows).

    Returns
    -------
    dict with ``alpha`` (Cronbach's, pingouin), ``std_alpha``, ``n``, ``k`` and ``items``:
    {item: {mean, sd, citc, alpha_if_deleted}}. ``citc`` is the corrected item-total
    correlation (item against the sum of the other items); ``sd`` uses N - 1.
    A single-item construct has alpha None with a ``reason``.

    Notes
    -----
    Validated against: ``psych::alpha(x)``: ``total$raw_alpha``, ``total$std.alpha``,
    ``item.stats$r.drop`` (CITC) and ``alpha.drop$raw_alpha``.
    """
    import pingouin as pg

    k = x.shape[1]
    items = {c: {"mean": float(x[c].mean()), "sd": float(x[c].std(ddof=1))} for c in x.columns}
    if k < 2:
        for c in x.columns:
            items[c].update(citc=None, alpha_if_deleted=None)
        return {"alpha": None, "std_alpha": None, "n": int(len(x)), "k": k, "items": items,
                "reason": "a single-item construct has no internal consistency (alpha needs two or more items)"}
    alpha = float(pg.cronbach_alpha(data=x)[0])
    total = x.sum(axis=1)
    for c in x.columns:
        rest = total - x[c]
        items[c]["citc"] = float(np.corrcoef(x[c], rest)[0, 1])
        others = x.drop(columns=c)
        items[c]["alpha_if_deleted"] = float(pg.cronbach_alpha(data=others)[0]) if k > 2 else None
    return {"alpha": alpha, "std_alpha": standardized_alpha(np.corrcoef(x.to_numpy(), rowvar=False)),
            "n": int(len(x)), "k": k, "items": items}


def omega_total(loadings: np.ndarray, factor_var: float, residual_cov: np.ndarray) -> float:
    """McDonald's omega total of a congeneric scale from a fitted factor model.

    omega = (sum lambda)^2 phi / ((sum lambda)^2 phi + 1' Theta 1), the model-implied
    variance of the sum score in the denominator (residual covariances included).

    Validated against: ``semTools::compRelSEM(fit, obs.var = FALSE)``.
    """
    s = float(np.sum(loadings))
    num = s * s * factor_var
    return num / (num + float(np.sum(residual_cov)))


@dataclass(frozen=True)
class Correlations:
    """An item correlation matrix with the number of rows behind it, for the statistics below
    when there are too few complete rows (under FIML: the EM estimate from every row)."""
    matrix: pd.DataFrame
    n: int

    @property
    def shape(self):
        return self.n, self.matrix.shape[1]

    @property
    def columns(self):
        return self.matrix.columns


def _corr(x) -> np.ndarray:
    return x.matrix.to_numpy() if isinstance(x, Correlations) else np.corrcoef(x.to_numpy(), rowvar=False)


def kmo_bartlett(x: pd.DataFrame | Correlations) -> dict:
    """Kaiser-Meyer-Olkin measure (overall and per item) and Bartlett's test of sphericity.

    From data, factor_analyzer's functions. From a correlation matrix (factor_analyzer takes
    data only) the same formulas written here: KMO_j = sum_i r_ij^2 / (sum_i r_ij^2 + sum_i a_ij^2)
    over i != j, a the partial (anti-image) correlations (Kaiser 1974); Bartlett's
    chi2 = -(n - 1 - (2p + 5) / 6) ln|R| on p(p - 1)/2 df (Bartlett 1950).

    Validated against: ``psych::KMO(x)`` and ``psych::cortest.bartlett(cor(x), n)``; the
    correlation form against the data form.
    """
    p = x.shape[1]
    if isinstance(x, Correlations):
        R = x.matrix.to_numpy()
        inv = np.linalg.inv(R)
        A = -inv / np.sqrt(np.outer(np.diag(inv), np.diag(inv)))
        off = ~np.eye(p, dtype=bool)
        r2, a2 = np.where(off, R ** 2, 0.0), np.where(off, A ** 2, 0.0)
        per_item = r2.sum(axis=0) / (r2.sum(axis=0) + a2.sum(axis=0))
        overall = r2.sum() / (r2.sum() + a2.sum())
        chi2 = -(x.n - 1 - (2 * p + 5) / 6) * np.linalg.slogdet(R)[1]
        pvalue = stats.chi2.sf(chi2, p * (p - 1) // 2)
    else:
        from factor_analyzer.factor_analyzer import calculate_bartlett_sphericity, calculate_kmo

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            per_item, overall = calculate_kmo(x)
            chi2, pvalue = calculate_bartlett_sphericity(x)
    return {
        "kmo": {"overall": float(overall), "items": dict(zip(x.columns, map(float, per_item)))},
        "bartlett": {"chi2": float(chi2), "df": int(p * (p - 1) // 2), "pvalue": float(pvalue)},
    }


def parallel_analysis(x: pd.DataFrame | Correlations, n_iter: int = 200, quantile: float = 0.95,
                      rng: int | np.random.Generator = 0) -> dict:
    """Horn's (1965) parallel analysis on principal-component eigenvalues.

    The number of factors is the count of leading sample eigenvalues that exceed the
    ``quantile`` of eigenvalues from normal random data of the same size (Glorfeld 1995).
    """
    rng = np.random.default_rng(rng)
    n, p = x.shape
    observed = np.sort(np.linalg.eigvalsh(_corr(x)))[::-1]
    sims = np.empty((n_iter, p))
    for i in range(n_iter):
        z = rng.standard_normal((n, p))
        sims[i] = np.sort(np.linalg.eigvalsh(np.corrcoef(z, rowvar=False)))[::-1]
    random_q = np.quantile(sims, quantile, axis=0)
    above = observed > random_q
    n_factors = int(np.argmin(above)) if not above.all() else p
    return {"n_factors": max(n_factors, 1), "eigenvalues": observed.tolist(),
            "random_eigenvalues": random_q.tolist(), "n_iter": n_iter, "quantile": quantile}


def efa(x: pd.DataFrame | Correlations, n_factors: int, blocks: dict[str, list[str]],
        rotation: str = "oblimin") -> dict:
    """Exploratory factor analysis (minimum residual, oblique rotation) and where items load.

    Each factor is matched to the construct whose items load on it most; an item is
    *misplaced* when its strongest loading is on another construct's factor, and
    *cross-loading* when a second loading reaches .40 (Hair et al. 2019).

    Returns
    -------
    dict: ``n_factors``, ``rotation``, ``loadings`` {item: [..]}, ``variance_explained``
    (proportion per factor), ``factor_of_construct``, ``misplaced``, ``cross_loadings``,
    ``as_designed`` (bool) and ``statement`` (a plain sentence).
    """
    from factor_analyzer import FactorAnalyzer

    k = max(1, min(n_factors, x.shape[1] - 1))
    rot = rotation if k > 1 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fa = FactorAnalyzer(n_factors=k, rotation=rot, method="minres", is_corr_matrix=isinstance(x, Correlations))
        fa.fit(_corr(x) if isinstance(x, Correlations) else x.to_numpy())
    load = pd.DataFrame(fa.loadings_, index=x.columns, columns=[f"F{i + 1}" for i in range(k)])
    variance = fa.get_factor_variance()[1]
    factor_of = {}
    for c, items in blocks.items():
        factor_of[c] = str(load.loc[items].abs().sum().idxmax())
    misplaced, cross = [], []
    thr = THRESHOLDS["cross_loading"][0]
    for c, items in blocks.items():
        for item in items:
            row = load.loc[item].abs().sort_values(ascending=False)
            if row.index[0] != factor_of[c]:
                misplaced.append({"item": item, "construct": c, "loads_on": row.index[0],
                                  "loading": float(load.loc[item, row.index[0]])})
            if k > 1 and row.iloc[1] >= thr:
                cross.append({"item": item, "construct": c, "factors": list(row.index[:2]),
                              "loadings": [float(load.loc[item, f]) for f in row.index[:2]]})
    shared = len(set(factor_of.values())) < len(blocks)
    as_designed = not misplaced and not cross and not shared
    if as_designed:
        statement = f"All items load on the factor of their own construct ({k} factors, no cross-loading >= {thr:.2f})."
    else:
        parts = []
        if misplaced:
            parts.append("items loading mainly on another construct's factor: "
                         + ", ".join(f"{m['item']} ({m['construct']} -> {m['loads_on']})" for m in misplaced))
        if cross:
            parts.append(f"cross-loadings >= {thr:.2f}: " + ", ".join(f"{c['item']} ({'/'.join(c['factors'])})" for c in cross))
        if shared:
            groups: dict[str, list[str]] = {}
            for c, f in factor_of.items():
                groups.setdefault(f, []).append(c)
            parts.append("constructs sharing one factor: " + "; ".join(
                f"{' + '.join(cs)} on {f}" for f, cs in groups.items() if len(cs) > 1))
        statement = f"The {k}-factor solution departs from the questionnaire: " + "; ".join(parts) + "."
    return {"n_factors": k, "method": "minres", "rotation": rot or "none",
            "loadings": {i: [float(v) for v in load.loc[i]] for i in load.index},
            "variance_explained": [float(v) for v in variance],
            "factor_of_construct": factor_of, "misplaced": misplaced, "cross_loadings": cross,
            "as_designed": bool(as_designed), "statement": statement}


def harman_single_factor(x: pd.DataFrame | Correlations) -> dict:
    """Harman's single-factor test: variance share of the first unrotated principal component.

    Share = largest eigenvalue of the item correlation matrix / number of items; above .50
    suggests common-method bias (Podsakoff et al. 2003).
    """
    eig = np.linalg.eigvalsh(_corr(x))
    share = float(eig[-1] / x.shape[1])
    thr = THRESHOLDS["harman"][0]
    return {"harman_first_factor_share": share, "threshold": thr, "flag": share > thr,
            "method": "first unrotated principal component of the item correlations"}


def omega_observed(loadings: np.ndarray, factor_var: float, observed_cov: np.ndarray) -> float:
    """Omega with the observed variance of the sum score in the denominator.

    omega_obs = (sum lambda)^2 phi / 1' S 1, S the sample covariance matrix of the construct's items:
    semTools' default (``compRelSEM(fit)``, obs.var = TRUE; Bentler 2009). It differs from
    :func:`omega_total` (model-implied denominator) by how badly the model reproduces the items'
    covariances.

    Validated against: ``semTools::compRelSEM(cfa(model, data))`` (tests/reference/r/omega.R).
    """
    s = float(np.sum(loadings))
    return s * s * factor_var / float(np.sum(observed_cov))
