"""Bootstrap: case resampling of the cleaned rows, every path, indirect and total effect, intervals.

Engine (complete-data ML): all resample indices are drawn up front from one seeded
generator, so the numbers do not depend on how many processes share the work. Each
resample starts at the full-sample estimates; a whole batch of resamples is then solved
at once by a quasi-Newton method with step halving: each resample's expected information
at the start as the first Hessian, then BFGS updates (superlinear, where Fisher scoring is
only linear when the model misfits). Gradient and information are in closed form:

    g = dF/dtheta from  dF/dLambda = 2 W Lambda Phi,  dF/dB = 2 M' W M Psi C',
        dF/dPsi = M' W M,  dF/dTheta = W   (off-diagonal symmetric elements twice),
        W = Sigma^-1 (Sigma - S) Sigma^-1;
    H_kl = tr(Sigma^-1 dSigma_k Sigma^-1 dSigma_l), from Gram matrices of the vectors
    that make up each dSigma_k (see _gradient_information).

A resample is converged when max |g| < 1e-9 or a full step is below 1e-8, which makes it
equal to a full refit
(tests/test_bootstrap.py). One the batch does not settle is refitted on its own by the
full optimiser; one that still fails is counted as failed and excluded (as lavaan 0.6
does); inadmissible solutions (negative variances) are counted and kept. Under FIML each
resample is refitted by full-information ML starting at the full-sample estimates.

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

from .errors import SemUpgradeError
from .estimation import _BETA, _LAMBDA, _PSI, _THETA, Fit, _fit_cov, fit_fiml

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


class _Job:
    """What every worker needs: the model, the data and the full-sample solution."""

    def __init__(self, fit: Fit, x: np.ndarray, chains: dict, totals: list):
        self.fit = fit
        self.st = fit.structure
        self.x = x
        self.chains = chains
        self.totals = totals
        self.ddof = 1 if fit.likelihood == "wishart" else 0
        st = self.st
        self.inc = np.zeros((len(st.loc_param), st.n_free))
        self.inc[np.arange(len(st.loc_param)), st.loc_param] = 1.0
        self.twice = (st.loc_row != st.loc_col).astype(float) + 1.0
        self.one_loc = len(st.loc_param) == st.n_free and np.array_equal(st.loc_param, np.arange(st.n_free))

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
        B, L, P, T, C, M, phi, sigma = self._implied(theta)
        sd_in = np.sqrt(np.clip(np.diagonal(phi, axis1=1, axis2=2), 1e-300, None))
        out = []
        table = st.table.set_index("index")
        for name, idx in self.chains.items():
            est = theta[:, idx].prod(axis=1)
            std = np.ones(len(theta))
            for k in idx:
                r, c = int(table.loc[k, "row"]), int(table.loc[k, "col"])
                std = std * theta[:, k] * sd_in[:, c] / sd_in[:, r]
            out += [est, std]
        for a, b in self.totals:
            ia, ib = st.inner.index(a), st.inner.index(b)
            tot = C[:, ib, ia] - (1.0 if ia == ib else 0.0)
            out += [tot, tot * sd_in[:, ia] / sd_in[:, ib]]
        return np.column_stack(out) if out else np.zeros((len(theta), 0))

    # ---------------- batched model algebra
    def _implied(self, theta):
        st = self.st
        nb = len(theta)
        mats = [np.broadcast_to(m, (nb, *m.shape)).copy() for m in st.base]
        for mid in range(4):
            sel = st.loc_matrix == mid
            if sel.any():
                r, c, k = st.loc_row[sel], st.loc_col[sel], st.loc_param[sel]
                mats[mid][:, r, c] = theta[:, k]
                if mid in (_PSI, _THETA):
                    mats[mid][:, c, r] = theta[:, k]
        B, L, P, T = mats
        C = np.linalg.inv(np.eye(B.shape[1])[None] - B)
        M = L @ C
        phi = C @ P @ C.transpose(0, 2, 1)
        sigma = M @ P @ M.transpose(0, 2, 1) + T
        return B, L, P, T, C, M, phi, sigma

    def _objective(self, theta, S, logdet_s):
        """F_ML for a batch; inf where Sigma is not positive definite."""
        sigma = self._implied(theta)[-1]
        sign, logdet = np.linalg.slogdet(sigma)
        ok = sign > 0
        F = np.full(len(theta), np.inf)
        if ok.any():
            inv = np.linalg.inv(sigma[ok])
            F[ok] = logdet[ok] + np.einsum("bij,bji->b", S[ok], inv) - logdet_s[ok] - S.shape[1]
        return F

    def _gradient_information(self, theta, S, with_info=True):
        """Gradient of F_ML (closed form) and (optionally) the expected information, for a batch."""
        st = self.st
        B, L, P, T, C, M, phi, sigma = self._implied(theta)
        inv = np.linalg.inv(sigma)
        W = inv @ (sigma - S) @ inv
        MWM = M.transpose(0, 2, 1) @ W @ M
        nb, p = len(theta), sigma.shape[1]
        g_loc = np.empty((nb, len(st.loc_param)))
        D = phi @ L.transpose(0, 2, 1)  # (nb, m, p)
        U = np.zeros((nb, len(st.loc_param), p))
        V = np.zeros((nb, len(st.loc_param), p))
        mid, r, c = st.loc_matrix, st.loc_row, st.loc_col
        for m_id, grad in ((_LAMBDA, lambda: 2.0 * (W @ L @ phi)),
                           (_BETA, lambda: 2.0 * (MWM @ P @ C.transpose(0, 2, 1))),
                           (_PSI, lambda: MWM), (_THETA, lambda: W)):
            sel = mid == m_id
            if not sel.any():
                continue
            g = grad()[:, r[sel], c[sel]]
            g_loc[:, sel] = g * self.twice[sel] if m_id in (_PSI, _THETA) else g
            if not with_info:
                continue
            if m_id == _LAMBDA:
                U[:, sel, r[sel]] = 1.0
                V[:, sel] = D[:, c[sel]]
            elif m_id == _BETA:
                U[:, sel] = M[:, :, r[sel]].transpose(0, 2, 1)
                V[:, sel] = D[:, c[sel]]
            elif m_id == _PSI:
                U[:, sel] = M[:, :, r[sel]].transpose(0, 2, 1)
                V[:, sel] = M[:, :, c[sel]].transpose(0, 2, 1)
            else:
                U[:, sel, r[sel]] = 1.0
                V[:, sel, c[sel]] = 1.0
        if not with_info:
            return g_loc @ self.inc, None
        # Every dSigma_k is (c_k / 2)(U_k V_k' + V_k U_k') with c_k = 2 for Lambda, B and off-diagonal
        # terms, 1 for variances (where U_k = V_k). With tr(S^-1 a b' S^-1 c d') = (b'S^-1 c)(d'S^-1 a):
        #   H_kl = c_k c_l / 2 * (Guv_kl Guv_lk + Guu_kl Gvv_kl),  Guu = U S^-1 U', Guv = U S^-1 V', Gvv = V S^-1 V'
        # which needs three small Gram matrices instead of the (q, p, p) stack of dSigma.
        cvec = np.where((mid == _LAMBDA) | (mid == _BETA) | (r != c), 2.0, 1.0)
        UI = U @ inv
        Guu = UI @ U.transpose(0, 2, 1)
        Guv = UI @ V.transpose(0, 2, 1)
        Gvv = (V @ inv) @ V.transpose(0, 2, 1)
        H = 0.5 * np.outer(cvec, cvec)[None] * (Guv * Guv.transpose(0, 2, 1) + Guu * Gvv)
        if not self.one_loc:
            H = self.inc.T[None] @ H @ self.inc[None]
        return g_loc @ self.inc, H

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
        theta = np.broadcast_to(self.fit.theta, (nb, st.n_free)).copy()
        active = sign > 0
        converged = np.zeros(nb, bool)
        F = np.full(nb, np.inf)
        F[active] = self._objective(theta[active], S[active], logdet_s[active])
        active &= np.isfinite(F)
        # Quasi-Newton: each resample's expected information as the first Hessian, then BFGS
        # updates, which converge superlinearly where Fisher scoring is only linear (misfit).
        info = np.zeros((nb, st.n_free, st.n_free))
        g_prev = np.zeros((nb, st.n_free))
        th_prev = theta.copy()
        for it in range(100):
            a = np.where(active & ~converged)[0]
            if not len(a):
                break
            g, H_new = self._gradient_information(theta[a], S[a], with_info=it == 0)
            if H_new is not None:
                info[a] = H_new
            else:
                sv = theta[a] - th_prev[a]
                yv = g - g_prev[a]
                ys = np.einsum("bi,bi->b", yv, sv)
                Bs = np.einsum("bij,bj->bi", info[a], sv)
                sBs = np.einsum("bi,bi->b", sv, Bs)
                ok_upd = (ys > 1e-12 * np.linalg.norm(yv, axis=1) * np.linalg.norm(sv, axis=1)) & (sBs > 0)
                upd = np.where(ok_upd[:, None, None],
                               yv[:, :, None] * yv[:, None, :] / np.where(ok_upd, ys, 1.0)[:, None, None]
                               - Bs[:, :, None] * Bs[:, None, :] / np.where(ok_upd, sBs, 1.0)[:, None, None], 0.0)
                info[a] = info[a] + upd
            g_prev[a] = g
            th_prev[a] = theta[a]
            H = info[a]
            done = np.max(np.abs(g), axis=1) < 1e-9
            converged[a[done]] = True
            a, g, H = a[~done], g[~done], H[~done]
            if not len(a):
                break
            try:
                step = -np.linalg.solve(H, g[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                step = -np.einsum("bij,bj->bi", np.linalg.pinv(H), g)
            alpha = np.ones(len(a))
            pending = np.ones(len(a), bool)
            for _ in range(30):  # step halving, resample by resample
                cand = theta[a[pending]] + alpha[pending, None] * step[pending]
                Fc = self._objective(cand, S[a[pending]], logdet_s[a[pending]])
                good = np.isfinite(Fc) & (Fc <= F[a[pending]] + 1e-14 * np.abs(F[a[pending]]))
                idx_p = np.where(pending)[0]
                theta[a[idx_p[good]]] = cand[good]
                F[a[idx_p[good]]] = Fc[good]
                # a full step below 1e-8 leaves an error of that order: converged
                tiny = np.max(np.abs(alpha[idx_p[good], None] * step[idx_p[good]]), axis=1) < 1e-8
                converged[a[idx_p[good][tiny]]] = True
                pending[idx_p[good]] = False
                alpha[pending] *= 0.5
                if not pending.any():
                    break
            active[a[pending]] = False  # no decrease found: leave to the full optimiser
        ok = converged.copy()
        # Resamples the chord iteration did not settle: the full optimiser, one by one.
        for b in np.where(~converged)[0]:
            if sign[b] <= 0:
                continue
            try:
                f = _fit_cov(st, S[b], None, xb.shape[1], self.fit.likelihood, start=self.fit.theta.copy())
            except SemUpgradeError:
                continue
            if f.converged:
                theta[b], ok[b] = f.theta, True
        theta[~ok] = np.nan
        return self._finish(theta, ok)

    def _solve_fiml(self, idx):
        theta = np.full((len(idx), self.st.n_free), np.nan)
        ok = np.zeros(len(idx), bool)
        start = np.concatenate([self.fit.theta, self.fit.mean_hat])
        for b, rows in enumerate(idx):
            try:
                f = fit_fiml(self.st, self.x[rows], start=start, full=False)
            except SemUpgradeError:
                continue
            if f.converged:
                theta[b], ok[b] = f.theta, True
        return self._finish(theta, ok)

    def _finish(self, theta, ok):
        extras = np.full((len(theta), len(self.extra_names())), np.nan)
        inadmissible = np.zeros(len(theta), bool)
        if ok.any():
            extras[ok] = self.extras(theta[ok])
            _, _, P, T, _, _, phi, _ = self._implied(theta[ok])
            neg = (np.diagonal(P, axis1=1, axis2=2) < 0).any(axis=1) | (np.diagonal(T, axis1=1, axis2=2) < 0).any(axis=1)
            inadmissible[ok] = neg
        return theta, extras, ok, inadmissible
