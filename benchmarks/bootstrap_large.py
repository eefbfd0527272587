"""Bootstrap of a very large survey: time and peak memory (issue 19, D17). Not a test.

Run by hand:  python benchmarks/bootstrap_large.py [--n 1000000] [--boot 2000] [--run]

Draws --n respondents from the bundled questionnaire's population model (sem_upgrade.simulate),
fits the structural model and bootstraps it with --boot resamples (the default of ``run``),
printing the wall time and the peak resident memory of this process and of its workers.
Resamples are drawn per batch as counts and each resample's covariance matrix is formed
from the counts, so memory does not grow with resamples x rows. With --run, the whole
``run`` (all stages, reports) on the same file instead.
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

from sem_upgrade.engine.fit import fit_model
from sem_upgrade.ingest import read_survey
from sem_upgrade.bootstrap import bootstrap
from sem_upgrade.pipeline import bundled_paths, run
from sem_upgrade.structural import total_effect_pairs
from sem_upgrade.questionnaire import load_questionnaire
from sem_upgrade.simulate import simulate_survey


def peak_mib():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, workers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=2012)
    ap.add_argument("--run", action="store_true", help="time the whole run instead of the bootstrap stage")
    args = ap.parse_args()
    _, q_path = bundled_paths()
    q = load_questionnaire(q_path)
    t0 = time.perf_counter()
    data = simulate_survey(q, args.n, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.csv"
        data.to_csv(path, index=False, float_format="%.0f")
        print(f"simulated {args.n} respondents in {time.perf_counter() - t0:.1f} s")
        if args.run:
            t0 = time.perf_counter()
            res = run(path, q_path, Path(tmp) / "out", bootstrap=args.boot, seed=args.seed, progress=None)
            own, workers = peak_mib()
            b = res["bootstrap"]
            print(f"run: {time.perf_counter() - t0:.1f} s; bootstrap {res.timing['bootstrap_seconds']:.1f} s "
                  f"({b['n_ok']} of {b['n_requested']} fitted); peak memory {own:.0f} MiB (main), "
                  f"{workers:.0f} MiB (largest worker)")
            return
        x = read_survey(path, q).analysis_frame()
    t0 = time.perf_counter()
    fit = fit_model(q.structural_syntax(), x)
    print(f"fit: {time.perf_counter() - t0:.1f} s, {fit.n} rows, {fit.structure.n_free} free parameters")
    chains = {h.id: h.chain for h in q.hypotheses if h.kind == "indirect"}
    t0 = time.perf_counter()
    res = bootstrap(fit, x, args.boot, args.seed, indirect=chains, totals=total_effect_pairs(fit.structure))
    own, workers = peak_mib()
    print(f"bootstrap: {args.boot} resamples of {fit.n} rows in {time.perf_counter() - t0:.1f} s "
          f"({res.n_ok} fitted, {res.n_failed} failed); peak memory {own:.0f} MiB (main), "
          f"{workers:.0f} MiB (largest worker)")


if __name__ == "__main__":
    main()
