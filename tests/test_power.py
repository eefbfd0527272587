"""Monte Carlo power: closed forms, binomial intervals, semTools' RMSEA power, Dask determinism, resume.

References:
* RMSEA power and sample size: ``semTools::findRMSEApower`` / ``findRMSEAsamplesize`` values stored in
  tests/reference/power.json by tests/reference/r/power.R (each value with its R call).
* Power of a single-indicator path: the z-test's closed form 1 - Phi(z - |b| sqrt(N)/sigma)
  + Phi(-z - |b| sqrt(N)/sigma), sigma = sd(residual of M) / sd(X).
* Type-I error and coverage: the binomial 99% interval around alpha and around .95.
* Each replication's estimates: a full ML fit of the same drawn data (``fit_model``, itself
  validated against lavaan in tests/test_estimation.py).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from sem_upgrade.cli import main
from sem_upgrade.errors import SemUpgradeError
from sem_upgrade.engine import fit_model
from sem_upgrade.pipeline import bundled_paths
from sem_upgrade.power import (
    _bvn_upper,
    _likert_covariance,
    _replication_seed,
    monte_carlo_power,
    normal_design,
    power,
    questionnaire_design,
    rmsea_power,
    rmsea_sample_size,
    run_task,
)
from sem_upgrade.questionnaire import Hypothesis, load_questionnaire
from sem_upgrade.simulate import item_arrays, population_model

ROOT = Path(__file__).resolve().parents[1]
REF = json.loads((ROOT / "tests" / "reference" / "power.json").read_text())

# X -> M -> Y with single indicators (measurement error 0): M = b_mx X + e, Y = b_ym M + 0 X + e
B_MX, B_YM = 0.18, 0.30
SYNTAX = "X =~ x\nM =~ m\nY =~ y\nx ~~ 0*x\nm ~~ 0*m\ny ~~ 0*y\nM ~ X\nY ~ M + X"


def _sigma():
    s = np.eye(3)
    s[0, 1] = s[1, 0] = B_MX
    s[1, 2] = s[2, 1] = B_YM
    s[0, 2] = s[2, 0] = B_YM * B_MX
    return s


HYPS = [Hypothesis("H1", "path", ("X", "M"), 1), Hypothesis("H2", "path", ("X", "Y"), 1),
        Hypothesis("H3", "indirect", ("X", "M", "Y"), 1)]


@pytest.fixture(scope="module")
def mediation():
    return normal_design(SYNTAX, _sigma(), ["x", "m", "y"], HYPS)


@pytest.fixture(scope="module")
def mediation_run(mediation):
    # 2,000 replications at N = 150, in this process (no cluster)
    return monte_carlo_power(mediation, [150], 2000, seed=20260117, workers=0, progress=False)


@pytest.fixture(scope="module")
def liaoning():
    return load_questionnaire(bundled_paths()[1])


def _binomial_99(p, n):
    lo, hi = stats.binom.interval(0.99, n, p)
    return lo / n, hi / n


# ---------------------------------------------------------------- analytic RMSEA power
@pytest.mark.parametrize("case", REF["rmsea_power"], ids=lambda c: f"df{c['df']}-n{c['n']}")
def test_rmsea_power_equals_semtools(case):
    # semTools::findRMSEApower(rmsea0 = .05, rmseaA = .08 / .01, df, n, alpha = .05), see case["call_close"]
    assert_allclose(rmsea_power(0.05, 0.08, case["df"], case["n"], 0.05), case["power_close"], rtol=1e-8, atol=1e-12)
    assert_allclose(rmsea_power(0.05, 0.01, case["df"], case["n"], 0.05), case["power_not_close"], rtol=1e-8,
                    atol=1e-12)


@pytest.mark.parametrize("case", REF["rmsea_sample_size"], ids=lambda c: f"df{c['df']}-p{c['power']}")
def test_rmsea_sample_size_equals_semtools(case):
    # semTools::findRMSEAsamplesize(rmsea0 = .05, rmseaA = .08 / .01, df, power, alpha = .05): exact integers
    assert rmsea_sample_size(0.05, 0.08, case["df"], case["power"], 0.05) == case["n_close"]
    assert rmsea_sample_size(0.05, 0.01, case["df"], case["power"], 0.05) == case["n_not_close"]


# ---------------------------------------------------------------- Monte Carlo: closed forms and intervals
def test_power_of_a_single_indicator_path_equals_the_closed_form(mediation_run):
    n, r = 150, 2000
    z = stats.norm.isf(0.025)
    shift = B_MX * np.sqrt(n) / np.sqrt(1 - B_MX ** 2)  # |b| sqrt(N) / sigma, sd(X) = 1
    analytic = 1 - stats.norm.cdf(z - shift) + stats.norm.cdf(-z - shift)
    row = mediation_run.hypotheses[0]["by_n"][0]
    assert row["n_ok"] == r
    mc_se = np.sqrt(analytic * (1 - analytic) / r)
    assert_allclose(row["rate"], analytic, atol=2.576 * mc_se)  # within its 99% Monte Carlo error
    assert row["rate_ci_lower"] < row["rate"] < row["rate_ci_upper"]


def test_type_one_error_of_a_true_zero_path_within_binomial_interval(mediation_run):
    h = mediation_run.hypotheses[1]
    assert h["truth"] == 0 and h["min_n"] is None
    lo, hi = _binomial_99(0.05, 2000)
    assert lo <= h["by_n"][0]["rate"] <= hi


@pytest.mark.parametrize("k", [0, 1, 2])
def test_coverage_of_95_percent_intervals_within_monte_carlo_error(mediation_run, k):
    lo, hi = _binomial_99(0.95, 2000)
    assert lo <= mediation_run.hypotheses[k]["by_n"][0]["coverage"] <= hi


def test_mean_estimates_are_unbiased_and_indirect_power_between_its_links(mediation_run):
    h1, h2, h3 = mediation_run.hypotheses
    assert_allclose(h1["truth"], B_MX, rtol=1e-9)
    assert_allclose(h3["truth"], B_MX * B_YM, rtol=1e-9)
    # the standardized estimate of a regression has sampling sd about sqrt((1 - b^2)/N): 0.08; the
    # mean of 2000 is within 4 of its standard errors (0.0072) of the truth
    for h in (h1, h2, h3):
        assert abs(h["by_n"][0]["bias"]) < 0.0072
    # a product is significant less often than its weaker link
    assert h3["by_n"][0]["rate"] < h1["by_n"][0]["rate"]


@pytest.mark.parametrize("estimator, missing_rate", [("ml", 0.0), ("ml", 0.02), ("fiml", 0.05)])
def test_replication_estimates_equal_a_full_fit_of_the_same_draw(liaoning, estimator, missing_rate):
    import pandas as pd

    design = questionnaire_design(liaoning, estimator=estimator, missing_rate=missing_rate)
    reps = range(3, 5)
    out = run_task(design, 7, 120, reps)
    assert out["ok"].all()
    for b, r in enumerate(reps):
        x = design.draw(120, np.random.default_rng(_replication_seed(7, 120, r)))
        fit = fit_model(liaoning.structural_syntax(), pd.DataFrame(x, columns=design.structure.observed),
                        missing="fiml" if estimator == "fiml" else "listwise")
        t = fit.table()
        for j, h in enumerate(design.hypotheses):
            if h.kind != "path":
                continue
            a, c = h.effect.split(" -> ")
            row = t[(t["op"] == "~") & (t["lhs"] == c) & (t["rhs"] == a)].iloc[0]
            assert_allclose(out["estimate"][b, j], row["estimate"], atol=1e-6)
            assert_allclose(out["std_estimate"][b, j], row["std_estimate"], atol=1e-6)
            assert out["rejected"][b, j] == (row["pvalue"] < 0.05)


def test_likert_covariance_is_exact():
    # P(Y > h, Z > k) against scipy's bivariate normal CDF at (-h, -k)
    h = np.array([-1.0, 0.3, 1.2])
    k = np.array([0.5, -0.7, 0.0])
    for rho in (-0.6, 0.2, 0.8):
        ref = stats.multivariate_normal([0, 0], [[1, rho], [rho, 1]]).cdf(np.column_stack([-h, -k]))
        assert_allclose(_bvn_upper(h, k, rho), ref, atol=1e-7)
    q = load_questionnaire(bundled_paths()[1])
    pop = population_model(q)
    arrays = item_arrays(q, pop)
    cov = _likert_covariance(pop, arrays)
    # variance of one item from its category probabilities (differences of normal CDFs)
    tau = pop.thresholds
    p = np.diff(np.concatenate([[0.0], stats.norm.cdf(tau), [1.0]]))
    cats = np.arange(len(p))
    assert_allclose(cov[0, 0], p @ cats ** 2 - (p @ cats) ** 2, rtol=1e-12)
    # a covariance from the category cells: P(x_a = i, x_b = j) by rectangle probabilities
    rho = arrays[0][0] * arrays[0][1]
    edges = np.concatenate([[-12.0], tau, [12.0]])
    F = stats.multivariate_normal([0, 0], [[1, rho], [rho, 1]])
    grid = np.array([[F.cdf([u, v]) for v in edges] for u in edges])
    cell = grid[1:, 1:] - grid[:-1, 1:] - grid[1:, :-1] + grid[:-1, :-1]
    mean = p @ cats
    assert_allclose(cov[0, 1], cats @ cell @ cats - mean * mean, atol=1e-6)


# ---------------------------------------------------------------- Dask: identical whatever the workers; resume
def test_two_dask_workers_equal_one_process(mediation, tmp_path):
    local = monte_carlo_power(mediation, "60,90", 250, seed=3, workers=0, progress=False, outdir=tmp_path / "a")
    dask2 = monte_carlo_power(mediation, "60,90", 250, seed=3, workers=2, progress=False, outdir=tmp_path / "b")
    assert dask2.hypotheses == local.hypotheses  # bit for bit: every float compared with ==
    files = sorted(p.name for p in (tmp_path / "a" / "power_tasks").glob("*.npz"))
    assert files == sorted(p.name for p in (tmp_path / "b" / "power_tasks").glob("*.npz")) and len(files) == 6
    for name in files:
        with np.load(tmp_path / "a" / "power_tasks" / name) as a, np.load(tmp_path / "b" / "power_tasks" / name) as b:
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key])


def test_killed_then_resumed_run_equals_an_uninterrupted_one(tmp_path, liaoning):
    # 2 sizes x 200 replications = 4 tasks of 100; the run on 2 Dask workers is killed once the first
    # task is kept, then resumed (here in this process: the numbers do not depend on the workers)
    args = ["--n", "100,150", "--replications", "200", "--seed", "9", "--quiet"]
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "sem_upgrade", "power", *args, "--workers", "2", "-o", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    tasks = out / "power_tasks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(tasks.glob("*.npz")) and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its Dask workers, mid-way
    proc.wait()
    done = len(list(tasks.glob("*.npz")))
    assert 1 <= done < 4 and not (out / "power.json").exists()
    assert main(["power", *args, "--workers", "0", "--resume", "-o", str(out)]) == 0
    run = json.loads((out / "power_run.json").read_text())
    assert run["tasks_resumed"] == done and run["tasks_run"] == 4 - done
    power(liaoning, n="100,150", replications=200, seed=9, workers=0, progress=False, outdir=tmp_path / "whole")
    assert (out / "power.json").read_bytes() == (tmp_path / "whole" / "power.json").read_bytes()


def test_resume_with_other_settings_is_refused(tmp_path, mediation):
    monte_carlo_power(mediation, [60], 100, seed=1, workers=0, progress=False, outdir=tmp_path)
    with pytest.raises(SemUpgradeError, match="seed"):
        monte_carlo_power(mediation, [60], 100, seed=2, workers=0, progress=False, outdir=tmp_path, resume=True)


# ---------------------------------------------------------------- outputs
def test_power_json_schema_and_reports(tmp_path, liaoning):
    res = power(liaoning, n="150,250", replications=100, seed=4, workers=0, progress=False, outdir=tmp_path)
    doc = json.loads((tmp_path / "power.json").read_text())
    assert set(doc) == {"grid", "replications", "seed", "hypotheses", "min_n_all", "rmsea_power"}  # issue 17
    assert doc["grid"] == [150, 250] and doc["replications"] == 100 and doc["seed"] == 4
    for h in doc["hypotheses"]:
        assert set(h) == {"id", "effect", "kind", "truth", "by_n", "min_n"}
        for row in h["by_n"]:
            assert set(row) == {"n", "rate", "rate_ci_lower", "rate_ci_upper", "mean_estimate", "bias", "coverage",
                                "n_ok", "n_failed", "n_inadmissible"}
            assert row["n_ok"] + row["n_failed"] == 100
    assert set(doc["rmsea_power"]) == {"df", "by_n", "n_close", "n_not_close"}
    # the model's df (276 moments - 56 free parameters) and semTools' sample sizes for df = 220
    ref = next(c for c in REF["rmsea_sample_size"] if c["df"] == 220 and c["power"] == 0.8)
    assert doc["rmsea_power"]["df"] == 220
    assert doc["rmsea_power"]["n_close"] == ref["n_close"] and doc["rmsea_power"]["n_not_close"] == ref["n_not_close"]
    truths = {h["id"]: h["truth"] for h in doc["hypotheses"]}
    assert_allclose([truths["H1"], truths["H4"], truths["H8"]], [0.30, 0.0, 0.30 * 0.25], atol=1e-12)
    assert json.loads((tmp_path / "power_run.json").read_text())["alpha"] == 0.05
    for name in ("power_curve.png", "power.html", "power.md"):
        assert (tmp_path / name).stat().st_size > 500
    md = (tmp_path / "power.md").read_text()
    assert "H10" in md and "MacCallum" in md
    table = res.table()
    assert len(table) == 2 * len(liaoning.hypotheses)


# ---------------------------------------------------------------- bad input: one line, exit 2
def _no_population(tmp_path):
    text = (bundled_paths()[1]).read_text(encoding="utf-8")
    path = tmp_path / "nopop.yaml"
    path.write_text(text[: text.index("\npopulation:")] + "\n", encoding="utf-8")
    return path


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["no_population", "n_below_parameters", "replications_0", "bad_grid", "scheduler"])
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys):
    args = ["power", "--n", "100:200:100", "--replications", "10", "-o", str(tmp_path / "out"), "--quiet"]
    expect = {"no_population": "population", "n_below_parameters": "free parameters",
              "replications_0": "--replications", "bad_grid": "--n", "scheduler": "--scheduler"}[case]
    if case == "no_population":
        args += ["-q", str(_no_population(tmp_path))]
    elif case == "n_below_parameters":
        args[2] = "40:100:20"  # the Liaoning model has 56 free parameters
    elif case == "replications_0":
        args[4] = "0"
    elif case == "bad_grid":
        args[2] = "100:abc"
    else:
        address = f"tcp://127.0.0.1:{_free_port()}"
        args += ["--scheduler", address, "--connect-timeout", "2"]
    t0 = time.monotonic()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expect in err, err
    if case == "scheduler":
        assert address in err and "2 s" in err
        assert time.monotonic() - t0 < 30


def test_bootstrap_inside_a_replication_equals_the_bootstrap_of_its_fit(mediation):
    # --indirect bootstrap: the products of a replication's resamples are bootstrap()'s draws of the
    # same resamples (same generator), started from a full fit of the same data
    import pandas as pd

    from sem_upgrade.bootstrap import bootstrap
    from sem_upgrade.power import _bootstrap_products

    x = mediation.draw(150, np.random.default_rng(5))
    fit = fit_model(SYNTAX, pd.DataFrame(x, columns=mediation.structure.observed))
    boot = bootstrap(fit, pd.DataFrame(x, columns=mediation.structure.observed), 300, np.random.default_rng(6),
                     indirect={"H3": ("X", "M", "Y")}, n_jobs=1, progress=False)
    design = normal_design(SYNTAX, _sigma(), ["x", "m", "y"], HYPS, indirect="bootstrap", bootstrap=300)
    theta = np.array([fit.theta[fit.structure.table.set_index(["lhs", "op", "rhs"]).loc[key, "index"]]
                      for key in design.structure.table[design.structure.table["free"]]
                      .sort_values("index")[["lhs", "op", "rhs"]].itertuples(index=False, name=None)])
    prods = _bootstrap_products(design, [design.hypotheses[2]], theta, x, np.random.default_rng(6))
    assert_allclose(prods[0], boot.draws["indirect:H3"].to_numpy(), atol=1e-7)
