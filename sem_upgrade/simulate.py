"""Simulation: draw Likert surveys from a questionnaire's stated population model; recovery studies.

The population model is the questionnaire's ``population`` section, all on the
standardized scale (every construct has variance 1)::

    population:
      loadings: {nsc1: 0.80, ...}            # standardized loading of every item
      paths: {KAQ ~ NSC: 0.30, ...}          # standardized structural coefficients (absent = 0)
      correlations: {NSC ~~ NHE: 0.35, ...}  # among exogenous constructs (absent = 0)
      thresholds: [-2.0, -1.4, -0.8, -0.2, 0.5, 1.3]   # scale points - 1 cut points

Draws: latent scores eta ~ N(0, Phi) with Phi implied by the paths and correlations
(the residual variance of each endogenous construct is 1 - R^2), continuous item scores
y* = lambda eta + sqrt(1 - lambda^2) e, then categories min + #(y* > tau). A reverse-keyed
item is written as the respondent would answer its reversed wording (min + max - x), so
ingestion recodes it back; missing cells are blanked completely at random.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import SemUpgradeError
from .questionnaire import Questionnaire

__all__ = ["Population", "population_model", "simulate_survey", "draw_items", "item_arrays", "recovery_study"]


@dataclass(frozen=True)
class Population:
    constructs: list[str]
    loadings: dict[str, float]
    paths: dict[tuple[str, str], float]  # (outcome, predictor) -> beta
    phi: np.ndarray  # latent correlation matrix (constructs order)
    residual_var: dict[str, float]
    thresholds: np.ndarray

    def std_path(self, lhs: str, rhs: str) -> float:
        return self.paths.get((lhs, rhs), 0.0)

    def indirect(self, chain) -> float:
        return float(np.prod([self.std_path(b, a) for a, b in zip(chain, chain[1:])]))


def population_model(q: Questionnaire) -> Population:
    """Read and check the questionnaire's population section; derive the latent correlations."""
    src = q.source
    pop = q.population
    if not pop:
        raise SemUpgradeError(f"{src}: population: the questionnaire states no population model to simulate from")

    def fail(key, msg):
        raise SemUpgradeError(f"{src}: population.{key}: {msg}")

    names = list(q.constructs)
    loadings = {}
    raw = pop.get("loadings") or {}
    for item in q.items:
        if item not in raw:
            fail("loadings", f"no loading for item '{item}'")
        lam = raw[item]
        if not isinstance(lam, (int, float)) or not -1 < lam < 1 or lam == 0:
            fail(f"loadings.{item}", f"{lam!r} is not a standardized loading in (-1, 1), non-zero")
        loadings[item] = float(lam)
    for item in raw:
        if item not in q.items:
            fail(f"loadings.{item}", "not an item of the questionnaire")
    paths = {}
    for key, val in (pop.get("paths") or {}).items():
        parts = [s.strip() for s in str(key).split("~")]
        if len(parts) != 2 or any(p not in names for p in parts):
            fail(f"paths.{key}", "must be 'OUTCOME ~ PREDICTOR' with two constructs")
        paths[(parts[0], parts[1])] = float(val)
    model_paths = set(q.paths)
    for lhs_rhs in paths:
        if lhs_rhs not in model_paths:
            fail(f"paths.{lhs_rhs[0]} ~ {lhs_rhs[1]}", "is not a path of the model (the analysis model must contain it)")
    corr = {}
    for key, val in (pop.get("correlations") or {}).items():
        parts = [s.strip() for s in str(key).split("~~")]
        if len(parts) != 2 or any(p not in names for p in parts):
            fail(f"correlations.{key}", "must be 'A ~~ B' with two constructs")
        corr[frozenset(parts)] = float(val)
    scale = q.scale
    if scale is None or not all(float(v).is_integer() for v in scale):
        raise SemUpgradeError(f"{src}: scale: simulation needs a Likert scale with whole-number end points")
    k = int(scale[1] - scale[0]) + 1
    tau = np.asarray(pop.get("thresholds") or [], float)
    if len(tau) != k - 1 or np.any(np.diff(tau) <= 0):
        fail("thresholds", f"needs {k - 1} increasing cut points for a {k}-point scale, got {tau.tolist()}")

    # Latent correlations in causal order; residual variance 1 - R^2 keeps every variance at 1.
    endo = {lhs for lhs, _ in paths} | {lhs for lhs, _ in q.paths}
    order = _topological(names, q.paths)
    idx = {c: i for i, c in enumerate(names)}
    phi = np.eye(len(names))
    exo = [c for c in order if c not in endo]
    for a in exo:
        for b in exo:
            if a != b:
                phi[idx[a], idx[b]] = corr.get(frozenset((a, b)), 0.0)
    for key in corr:
        if any(c in endo for c in key):
            fail("correlations", f"{' ~~ '.join(sorted(key))}: correlations are stated among exogenous constructs only")
    resid = {}
    done = list(exo)
    for c in order:
        if c not in endo:
            continue
        b = np.array([paths.get((c, d), 0.0) for d in done])
        sub = phi[np.ix_([idx[d] for d in done], [idx[d] for d in done])]
        r2 = float(b @ sub @ b)
        if r2 >= 1:
            fail("paths", f"the paths into {c} explain {r2:.3f} of its variance (must be below 1)")
        resid[c] = 1.0 - r2
        cov = sub @ b
        for d, v in zip(done, cov):
            phi[idx[c], idx[d]] = phi[idx[d], idx[c]] = v
        done.append(c)
    if np.linalg.eigvalsh(phi).min() <= 0:
        fail("correlations", "the construct correlations are not positive definite")
    return Population(constructs=names, loadings=loadings, paths=paths, phi=phi, residual_var=resid,
                      thresholds=tau)


def _topological(names, paths):
    preds = {c: {rhs for lhs, rhs in paths if lhs == c} for c in names}
    order, placed = [], set()
    while len(order) < len(names):
        ready = [c for c in names if c not in placed and preds[c] <= placed]
        order += ready
        placed |= set(ready)
    return order


def simulate_survey(q: Questionnaire, n: int, seed: int, missing_rate: float = 0.0,
                    reverse: bool = True) -> pd.DataFrame:
    """Draw ``n`` respondents from the population model.

    Returns a DataFrame with the id column (``F0001``...) when the questionnaire names one,
    then the items as whole numbers (missing cells as NaN). With ``reverse`` the reverse-keyed
    items hold raw answers (to be recoded by ingestion); without it they are already in the
    construct's direction.
    """
    if n < 1:
        raise SemUpgradeError(f"--n: the number of respondents must be positive, got {n}")
    if not 0 <= missing_rate < 1:
        raise SemUpgradeError(f"--missing-rate: must be in [0, 1), got {missing_rate}")
    pop = population_model(q)
    rng = np.random.default_rng(seed)
    x = draw_items(pop, item_arrays(q, pop), n, rng, missing_rate)
    if reverse and q.reverse_items:
        lo, hi = q.scale
        rev = [q.items.index(item) for item in q.reverse_items]
        x[:, rev] = lo + hi - x[:, rev]
    data = pd.DataFrame(x, columns=list(q.items))
    if q.id_column:
        data.insert(0, q.id_column, [f"F{k + 1:04d}" for k in range(n)])
    return data


def item_arrays(q: Questionnaire, pop: Population) -> tuple[np.ndarray, np.ndarray, float]:
    """The item-level arrays the drawer needs: loadings, construct index of each item, lowest category."""
    lam = np.array([pop.loadings[item] for item in q.items])
    construct = np.array([pop.constructs.index(q.construct_of(item)) for item in q.items])
    return lam, construct, float(q.scale[0])


def draw_items(pop: Population, arrays: tuple, n: int, rng: np.random.Generator,
               missing_rate: float = 0.0) -> np.ndarray:
    """Draw ``n`` respondents' items, in the constructs' direction, as an (n, items) float array.

    eta ~ N(0, Phi) (Cholesky), y* = lambda eta + sqrt(1 - lambda^2) e, x = min + #(y* > tau);
    then cells blanked completely at random with probability ``missing_rate`` (NaN). The
    order of the draws from ``rng`` is fixed: eta, e, the missingness mask.
    """
    lam, construct, lo = arrays
    eta = rng.multivariate_normal(np.zeros(len(pop.constructs)), pop.phi, size=n, method="cholesky")
    errors = rng.standard_normal((n, len(lam)))
    ystar = lam * eta[:, construct] + np.sqrt(1 - lam * lam) * errors
    x = lo + (ystar[:, :, None] > pop.thresholds[None, None, :]).sum(axis=2).astype(float)
    if missing_rate > 0:
        x[rng.random(x.shape) < missing_rate] = np.nan
    return x


def recovery_study(q: Questionnaire, n: int, replications: int, seed: int, alpha: float = 0.05,
                   progress: bool | None = None) -> dict:
    """Fit the questionnaire's model to many simulated surveys and compare with the truth.

    For each hypothesis: the true standardized effect, the share of replications in which it
    was supported (power where the truth is non-zero, type I error where it is zero), the
    mean standardized estimate and its bias. Indirect hypotheses use the delta method here.

    Returns
    -------
    dict with ``replications``, ``n_failed``, ``hypotheses`` (list of rows: id, effect,
    truth, true_effect_exists, supported_rate, kind_of_rate, mean_std_estimate, bias)
    and ``paths`` (same for every structural path).
    """
    from tqdm import tqdm

    from .engine.fit import fit_model
    from .structural import hypothesis_table, path_table

    pop = population_model(q)
    seeds = np.random.SeedSequence(seed).spawn(replications)
    syntax = q.structural_syntax()
    hyp_rows, path_rows, failed = [], [], []
    show = sys.stderr.isatty() if progress is None else progress
    for r, ss in enumerate(tqdm(seeds, desc="replications", disable=not show)):
        data = simulate_survey(q, n, int(ss.generate_state(1)[0]), reverse=False)
        try:
            fit = fit_model(syntax, data[q.items])
        except SemUpgradeError as exc:
            failed.append(f"replication {r + 1}: {exc}")
            continue
        if not fit.converged:
            failed.append(f"replication {r + 1}: did not converge")
            continue
        hyp_rows.append(hypothesis_table(fit, q.hypotheses, alpha=alpha).assign(rep=r))
        path_rows.append(path_table(fit, list(q.constructs)).assign(rep=r))
    if not hyp_rows:
        raise SemUpgradeError(f"recovery study: every replication failed ({failed[0] if failed else 'no replications'})")
    h = pd.concat(hyp_rows)
    p = pd.concat(path_rows)
    hyps = []
    for hyp in q.hypotheses:
        truth = pop.indirect(hyp.chain)
        sub = h[h["id"] == hyp.id]
        hyps.append({"id": hyp.id, "effect": hyp.effect, "kind": hyp.kind, "truth": truth,
                     "true_effect_exists": bool(truth != 0),
                     "supported_rate": float(sub["supported"].mean()),
                     "kind_of_rate": "power" if truth != 0 else "type I error",
                     "mean_std_estimate": float(sub["std_estimate"].mean()),
                     "bias": float(sub["std_estimate"].mean() - truth)})
    paths = []
    for (lhs, rhs), sub in p.groupby(["lhs", "rhs"], sort=False):
        truth = pop.std_path(lhs, rhs)
        paths.append({"lhs": lhs, "rhs": rhs, "truth": truth, "mean_std_estimate": float(sub["std_estimate"].mean()),
                      "bias": float(sub["std_estimate"].mean() - truth),
                      "rejection_rate": float((sub["pvalue"] < alpha).mean())})
    return {"n": n, "replications": replications, "n_ok": len(hyp_rows), "n_failed": len(failed),
            "failures": failed[:20], "seed": seed, "alpha": alpha, "hypotheses": hyps, "paths": paths}
