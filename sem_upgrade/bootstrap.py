"""Bootstrap: case resampling of the cleaned rows, every path, indirect and total effect, intervals.

Resamples. Each resample is a vector of counts (how often each row was drawn: a multinomial
draw of N rows with equal probabilities), drawn batch by batch from one seeded
``numpy.random.SeedSequence`` spawned per batch, so the numbers do not depend on how many
processes share the work and no resamples x rows index matrix is ever held. Complete data
(ML): each resample's covariance matrix is formed from the counts as a weighted sum of the
rows' cross-products (divisor N, or N - 1 under ``likelihood = "wishart"``), never from
copied rows. FIML: the resample is the original rows weighted by their counts.

Engine: every resample starts at the full-sample estimates, and a whole batch is solved at
once (``engine.optimize.quasi_newton``): batched model algebra, closed-form gradients,
step halving, BFGS updates of the inverse Hessian (complete data: first step on the expected
information at the full-sample estimates, one Fisher scoring step, then BFGS; FIML: the
full-sample observed information, then BFGS). A resample is converged when max |g| < 1e-9
or a full step is below 1e-8, which makes it equal to a full refit (tests/test_bootstrap.py).
One the batch does not settle gets a second chance on its own with an effort limit of
``_EFFORT`` times the full-sample fit's iterations, so a failing resample costs at most a
few full-sample fits and the whole bootstrap's time is bounded. One that still fails is
counted as failed and excluded (as lavaan 0.6 does); inadmissible solutions (negative
variances) are counted and kept. Above a failure share (default 5%) the bootstrap is
*unstable*: its intervals are still given, marked, but do not judge hypotheses.

Intervals, as lavaan's ``parameterEstimates`` takes them: the bounds are boot's
``norm.inter`` interpolation of the ordered draws (Davison & Hinkley 1997, eq. 5.8), not a
linear quantile. Percentile: the (1 -/+ level)/2 points. Bias-corrected (BC, Efron 1981;
lavaan's ``bca.simple``, AMOS's "bias-corrected percentile"): with z0 = Phi^-1(share of
draws below the full-sample estimate), the Phi(2 z0 +/- z_(1+level)/2) points.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .engine.derivatives import numerical_hessian
from .engine.fit import Fit
from .engine.implied import implied
from .engine.linalg import positive_definite
from .engine.mvnorm import ml_information, ml_objective
from .engine.mvnorm_missing import fiml_objective, row_layout
from .engine.optimize import ml_minimise, quasi_newton
from .engine.standardize import std_effect
from .errors import SemUpgradeError

__all__ = [
    "DEFAULT_MAX_FAILURE",
    "BootstrapResult",
    "bc_ci",
    "bias_correction",
    "bootstrap",
    "draw_counts",
    "effect_paths",
    "indirect_results",
    "mediation_type",
    "minimum_resamples",
    "norm_inter",
    "percentile_ci",
    "resample_plan",
]

DEFAULT_MAX_FAILURE = 0.05  # share of failed resamples above which the bootstrap is unstable
_EFFORT = 3  # a resample's second chance: at most this many full-sample fits' iterations
_TAIL_DRAWS = 25  # draws wanted beyond each interval bound (see minimum_resamples)
_LOG_EVERY = 5.0  # seconds between progress lines when stderr is not a terminal
_COUNT_CELLS = 20_000_000  # resample counts held per batch (resamples x rows), ~160 MB
_ROW_CHUNK = 32_768  # rows per cross-product block when forming covariances from counts


def norm_inter(draws: np.ndarray, alpha) -> np.ndarray:
    """Quantiles of bootstrap draws by normal-scale interpolation between order statistics.

    With the R finite draws sorted, t_(1) <= ... <= t_(R), and r = (R + 1) alpha: when r is a
    whole number k the bound is t_(k); otherwise, with k = floor(r),

        t_(k) + (Phi^-1(alpha) - Phi^-1(k/(R+1))) / (Phi^-1((k+1)/(R+1)) - Phi^-1(k/(R+1))) * (t_(k+1) - t_(k)),

    and t_(1) or t_(R) beyond the ends (Davison & Hinkley 1997, eq. 5.8). Non-finite draws are
    dropped first.

    Validated against: ``boot:::norm.inter`` as used by ``lavaan::parameterEstimates`` on
    lavaan's own draws (tests/reference/bootstrap.json).
    """
    t = np.sort(np.asarray(draws, float)[np.isfinite(draws)])
    a = np.atleast_1d(np.asarray(alpha, float))
    R = len(t)
    out = np.full(len(a), np.nan)
    if R == 0:
        return out
    rk = (R + 1) * a
    k = np.trunc(rk)
    for j in range(len(a)):
        kj = int(k[j])
        if kj <= 0:
            out[j] = t[0]
        elif kj >= R:
            out[j] = t[R - 1]
        elif kj == rk[j]:
            out[j] = t[kj - 1]
        else:
            z, z_lo, z_hi = stats.norm.ppf([a[j], kj / (R + 1), (kj + 1) / (R + 1)])
            out[j] = t[kj - 1] + (z - z_lo) / (z_hi - z_lo) * (t[kj] - t[kj - 1])
    return out


def percentile_ci(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval: the (1 - level)/2 and (1 + level)/2 points of the draws (:func:`norm_inter`).

    Validated against: ``parameterEstimates(fit, boot.ci.type = "perc")`` (lavaan 0.6.14).
    """
    lo, hi = norm_inter(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bias_correction(draws: np.ndarray, estimate: float) -> float:
    """z0 = Phi^-1(share of the finite draws below the full-sample estimate) (Efron 1981).

    Infinite when every draw lies on one side of the estimate; NaN without draws.
    """
    t = np.asarray(draws, float)
    t = t[np.isfinite(t)]
    if not len(t):
        return float("nan")
    return float(stats.norm.ppf(np.sum(t < estimate) / len(t)))


def bc_ci(draws: np.ndarray, estimate: float, level: float = 0.95) -> tuple[float, float]:
    """Bias-corrected percentile interval (no acceleration), as lavaan's ``bca.simple`` and AMOS.

    Bounds: the Phi(2 z0 + z_a) points of the draws (:func:`norm_inter`), z_a = Phi^-1(a) for
    a = (1 -/+ level)/2, z0 = :func:`bias_correction`. Where every draw lies on one side of the
    estimate (z0 infinite) or all draws are equal the interval is not defined: NaN (lavaan
    would return the extreme draw, or the estimate, as both bounds).

    Validated against: ``parameterEstimates(fit, boot.ci.type = "bca.simple")`` (lavaan 0.6.14).
    """
    t = np.asarray(draws, float)
    t = t[np.isfinite(t)]
    z0 = bias_correction(t, estimate)
    if not np.isfinite(z0) or len(t) < 2 or np.ptp(t) == 0:
        return float("nan"), float("nan")
    za = stats.norm.ppf([(1 - level) / 2, (1 + level) / 2])
    lo, hi = norm_inter(t, stats.norm.cdf(2 * z0 + za))
    return float(lo), float(hi)


def minimum_resamples(ci: str, level: float = 0.95) -> int:
    """The fewest fitted resamples that may judge a hypothesis by a bootstrap interval.

    Percentile: enough for about 25 draws beyond each bound, R = ceil(25 / a) - 1 with
    a = (1 - level)/2: 999 at 95%, Davison & Hinkley's (1997, sec. 5.2.3) recommendation for
    95% percentile intervals (R + 1 a multiple of 1/a, so that the bound is an order statistic).
    BC also estimates z0 from the same draws and moves the bounds further into the tail:
    at least 1000 and one more than the percentile minimum (Efron & Tibshirani 1993, ch. 14
    and 19: B >= 1000 for bias-corrected intervals).
    """
    if ci not in ("percentile", "bc"):
        raise SemUpgradeError(f"--ci: '{ci}' is not 'percentile' or 'bc'")
    base = math.ceil(round(_TAIL_DRAWS / ((1 - level) / 2), 9)) - 1
    return base if ci == "percentile" else max(1000, base + 1)


def mediation_type(indirect_ci: tuple[float, float], direct_ci: tuple[float, float],
                   indirect: float, direct: float) -> tuple[str, str]:
    """Zhao, Lynch & Chen's (2010) type of a mediation from the intervals of a*b and c'.

    An effect is present when its interval excludes 0. Indirect and direct present: partial
    mediation, "complementary" when a*b and c' have the same sign, "competitive" otherwise;
    indirect only: full mediation ("indirect-only"); otherwise no mediation ("direct-only" or
    "no-effect"). Returns (type, Zhao et al.'s name), type one of "full",
    "partial complementary", "partial competitive", "no mediation".
    """
    def present(ci):
        lo, hi = ci
        return bool(lo > 0 or hi < 0)

    ind, dire = present(indirect_ci), present(direct_ci)
    if ind and dire:
        return (("partial complementary", "complementary") if indirect * direct > 0
                else ("partial competitive", "competitive"))
    if ind:
        return "full", "indirect-only"
    return "no mediation", ("direct-only" if dire else "no-effect")


@dataclass
class BootstrapResult:
    """Every draw and the summary of a bootstrap run.

    ``draws``: DataFrame, one row per resample, one column per free parameter
    (``lhs op rhs``) and per named effect (``indirect:<name>``, ``total:<X>-><Y>`` and their
    ``std_`` versions); failed resamples are NaN rows. ``effects``: list of dicts with
    ``name, kind, chain, estimate, std_estimate, boot_se, perc_lower, perc_upper, bc_lower,
    bc_upper`` (and ``std_`` intervals). ``iterations``: optimiser iterations spent on each
    resample (batch and second chance). ``unstable``: more than ``max_failure`` of the
    resamples failed.
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
    max_failure: float = DEFAULT_MAX_FAILURE
    iterations: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    effort_limit: int = 0

    @property
    def unstable(self) -> bool:
        return self.n_failed > self.max_failure * self.n_requested

    def summary(self, ci: str = "percentile") -> dict:
        """The counts, seed and interval settings reported beside the intervals."""
        return {"n_requested": self.n_requested, "n_ok": self.n_ok, "n_failed": self.n_failed,
                "n_inadmissible": self.n_inadmissible, "seed": self.seed, "ci_level": self.ci_level,
                "interval_for_hypotheses": ci, "failure_threshold": self.max_failure,
                "unstable": bool(self.unstable), "minimum_resamples": minimum_resamples(ci, self.ci_level),
                "effort_limit_iterations": int(self.effort_limit)}

    def untested_reason(self, ci: str) -> str:
        """Why the bootstrap cannot judge hypotheses with the ``ci`` interval, or ''."""
        need = minimum_resamples(ci, self.ci_level)
        label = f"{self.ci_level:.0%} {'percentile' if ci == 'percentile' else 'BC'} interval"
        if self.n_requested < need:
            return (f"not tested: {self.n_requested} resamples requested ({self.n_ok} fitted); "
                    f"the {label} needs at least {need}")
        if self.unstable:
            return f"not tested: the bootstrap is unstable ({self.n_failed} of {self.n_requested} resamples failed)"
        if self.n_ok < need:
            return f"not tested: only {self.n_ok} of {self.n_requested} resamples fitted; the {label} needs at least {need}"
        return ""


def indirect_results(boot: BootstrapResult, fit: Fit, chains: dict[str, tuple], ci: str):
    """Hypothesis rows, verdict gates and mediation types of the bootstrapped indirect effects.

    Returns (rows, reasons, extra): ``rows[id]`` the bootstrap row that
    ``structural.hypothesis_table`` judges (interval of the ``ci`` type: "percentile" or
    "bc"); ``reasons[id]`` a "not tested: ..." reason that overrides the verdict ('' when the
    interval may judge); ``extra[id]`` the ``chain``, ``interval_note`` and, with the direct
    path X -> Y in the model, ``mediation_type`` and ``mediation_zhao`` (:func:`mediation_type`
    from the ``ci`` intervals of the indirect and the direct effect), else None.
    """
    if ci not in ("percentile", "bc"):
        raise SemUpgradeError(f"--ci: '{ci}' is not 'percentile' or 'bc'")
    key = "perc" if ci == "percentile" else "bc"
    by_name = {e["name"]: e for e in boot.effects if e["kind"] == "indirect"}
    gate = boot.untested_reason(ci)
    rows, reasons, extra = {}, {}, {}
    for hid, chain in chains.items():
        e = by_name[hid]
        lo, hi = e[f"{key}_lower"], e[f"{key}_upper"]
        rows[hid] = {"estimate": e["estimate"], "std_estimate": e["std_estimate"], "se": e["boot_se"],
                     "z": np.nan, "pvalue": np.nan, "ci_lower": lo, "ci_upper": hi, "method": f"bootstrap-{ci}"}
        reason = gate
        if not reason and not (np.isfinite(lo) and np.isfinite(hi)):
            reason = ("not tested: the BC interval is not defined (every fitted resample lies on one side "
                      "of the estimate)" if ci == "bc" else "not tested: no bootstrap interval")
        reasons[hid] = reason
        info = {"chain": list(chain), "interval_note": reason.replace("not tested: ", "interval not used: ") if reason else "",
                "mediation_type": None, "mediation_zhao": None}
        try:
            (direct_idx,) = effect_paths(fit, (chain[0], chain[-1]))
        except SemUpgradeError:
            direct_idx = None
        if direct_idx is not None and not reason:
            t = fit.structure.table
            r = t[t["index"] == direct_idx].iloc[0]
            d = boot.draws[f"{r.lhs} {r.op} {r.rhs}"].to_numpy()
            d = d[np.isfinite(d)]
            est = float(fit.theta[direct_idx])
            dci = percentile_ci(d, boot.ci_level) if ci == "percentile" else bc_ci(d, est, boot.ci_level)
            if np.all(np.isfinite(dci)):
                info["mediation_type"], info["mediation_zhao"] = mediation_type((lo, hi), dci, e["estimate"], est)
                info["direct_ci"] = [float(dci[0]), float(dci[1])]
        extra[hid] = info
    return rows, reasons, extra


def effect_paths(fit: Fit, chain) -> list[int]:
    """Parameter indices of the regressions along a chain A -> M -> ... -> B."""
    t = fit.structure.table
    out = []
    for a, b in itertools.pairwise(chain):
        hit = t[(t["op"] == "~") & (t["lhs"] == b) & (t["rhs"] == a) & t["free"]]
        if hit.empty:
            raise SemUpgradeError(f"indirect effect {' -> '.join(chain)}: {a} -> {b} is not a free path of the model")
        out.append(int(hit["index"].iloc[0]))
    return out


def resample_plan(seed, n_boot: int, n: int, batch: int = 100) -> list[tuple[np.random.SeedSequence, int]]:
    """The batches of a bootstrap: (seed sequence, resamples) each, independent of the process count.

    Batches hold at most ``batch`` resamples and at most ~20 million counts (resamples x rows),
    so memory does not grow with the number of resamples.
    """
    if isinstance(seed, np.random.Generator):
        root = np.random.SeedSequence(int(seed.integers(0, 2**63)))
    else:
        root = np.random.SeedSequence(int(seed))
    nb = max(1, min(batch, _COUNT_CELLS // max(n, 1)))
    sizes = [min(nb, n_boot - i) for i in range(0, n_boot, nb)]
    return list(zip(root.spawn(len(sizes)), sizes))


def draw_counts(task: tuple[np.random.SeedSequence, int], n: int) -> np.ndarray:
    """Resampling counts of one batch: (resamples, n), each row N draws of the n rows with replacement."""
    seq, size = task
    rng = np.random.default_rng(seq)
    counts = np.empty((size, n))
    for b in range(size):
        counts[b] = np.bincount(rng.integers(0, n, size=n), minlength=n)
    return counts


def bootstrap(fit: Fit, data: pd.DataFrame, n_boot: int, seed, indirect: dict[str, tuple] | None = None,
              totals: list[tuple[str, str]] | None = None, level: float = 0.95, n_jobs: int | None = None,
              progress: bool | None = None, batch: int = 100, max_failure: float = DEFAULT_MAX_FAILURE,
              mp_context: str | None = None) -> BootstrapResult:
    """Case-resampling bootstrap of a fitted model.

    Parameters
    ----------
    fit : Fit
        The full-sample fit (its rows are ``data``, already cleaned; rejected rows never enter).
    data : DataFrame
        The cleaned rows. A listwise (ML) fit resamples its complete rows only, as lavaan does;
        a FIML fit every row with at least one answer.
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
    progress : bool, optional
        True: a progress bar; False: silent; None (default): a bar on a terminal, else a line
        on stderr every few seconds.
    max_failure : float
        Share of failed resamples above which the bootstrap is unstable (default 0.05).
    mp_context : {"fork", "spawn", "forkserver"}, optional
        Start method of the worker processes (default: fork where the platform has it, else spawn).

    Returns
    -------
    BootstrapResult
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer, np.random.Generator)):
        raise SemUpgradeError(f"--seed: must be an integer, got {seed!r}")
    if not isinstance(seed, np.random.Generator) and seed < 0:
        raise SemUpgradeError(f"--seed: must be a whole number >= 0, got {seed}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise SemUpgradeError(f"--bootstrap: the number of resamples must be positive, got {n_boot!r}")
    if not 0 < level < 1:
        raise SemUpgradeError(f"--ci-level: must be between 0 and 1, got {level}")
    if isinstance(max_failure, bool) or not isinstance(max_failure, (int, float)) or not 0 <= max_failure <= 1:
        raise SemUpgradeError(f"--bootstrap-max-failure: must be a share between 0 and 1, got {max_failure!r}")
    st = fit.structure
    x = np.asarray(data[st.observed], float)
    if fit.method == "fiml":
        x = x[~np.isnan(x).all(axis=1)]
    else:  # a listwise fit saw only complete rows: a row with a missing cell never enters a resample
        x = x[~np.isnan(x).any(axis=1)]
        if len(x) != fit.n:
            raise SemUpgradeError(f"the bootstrap was given {len(x)} complete rows but the fit used {fit.n}")
    n = len(x)
    if n <= st.n_free:
        raise SemUpgradeError(f"too few rows to bootstrap: {n} rows for {st.n_free} free parameters "
                              "(a resample needs more rows than parameters)")
    t0 = time.perf_counter()
    indirect = indirect or {}
    totals = totals or []
    chains = {name: (effect_paths(fit, chain), tuple(chain)) for name, chain in indirect.items()}
    job = _Job(fit=fit, x=x, chains=chains, totals=totals)
    tasks = resample_plan(seed, n_boot, n, batch)
    if n_jobs is None:
        n_jobs = min(os.cpu_count() or 1, max(1, n_boot // 200))
    results = _map(job, tasks, n_jobs, progress, mp_context)
    theta = np.vstack([r[0] for r in results])
    extra = np.vstack([r[1] for r in results])
    ok = np.concatenate([r[2] for r in results])
    inadmissible = np.concatenate([r[3] for r in results])
    iterations = np.concatenate([r[4] for r in results])
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
               "std_estimate": float(std_est),
               "boot_se": float(np.std(d, ddof=1)) if len(d) > 1 else float("nan"),
               "std_boot_se": float(np.std(ds, ddof=1)) if len(ds) > 1 else float("nan")}
        row["perc_lower"], row["perc_upper"] = percentile_ci(d, level)
        row["bc_lower"], row["bc_upper"] = bc_ci(d, est, level)
        row["std_perc_lower"], row["std_perc_upper"] = percentile_ci(ds, level)
        row["std_bc_lower"], row["std_bc_upper"] = bc_ci(ds, std_est, level)
        effects.append(row)
    return BootstrapResult(draws=draws, n_requested=n_boot, n_ok=int(ok.sum()), n_failed=int((~ok).sum()),
                           n_inadmissible=int((inadmissible & ok).sum()),
                           seed=int(seed) if not isinstance(seed, np.random.Generator) else -1,
                           ci_level=level, seconds=time.perf_counter() - t0, effects=effects,
                           max_failure=float(max_failure), iterations=iterations, effort_limit=job.effort)


def _start_method(requested: str | None) -> str:
    if requested is not None:
        return requested
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


class _Progress:
    """A tqdm bar on a terminal; elsewhere (progress=None) a line on stderr every few seconds."""

    def __init__(self, total: int, mode: bool | None):
        from tqdm import tqdm

        tty = sys.stderr.isatty()
        self.total, self.done, self.failed = total, 0, 0
        self.bar = tqdm(total=total, desc="bootstrap", unit="resample", mininterval=0.5, delay=1.0,
                        disable=not (mode is True or (mode is None and tty)))
        self.log = mode is None and not tty
        self.t0 = self.last = time.monotonic()

    def update(self, n: int, failed: int):
        self.done += n
        self.failed += failed
        self.bar.update(n)
        now = time.monotonic()
        if self.log and now - self.last >= _LOG_EVERY and self.done < self.total:
            self.last = now
            elapsed = now - self.t0
            left = elapsed / self.done * (self.total - self.done)
            print(f"bootstrap: {self.done} of {self.total} resamples ({self.failed} failed), "
                  f"{elapsed:.0f} s elapsed, about {left:.0f} s left", file=sys.stderr, flush=True)

    def close(self):
        self.bar.close()


def _map(job, tasks, n_jobs, progress, mp_context):
    report = _Progress(sum(t[1] for t in tasks), progress)
    out = []
    if n_jobs > 1 and len(tasks) > 1:
        ctx = multiprocessing.get_context(_start_method(mp_context))
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=_init, initargs=(job,)) as ex:
            for res in ex.map(_run_chunk, tasks):
                out.append(res)
                report.update(len(res[2]), int((~res[2]).sum()))
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # the same BLAS path as in the workers: identical bits
            for task in tasks:
                res = job.solve(task)
                out.append(res)
                report.update(len(res[2]), int((~res[2]).sum()))
    report.close()
    return out


_WORKER_JOB = None


def _init(job):
    global _WORKER_JOB  # a worker process's own copy of the job (set once per process)
    _WORKER_JOB = job
    from threadpoolctl import threadpool_limits

    # one BLAS thread per worker: the workers already use every core
    threadpool_limits(1)


def _run_chunk(task):
    return _WORKER_JOB.solve(task)


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
        # second-chance budget of one resample: a few full-sample fits
        self.effort = _EFFORT * max(int(fit.iterations or 0), 20)
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
            # centred at the full-sample mean: resample moments from counts without cancellation
            self.xc = x - x.mean(axis=0)
            self.tri = np.tril_indices(x.shape[1])

    # ---------------- named effects
    def extra_meta(self):
        meta = []
        for name, (_, chain) in self.chains.items():
            meta += [(f"indirect:{name}", "indirect", chain), (f"std_indirect:{name}", "indirect", chain)]
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
        for idx, _ in self.chains.values():
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

    # ---------------- solving a batch of resamples
    def covariances(self, counts: np.ndarray) -> np.ndarray:
        """Each resample's covariance matrix from its counts w (rows drawn w_i times):
        S = sum_i w_i (x_i - m)(x_i - m)' / (N - ddof), m = sum_i w_i x_i / N, formed in
        blocks of rows as w' [x_i x_i'] (lower triangles), never from copied rows."""
        n, p = self.xc.shape
        i, j = self.tri
        mean = counts @ self.xc / n
        cross = np.zeros((len(counts), len(i)))
        for s in range(0, n, _ROW_CHUNK):
            block = self.xc[s:s + _ROW_CHUNK]
            cross += counts[:, s:s + _ROW_CHUNK] @ (block[:, i] * block[:, j])
        low = (cross - n * mean[:, i] * mean[:, j]) / (n - self.ddof)
        S = np.empty((len(counts), p, p))
        S[:, i, j] = low
        S[:, j, i] = low
        return S

    def solve(self, task):
        """Fit every resample of a batch: (theta, extras, ok, inadmissible, iterations)."""
        counts = draw_counts(task, len(self.x))
        if self.fit.method == "fiml":
            return self._solve_fiml(counts)
        st = self.st
        S_all = self.covariances(counts)
        sign, logdet_all = np.linalg.slogdet(S_all)
        nb = len(counts)
        theta = np.full((nb, st.n_free), np.nan)
        ok = np.zeros(nb, bool)
        iterations = np.zeros(nb, int)
        good = np.where(sign > 0)[0]  # a singular S cannot be fitted: the resample fails
        if len(good):
            S, logdet_s = S_all[good], logdet_all[good]

            def evaluate(th, sel):
                return ml_objective(st, th, S[sel], logdet_s[sel])

            def information(th, sel):
                return ml_information(st, th)

            # every resample starts at the full-sample estimates, where the expected information
            # (it does not depend on S) is the same for all
            th, _, conv, iters = quasi_newton(evaluate, np.tile(self.start, (len(good), 1)), self.information,
                                              information=information, n_fisher=_FISHER_STEPS)
            theta[good[conv]], ok[good[conv]] = th[conv], True
            iterations[good] = iters
        # Resamples the batch did not settle: the full optimiser, one by one (estimates only),
        # within the effort limit.
        for b in np.where(~ok & (sign > 0))[0]:
            try:
                est, _, converged, iters, _ = ml_minimise(st, S_all[b], logdet_all[b], self.fit.theta.copy(),
                                                          max_iter=self.effort)
            except SemUpgradeError:
                continue
            iterations[b] += iters
            if converged:
                theta[b], ok[b] = est, True
        return self._finish(theta, ok, iterations)

    def _solve_fiml(self, counts):
        st, q = self.st, self.st.n_free

        def evaluate(par, sel):
            return fiml_objective(st, self.rows, par, counts[sel])

        nb = len(counts)
        par, _, conv, iters = quasi_newton(evaluate, np.tile(self.start, (nb, 1)), self.hessian)
        theta = np.where(conv[:, None], par[:, :q], np.nan)
        ok = conv.copy()
        iterations = iters.astype(int)
        # Resamples the batch did not settle: Newton restarts on their own observed information,
        # from where the batch stopped, within the effort limit.
        for b in np.where(~ok & np.isfinite(par).all(axis=1))[0]:
            rows = row_layout(np.repeat(self.x, counts[b].astype(int), axis=0))

            def evaluate_one(z, sel, rows=rows):
                return fiml_objective(st, rows, z)

            point, spent = par[b][None], 0
            while spent < self.effort:
                hess = numerical_hessian(lambda z, rows=rows: fiml_objective(st, rows, z)[1], point[0])
                if not np.isfinite(hess).all():
                    break
                point, f, conv_b, it = quasi_newton(evaluate_one, point, positive_definite(hess),
                                                    max_iter=min(50, self.effort - spent))
                spent += max(int(it[0]), 1)
                if conv_b[0]:
                    theta[b], ok[b] = point[0, :q], True
                    break
                if not np.isfinite(f[0]):
                    break
            iterations[b] += spent
        return self._finish(theta, ok, iterations)

    def _finish(self, theta, ok, iterations):
        extras = np.full((len(theta), len(self.extra_names())), np.nan)
        inadmissible = np.zeros(len(theta), bool)
        if ok.any():
            extras[ok] = self.extras(theta[ok])
            imp = implied(self.st, theta[ok])
            P, T = imp.P, imp.T
            neg = (np.diagonal(P, axis1=1, axis2=2) < 0).any(axis=1) | (np.diagonal(T, axis1=1, axis2=2) < 0).any(axis=1)
            inadmissible[ok] = neg
        return theta, extras, ok, inadmissible, iterations
