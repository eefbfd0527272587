"""Power study speed: the batched engine on Dask against one full fit per replication and lavaan.

Run by hand from the repository root (not a test):
    python benchmarks/power_speed.py [--workers 2] [--replications 1000] [--naive 20] [--no-grid] [--no-lavaan]

Model: the bundled Liaoning study (23 items, 6 constructs, 56 free parameters). Times, wall clock:
1. 1,000 replications at N = 218 on a local Dask cluster of --workers processes (cluster start
   included), and in this process alone (workers = 0);
2. the grid 100:400:50 (7 sizes x 1,000 replications) on the cluster;
3. the naive loop (``fit_model`` on each replication, as ``simulate --replications`` does) on
   --naive replications, scaled to 1,000;
4. lavaan (``Rscript benchmarks/lavaan_power_time.R``) fitting the same --naive surveys, scaled.
Targets on 2 cores (issue 17): (1) under 30 s, (2) under 4 minutes.
"""

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sem_upgrade.engine import fit_model
from sem_upgrade.pipeline import bundled_paths
from sem_upgrade.power import _replication_seed, monte_carlo_power, questionnaire_design
from sem_upgrade.questionnaire import load_questionnaire


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--replications", type=int, default=1000)
    ap.add_argument("--naive", type=int, default=20)
    ap.add_argument("--no-grid", action="store_true")
    ap.add_argument("--no-lavaan", action="store_true")
    args = ap.parse_args()
    R = args.replications
    q = load_questionnaire(bundled_paths()[1])
    t0 = time.perf_counter()
    design = questionnaire_design(q)
    print(f"design (population covariance of the Likert items, population fit): {time.perf_counter() - t0:.2f} s")

    t0 = time.perf_counter()
    one = monte_carlo_power(design, [218], R, seed=1, workers=args.workers, progress=False)
    t_one = time.perf_counter() - t0
    print(f"{R} replications at N = 218, {args.workers} Dask workers (cluster start included): {t_one:.1f} s "
          f"[target < 30 s]; first task back after {one.settings['seconds_to_first_task']:.1f} s; "
          f"failed {one.hypotheses[0]['by_n'][0]['n_failed']}")
    t0 = time.perf_counter()
    local = monte_carlo_power(design, [218], R, seed=1, workers=0, progress=False)
    t_local = time.perf_counter() - t0
    print(f"{R} replications at N = 218, this process alone: {t_local:.1f} s "
          f"({1000 * t_local / R:.2f} ms per replication); identical to the cluster's: "
          f"{local.hypotheses == one.hypotheses}")

    if not args.no_grid:
        t0 = time.perf_counter()
        grid = monte_carlo_power(design, "100:400:50", R, seed=1, workers=args.workers, progress=False)
        t_grid = time.perf_counter() - t0
        print(f"grid 100:400:50 x {R} replications, {args.workers} Dask workers: {t_grid:.1f} s [target < 240 s]; "
              f"smallest N for every true effect: {grid.min_n_all}")

    # the naive loop: one full fit (semopy parse, start values, optimiser, standard errors) per survey
    surveys = [pd.DataFrame(design.draw(218, np.random.default_rng(_replication_seed(1, 218, r))),
                            columns=design.structure.observed) for r in range(args.naive)]
    t0 = time.perf_counter()
    for x in surveys:
        fit_model(q.structural_syntax(), x)
    t_naive = (time.perf_counter() - t0) / args.naive
    print(f"naive loop (fit_model per replication, one process): {t_naive:.3f} s each, "
          f"{t_naive * R:.0f} s for {R} (scaled from {args.naive}); engine speed-up "
          f"{t_naive * R / t_local:.1f}x in one process")

    if not args.no_lavaan and shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            for r, x in enumerate(surveys):
                x.to_csv(Path(tmp) / f"rep_{r:04d}.csv", index=False)
            out = subprocess.run(["Rscript", "benchmarks/lavaan_power_time.R", tmp], capture_output=True, text=True,
                                 check=True).stdout.strip()
        per = float(out.split()[-3])  # "... in T s, PER s each"
        print(out)
        print(f"lavaan, scaled to {R} replications on one core: {per * R:.0f} s; ratio lavaan / engine "
              f"(one process each): {per * R / t_local:.1f}x")


if __name__ == "__main__":
    main()
