"""Structural model: path table, R2, exogenous correlations, hypothesis table, modification indices.

Everything here reads a fitted :class:`sem_upgrade.engine.fit.Fit`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .engine.derivatives import sigma_jacobian, trace_products
from .engine.implied import implied
from .engine.mvnorm_missing import fiml_expected_information, fiml_objective, row_layout
from .engine.partable import MatrixId, ModelStructure, syntax_order

__all__ = ["path_table", "construct_r2", "exogenous_correlations", "indirect_delta",
           "hypothesis_table", "modification_indices", "structural_admissibility", "ADMISSIBILITY_LIMITS",
           "mark_inadmissible", "reachability", "total_effect_pairs"]

# Limits beyond which a structural estimate is not interpretable, each with its source.
ADMISSIBILITY_LIMITS = {
    "std_path": (1.0, "a standardized path beyond +-1 implies a negative residual variance or collinear "
                      "predictors (Joreskog 1999; Deegan 1978)"),
    "r2": (0.95, "R-squared of .95 or more: the outcome is (nearly) a linear function of its predictors; "
                 "suspect collinear or redundant constructs (Grewal, Cote & Baumgartner 2004)"),
    "condition_index": (30.0, "condition index of the predictors' latent correlation matrix above 30: severe "
                              "collinearity (Belsley, Kuh & Welsch 1980)"),
    "htmt": (0.90, "HTMT of two predictors of the same outcome at .90 or above: they are not distinct "
                   "(Henseler, Ringle & Sarstedt 2015)"),
}


def path_table(fit, constructs: list[str]) -> pd.DataFrame:
    """Regression weights among constructs, as AMOS prints them with standardized weights.

    Returns
    -------
    DataFrame with columns ``lhs, rhs, estimate, se, z, pvalue, std_estimate``
    (lhs is the outcome, rhs the predictor; z is AMOS's C.R.).
    """
    t = fit.table()
    t = t[(t["op"] == "~") & t["lhs"].isin(constructs) & t["rhs"].isin(constructs)]
    return t[["lhs", "rhs", "estimate", "se", "z", "pvalue", "std_estimate"]].reset_index(drop=True)


def construct_r2(fit, constructs: list[str]) -> dict[str, float]:
    """Squared multiple correlation of each endogenous construct."""
    return {k: v for k, v in fit.r2().items() if k in constructs}


def exogenous_correlations(fit, constructs: list[str]) -> pd.DataFrame:
    """Covariances and correlations among exogenous constructs: ``lhs, rhs, estimate, se, z, pvalue, std_estimate``."""
    t = fit.table()
    endo = set(t.loc[t["op"] == "~", "lhs"])
    sel = ((t["op"] == "~~") & (t["lhs"] != t["rhs"]) & t["lhs"].isin(constructs) & t["rhs"].isin(constructs)
           & ~t["lhs"].isin(endo) & ~t["rhs"].isin(endo))
    return t.loc[sel, ["lhs", "rhs", "estimate", "se", "z", "pvalue", "std_estimate"]].reset_index(drop=True)


def indirect_delta(fit, chain: tuple[str, ...], level: float = 0.95) -> dict:
    """Indirect effect along a chain A -> M -> ... -> B: product of its paths, delta-method SE.

    SE = sqrt(g' V g) with g the gradient of the product (Sobel 1982 for two links);
    the standardized effect is the product of the standardized paths.
    """
    t = fit.table()
    rows = []
    for a, b in zip(chain, chain[1:]):
        hit = t[(t["op"] == "~") & (t["lhs"] == b) & (t["rhs"] == a)]
        rows.append(hit.index[0])
    est = t.loc[rows, "estimate"].to_numpy()
    std = t.loc[rows, "std_estimate"].to_numpy()
    idx = fit.structure.table.loc[rows, "index"].to_numpy()
    value = float(np.prod(est))
    grad = np.array([np.prod(np.delete(est, i)) for i in range(len(est))])
    se = float(np.sqrt(grad @ fit.vcov[np.ix_(idx, idx)] @ grad)) if fit.vcov is not None else np.nan
    z = value / se if se > 0 else np.nan
    crit = stats.norm.ppf(0.5 + level / 2)
    return {"estimate": value, "std_estimate": float(np.prod(std)), "se": se, "z": z,
            "pvalue": float(2 * stats.norm.sf(abs(z))), "ci_lower": value - crit * se,
            "ci_upper": value + crit * se, "method": "delta (Sobel)"}


def hypothesis_table(fit, hypotheses, alpha: float = 0.05, indirect: dict | None = None) -> pd.DataFrame:
    """One row per hypothesis.

    A path hypothesis is supported when p < alpha and the estimate has the expected sign (any
    sign for a non-directional hypothesis, ``sign: any``).
    An indirect hypothesis uses ``indirect[id]`` when given (bootstrap: supported when the
    interval excludes 0 on the expected side), otherwise the delta method (p < alpha and sign).

    Returns
    -------
    DataFrame with columns ``id, kind, effect, estimate, std_estimate, se, z, pvalue,
    ci_lower, ci_upper, method, expected_sign, supported, reason``.
    """
    t = fit.table()
    rows = []
    for h in hypotheses:
        expected = h.expected
        if h.kind == "path":
            a, b = h.chain
            r = t[(t["op"] == "~") & (t["lhs"] == b) & (t["rhs"] == a)].iloc[0]
            res = {"estimate": r["estimate"], "std_estimate": r["std_estimate"], "se": r["se"], "z": r["z"],
                   "pvalue": r["pvalue"], "ci_lower": np.nan, "ci_upper": np.nan, "method": "ML z-test"}
        else:
            res = (indirect or {}).get(h.id) or indirect_delta(fit, h.chain, 1 - alpha)
        sign_ok = h.sign == 0 or np.sign(res["estimate"]) == h.sign
        untested = "not tested: the model did not converge" if not fit.converged else _untested(res)
        if untested:
            supported, reason = False, untested
        elif res["method"].startswith("bootstrap"):
            lo, hi = res["ci_lower"], res["ci_upper"]
            excludes = {1: lo > 0, -1: hi < 0, 0: lo > 0 or hi < 0}[h.sign]
            opposite = {1: hi < 0, -1: lo > 0, 0: False}[h.sign]
            supported = bool(excludes)
            reason = "" if supported else ("opposite sign" if opposite else "interval includes 0")
        else:
            significant = bool(res["pvalue"] < alpha)
            supported = significant and bool(sign_ok)
            reason = "" if supported else ("opposite sign" if significant else f"not significant (p >= {alpha:g})")
        rows.append({"id": h.id, "kind": h.kind, "effect": h.effect, **res, "expected_sign": expected,
                     "supported": supported, "reason": reason})
    cols = ["id", "kind", "effect", "estimate", "std_estimate", "se", "z", "pvalue", "ci_lower", "ci_upper",
            "method", "expected_sign", "supported", "reason"]
    return pd.DataFrame(rows, columns=cols)


def structural_admissibility(fit, constructs: list[str], htmt: pd.DataFrame | None = None) -> dict:
    """Problems that make structural estimates uninterpretable, and the paths they touch.

    Checked (limits and sources in ``ADMISSIBILITY_LIMITS``): standardized paths beyond +-1,
    R-squared >= .95, a near-singular latent correlation matrix among the predictors of one outcome
    (condition index > 30), and HTMT >= .90 between two predictors of one outcome.

    Returns
    -------
    dict with ``problems`` (list of str) and ``paths``: ``{"X -> Y": [problem, ...]}`` for every
    path whose estimate a problem makes uninterpretable.
    """
    t = fit.table()
    reg = t[(t["op"] == "~") & t["lhs"].isin(constructs) & t["rhs"].isin(constructs)]
    problems: list[str] = []
    paths: dict[str, list[str]] = {}

    def flag(msg, pairs):
        problems.append(msg)
        for a, b in pairs:
            paths.setdefault(f"{a} -> {b}", []).append(msg)

    for _, r in reg.iterrows():
        if abs(r["std_estimate"]) > ADMISSIBILITY_LIMITS["std_path"][0]:
            flag(f"standardized path {r['rhs']} -> {r['lhs']} is {r['std_estimate']:.2f} (beyond +-1)",
                 [(r["rhs"], r["lhs"])])
    r2 = fit.r2()
    phi = fit.phi
    inner = fit.structure.inner
    for y, group in reg.groupby("lhs", sort=False):
        preds = list(group["rhs"])
        into = [(x, y) for x in preds]
        if r2.get(y, 0.0) >= ADMISSIBILITY_LIMITS["r2"][0]:
            flag(f"R-squared of {y} is {r2[y]:.3f} (.95 or more)", into)
        if len(preds) > 1:
            idx = [inner.index(x) for x in preds]
            block = phi[np.ix_(idx, idx)]
            sd = np.sqrt(np.clip(np.diag(block), 1e-300, None))
            ev = np.linalg.eigvalsh(block / np.outer(sd, sd))
            ci = float(np.sqrt(ev.max() / ev.min())) if ev.min() > 0 else float("inf")
            if ci > ADMISSIBILITY_LIMITS["condition_index"][0]:
                flag(f"the predictors of {y} ({', '.join(preds)}) are collinear: condition index {ci:.1f} (above 30)",
                     into)
            if htmt is not None:
                for i, a in enumerate(preds):
                    for b in preds[i + 1:]:
                        if a in htmt.index and b in htmt.columns:
                            h = htmt.loc[a, b] if np.isfinite(htmt.loc[a, b]) else htmt.loc[b, a]
                            if np.isfinite(h) and h >= ADMISSIBILITY_LIMITS["htmt"][0]:
                                flag(f"{a} and {b}, both predicting {y}, are not distinct: HTMT {h:.2f} (.90 or more)",
                                     [(a, y), (b, y)])
    return {"problems": problems, "paths": paths,
            "limits": {k: {"value": v[0], "source": v[1]} for k, v in ADMISSIBILITY_LIMITS.items()}}


def mark_inadmissible(hyp: pd.DataFrame, hypotheses, admissibility: dict) -> pd.DataFrame:
    """Hypotheses whose paths an admissibility problem touches read "not tested: ...".

    An indirect hypothesis is touched when any link of its chain is. The estimates stay in the
    table; only the verdict changes, because a coefficient from an inadmissible solution supports
    nothing.
    """
    hyp = hyp.copy()
    chains = {h.id: h.chain for h in hypotheses}
    for i, hid in enumerate(hyp["id"]):
        chain = chains[hid]
        issues = []
        for a, b in zip(chain, chain[1:]):
            issues += [m for m in admissibility["paths"].get(f"{a} -> {b}", []) if m not in issues]
        if issues:
            hyp.loc[hyp.index[i], "supported"] = False
            hyp.loc[hyp.index[i], "reason"] = "not tested: the structural solution is not admissible: " + "; ".join(issues)
    return hyp


def _untested(res) -> str:
    """Why a hypothesis cannot be judged (no p-value or no interval), or ''."""
    def finite(v):
        return v is not None and bool(np.isfinite(v))
    if res["method"].startswith("bootstrap"):
        if not (finite(res["ci_lower"]) and finite(res["ci_upper"])):
            return "not tested: no bootstrap interval (no resample could be fitted)"
    elif not finite(res["pvalue"]):
        return "not tested: no standard error (see the fit's warnings)"
    return ""


def modification_indices(fit, top: int = 20) -> pd.DataFrame:
    """Score-test modification indices with expected parameter change (Sorbom 1989).

    For each parameter now fixed at zero: MI = s^2 / V, EPC = s / V, with s the score of
    the log-likelihood and V = N (I_22 - I_21 I_11^-1 I_12), I the per-observation expected
    information of the model with that parameter freed. Candidates: cross-loadings, residual
    covariances of items, regressions between constructs that keep the model recursive,
    and residual covariances of constructs. ``sepc_all`` standardizes the EPC as lavaan's
    ``sepc.all``. Expected information, as lavaan's ``modindices`` by default; under FIML
    the expected information over the missingness patterns, intercepts included.

    Validated against: ``lavaan::modindices(fit)``, complete data and ``missing = "ml"``.

    Returns
    -------
    DataFrame with columns ``lhs, op, rhs, mi, epc, sepc_all, fixed_residual``, the ``top``
    largest; ``fixed_residual`` marks parameters of an item whose residual variance is fixed
    (single-item constructs), which lavaan lists too but which no researcher should free.
    """
    st = fit.structure
    cands = _candidates(st)
    if not cands:
        return pd.DataFrame(columns=["lhs", "op", "rhs", "mi", "epc", "sepc_all", "fixed_residual"])
    q = st.n_free
    aug = _augmented(st, cands)
    theta = np.concatenate([fit.theta, np.zeros(len(cands))])
    if fit.method == "fiml":
        # expected information over the missingness patterns (lavaan's modindices default),
        # the intercepts among the free parameters; score of the casewise likelihood
        par = np.concatenate([theta, fit.mean_hat])
        info = fiml_expected_information(aug, theta, fit.data)  # per observation
        score = -0.5 * fiml_objective(aug, row_layout(fit.data), par[None])[1][0]  # d logl / dtheta per observation
        free = np.r_[np.arange(q), np.arange(q + len(cands), len(par))]
        cand = np.arange(q, q + len(cands))
        n = fit.n
    else:
        sigma = implied(aug, theta)[0]
        inv = np.linalg.inv(sigma)
        dS = sigma_jacobian(aug, theta)
        info = 0.5 * trace_products(inv @ dS)  # per observation
        W = inv @ (fit.sample_cov - sigma) @ inv
        score = 0.5 * np.einsum("kij,ij->k", dS, W)  # d logl / dtheta per observation
        free, cand = np.arange(q), np.arange(q, q + len(cands))
        n = fit.n_eff
    i11, i12, i22 = info[np.ix_(free, free)], info[np.ix_(free, cand)], info[np.ix_(cand, cand)]
    v = np.diag(i22) - np.einsum("ij,ij->j", i12, np.linalg.solve(i11, i12))
    s2 = score[cand]
    keep = v > 1e-8 * np.maximum(np.diag(i22), 1.0)
    mi = np.where(keep, n * s2 ** 2 / np.where(keep, v, 1.0), np.nan)
    epc = np.where(keep, s2 / np.where(keep, v, 1.0), np.nan)
    _, phi, B, L, P, T, C, M = implied(st, fit.theta)
    sd_obs = np.sqrt(np.diag(fit.sigma))
    sd_in = np.sqrt(np.diag(phi))
    rows = []
    for (lhs, op, rhs, mid, r, c), m, e in zip(cands, mi, epc):
        if not np.isfinite(m):
            continue
        if mid == 1:
            num, den = e * sd_in[c], sd_obs[r]
        elif mid == 0:
            num, den = e * sd_in[c], sd_in[r]
        elif mid == 3:
            num, den = e, np.sqrt(max(T[r, r] * T[c, c], 0.0))
        else:
            num, den = e, np.sqrt(max(P[r, r] * P[c, c], 0.0))
        sepc = num / den if den > 0 else np.nan  # e.g. an item whose residual variance is fixed to 0
        rows.append({"lhs": lhs, "op": op, "rhs": rhs, "mi": float(m), "epc": float(e), "sepc_all": float(sepc)})
    out = pd.DataFrame(rows, columns=["lhs", "op", "rhs", "mi", "epc", "sepc_all"])
    out = out.sort_values("mi", ascending=False, kind="stable").head(top).reset_index(drop=True)
    # an item whose residual variance is fixed (a single-item construct) measures its construct by
    # definition: a cross-loading or residual covariance of it would redefine the construct
    t = st.table
    fixed = set(t.loc[(t["op"] == "~~") & (t["lhs"] == t["rhs"]) & ~t["free"] & t["lhs"].isin(st.observed)
                      & ~t["lhs"].isin(st.inner), "lhs"])
    out["fixed_residual"] = [(r.op in ("=~", "~~") and r.rhs in fixed) or (r.op == "~~" and r.lhs in fixed)
                             for r in out.itertuples()]
    return out


def _candidates(st: ModelStructure):
    """Fixed-at-zero parameters that could be freed: (lhs, op, rhs, matrix, row, col)."""
    t = st.table
    present = {(m, r, c) for m, r, c in zip(t["matrix"], t["row"], t["col"])}
    present |= {(m, c, r) for m, r, c in zip(t["matrix"], t["row"], t["col"]) if m in (MatrixId.PSI, MatrixId.THETA)}
    obs, inner = st.observed, st.inner
    indicators = [v for v in obs if v not in inner]
    out = []
    for c, lv in enumerate(inner):
        if lv not in st.latent:
            continue
        for r, ov in enumerate(obs):
            if ov in indicators and (MatrixId.LAMBDA, r, c) not in present:
                out.append((lv, "=~", ov, MatrixId.LAMBDA, r, c))
    rank = syntax_order(st.syntax)
    for i in range(len(obs)):
        for j in range(i + 1, len(obs)):
            if obs[i] in indicators and obs[j] in indicators and (MatrixId.THETA, i, j) not in present:
                a, b = sorted((obs[i], obs[j]), key=lambda v: rank.get(v, len(rank)))
                out.append((a, "~~", b, MatrixId.THETA, i, j))
    # construct-level: regressions that keep the model recursive, residual covariances of endogenous ones
    reach = reachability(st)
    endo = {inner[r] for m, r, c in present if m == MatrixId.BETA}
    for i, a in enumerate(inner):
        for j, b in enumerate(inner):
            if i == j or (MatrixId.BETA, i, j) in present:
                continue
            if not reach[j, i] and not reach[i, j] and (MatrixId.PSI, i, j) not in present:
                out.append((a, "~", b, MatrixId.BETA, i, j))
    for i, a in enumerate(inner):
        for j in range(i + 1, len(inner)):
            b = inner[j]
            if a in endo and b in endo and (MatrixId.PSI, i, j) not in present and not reach[i, j] and not reach[j, i]:
                out.append((a, "~~", b, MatrixId.PSI, i, j))
    return out


def reachability(st: ModelStructure) -> np.ndarray:
    """reach[i, j]: inner variable i affects j through directed paths (i -> ... -> j); the one
    path-graph helper (modification-index candidates, total effects)."""
    n = len(st.inner)
    adj = np.zeros((n, n), bool)
    for m, r, c in zip(st.table["matrix"], st.table["row"], st.table["col"]):
        if m == MatrixId.BETA:
            adj[c, r] = True
    reach = adj.copy()
    for k in range(n):
        reach |= reach[:, [k]] & reach[[k], :]
    return reach


def _augmented(st: ModelStructure, cands) -> ModelStructure:
    q = st.n_free
    extra = np.arange(q, q + len(cands))
    return ModelStructure(
        syntax=st.syntax, observed=st.observed, inner=st.inner, latent=st.latent, base=st.base,
        loc_matrix=np.concatenate([st.loc_matrix, [c[3] for c in cands]]).astype(int),
        loc_row=np.concatenate([st.loc_row, [c[4] for c in cands]]).astype(int),
        loc_col=np.concatenate([st.loc_col, [c[5] for c in cands]]).astype(int),
        loc_param=np.concatenate([st.loc_param, extra]).astype(int),
        table=st.table, start=np.concatenate([st.start, np.zeros(len(cands))]))


def total_effect_pairs(st: ModelStructure) -> list[tuple[str, str]]:
    """Every (X, Y) of inner variables joined by a directed path X -> ... -> Y: the total effects
    the bootstrap reports, in the model's order of X then Y."""
    reach = reachability(st)
    inner = st.inner
    return [(a, b) for i, a in enumerate(inner) for j, b in enumerate(inner) if reach[i, j]]
