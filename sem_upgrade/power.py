"""Power: Monte Carlo power of every hypothesis over a grid of sample sizes; analytic RMSEA power.

Monte Carlo power (Muthen & Muthen 2002): for every N of a grid, ``replications`` surveys
of N respondents are drawn from the questionnaire's population model (as ``simulate``
draws them), the analysis model is fitted to each, and each hypothesis is judged as the
analysis would judge it:

* a path: the ML z-test, supported when p < alpha with the expected sign;
* an indirect effect: the Monte Carlo confidence interval (Preacher & Selig 2012), the
  product of the paths over 20,000 draws from N(theta_hat, V_hat) of the paths along the
  chain, supported when the (1 - alpha) percentile interval excludes 0 on the expected side;
  or (``indirect="bootstrap"``) the percentile interval of a case bootstrap of the replication.

The rate is the power where the true effect is non-zero, and the type-I error rate (the
test rejects, whatever the sign) where it is zero. Rates count the replications whose fit
converged with standard errors; inadmissible solutions (a negative variance) are counted and
kept, as the bootstrap does. The Monte Carlo interval of a rate is Clopper-Pearson's. With
missing cells, ``estimator="ml"`` drops incomplete rows (listwise) and ``"fiml"`` fits
full-information ML to each replication (the optimiser of ``engine.fit.fit_fiml``, observed
information standard errors), one replication at a time.

Truth. ``truth`` is the standardized effect stated by the population model; ``mean_estimate``
is the mean standardized estimate and ``bias`` their difference. Coverage is the share of
95% intervals (Wald for paths, Monte Carlo or bootstrap for indirect effects) that contain the
population value of the unstandardized effect on the analysis scale: the estimate of the
analysis model fitted to the population covariance matrix of the items as they are drawn
(Likert categories of normal latent responses; the categorized covariances are exact,
by bivariate normal probabilities).

Engine. All replications of a task start at that population solution, where the expected
information is the same for all, and are solved together by the batched quasi-Newton solver of
the bootstrap (``engine.optimize.quasi_newton``: one Fisher step, then BFGS, to
max |g| < 1e-9); a replication the batch does not settle is refitted alone by the full
optimiser. Standard errors are the expected information's (lavaan's default, N convention).

Determinism. Replication r at sample size N draws from its own generator,
``SeedSequence(seed, spawn_key=(N, r))`` (the (N, r)-th child that ``SeedSequence(seed).spawn``
gives), and tasks hold fixed blocks of replications, so the numbers are identical bit for bit
whatever the number of workers or where a task ran, and a sample size's numbers do not depend
on the rest of the grid.

Analytic RMSEA power (MacCallum, Browne & Sugawara 1996): with ncp = (N - 1) df eps^2, the
test of close fit (H0 eps = .05 against eps = .08) rejects above the (1 - alpha) quantile of
chi2(df, ncp0); the test of not-close fit (H0 eps = .05 against eps = .01) rejects below the
alpha quantile.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import integrate, stats

from .errors import SemUpgradeError
from .engine.derivatives import numerical_hessian
from .engine.implied import implied
from .engine.linalg import positive_definite
from .engine.mvnorm import ml_information, ml_objective
from .engine.mvnorm_missing import fiml_objective, row_layout
from .engine.optimize import fiml_minimise, ml_minimise, quasi_newton
from .engine.partable import ModelStructure, build_structure

__all__ = ["power", "monte_carlo_power", "PowerResult", "Design", "questionnaire_design", "normal_design",
           "rmsea_power", "rmsea_sample_size", "parse_grid"]

_MC_DRAWS = 20000  # Monte Carlo CI draws per replication (Preacher & Selig 2012 recommend 20,000)
_CHUNK = 100  # replications per task: the unit of work, of checkpointing and of the batched solve
_COVERAGE_LEVEL = 0.95
_CONNECT_TIMEOUT = 10.0  # seconds to reach a --scheduler before giving up
_TASK_DIR = "power_tasks"


# ---------------------------------------------------------------- analytic RMSEA power
def rmsea_power(rmsea0: float, rmsea_a: float, df: int, n, alpha: float = 0.05) -> np.ndarray:
    """Power of the RMSEA test of H0 eps = rmsea0 against eps = rmsea_a (MacCallum et al. 1996).

    ncp_k = (n - 1) df eps_k^2. If rmsea0 < rmsea_a (close fit): c = chi2_{1-alpha}(df, ncp0) and
    power = P(chi2(df, ncp_a) > c); otherwise (not-close fit): c = chi2_alpha(df, ncp0) and
    power = P(chi2(df, ncp_a) < c).

    Validated against: ``semTools::findRMSEApower(rmsea0, rmseaA, df, n, alpha)`` (semTools 0.5-6).
    """
    n = np.asarray(n, float)
    ncp0 = (n - 1) * df * rmsea0 ** 2
    ncpa = (n - 1) * df * rmsea_a ** 2
    if rmsea0 < rmsea_a:
        crit = stats.ncx2.isf(alpha, df, ncp0)
        return stats.ncx2.sf(crit, df, ncpa)
    crit = stats.ncx2.ppf(alpha, df, ncp0)
    return stats.ncx2.cdf(crit, df, ncpa)


def rmsea_sample_size(rmsea0: float, rmsea_a: float, df: int, target: float = 0.80, alpha: float = 0.05) -> int:
    """The smallest N (from 5) whose RMSEA power exceeds ``target``, as semTools searches it.

    Validated against: ``semTools::findRMSEAsamplesize(rmsea0, rmseaA, df, power, alpha)``.
    """
    lo = 5
    while True:
        n = np.arange(lo, lo + 500)
        hit = np.nonzero(rmsea_power(rmsea0, rmsea_a, df, n, alpha) > target)[0]
        if len(hit):
            return int(n[hit[0]])
        lo += 500
        if lo > 10_000_000:
            raise SemUpgradeError(f"RMSEA power: no N up to 10,000,000 reaches power {target} for df = {df}")


def _rmsea_summary(df: int, grid, target: float, alpha: float) -> dict:
    if df < 1:
        return {"df": int(df), "by_n": [], "n_close": None, "n_not_close": None}
    close = rmsea_power(0.05, 0.08, df, grid, alpha)
    not_close = rmsea_power(0.05, 0.01, df, grid, alpha)
    return {"df": int(df),
            "by_n": [{"n": int(n), "power_close": float(a), "power_not_close": float(b)}
                     for n, a, b in zip(grid, close, not_close)],
            "n_close": rmsea_sample_size(0.05, 0.08, df, target, alpha),
            "n_not_close": rmsea_sample_size(0.05, 0.01, df, target, alpha)}


# ---------------------------------------------------------------- the design: what every task needs
@dataclass(frozen=True)
class _Hyp:
    id: str
    effect: str
    kind: str  # "path" or "indirect"
    sign: int
    params: tuple[int, ...]  # free-parameter indices of the regressions along the chain
    truth: float  # standardized population effect
    truth_raw: float  # population value on the analysis scale (coverage)


class _LikertDrawer:
    """Draws Likert items from a questionnaire's population model (``simulate.draw_items``)."""

    def __init__(self, pop, arrays, missing_rate):
        self.pop, self.arrays, self.missing_rate = pop, arrays, missing_rate

    def __call__(self, n, rng):
        from .simulate import draw_items

        return draw_items(self.pop, self.arrays, n, rng, self.missing_rate)


class _NormalDrawer:
    """Draws multivariate normal observed variables with covariance ``sigma`` (mean 0)."""

    def __init__(self, sigma, missing_rate=0.0):
        self.sigma, self.missing_rate = np.asarray(sigma, float), missing_rate

    def __call__(self, n, rng):
        x = rng.multivariate_normal(np.zeros(len(self.sigma)), self.sigma, size=n, method="cholesky")
        if self.missing_rate > 0:
            x[rng.random(x.shape) < self.missing_rate] = np.nan
        return x


@dataclass
class Design:
    """Everything a replication needs: model layout, population, drawer, hypotheses and options.

    Build it with :func:`questionnaire_design` or :func:`normal_design`.
    """

    structure: ModelStructure
    draw: object  # callable (n, rng) -> (n, p) array, NaN where missing
    theta_pop: np.ndarray  # the analysis model fitted to the population covariance matrix
    hypotheses: list[_Hyp]
    mean_pop: np.ndarray | None = None  # population item means (the FIML start)
    alpha: float = 0.05
    indirect: str = "montecarlo"
    bootstrap: int = 1000
    missing_rate: float = 0.0
    estimator: str = "ml"
    label: str = ""
    fingerprint: str = ""  # identifies the population and model (checkpoints of --resume)

    @property
    def df(self) -> int:
        p = len(self.structure.observed)
        return p * (p + 1) // 2 - self.structure.n_free


def _path_index(st: ModelStructure, a: str, b: str, where: str) -> int:
    t = st.table
    hit = t[(t["op"] == "~") & (t["lhs"] == b) & (t["rhs"] == a) & t["free"]]
    if hit.empty:
        raise SemUpgradeError(f"{where}: {a} -> {b} is not a free path of the model")
    return int(hit["index"].iloc[0])


def _std_paths(st: ModelStructure, theta: np.ndarray, params) -> np.ndarray:
    """Standardized regressions (std.all) theta_k sd(c) / sd(r) for a batch of parameter vectors."""
    phi = implied(st, theta).phi
    sd = np.sqrt(np.clip(np.diagonal(phi, axis1=1, axis2=2), 1e-300, None))
    t = st.table.set_index("index")
    out = np.empty((len(theta), len(params)))
    for j, k in enumerate(params):
        r, c = int(t.loc[k, "row"]), int(t.loc[k, "col"])
        out[:, j] = theta[:, k] * sd[:, c] / sd[:, r]
    return out


def _canonical(st: ModelStructure) -> ModelStructure:
    """The same model with its variables (by name) and free parameters (by op, lhs, rhs) in a
    fixed order.

    semopy orders variables and parameters through hash-ordered sets, so two processes can lay
    out the matrices and the parameter vector differently; the arithmetic then differs in the
    last bits. A fixed order gives every process, and a resumed run, the same bits.
    """
    obs, inner = sorted(st.observed), sorted(st.inner)
    po = np.array([obs.index(v) for v in st.observed])
    pi = np.array([inner.index(v) for v in st.inner])
    perm = {0: (pi, pi), 1: (po, pi), 2: (pi, pi), 3: (po, po)}  # B, Lambda, Psi, Theta (MatrixId)
    table = st.table.copy()
    mids = table["matrix"].to_numpy(int)
    r, c = table["row"].to_numpy(int).copy(), table["col"].to_numpy(int).copy()
    for mid, (rows, cols) in perm.items():
        sel = mids == mid
        r[sel], c[sel] = rows[r[sel]], cols[c[sel]]
    sym = (mids == 2) | (mids == 3)  # a covariance sits in the lower triangle of Psi or Theta
    table["row"], table["col"] = np.where(sym, np.maximum(r, c), r), np.where(sym, np.minimum(r, c), c)
    table = table.sort_values(["op", "lhs", "rhs"], kind="stable").reset_index(drop=True)
    free = table["free"].to_numpy(bool)
    number: dict[int, int] = {}
    for k in table.loc[free, "index"]:
        number.setdefault(int(k), len(number))
    table.loc[free, "index"] = [number[int(k)] for k in table.loc[free, "index"]]
    return ModelStructure.from_table(st.syntax, obs, inner, [v for v in inner if v in st.latent], table)


def _population_fit(st: ModelStructure, sigma: np.ndarray, where: str) -> np.ndarray:
    """The analysis model fitted to the population covariance matrix: every replication's start.

    Identical bits in every process: semopy's starting values vary in their last bits from one
    process to another (its parameters are gathered through hash-ordered sets), so they are
    rounded to 6 decimals, and the fit runs on one BLAS thread.
    """
    from threadpoolctl import threadpool_limits

    sign, logdet = np.linalg.slogdet(sigma)
    if sign <= 0:
        raise SemUpgradeError(f"{where}: the population covariance matrix of the items is not positive definite")
    with threadpool_limits(1):
        theta, _, converged, _, _ = ml_minimise(st, sigma, logdet, np.round(st.start, 6), 1000)
    if not converged:
        raise SemUpgradeError(f"{where}: the analysis model could not be fitted to the population covariance matrix")
    return theta


def _bvn_upper(h: np.ndarray, k: np.ndarray, rho: float) -> np.ndarray:
    """P(Y > h, Z > k) for standard bivariate normal (Y, Z) with correlation rho, elementwise.

    Plackett's (1954) formula, Phi2(-h, -k; rho) = Phi(-h) Phi(-k)
    + 1/(2 pi) int_0^asin(rho) exp(-(h^2 + k^2 - 2 h k sin t) / (2 cos^2 t)) dt, integrated adaptively.
    """
    base = stats.norm.sf(h) * stats.norm.sf(k)
    if rho == 0:
        return base

    def f(t):
        c2 = np.cos(t) ** 2
        return np.exp(-(h * h + k * k - 2 * h * k * np.sin(t)) / (2 * c2))

    val, _ = integrate.quad_vec(f, 0.0, float(np.arcsin(rho)), epsabs=1e-14, epsrel=1e-12)
    return base + val / (2 * np.pi)


def _likert_covariance(pop, arrays) -> np.ndarray:
    """Exact covariance matrix of the drawn Likert items.

    x = min + sum_i 1(y* > tau_i), so cov(x_a, x_b) = sum_ij [P(y*_a > tau_i, y*_b > tau_j)
    - P(y*_a > tau_i) P(y*_b > tau_j)] with corr(y*_a, y*_b) = lambda_a lambda_b Phi_cd.
    """
    lam, construct, _ = arrays
    tau = pop.thresholds
    p = len(lam)
    hh, kk = np.meshgrid(tau, tau, indexing="ij")
    sf = stats.norm.sf(tau)
    var = float((stats.norm.sf(np.maximum(hh, kk)) - np.outer(sf, sf)).sum())
    out = np.eye(p) * var
    for a in range(p):
        for b in range(a):
            rho = lam[a] * lam[b] * pop.phi[construct[a], construct[b]]
            out[a, b] = out[b, a] = float((_bvn_upper(hh, kk, rho) - np.outer(sf, sf)).sum())
    return out


def _hypotheses(st, hyps, truth_std, theta_pop, where) -> list[_Hyp]:
    out = []
    for h in hyps:
        params = tuple(_path_index(st, a, b, f"{where}: hypothesis {h.id}") for a, b in zip(h.chain, h.chain[1:]))
        truth = truth_std(h)
        out.append(_Hyp(id=h.id, effect=" -> ".join(h.chain), kind=h.kind, sign=int(h.sign), params=params,
                        truth=float(truth), truth_raw=float(np.prod(theta_pop[list(params)]))))
    return out


def _check_options(alpha, indirect, bootstrap, missing_rate, estimator):
    if not 0 < alpha < 1:
        raise SemUpgradeError(f"--alpha: must be between 0 and 1, got {alpha}")
    if indirect not in ("montecarlo", "bootstrap"):
        raise SemUpgradeError(f"--indirect: '{indirect}' is not 'montecarlo' or 'bootstrap'")
    if indirect == "bootstrap" and (isinstance(bootstrap, bool) or int(bootstrap) < 2):
        raise SemUpgradeError(f"--bootstrap: a bootstrap inside each replication needs at least 2 resamples, got {bootstrap}")
    if not 0 <= missing_rate < 1:
        raise SemUpgradeError(f"--missing-rate: must be in [0, 1), got {missing_rate}")
    if estimator not in ("ml", "fiml"):
        raise SemUpgradeError(f"--estimator: '{estimator}' is not available for power studies (ml: maximum "
                              "likelihood, incomplete rows dropped listwise; fiml: full-information ML)")


def questionnaire_design(q, alpha: float = 0.05, indirect: str = "montecarlo", bootstrap: int = 1000,
                         missing_rate: float = 0.0, estimator: str = "ml") -> Design:
    """The design of a questionnaire: its population section, its model and its hypotheses.

    Raises SemUpgradeError when the questionnaire has no population section, no structural
    model or no hypotheses.
    """
    from .simulate import item_arrays, population_model

    _check_options(alpha, indirect, bootstrap, missing_rate, estimator)
    pop = population_model(q)  # names the file when the population section is missing
    if not q.hypotheses:
        raise SemUpgradeError(f"{q.source}: hypotheses: the questionnaire states no hypotheses to plan for")
    arrays = item_arrays(q, pop)
    sigma = _likert_covariance(pop, arrays)
    # semopy's starting values come from a fixed large draw (seed 0): they only start the
    # population fit, whose optimum does not depend on them
    start_data = pd.DataFrame(_LikertDrawer(pop, arrays, 0.0)(2000, np.random.default_rng(0)), columns=q.items)
    st = _canonical(build_structure(q.structural_syntax(), start_data))
    theta_pop = _population_fit(st, sigma[np.ix_(*[[q.items.index(v) for v in st.observed]] * 2)],
                                f"{q.source}: population")
    order = [q.items.index(v) for v in st.observed]
    draw = _LikertDrawer(pop, arrays, missing_rate)
    if order != list(range(len(q.items))):
        draw = _Reordered(draw, order)
    hyps = _hypotheses(st, q.hypotheses, lambda h: pop.indirect(h.chain), theta_pop, q.source)
    fingerprint = _hash([q.structural_syntax(), sorted(pop.loadings.items()), sorted(map(str, pop.paths.items())),
                         pop.phi.tolist(), pop.thresholds.tolist(), [(h.id, h.kind, h.chain, h.sign) for h in q.hypotheses]])
    # E x = min + sum_i P(y* > tau_i)
    mean_pop = np.full(len(order), arrays[2] + float(stats.norm.sf(pop.thresholds).sum()))
    return Design(structure=st, draw=draw, theta_pop=theta_pop, hypotheses=hyps, alpha=alpha, indirect=indirect,
                  bootstrap=int(bootstrap), missing_rate=missing_rate, estimator=estimator, label=q.name,
                  fingerprint=fingerprint, mean_pop=mean_pop)


class _Reordered:
    """A drawer whose columns are put in the model's order of observed variables."""

    def __init__(self, draw, order):
        self.draw, self.order = draw, order

    def __call__(self, n, rng):
        return self.draw(n, rng)[:, self.order]


def normal_design(syntax: str, sigma, names: list[str], hypotheses, alpha: float = 0.05,
                  indirect: str = "montecarlo", bootstrap: int = 1000, missing_rate: float = 0.0,
                  estimator: str = "ml") -> Design:
    """A design with multivariate normal observed variables of population covariance ``sigma``.

    ``hypotheses``: objects with ``id, kind ("path" or "indirect"), chain, sign`` (such as
    :class:`sem_upgrade.questionnaire.Hypothesis`). The truth of each is the standardized effect
    of the model fitted to ``sigma`` (the generating values when the model is correct).
    """
    _check_options(alpha, indirect, bootstrap, missing_rate, estimator)
    sigma = np.asarray(sigma, float)
    rng = np.random.default_rng(0)
    start_data = pd.DataFrame(rng.multivariate_normal(np.zeros(len(names)), sigma, size=2000), columns=names)
    st = _canonical(build_structure(syntax, start_data))
    order = [names.index(v) for v in st.observed]
    sub = sigma[np.ix_(order, order)]
    theta_pop = _population_fit(st, sub, "population")
    std = {h.id: float(np.prod(_std_paths(st, theta_pop[None], [
        _path_index(st, a, b, f"hypothesis {h.id}") for a, b in zip(h.chain, h.chain[1:])])[0])) for h in hypotheses}
    # a zero effect fitted to sigma comes out as round-off (1e-19): it is zero
    hyps = _hypotheses(st, hypotheses, lambda h: std[h.id] if abs(std[h.id]) > 1e-9 else 0.0, theta_pop, "model")
    fingerprint = _hash([syntax, sub.tolist(), list(st.observed), [(h.id, h.kind, tuple(h.chain), h.sign) for h in hypotheses]])
    return Design(structure=st, draw=_NormalDrawer(sub, missing_rate), theta_pop=theta_pop, hypotheses=hyps,
                  alpha=alpha, indirect=indirect, bootstrap=int(bootstrap), missing_rate=missing_rate,
                  estimator=estimator, label="normal", fingerprint=fingerprint, mean_pop=np.zeros(len(sub)))


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, default=str, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- one task: a block of replications
def _replication_seed(seed: int, n: int, r: int) -> np.random.SeedSequence:
    # the (n, r)-th grandchild of SeedSequence(seed).spawn: SeedSequence(seed).spawn(n + 1)[n].spawn(r + 1)[r]
    return np.random.SeedSequence(seed, spawn_key=(n, r))


def run_task(design: Design, seed: int, n: int, reps: range) -> dict:
    """Fit replications ``reps`` at sample size ``n``; one BLAS thread (identical bits everywhere).

    Returns a dict of arrays, one row per replication: ``ok`` (converged with standard errors),
    ``inadmissible``, and per hypothesis (columns) ``estimate`` (unstandardized),
    ``std_estimate``, ``supported``, ``rejected`` (the test rejects 0, whatever the sign) and
    ``covered`` (the 95% interval contains the population value).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _solve_block(design, seed, n, reps)


def _invert_batch(info: np.ndarray):
    """Inverses of a stack of information matrices; NaN and False where one is singular (no SEs, as fit_ml)."""
    w = np.linalg.eigvalsh(info)
    invertible = w[:, 0] > 1e-10 * np.maximum(w[:, -1], 1.0)
    v = np.full_like(info, np.nan)
    if invertible.any():
        v[invertible] = np.linalg.inv(info[invertible])
    return v, invertible


def _fit_ml_batch(design: Design, data: list) -> tuple:
    """ML fits of complete-data replications, all at once from the population solution.

    Returns theta (nb, q), ok (converged with standard errors) and the expected-information
    covariance matrices (N convention).
    """
    st = design.structure
    q, nb, p = st.n_free, len(data), len(st.observed)
    rows = np.array([len(x) for x in data])
    S = np.zeros((nb, p, p))
    for b, x in enumerate(data):
        if len(x) > p:
            xc = x - x.mean(axis=0)
            S[b] = xc.T @ xc / len(x)
    sign, logdet_s = np.linalg.slogdet(S)
    theta = np.full((nb, q), np.nan)
    ok = np.zeros(nb, bool)
    good = np.nonzero(sign > 0)[0]  # a singular S (too few complete rows) cannot be fitted
    if len(good):
        Sg, ld = S[good], logdet_s[good]

        def evaluate(th, sel):
            return ml_objective(st, th, Sg[sel], ld[sel])

        def information(th, sel):
            return ml_information(st, th)

        # every replication starts at the population solution, where the expected information
        # (it does not depend on S) is the same for all
        info0 = ml_information(st, design.theta_pop[None])[0]
        th, _, conv, _ = quasi_newton(evaluate, np.tile(design.theta_pop, (len(good), 1)), info0,
                                             information=information, n_fisher=1)
        theta[good[conv]], ok[good[conv]] = th[conv], True
    for b in np.nonzero(~ok & (sign > 0))[0]:  # not settled by the batch: the full optimiser alone
        try:
            est, _, converged, _, _ = ml_minimise(st, S[b], logdet_s[b], design.theta_pop.copy())
        except SemUpgradeError:
            continue
        if converged:
            theta[b], ok[b] = est, True
    vcov = np.full((nb, q, q), np.nan)
    if ok.any():
        info = 0.5 * rows[ok, None, None] * ml_information(st, theta[ok])
        vcov[ok], invertible = _invert_batch(info)
        ok[np.nonzero(ok)[0][~invertible]] = False
    return theta, ok, vcov


def _fit_fiml_each(design: Design, data: list) -> tuple:
    """Full-information ML fits (lavaan ``missing = "ml"``), one replication at a time.

    The optimiser of ``fit_fiml`` (BFGS on the row-wise likelihood, Newton steps should it
    stall) from the population solution and item means, its first metric the observed
    information there; standard errors from the observed information at the optimum, as
    lavaan's default under ``missing = "ml"``.
    """
    st = design.structure
    q, nb = st.n_free, len(data)
    theta = np.full((nb, q), np.nan)
    ok = np.zeros(nb, bool)
    vcov = np.full((nb, q, q), np.nan)
    start = np.concatenate([design.theta_pop, design.mean_pop])
    for b, x in enumerate(data):
        if len(x) <= len(st.observed):
            continue
        rows = row_layout(x)

        def gradient(par, rows=rows):
            return fiml_objective(st, rows, par)[1]

        hess = numerical_hessian(gradient, start)
        if not np.isfinite(hess).all():
            continue
        par, _, converged, _ = fiml_minimise(st, rows, start, positive_definite(hess))
        if not converged:
            continue
        info = numerical_hessian(gradient, par) * len(x) / 2.0
        v, invertible = _invert_batch(info[None])
        if invertible[0]:
            theta[b], vcov[b], ok[b] = par[:q], v[0][:q, :q], True
    return theta, ok, vcov


def _solve_block(design: Design, seed: int, n: int, reps: range) -> dict:
    st = design.structure
    nh, nb = len(design.hypotheses), len(reps)
    rngs = [np.random.default_rng(_replication_seed(seed, n, r)) for r in reps]
    data = []
    for rng in rngs:
        x = design.draw(n, rng)
        if design.missing_rate > 0:
            if design.estimator == "fiml":
                x = x[~np.isnan(x).all(axis=1)]  # a row with no answer carries no information
            else:
                x = x[~np.isnan(x).any(axis=1)]  # listwise, as lavaan's default for ML
        data.append(x)
    theta, ok, vcov = (_fit_fiml_each if design.estimator == "fiml" else _fit_ml_batch)(design, data)
    inadmissible = np.zeros(nb, bool)
    if ok.any():
        imp = implied(st, theta[ok])
        P, T = imp.P, imp.T
        inadmissible[ok] = ((np.diagonal(P, axis1=1, axis2=2) < 0).any(axis=1)
                            | (np.diagonal(T, axis1=1, axis2=2) < 0).any(axis=1))
    out = {key: np.full((nb, nh), np.nan) for key in ("estimate", "std_estimate")}
    out.update({key: np.zeros((nb, nh), bool) for key in ("supported", "rejected", "covered")})
    out["ok"], out["inadmissible"] = ok, inadmissible & ok
    if not ok.any():
        return out
    all_params = sorted({k for h in design.hypotheses for k in h.params})
    std_all = np.full((nb, len(all_params)), np.nan)
    std_all[ok] = _std_paths(st, theta[ok], all_params)
    col = {k: j for j, k in enumerate(all_params)}
    z_test = stats.norm.isf(design.alpha / 2)
    z_cov = stats.norm.isf((1 - _COVERAGE_LEVEL) / 2)
    indirect = [j for j, h in enumerate(design.hypotheses) if h.kind == "indirect"]
    for j, h in enumerate(design.hypotheses):
        out["estimate"][:, j] = np.prod(theta[:, list(h.params)], axis=1)
        out["std_estimate"][:, j] = np.prod(std_all[:, [col[k] for k in h.params]], axis=1)
        if h.kind == "path":
            k = h.params[0]
            est = theta[:, k]
            with np.errstate(invalid="ignore"):
                se = np.sqrt(vcov[:, k, k])
                z = est / se
            rejected = np.abs(z) > z_test
            out["rejected"][:, j] = rejected & ok
            out["supported"][:, j] = rejected & ((h.sign == 0) | (np.sign(est) == h.sign)) & ok
            out["covered"][:, j] = (np.abs(est - h.truth_raw) <= z_cov * se) & ok
    if indirect:
        hyps = [design.hypotheses[j] for j in indirect]
        for b in np.nonzero(ok)[0]:
            rej, sup, cov = _indirect_tests(design, hyps, theta[b], vcov[b], data[b], rngs[b])
            out["rejected"][b, indirect], out["supported"][b, indirect], out["covered"][b, indirect] = rej, sup, cov
    return out


def _indirect_tests(design: Design, hyps, theta, vcov, x, rng):
    """Rejection, support and 95% coverage of every indirect effect of one replication.

    The products of the paths along each chain are drawn: Monte Carlo, from N(theta_hat, V_hat)
    of the paths involved (Preacher & Selig 2012); bootstrap, by case-resampling refits of the
    replication. The (1 - alpha) percentile interval lies above 0 when fewer than alpha/2 of
    the draws are at or below 0 (below 0 likewise), and a 95% interval contains the population
    value t when between 2.5% and 97.5% of the draws are below t: counts, not sorted quantiles.
    """
    if design.indirect == "montecarlo":
        params = sorted({k for h in hyps for k in h.params})
        row = {k: j for j, k in enumerate(params)}
        chol = np.linalg.cholesky(vcov[np.ix_(params, params)]).astype(np.float32)
        # theta + L z, one row per parameter and one column per draw; single precision halves the
        # cost, and the tests below only compare draws with 0 and with the population value
        z = rng.standard_normal((len(params), _MC_DRAWS), dtype=np.float32)
        draws = theta[params, None].astype(np.float32) + chol @ z
        prods = np.stack([np.prod(draws[[row[k] for k in h.params]], axis=0) for h in hyps])
    else:
        prods = _bootstrap_products(design, hyps, theta, x, rng)
        if prods is None:
            none = np.zeros(len(hyps), bool)
            return none, none, none
    m = prods.shape[1]
    a = design.alpha / 2
    above = np.count_nonzero(prods <= 0, axis=1) < a * m  # the interval lies above 0
    below = np.count_nonzero(prods >= 0, axis=1) < a * m
    sign = np.array([h.sign for h in hyps])
    truth = np.array([h.truth_raw for h in hyps])
    share = np.count_nonzero(prods < truth[:, None], axis=1) / m
    lo = (1 - _COVERAGE_LEVEL) / 2
    supported = np.where(sign > 0, above, np.where(sign < 0, below, above | below))  # sign 0: two-sided
    return above | below, supported, (share >= lo) & (share <= 1 - lo)


def _bootstrap_products(design: Design, hyps, theta, x, rng):
    from types import SimpleNamespace

    from .bootstrap import _Job, resample_plan

    fit = SimpleNamespace(structure=design.structure, theta=theta, method="ml", likelihood="normal", iterations=0)
    job = _Job(fit=fit, x=x, chains={h.id: (list(h.params), ()) for h in hyps}, totals=[])
    ests, oks = [], []
    for task in resample_plan(rng, design.bootstrap, len(x)):  # the resamples bootstrap() draws
        _, extras, ok, _, _ = job.solve(task)
        ests.append(extras[:, 0::2])  # raw products (the std_ columns interleave)
        oks.append(ok)
    ok = np.concatenate(oks)
    if not ok.any():
        return None
    return np.ascontiguousarray(np.vstack(ests)[ok].T)


# ---------------------------------------------------------------- running the tasks
def parse_grid(text) -> list[int]:
    """'100:400:50' (start:stop:step, stop included), '100,150,218' or one number -> sorted sizes."""
    if isinstance(text, (list, tuple, range, np.ndarray)):
        values = [int(v) for v in text]
    else:
        s = str(text).strip()
        try:
            if ":" in s:
                parts = [int(v) for v in s.split(":")]
                if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] < 1):
                    raise ValueError
                start, stop = parts[0], parts[1]
                step = parts[2] if len(parts) == 3 else 1
                values = list(range(start, stop + 1, step))
            else:
                values = [int(v) for v in s.split(",") if v.strip()]
        except ValueError:
            raise SemUpgradeError(f"--n: '{text}' is not a grid of sample sizes (START:STOP:STEP, e.g. "
                                  "100:400:50, or a list 100,150,218)") from None
    if not values:
        raise SemUpgradeError(f"--n: '{text}' gives no sample size")
    return sorted(set(values))


def _tasks(grid, replications, chunk):
    return [(n, range(i, min(i + chunk, replications))) for n in grid for i in range(0, replications, chunk)]


def _task_name(n, reps):
    return f"n{n}_r{reps.start}-{reps.stop}"


class _Store:
    """Finished tasks kept in OUTDIR/power_tasks, one .npz each, written atomically."""

    def __init__(self, outdir, signature: dict, resume: bool):
        self.dir = Path(outdir) / _TASK_DIR
        self.signature = signature
        sig_file = self.dir / "signature.json"
        if resume and sig_file.exists():
            old = json.loads(sig_file.read_text())
            if old != signature:
                diff = sorted(k for k in set(old) | set(signature) if old.get(k) != signature.get(k))
                raise SemUpgradeError(f"--resume: {self.dir} holds tasks of a run with other settings "
                                      f"({', '.join(diff)}); start afresh without --resume")
        else:
            if self.dir.exists():
                for f in self.dir.glob("*.npz"):
                    f.unlink()
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = sig_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(signature, indent=1))
            os.replace(tmp, sig_file)

    def path(self, n, reps):
        return self.dir / f"{_task_name(n, reps)}.npz"

    def load(self, n, reps):
        f = self.path(n, reps)
        if not f.exists():
            return None
        with np.load(f) as z:
            return {k: z[k] for k in z.files}

    def save(self, n, reps, res):
        f = self.path(n, reps)
        tmp = f.with_name(f.name + ".part")
        with open(tmp, "wb") as fh:
            np.savez(fh, **res)
        os.replace(tmp, f)


def _execute(design, seed, todo, scheduler, workers, on_done, connect_timeout):
    """Run the tasks: in this process (workers=0) or on Dask (a local cluster or ``scheduler``)."""
    if not todo:
        return
    if scheduler is None and workers == 0:
        for n, reps in todo:
            on_done(n, reps, run_task(design, seed, n, reps))
        return
    with _QuietDask():
        _execute_dask(design, seed, todo, scheduler, workers, on_done, connect_timeout)


class _QuietDask:
    """Dask logs every connection at INFO level to stderr; only its errors are shown meanwhile."""

    def __enter__(self):
        import logging

        self.log = logging.getLogger("distributed")
        self.level = self.log.level
        self.log.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.log.setLevel(self.level)


def _execute_dask(design, seed, todo, scheduler, workers, on_done, connect_timeout):
    import logging

    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SemUpgradeError(f"--scheduler: cannot reach the Dask scheduler at {scheduler} within "
                                  f"{connect_timeout:g} s ({type(exc).__name__})") from None
    else:
        n_workers = workers if workers is not None else (os.cpu_count() or 1)
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        [remote] = client.scatter([design], broadcast=True)
        futures = {}
        for n, reps in todo:
            fut = client.submit(run_task, remote, seed, n, reps, key=f"power-{design.fingerprint}-{seed}-"
                                f"{_task_name(n, reps)}", pure=False)
            futures[fut] = (n, reps)
        for fut in as_completed(futures):
            n, reps = futures[fut]
            on_done(n, reps, fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


class _BackgroundCluster:
    """A local Dask cluster started in a background thread (one single-threaded worker process per
    core by default), so that its start overlaps the caller's own work."""

    def __init__(self, n_workers: int):
        import threading

        self._cluster = None
        self._error = None
        self._thread = threading.Thread(target=self._start, args=(n_workers,), daemon=True)
        self._thread.start()

    def _start(self, n_workers):
        import logging

        from dask.distributed import LocalCluster

        try:
            self._cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=logging.ERROR)
        except Exception as exc:  # noqa: BLE001 (re-raised in the caller's thread by address())
            self._error = exc

    def address(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._cluster.scheduler_address

    def close(self):
        self._thread.join()
        if self._cluster is not None:
            self._cluster.close()


# ---------------------------------------------------------------- the result
@dataclass
class PowerResult:
    """A power study: per hypothesis and sample size, the rates and the smallest sufficient N.

    ``hypotheses``: list of dicts ``id, effect, kind, truth, by_n, min_n``; each ``by_n`` row has
    ``n, rate, rate_ci_lower, rate_ci_upper, mean_estimate, bias, coverage, n_ok, n_failed,
    n_inadmissible``. ``rmsea_power``: ``df, by_n (n, power_close, power_not_close), n_close,
    n_not_close``. ``settings``: the options, versions and timing (provenance).
    """

    grid: list[int]
    replications: int
    seed: int
    hypotheses: list[dict]
    min_n_all: int | None
    rmsea_power: dict
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The content of power.json: the same input and seed give the same bytes (the options,
        versions and wall times are in ``settings``, written to power_run.json)."""
        return {"grid": self.grid, "replications": self.replications, "seed": self.seed,
                "hypotheses": self.hypotheses, "min_n_all": self.min_n_all, "rmsea_power": self.rmsea_power}

    def table(self) -> pd.DataFrame:
        """Long table: ``id, effect, kind, truth, n, rate, rate_ci_lower, rate_ci_upper, mean_estimate,
        bias, coverage, n_ok, n_failed, n_inadmissible``."""
        rows = [{"id": h["id"], "effect": h["effect"], "kind": h["kind"], "truth": h["truth"], **r}
                for h in self.hypotheses for r in h["by_n"]]
        return pd.DataFrame(rows)


def _clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval (Clopper & Pearson 1934) by beta quantiles."""
    a = 1 - level
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def _summarise(design, grid, replications, results, target) -> tuple[list[dict], int | None]:
    hyps = []
    for j, h in enumerate(design.hypotheses):
        by_n = []
        for n in grid:
            parts = [results[(n, reps.start)] for _, reps in _tasks([n], replications, _CHUNK)]
            ok = np.concatenate([p["ok"] for p in parts])
            n_ok = int(ok.sum())
            row = {"n": int(n), "rate": None, "rate_ci_lower": None, "rate_ci_upper": None, "mean_estimate": None,
                   "bias": None, "coverage": None, "n_ok": n_ok, "n_failed": int(len(ok) - n_ok),
                   "n_inadmissible": int(np.concatenate([p["inadmissible"] for p in parts]).sum())}
            if n_ok:
                key = "supported" if h.truth != 0 else "rejected"
                hits = np.concatenate([p[key][:, j] for p in parts])[ok]
                std = np.concatenate([p["std_estimate"][:, j] for p in parts])[ok]
                cov = np.concatenate([p["covered"][:, j] for p in parts])[ok]
                k = int(hits.sum())
                lo, hi = _clopper_pearson(k, n_ok)
                mean = float(std.mean())
                row.update(rate=k / n_ok, rate_ci_lower=lo, rate_ci_upper=hi, mean_estimate=mean,
                           bias=mean - h.truth, coverage=float(cov.mean()))
            by_n.append(row)
        min_n = None
        if h.truth != 0:
            min_n = next((r["n"] for r in by_n if r["rate"] is not None and r["rate"] >= target), None)
        hyps.append({"id": h.id, "effect": h.effect, "kind": h.kind, "truth": h.truth, "by_n": by_n, "min_n": min_n})
    true = [h for h in hyps if h["truth"] != 0]
    min_all = None
    if true:
        for i, n in enumerate(grid):
            if all(h["by_n"][i]["rate"] is not None and h["by_n"][i]["rate"] >= target for h in true):
                min_all = int(n)
                break
    return hyps, min_all


def monte_carlo_power(design: Design, grid, replications: int, seed: int = 2012, target: float = 0.80,
                      scheduler: str | None = None, workers: int | None = None, resume: bool = False,
                      outdir: str | Path | None = None, progress: bool | None = None,
                      connect_timeout: float = _CONNECT_TIMEOUT) -> PowerResult:
    """Monte Carlo power of a design over a grid of sample sizes (see the module notes).

    Parameters
    ----------
    design : Design
    grid : list of int or str
        Sample sizes ('100:400:50' is 100, 150, ..., 400).
    replications : int
        Surveys drawn and fitted at every N.
    seed : int
        Replication r at N draws from ``SeedSequence(seed, spawn_key=(N, r))``.
    target : float
        The power a hypothesis must reach; ``min_n`` is the first N of the grid reaching it.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:port``); the workers need sem_upgrade.
    workers : int, optional
        Worker processes of the local Dask cluster (default: one per core); 0 runs every task
        in this process, without Dask. The numbers do not depend on it.
    resume : bool
        Keep the finished tasks found in ``outdir`` and run only the missing ones.
    outdir : path, optional
        Where finished tasks are kept as they complete (required with ``resume``).
    """
    if isinstance(replications, bool) or not isinstance(replications, (int, np.integer)) or replications < 1:
        raise SemUpgradeError(f"--replications: must be a positive whole number, got {replications}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SemUpgradeError(f"--seed: must be a non-negative integer, got {seed!r}")
    if not 0 < target < 1:
        raise SemUpgradeError(f"--target: the target power must be between 0 and 1, got {target}")
    if workers is not None and (isinstance(workers, bool) or workers < 0):
        raise SemUpgradeError(f"--workers: must be a non-negative number of processes, got {workers}")
    if resume and outdir is None:
        raise SemUpgradeError("--resume: needs an output folder (-o) where the finished tasks are kept")
    grid = parse_grid(grid)
    npar = design.structure.n_free
    small = [n for n in grid if n < npar]
    if small:
        raise SemUpgradeError(f"--n: {small[0]} is below the number of free parameters of the model ({npar}); "
                              f"the grid must start at {npar} or more")
    t0 = time.perf_counter()
    signature = {"model": design.fingerprint, "seed": int(seed), "replications": int(replications),
                 "alpha": design.alpha, "indirect": design.indirect,
                 "bootstrap": design.bootstrap if design.indirect == "bootstrap" else None,
                 "missing_rate": design.missing_rate, "estimator": design.estimator, "chunk": _CHUNK,
                 "mc_draws": _MC_DRAWS}
    store = _Store(outdir, signature, resume) if outdir is not None else None
    results = {}
    todo = []
    for n, reps in _tasks(grid, replications, _CHUNK):
        done = store.load(n, reps) if (store is not None and resume) else None
        if done is not None:
            results[(n, reps.start)] = done
        else:
            todo.append((n, reps))
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(grid) * replications, desc="power", unit="rep", disable=not show, mininterval=0.5)
    per_n = {n: 0 for n in grid}
    for n, start in results:
        per_n[n] += len(results[(n, start)]["ok"])
    bar.update(sum(per_n.values()))

    first = []  # when the first task came back: the cost of starting the cluster shows here

    def on_done(n, reps, res):
        if not first:
            first.append(time.perf_counter() - t0)
        results[(n, reps.start)] = res
        if store is not None:
            store.save(n, reps, res)
        per_n[n] += len(reps)
        bar.update(len(reps))
        bar.set_postfix_str(" ".join(f"N={k}:{v}/{replications}" for k, v in per_n.items()), refresh=False)

    try:
        _execute(design, int(seed), todo, scheduler, workers, on_done, connect_timeout)
    finally:
        bar.close()
    hyps, min_all = _summarise(design, grid, replications, results, target)
    import numpy
    import scipy

    from . import __version__
    settings = {"alpha": design.alpha, "target": target, "indirect": design.indirect,
                "bootstrap": design.bootstrap if design.indirect == "bootstrap" else None,
                "mc_draws": _MC_DRAWS if design.indirect == "montecarlo" else None,
                "missing_rate": design.missing_rate, "estimator": design.estimator, "model": design.label,
                "n_free": npar, "tasks_resumed": len(results) - len(todo) if resume else 0,
                "tasks_run": len(todo), "seconds": time.perf_counter() - t0,
                "seconds_to_first_task": first[0] if first else None,
                "versions": {"sem_upgrade": __version__, "numpy": numpy.__version__, "scipy": scipy.__version__}}
    return PowerResult(grid=grid, replications=int(replications), seed=int(seed), hypotheses=hyps,
                       min_n_all=min_all, rmsea_power=_rmsea_summary(design.df, grid, target, design.alpha),
                       settings=settings)


def power(questionnaire=None, n="100:400:50", replications: int = 1000, *, target: float = 0.80,
          alpha: float = 0.05, seed: int = 2012, missing_rate: float = 0.0, estimator: str = "ml",
          indirect: str = "montecarlo", bootstrap: int = 1000, scheduler: str | None = None,
          workers: int | None = None, resume: bool = False, outdir: str | Path | None = None,
          progress: bool | None = None, formats=("json", "png", "html", "md"),
          connect_timeout: float = _CONNECT_TIMEOUT) -> PowerResult:
    """Sample-size planning: Monte Carlo power of every hypothesis of a questionnaire.

    Draws ``replications`` surveys of each N of the grid ``n`` from the questionnaire's
    ``population`` section, fits the model to each and reports, per hypothesis and N, the
    power (or type-I error rate) with its Monte Carlo 95% interval, the mean standardized
    estimate and bias, the coverage of the 95% interval, and the non-converged and
    inadmissible counts; the smallest N reaching ``target`` for every true effect; and the
    analytic RMSEA power of the model (MacCallum et al. 1996). With ``outdir``, writes
    power.json, power_curve.png, power.html and power.md there.

    Validated against: closed-form power of the z-test for a single observed path, the
    binomial interval of the type-I error rate, and ``semTools::findRMSEApower`` /
    ``findRMSEAsamplesize`` (tests/test_power.py).

    Examples
    --------
    >>> import sem_upgrade
    >>> res = sem_upgrade.power(n="200,300", replications=100, workers=0)  # doctest: +SKIP
    """
    from .pipeline import bundled_paths
    from .questionnaire import load_questionnaire

    if questionnaire is None:
        questionnaire = bundled_paths()[1]
    q = questionnaire if hasattr(questionnaire, "constructs") else load_questionnaire(questionnaire)
    if isinstance(replications, bool) or not isinstance(replications, (int, np.integer)) or replications < 1:
        raise SemUpgradeError(f"--replications: must be a positive whole number, got {replications}")
    if workers is not None and (isinstance(workers, bool) or workers < 0):
        raise SemUpgradeError(f"--workers: must be a non-negative number of processes, got {workers}")
    with _QuietDask():
        local = None
        if scheduler is None and workers != 0:
            # the local cluster's workers start (and import the package) while the design is computed
            local = _BackgroundCluster(workers if workers is not None else (os.cpu_count() or 1))
        try:
            design = questionnaire_design(q, alpha=alpha, indirect=indirect, bootstrap=bootstrap,
                                          missing_rate=missing_rate, estimator=estimator)
            address = local.address() if local is not None else scheduler
            res = monte_carlo_power(design, n, replications, seed=seed, target=target, scheduler=address,
                                    workers=workers, resume=resume, outdir=outdir, progress=progress,
                                    connect_timeout=connect_timeout)
        finally:
            if local is not None:
                local.close()
    res.settings["questionnaire"] = str(q.source)
    if outdir is not None:
        from .power_report import write_power_reports

        write_power_reports(res, outdir, formats=formats, title=q.title or q.name)
    return res
