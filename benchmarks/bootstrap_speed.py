"""Bootstrap speed: naive semopy refits against sem_upgrade's engine, on the same resamples.

Run by hand (not a test):  python benchmarks/bootstrap_speed.py [--n 2000] [--naive 200]

Model: the bundled Liaoning study (23 items, 6 constructs, 7 paths, N = 218). The naive
loop refits semopy (default MLW objective, SLSQP) on each of the first --naive resamples;
its time is scaled to --n. Prints both times, the ratio, and the largest absolute
difference of the estimates (engine vs semopy, and engine vs our own full refit). Then one
FIML fit with 5% of cells missing (against semopy's FIML) and a FIML bootstrap of it.
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import semopy

from sem_upgrade.bootstrap import bootstrap, draw_counts, resample_plan
from sem_upgrade.engine.fit import fit_covariance, fit_fiml, fit_model
from sem_upgrade.ingest import read_survey
from sem_upgrade.pipeline import bundled_paths
from sem_upgrade.questionnaire import load_questionnaire


def resampled_rows(seed, n_boot, n):
    """Row indices of the engine's first ``n_boot`` resamples (its counts, expanded)."""
    counts = np.vstack([draw_counts(t, n) for t in resample_plan(seed, n_boot, n)])[:n_boot].astype(int)
    return [np.repeat(np.arange(n), c) for c in counts]


def semopy_estimates(model, table):
    est = model.inspect()
    out = np.full(int(table["index"].max()) + 1, np.nan)
    for row in table[table["free"]].itertuples():
        if row.op == "=~":
            lval, op, rval = row.rhs, "~", row.lhs
        else:
            lval, op, rval = row.lhs, row.op, row.rhs
        hit = est[(est["lval"] == lval) & (est["op"] == op) & (est["rval"] == rval)]
        if hit.empty and op == "~~":
            hit = est[(est["lval"] == rval) & (est["op"] == op) & (est["rval"] == lval)]
        out[row.index] = float(hit["Estimate"].iloc[0])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--naive", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    data_path, q_path = bundled_paths()
    q = load_questionnaire(q_path)
    x = read_survey(data_path, q).analysis_frame()
    syntax = q.structural_syntax()
    fit = fit_model(syntax, x)
    st = fit.structure
    obs = x[st.observed].to_numpy()
    idx = resampled_rows(args.seed, args.naive, len(x))

    t0 = time.perf_counter()
    res = bootstrap(fit, x, args.n, seed=args.seed, progress=False)
    engine = time.perf_counter() - t0
    q_free = st.n_free
    draws = res.draws.iloc[:, :q_free].to_numpy()

    naive_est, own_est = [], []
    t0 = time.perf_counter()
    for b in range(args.naive):
        m = semopy.Model(syntax)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(pd.DataFrame(obs[idx[b]], columns=st.observed))
        naive_est.append(semopy_estimates(m, st.table))
    naive = (time.perf_counter() - t0) / args.naive * args.n
    for b in range(args.naive):
        xb = obs[idx[b]]
        own_est.append(fit_covariance(st, np.cov(xb, rowvar=False, ddof=0), None, len(xb), "normal").theta)
    d_semopy = np.nanmax(np.abs(np.array(naive_est) - draws[: args.naive]))
    d_own = np.nanmax(np.abs(np.array(own_est) - draws[: args.naive]))
    print(f"model: {len(st.observed)} items, {len(st.latent)} constructs, {q_free} free parameters, N = {len(x)}")
    print(f"engine: {args.n} resamples in {engine:.2f} s ({res.n_ok} ok, {res.n_failed} failed)")
    print(f"naive semopy: {naive:.1f} s for {args.n} (timed on {args.naive}, scaled)")
    print(f"ratio: {naive / engine:.1f}x")
    print(f"largest |engine - semopy refit|: {d_semopy:.2e}  (semopy's optimiser stops short of the optimum)")
    print(f"largest |engine - full sem_upgrade refit|: {d_own:.2e}")

    # one FIML fit of the same model with 5% of cells missing
    rng = np.random.default_rng(2)
    xm = x.mask(rng.random(x.shape) < 0.05)
    t0 = time.perf_counter()
    fiml = fit_model(syntax, xm, missing="fiml")
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = semopy.Model(syntax)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(xm, obj="FIML")
    theirs = time.perf_counter() - t0
    print(f"FIML fit (5% missing): sem_upgrade {ours:.2f} s (chisq {fiml.chisq:.3f}, df {fiml.df}), semopy {theirs:.2f} s")

    # FIML bootstrap of the same data, checked against full FIML refits of the first resamples
    xf = xm[st.observed]
    xf = xf[xf.notna().any(axis=1)]
    t0 = time.perf_counter()
    fres = bootstrap(fiml, xf, args.n, seed=args.seed, progress=False)
    fiml_boot = time.perf_counter() - t0
    fidx = resampled_rows(args.seed, min(args.naive, 20), len(xf))
    d_fiml = max(np.nanmax(np.abs(fit_fiml(st, xf.to_numpy()[fidx[b]]).theta - fres.draws.iloc[b, :q_free].to_numpy()))
                 for b in range(min(args.naive, 20)))
    print(f"FIML bootstrap: {args.n} resamples in {fiml_boot:.2f} s ({fres.n_ok} ok, {fres.n_failed} failed); "
          f"largest |engine - full FIML refit|: {d_fiml:.2e}")


if __name__ == "__main__":
    main()
