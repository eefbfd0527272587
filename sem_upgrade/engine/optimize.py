"""The optimiser: quasi-Newton steps with step halving, for one problem or many at once.

Far from the optimum, Fisher scoring (the expected information) is a safe positive-definite
metric; near it, BFGS updates converge superlinearly where Fisher scoring is only linear
(model misfit). ``ml_minimise`` and ``fiml_minimise`` are the two drivers: starting values,
first metric, and the fallbacks when a first attempt stalls.
"""

from __future__ import annotations

import numpy as np

from ..errors import SemUpgradeError
from .derivatives import numerical_hessian
from .linalg import positive_definite, safe_inverse
from .mvnorm import ml_gradient, ml_gradient_information, ml_objective
from .mvnorm_missing import RowLayout, fiml_objective
from .partable import ModelStructure
from .syntax import semopy_estimates

__all__ = ["quasi_newton", "fisher_scoring", "ml_minimise", "fiml_minimise"]

def quasi_newton(evaluate, theta: np.ndarray, hessian: np.ndarray, max_iter: int = 200,
                        gtol: float = 1e-9, xtol: float = 1e-8, information=None, n_fisher: int = 0):
    """Minimise many independent problems at once by quasi-Newton steps with step halving.

    ``evaluate(theta_sub, sel)`` -> (F, dF/dtheta) of the problems ``sel`` at the rows
    ``theta_sub``; F is inf where the point is not admissible. ``hessian`` (nb, k, k), or (k, k)
    shared by all, holds each problem's first Hessian approximation (positive definite), the
    metric of the first step. Given ``information(theta_sub, sel)``, the next ``n_fisher`` steps are Fisher
    scoring steps (the expected information at the current point), the safe metric far from
    the optimum.
    After that the inverse Hessians are updated by BFGS (Nocedal & Wright 2006, eq. 6.17),
    which converges superlinearly where Fisher scoring is only linear (model misfit). A
    problem has converged when max |g| < gtol or a full step is below xtol; one whose
    objective cannot be decreased stops unconverged.

    Returns theta, F, converged, iterations (per problem).
    """
    nb, k = theta.shape
    theta = theta.copy()
    F, G = evaluate(theta, np.arange(nb))
    active = np.isfinite(F)
    converged = np.zeros(nb, bool)
    iters = np.zeros(nb, int)
    if hessian.ndim == 2:  # one matrix shared by every problem
        hinv = np.tile(safe_inverse(hessian), (nb, 1, 1))
    else:
        hinv = safe_inverse(hessian)
    g_prev = np.zeros((nb, k))
    th_prev = theta.copy()
    for it in range(max_iter):
        a = np.where(active & ~converged)[0]
        if not len(a):
            break
        g = G[a]
        if 0 < it <= n_fisher:
            hinv[a] = safe_inverse(information(theta[a], a))
        elif it > 0:
            s, y = theta[a] - th_prev[a], g - g_prev[a]
            ys = np.einsum("bi,bi->b", y, s)
            upd = ys > 1e-12 * np.linalg.norm(y, axis=1) * np.linalg.norm(s, axis=1)
            if upd.any():
                u = a[upd]
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
        done = np.max(np.abs(g), axis=1) < gtol
        converged[a[done]] = True
        a, g = a[~done], g[~done]
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
            theta[a[hit]], F[a[hit]], G[a[hit]] = cand[good], Fc[good], Gc[good]
            tiny = np.max(np.abs(alpha[hit, None] * step[hit]), axis=1) < xtol
            converged[a[hit[tiny]]] = True
            pending[hit] = False
            alpha[pending] *= 0.5
            if not pending.any():
                break
        active[a[pending]] = False  # no decrease along the step: stop here, unconverged
    return theta, F, converged, iters


def fisher_scoring(objective, grad_info, theta0, max_iter=500, tol=1e-9, grad=None):
    """Fisher scoring with step halving, then BFGS updates near the optimum.

    ``grad_info(theta)`` -> (gradient, expected information); ``grad(theta)`` -> gradient
    alone (defaults to the first part of grad_info). Far from the optimum the expected
    information is a safe positive-definite metric; near it (max |g| < 1e-4) BFGS updates of
    that matrix take over, because Fisher scoring converges only linearly when the model
    misfits, while quasi-Newton steps converge superlinearly.
    """
    grad = grad or (lambda z: grad_info(z)[0])
    theta = theta0.copy()
    f = objective(theta)
    if not np.isfinite(f):
        return theta, f, False, 0, "the starting values give a non-positive-definite implied matrix"
    B = g_prev = th_prev = None
    for it in range(1, max_iter + 1):
        if B is None:
            g, H = grad_info(theta)
            if np.max(np.abs(g)) < 1e-4:
                B = H
        else:
            g = grad(theta)
            s_vec, y_vec = theta - th_prev, g - g_prev
            ys, Bs = y_vec @ s_vec, B @ s_vec
            if ys > 1e-12 * np.linalg.norm(y_vec) * np.linalg.norm(s_vec) and s_vec @ Bs > 0:
                B = B + np.outer(y_vec, y_vec) / ys - np.outer(Bs, Bs) / (s_vec @ Bs)
            H = B
        g_prev, th_prev = g, theta
        try:
            step = -np.linalg.solve(H + 1e-12 * np.eye(len(g)), g)
        except np.linalg.LinAlgError:
            step = -np.linalg.lstsq(H, g, rcond=None)[0]
        alpha = 1.0
        for _ in range(40):
            cand = theta + alpha * step
            fc = objective(cand)
            if np.isfinite(fc) and fc <= f + 1e-14 * abs(f):
                break
            alpha *= 0.5
        else:
            return theta, f, bool(np.max(np.abs(g)) < 1e-6), it, "line search failed"
        theta, f_old, f = cand, f, fc
        if np.max(np.abs(alpha * step)) < tol or (np.max(np.abs(g)) < tol and abs(f_old - f) < 1e-15):
            return theta, f, True, it, "converged"
    g = grad(theta)
    return theta, f, bool(np.max(np.abs(g)) < 1e-6), max_iter, "iteration limit reached"


def ml_minimise(st, S, logdet_s, start=None, n=None):
    """Minimise F_ML for the covariance matrix S (log|S| = ``logdet_s``): the optimisation alone,
    without standard errors or fit figures.

    From ``start``, or else from semopy's starting values and, should that not converge,
    from semopy's own solution (``n`` rows), keeping the better attempt. Returns
    (theta, F, converged, iterations, message); raises SemUpgradeError when no start gives a
    positive-definite implied matrix.
    """
    objective = lambda th: ml_objective(st, th, S, logdet_s)  # noqa: E731
    grad_info = ml_gradient_information(st, S)
    grad = ml_gradient(st, S)
    result = fisher_scoring(objective, grad_info, st.start if start is None else start, grad=grad)
    if not result[2] and start is None:
        theta1 = semopy_estimates(st, S, n)
        if theta1 is not None:
            second = fisher_scoring(objective, grad_info, theta1, grad=grad)
            if second[2] or (np.isfinite(second[1]) and not second[1] > result[1]):  # keep the better attempt
                result = second
    if not np.isfinite(result[1]):
        raise SemUpgradeError("the model could not be fitted: no starting values give a positive-definite "
                              "model-implied covariance matrix")
    return result


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
