"""The optimiser: quasi-Newton steps with step halving, for one problem or many at once.

Far from the optimum, Fisher scoring (the expected information) is a safe positive-definite
metric; near it, BFGS updates converge superlinearly where Fisher scoring is only linear
(model misfit). ``ml_minimise`` and ``fiml_minimise`` are the two drivers: starting values,
first metric, and the fallbacks when a first attempt stalls.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import SemUpgradeError
from .derivatives import numerical_hessian
from .linalg import positive_definite, safe_inverse
from .mvnorm import ml_information, ml_objective
from .mvnorm_missing import RowLayout, fiml_objective
from .partable import ModelStructure
from .syntax import semopy_estimates

__all__ = ["Optimum", "quasi_newton", "ml_minimise", "fiml_minimise"]

class Optimum(NamedTuple):
    """What :func:`quasi_newton` returns, one entry per problem."""

    theta: np.ndarray  # (nb, k) where each problem stopped
    F: np.ndarray  # (nb,) objective there (inf: no admissible start)
    converged: np.ndarray  # (nb,) bool
    iterations: np.ndarray  # (nb,) steps taken


def quasi_newton(evaluate, theta: np.ndarray, hessian: np.ndarray | None = None, information=None,
                 n_fisher: int = 0, fisher_until: float | None = None, max_iter: int = 200,
                 gtol: float = 1e-9, xtol: float = 1e-8, ftol: float | None = None,
                 gradient_first: bool = True, stall_gtol: float = 0.0) -> Optimum:
    """Minimise one problem or many independent ones at once by quasi-Newton steps with step halving.

    ``evaluate(theta_sub, sel)`` -> (F, dF/dtheta) of the problems ``sel`` at the rows
    ``theta_sub``; F is inf where the point is not admissible.

    The metric of the first step is ``hessian`` ((nb, k, k), or (k, k) shared by all), or
    else the expected information ``information(theta_sub, sel)`` -> (m, k, k) at the start.
    Fisher scoring (the information at the current point, the safe metric far from the
    optimum) is used for the next ``n_fisher`` steps, or, given ``fisher_until``, for as long
    as max |g| >= fisher_until (the step at which it falls below still uses it). After that
    the inverse Hessians are updated by BFGS (Nocedal & Wright 2006, eq. 6.17), which
    converges superlinearly where Fisher scoring is only linear (model misfit).

    A step is accepted at the first of 40 halvings that does not increase F. A problem has
    converged when, with ``gradient_first``, max |g| < gtol before a step; when a step
    accepted is below ``xtol`` (max abs); or, given ``ftol``, when max |g| < gtol before a
    step that changed F by less than ``ftol``. One whose objective cannot be decreased, or
    that reaches ``max_iter`` steps, stops; it counts as converged when max |g| < stall_gtol.

    Returns
    -------
    Optimum
        theta, F, converged, iterations (per problem).
    """
    nb, k = theta.shape
    theta = np.array(theta, float)
    F, G = evaluate(theta, np.arange(nb))
    active = np.isfinite(F)
    converged = np.zeros(nb, bool)
    iters = np.zeros(nb, int)
    scoring = np.full(nb, fisher_until is not None)  # still on Fisher scoring (fisher_until)
    if hessian is None:
        hinv = np.zeros((nb, k, k))
        if active.any() and fisher_until is None:  # else computed in the first iteration
            hinv[active] = _metric(information(theta[active], np.where(active)[0]))
    elif hessian.ndim == 2:  # one matrix shared by every problem
        hinv = np.tile(_metric(hessian), (nb, 1, 1))
    else:
        hinv = _metric(hessian)
    g_prev = np.zeros((nb, k))
    th_prev = theta.copy()
    for it in range(max_iter):
        a = np.where(active & ~converged)[0]
        if not len(a):
            break
        g = G[a]
        fisher = np.full(len(a), 0 < it <= n_fisher) | scoring[a]
        if it > 0 or hessian is None:
            f_idx = a[fisher]
            if len(f_idx) and (it > 0 or fisher_until is not None):  # the first metric, or a scoring step
                hinv[f_idx] = _metric(information(theta[f_idx], f_idx))
            if fisher_until is not None:
                scoring[a[np.max(np.abs(g), axis=1) < fisher_until]] = False
        if it > 0 and not fisher.all():
            b = np.where(~fisher)[0]
            s, y = theta[a[b]] - th_prev[a[b]], g[b] - g_prev[a[b]]
            ys = np.einsum("bi,bi->b", y, s)
            upd = ys > 1e-12 * np.linalg.norm(y, axis=1) * np.linalg.norm(s, axis=1)
            if upd.any():
                u = a[b[upd]]
                s, y, rho = s[upd], y[upd], 1.0 / ys[upd]
                whole = len(u) == nb  # every problem at once: work in place, no copies
                h_u = hinv if whole else hinv[u]
                hy = (h_u @ y[:, :, None])[:, :, 0]
                yhy = np.einsum("bi,bi->b", y, hy)
                # rank-two update as one product: [s hy] [[rho^2 yhy + rho, -rho], [-rho, 0]] [s hy]'
                V = np.stack([s, hy], axis=2)
                coef = np.zeros((len(u), 2, 2))
                coef[:, 0, 0] = rho * rho * yhy + rho
                coef[:, 0, 1] = coef[:, 1, 0] = -rho
                h_u += (V @ coef) @ V.transpose(0, 2, 1)
                if not whole:
                    hinv[u] = h_u
        g_prev[a], th_prev[a] = g, theta[a]
        small_g = np.max(np.abs(g), axis=1) < gtol
        if gradient_first:
            converged[a[small_g]] = True
            a, g, small_g = a[~small_g], g[~small_g], small_g[~small_g]
            if not len(a):
                break
        iters[a] += 1
        step = -((hinv if len(a) == nb else hinv[a]) @ g[:, :, None])[:, :, 0]
        alpha = np.ones(len(a))
        pending = np.ones(len(a), bool)
        for _ in range(40):  # step halving, problem by problem
            idx = np.where(pending)[0]
            cand = theta[a[idx]] + alpha[idx, None] * step[idx]
            Fc, Gc = evaluate(cand, a[idx])
            good = np.isfinite(Fc) & (Fc <= F[a[idx]] + 1e-14 * np.abs(F[a[idx]]))
            hit = idx[good]
            done = np.max(np.abs(alpha[hit, None] * step[hit]), axis=1) < xtol
            if ftol is not None:
                done |= small_g[hit] & (np.abs(F[a[hit]] - Fc[good]) < ftol)
            theta[a[hit]], F[a[hit]], G[a[hit]] = cand[good], Fc[good], Gc[good]
            converged[a[hit[done]]] = True
            pending[hit] = False
            alpha[pending] *= 0.5
            if not pending.any():
                break
        # no decrease along the step: stop here
        stuck = a[pending]
        active[stuck] = False
        converged[stuck] = np.max(np.abs(G[stuck]), axis=1) < stall_gtol
    left = active & ~converged & (iters >= max_iter)
    converged[left] = np.max(np.abs(G[left]), axis=1) < stall_gtol
    return Optimum(theta, F, converged, iters)


def _metric(h: np.ndarray) -> np.ndarray:
    """Inverse of a Hessian approximation, with a ridge of 1e-12 so that a singular information
    matrix (a model not identified) still gives a usable first step."""
    return safe_inverse(h + 1e-12 * np.eye(h.shape[-1]))


def ml_minimise(st, S, logdet_s, start=None, n=None, max_iter: int = 500):
    """Minimise F_ML for the covariance matrix S (log|S| = ``logdet_s``): the optimisation alone,
    without standard errors or fit figures.

    From ``start``, or else from semopy's starting values and, should that not converge,
    from semopy's own solution (``n`` rows), keeping the better attempt. Returns
    (theta, F, converged, iterations, message); raises SemUpgradeError when no start gives a
    positive-definite implied matrix. ``max_iter`` caps the steps of each attempt (the
    bootstrap's per-resample effort limit).
    """
    result = _ml_attempt(st, S, logdet_s, st.start if start is None else start, max_iter)
    if not result[2] and start is None:
        theta1 = semopy_estimates(st, S, n)
        if theta1 is not None:
            second = _ml_attempt(st, S, logdet_s, theta1, max_iter)
            if second[2] or (np.isfinite(second[1]) and not second[1] > result[1]):  # keep the better attempt
                result = second
    if not np.isfinite(result[1]):
        raise SemUpgradeError("the model could not be fitted: no starting values give a positive-definite "
                              "model-implied covariance matrix")
    return result


def _ml_attempt(st, S, logdet_s, theta0, max_iter=500):
    """Fisher scoring until max |g| < 1e-4, then BFGS, to a step below 1e-9 (or max |g| < 1e-9
    with F unchanged); a stop short of that still counts as converged when max |g| < 1e-6."""
    def evaluate(th, sel):
        return ml_objective(st, th, S, logdet_s)

    def information(th, sel):
        return ml_information(st, th)

    opt = quasi_newton(evaluate, np.asarray(theta0, float)[None], information=information, fisher_until=1e-4,
                       max_iter=max_iter, gtol=1e-9, xtol=1e-9, ftol=1e-15, gradient_first=False,
                       stall_gtol=1e-6)
    f, it = float(opt.F[0]), int(opt.iterations[0])
    if not np.isfinite(f):
        msg = "the starting values give a non-positive-definite implied matrix"
    elif it >= max_iter:
        msg = "iteration limit reached"
    elif opt.converged[0]:
        msg = "converged"
    else:
        msg = "line search failed"
    return opt.theta[0], f, bool(opt.converged[0]), it, msg


def fiml_minimise(st: ModelStructure, rows: RowLayout, start: np.ndarray, hess: np.ndarray):
    """Minimise -2 logl / N from ``start``: BFGS with ``hess`` as the first metric; should it
    stall, Newton steps on the observed information (at most three restarts of 50 steps;
    where those do not converge, more rarely helps: the likelihood is flat or unbounded).

    Returns (par, F, converged, iterations).
    """
    def evaluate(par, sel):
        return fiml_objective(st, rows, par)

    par, f, conv, iters = quasi_newton(evaluate, start[None], hess)
    iterations = int(iters[0])
    for _ in range(3):
        if conv[0] or not np.isfinite(f[0]):
            break
        hess = numerical_hessian(lambda b: fiml_objective(st, rows, b)[1], par[0])
        if not np.all(np.isfinite(hess)):
            break  # stopped where the likelihood is undefined nearby: no Newton metric
        par, f, conv, iters = quasi_newton(evaluate, par, positive_definite(hess), max_iter=50)
        iterations += int(iters[0])
    return par[0], float(f[0]), bool(conv[0]), iterations
