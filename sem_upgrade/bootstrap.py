"""Bootstrap: case resampling of the cleaned rows, every path, indirect and total effect, intervals.

Engine: all resample indices are drawn up front from one seeded generator, so the numbers
do not depend on how many processes share the work. Every resample starts at the
full-sample estimates, and a whole chunk of resamples is solved at once
(``engine.optimize.quasi_newton``): batched model algebra, closed-form gradients, step
halving, BFGS updates of the inverse Hessian.

* Complete data (ML): the first step uses the expected information at the full-sample
  estimates (the same for every resample: it does not depend on S), the second a Fisher
  scoring step at the resample's own point (``expected_information``), then BFGS,
  which converges superlinearly where Fisher scoring is only linear (model misfit).
* FIML: the resample is the original rows weighted by how often each was drawn, so all
  resamples share one row layout and the row-wise likelihood (``engine.mvnorm_missing.fiml_objective``)
  is evaluated for the whole chunk at once; the full-sample observed information is the
  first metric, then BFGS.

A resample is converged when max |g| < 1e-9 or a full step is below 1e-8, which makes it
equal to a full refit (tests/test_bootstrap.py). One the batch does not settle is refitted on
its own by the full optimiser; one that still fails is counted as failed and excluded (as
lavaan 0.6 does); inadmissible solutions (negative variances) are counted and kept.

Intervals: percentile and bias-corrected (BC, Efron 1981; lavaan's ``bca.simple``,
AMOS's "bias-corrected percentile"): with z0 = Phi^-1(share of draws below the estimate),
the bounds are the Phi(2 z0 +/- z_(1-a/2)) quantiles of the draws.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .engine.derivatives import numerical_hessian
from .engine.fit import Fit
from .engine.implied import implied
from .engine.linalg import positive_definite
from .engine.mvnorm import ml_information, ml_objective
from .engine.mvnorm_missing import fiml_objective, row_layout
from .engine.optimize import fiml_minimise, ml_minimise, quasi_newton
from .engine.standardize import std_effect
from .errors import SemUpgradeError

__all__ = ["BootstrapResult", "bootstrap", "percentile_ci", "bc_ci", "effect_paths"]


def percentile_ci(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval: the (1 - level)/2 and (1 + level)/2 quantiles of the draws."""
    a = (1 - level) / 2
    lo, hi = np.quantile(draws, [a, 1 - a])
    return float(lo), float(hi)


def bc_ci(draws: np.ndarray, estimate: float, level: float = 0.95) -> tuple[float, float]:
    """Bias-corrected percentile interval (no acceleration), as lavaan's ``bca.simple`` and AMOS."""
    share = np.mean(draws < estimate)
    if share in (0.0, 1.0):
        return float("nan"), float("nan")
    z0 = stats.norm.ppf(share)
    z = stats.norm.ppf((1 + level) / 2)
    lo, hi = np.quantile(draws, stats.norm.cdf([2 * z0 - z, 2 * z0 + z]))
    return float(lo), float(hi)


@dataclass
class BootstrapResult:
    """Every draw and the summary of a bootstrap run.

    ``draws``: DataFrame, one row per resample, one column per free parameter
    (``lhs op rhs``) and per named effect (``indirect:<name>``, ``total:<X>-><Y>`` and their
    ``std_`` versions); failed resamples are NaN rows. ``effects``: list of dicts with
    ``name, kind, chain, estimate, std_estimate, boot_se, perc_lower, perc_upper, bc_lower,
    bc_upper`` (and ``std_`` intervals).
    """

    draws: pd.DataFrame
    n_requested: int
    n_ok: int
    n_failed: int
    n_inadmissible: int
    seed: int
    ci_level: float
    seconds: float
    effects: list[dict]

    def summary(self) -> dict:
        return {"n_requested": self.n_requested, "n_ok": self.n_ok, "n_failed": self.n_failed,
                "n_inadmissible": self.n_inadmissible, "seed": self.seed, "ci_level": self.ci_level}


def effect_paths(fit: Fit, chain) -> list[int]:
    """Parameter indices of the regressions along a chain A -> M -> ... -> B."""
    t = fit.structure.table
    out = []
    for a, b in zip(chain, chain[1:]):
        hit = t[(t["op"] == "~") & (t["lhs"] == b) & (t["rhs"] == a) & t["free"]]
        if hit.empty:
            raise SemUpgradeError(f"indirect effect {' -> '.join(chain)}: {a} -> {b} is not a free path of the model")
        out.append(int(hit["index"].iloc[0]))
    return out


def bootstrap(fit: Fit, data: pd.DataFrame, n_boot: int, seed, indirect: dict[str, tuple] | None = None,
              totals: list[tuple[str, str]] | None = None, level: float = 0.95, n_jobs: int | None = None,
              progress: bool | None = None, batch: int = 100) -> BootstrapResult:
    """Case-resampling bootstrap of a fitted model.

    Parameters
    ----------
    fit : Fit
        The full-sample fit (its rows are ``data``, already cleaned; rejected rows never enter).
    data : DataFrame
        The rows the fit used (listwise: complete rows; FIML: rows with any item).
    n_boot : int
        Number of resamples.
    seed : int or numpy.random.Generator
    indirect : {name: chain}
        Indirect effects to collect (product of the paths along each chain).
    totals : [(X, Y)]
        Total effects of X on Y to collect (sum over all directed paths).
    level : float
        Confidence level of the intervals.
    n_jobs : int, optional
        Processes (default: the number of cores, at most 2 per 200 resamples). The numbers
        do not depend on it.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer, np.random.Generator)):
        raise SemUpgradeError(f"--seed: must be an integer, got {seed!r}")
    if n_boot < 1:
        raise SemUpgradeError(f"--bootstrap: the number of resamples must be positive, got {n_boot}")
    if not 0 < level < 1:
        raise SemUpgradeError(f"--ci-level: must be between 0 and 1, got {level}")
    st = fit.structure
    x = np.asarray(data[st.observed], float)
    n = len(x)
    if n <= st.n_free:
        raise SemUpgradeError(f"too few rows to bootstrap: {n} rows for {st.n_free} free parameters "
                              "(a resample needs more rows than parameters)")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(int(seed))
    idx = rng.integers(0, n, size=(n_boot, n))
    t0 = time.perf_counter()
    indirect = indirect or {}
    totals = totals or []
    chains = {name: effect_paths(fit, chain) for name, chain in indirect.items()}
    job = _Job(fit=fit, x=x, chains=chains, totals=totals)
    chunks = [idx[i:i + batch] for i in range(0, n_boot, batch)]
    if n_jobs is None:
        n_jobs = min(os.cpu_count() or 1, max(1, n_boot // 200))
    show = (sys.stderr.isatty() if progress is None else progress)
    results = _map(job, chunks, n_jobs, show)
    theta = np.vstack([r[0] for r in results])
    extra = np.vstack([r[1] for r in results])
    ok = np.concatenate([r[2] for r in results])
    inadmissible = np.concatenate([r[3] for r in results])
    if not ok.any():
        raise SemUpgradeError(f"the bootstrap failed: none of the {n_boot} resamples could be fitted")
    names = [f"{r.lhs} {r.op} {r.rhs}" for r in st.table[st.table["free"]].sort_values("index").itertuples()]
    cols = names + job.extra_names()
    draws = pd.DataFrame(np.column_stack([theta, extra]), columns=cols)
    draws[~ok] = np.nan
    full = job.extras(fit.theta[None, :])[0]
    effects = []
    good = draws[ok]
    for k, (name, kind, chain) in enumerate(job.extra_meta()):
        if name.startswith("std_"):
            continue
        est, std_est = full[k], full[k + 1]
        d, ds = good.iloc[:, len(names) + k].to_numpy(), good.iloc[:, len(names) + k + 1].to_numpy()
        row = {"name": name.split(":", 1)[1], "kind": kind, "chain": list(chain), "estimate": float(est),
               "std_estimate": float(std_est), "boot_se": float(np.std(d, ddof=1)),
               "std_boot_se": float(np.std(ds, ddof=1))}
        row["perc_lower"], row["perc_upper"] = percentile_ci(d, level)
        row["bc_lower"], row["bc_upper"] = bc_ci(d, est, level)
        row["std_perc_lower"], row["std_perc_upper"] = percentile_ci(ds, level)
        row["std_bc_lower"], row["std_bc_upper"] = bc_ci(ds, std_est, level)
        effects.append(row)
    return BootstrapResult(draws=draws, n_requested=n_boot, n_ok=int(ok.sum()), n_failed=int((~ok).sum()),
                           n_inadmissible=int((inadmissible & ok).sum()),
                           seed=int(seed) if not isinstance(seed, np.random.Generator) else -1,
                           ci_level=level, seconds=time.perf_counter() - t0, effects=effects)


def _map(job, chunks, n_jobs, show):
    from tqdm import tqdm

    bar = tqdm(total=sum(len(c) for c in chunks), desc="bootstrap", unit="resample", disable=not show,
               mininterval=0.5, delay=1.0)
    out = []
    if n_jobs > 1 and len(chunks) > 1:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=_init, initargs=(job,)) as ex:
            for res in ex.map(_run_chunk, chunks):
                out.append(res)
                bar.update(len(res[2]))
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # the same BLAS path as in the workers: identical bits
            for c in chunks:
                out.append(job.solve(c))
                bar.update(len(c))
    bar.close()
    return out


_WORKER_JOB = None


def _init(job):
    global _WORKER_JOB  # a worker process's own copy of the job (set once per process)
    _WORKER_JOB = job
    from threadpoolctl import threadpool_limits

    # one BLAS thread per worker: the workers already use every core
    threadpool_limits(1)


def _run_chunk(idx):
    return _WORKER_JOB.solve(idx)


# Fisher scoring steps before BFGS takes over (measured on the bundled model: 1 gives the fewest
# iterations; none, about 40% more)
_FISHER_STEPS = 1


class _Job:
    """What every worker needs: the model, the data and the full-sample solution (every
    resample's starting point)."""

    def __init__(self, fit: Fit, x: np.ndarray, chains: dict, totals: list):
        self.fit = fit
        self.st = fit.structure
        self.x = x
        self.chains = chains
        self.totals = totals
        self.ddof = 1 if fit.likelihood == "wishart" else 0
        st = self.st
        if fit.method == "fiml":
            self.rows = row_layout(x)
            self.start = np.concatenate([fit.theta, fit.mean_hat])
            # The full-sample Hessian (observed information) serves every resample as its first
            # metric: the likelihood is a weighted sum over rows, the weights being resampling counts.
            self.hessian = numerical_hessian(lambda par: fiml_objective(st, self.rows, par)[1], self.start)
        else:
            self.start = fit.theta
            self.information = ml_information(st, fit.theta[None])[0]

    # ---------------- named effects
    def extra_meta(self):
        meta = []
        for name, idx in self.chains.items():
            meta += [(f"indirect:{name}", "indirect", ()), (f"std_indirect:{name}", "indirect", ())]
        for a, b in self.totals:
            meta += [(f"total:{a}->{b}", "total", (a, b)), (f"std_total:{a}->{b}", "total", (a, b))]
        return meta

    def extra_names(self):
        return [m[0] for m in self.extra_meta()]

    def extras(self, theta: np.ndarray) -> np.ndarray:
        """Indirect and total effects (raw and standardized) for a batch of parameter vectors."""
        st = self.st
        imp = implied(st, theta)
        out = []
        for name, idx in self.chains.items():
            est = theta[:, idx].prod(axis=1)
            # the standardized product telescopes: sd(first cause) / sd(last outcome)
            first = st.table[st.table["index"] == idx[0]].iloc[0]
            last = st.table[st.table["index"] == idx[-1]].iloc[0]
            out += [est, std_effect(est, imp, int(first["col"]), int(last["row"]))]
        for a, b in self.totals:
            ia, ib = st.inner.index(a), st.inner.index(b)
            tot = imp.C[:, ib, ia] - (1.0 if ia == ib else 0.0)
            out += [tot, std_effect(tot, imp, ia, ib)]
        return np.column_stack(out) if out else np.zeros((len(theta), 0))

    # ---------------- solving a chunk of resamples
    def solve(self, idx: np.ndarray):
        """Fit every resample of a chunk: (theta, extras, ok, inadmissible)."""
        if self.fit.method == "fiml":
            return self._solve_fiml(idx)
        st = self.st
        xb = self.x[idx]  # (nb, n, p)
        xc = xb - xb.mean(axis=1, keepdims=True)
        S = np.einsum("bni,bnj->bij", xc, xc) / (xb.shape[1] - self.ddof)
        sign, logdet_s = np.linalg.slogdet(S)
        nb = len(idx)
        theta = np.full((nb, st.n_free), np.nan)
        ok = np.zeros(nb, bool)
        good = np.where(sign > 0)[0]  # a singular S cannot be fitted: the resample fails
        if len(good):
            S, logdet_s = S[good], logdet_s[good]

            def evaluate(th, sel):
                return ml_objective(st, th, S[sel], logdet_s[sel])

            def information(th, sel):
                return ml_information(st, th)

            # every resample starts at the full-sample estimates, where the expected information
            # (it does not depend on S) is the same for all
            th, _, conv, _ = quasi_newton(evaluate, np.tile(self.start, (len(good), 1)), self.information,
                                                 information=information, n_fisher=_FISHER_STEPS)
            theta[good[conv]], ok[good[conv]] = th[conv], True
        # Resamples the batch did not settle: the full optimiser, one by one (estimates only).
        for b in np.where(~ok & (sign > 0))[0]:
            S_b = xc[b].T @ xc[b] / (len(xc[b]) - self.ddof)
            try:
                est, _, converged, _, _ = ml_minimise(st, S_b, np.linalg.slogdet(S_b)[1], self.fit.theta.copy())
            except SemUpgradeError:
                continue
            if converged:
                theta[b], ok[b] = est, True
        return self._finish(theta, ok)

    def _solve_fiml(self, idx):
        st, q = self.st, self.st.n_free
        n = len(self.x)
        w = np.stack([np.bincount(rows, minlength=n) for rows in idx]).astype(float)

        def evaluate(par, sel):
            return fiml_objective(st, self.rows, par, w[sel])

        nb = len(idx)
        par, _, conv, _ = quasi_newton(evaluate, np.tile(self.start, (nb, 1)), self.hessian)
        theta = np.where(conv[:, None], par[:, :q], np.nan)
        ok = conv.copy()
        # Resamples the batch did not settle: Newton steps on their own observed information,
        # from where the batch stopped (the optimiser of fit_fiml, without EM or standard errors).
        for b in np.where(~ok & np.isfinite(par).all(axis=1))[0]:
            rows = row_layout(self.x[idx[b]])
            hess = numerical_hessian(lambda z: fiml_objective(st, rows, z)[1], par[b])
            if not np.isfinite(hess).all():
                continue
            est, _, converged, _ = fiml_minimise(st, rows, par[b], positive_definite(hess))
            if converged:
                theta[b], ok[b] = est[:q], True
        return self._finish(theta, ok)

    def _finish(self, theta, ok):
        extras = np.full((len(theta), len(self.extra_names())), np.nan)
        inadmissible = np.zeros(len(theta), bool)
        if ok.any():
            extras[ok] = self.extras(theta[ok])
            _, _, _, _, P, T, _, _ = implied(self.st, theta[ok])
            neg = (np.diagonal(P, axis1=1, axis2=2) < 0).any(axis=1) | (np.diagonal(T, axis1=1, axis2=2) < 0).any(axis=1)
            inadmissible[ok] = neg
        return theta, extras, ok, inadmissible

