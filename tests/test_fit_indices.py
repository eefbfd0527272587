"""Fit-index formulas and verdict cut-offs against lavaan's own numbers and the published cut-offs.

Expected values: the stored lavaan 0.6.14 ``fitMeasures()`` of every reference case
(tests/references.py: FIT_CASES), fed to the pure formulas; cut-offs from the papers they cite.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sem_upgrade import fit_indices as fi
from sem_upgrade.engine.fit import fit_model
from sem_upgrade.fit_indices import CUTOFFS, fit_measures, verdicts
from sem_upgrade.reliability import THRESHOLDS

from references import FIT_CASES, ML, load_csv

# formulas on lavaan's own inputs reproduce lavaan's outputs to rounding
FORMULA = dict(rtol=1e-12, atol=1e-12)
LISTWISE = [c for c in FIT_CASES if c.missing == "listwise"]


def _rows(case, e):
    """lavaan's ntotal: the complete rows of the model's items (listwise)."""
    items = sorted({t.strip() for line in case.model.splitlines() if "=~" in line
                    for t in line.split("=~")[1].split("+")})
    n = len(load_csv(case.data)[items].dropna())
    assert n == e.get("ntotal", n)
    return n


def _n(case, e):
    """lavaan's N in RMSEA/ECVI: N under likelihood = "normal", N - 1 under "wishart"."""
    n = _rows(case, e)
    return n - 1 if case.likelihood == "wishart" else n


@pytest.mark.parametrize("case", LISTWISE, ids=[c.id for c in LISTWISE])
def test_pure_formulas_on_lavaan_inputs_give_lavaan_outputs(case):
    e = case.expected()
    chisq, df, cb, dfb = e["chisq"], e["df"], e["baseline_chisq"], e["baseline_df"]
    n = _n(case, e)
    assert_allclose(fi.cfi(chisq, df, cb, dfb), e["cfi"], **FORMULA)
    assert_allclose(fi.tli(chisq, df, cb, dfb), e["tli"], **FORMULA)
    assert_allclose(fi.nfi(chisq, cb), e["nfi"], **FORMULA)
    assert_allclose(fi.rfi(chisq, df, cb, dfb), e["rfi"], **FORMULA)
    assert_allclose(fi.ifi(chisq, df, cb), e["ifi"], **FORMULA)
    # RMSEA = sqrt(max(chisq - df, 0) / (df N)), lavaan "always using N" (N - 1 under wishart)
    assert_allclose(fi.rmsea(chisq, df, n), e["rmsea"], **FORMULA)
    lo, hi = fi.rmsea_ci(chisq, df, n)
    assert_allclose([lo, hi], [e["rmsea_ci_lower"], e["rmsea_ci_upper"]], rtol=0, atol=1e-8)
    assert_allclose(fi.rmsea_pvalue(chisq, df, n), e["rmsea_pvalue"], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("case", LISTWISE, ids=[c.id for c in LISTWISE])
def test_information_criteria_on_lavaan_loglik(case):
    # AIC = -2 logl + 2 npar, BIC = -2 logl + log(N) npar (N, never N - 1), on lavaan's logl and npar
    e = case.expected()
    n = _rows(case, e)
    got = fi.information_criteria(e["logl"], e["npar"], n)
    assert_allclose(got["aic"], e["aic"], **FORMULA)
    assert_allclose(got["bic"], e["bic"], **FORMULA)
    if "bic2" in e:
        assert_allclose(got["bic2"], e["bic2"], **FORMULA)


@pytest.mark.parametrize("case", FIT_CASES, ids=[c.id for c in FIT_CASES])
def test_pcfi_and_cmin_df_from_lavaan_values(case):
    # lavaan has no pcfi or cmin_df; both are closed forms of stored lavaan values:
    # PCFI = (df / df_baseline) CFI (James, Mulaik & Brett 1982; AMOS), CMIN/DF = chisq / df.
    e = case.expected()
    got = fit_measures(fit_model(case.model, load_csv(case.data), missing=case.missing,
                                 likelihood=case.likelihood))
    assert_allclose(got["pcfi"], e["df"] / e["baseline_df"] * e["cfi"], **ML)
    assert_allclose(got["pnfi"], e["df"] / e["baseline_df"] * e["nfi"], **ML)
    assert_allclose(got["cmin_df"], e["chisq"] / e["df"], rtol=1e-8)


def test_srmr_uses_sample_standard_deviations():
    # Bentler's SRMR: residuals scaled by sqrt(s_ii s_jj) of the SAMPLE variances. Closed form
    # on a 2 x 2 case: S = [[4, 2], [2, 1]], Sigma = [[2, 1], [1, 2]] -> standardized residuals
    # (4-2)/4, (2-1)/2, (1-2)/1 = .5, .5, -1 -> SRMR = sqrt((.25 + .25 + 1) / 3).
    S = np.array([[4.0, 2.0], [2.0, 1.0]])
    sigma = np.array([[2.0, 1.0], [1.0, 2.0]])
    assert_allclose(fi.srmr(S, sigma), np.sqrt(1.5 / 3), **FORMULA)
    assert_allclose(fi.rmr(S, sigma), np.sqrt((4 + 1 + 1) / 3), **FORMULA)


# ---------------------------------------------------------------- published cut-offs
def test_cutoffs_are_the_published_values():
    # Hu & Bentler (1999, Struct. Equ. Modeling 6:1-55), p. 27: CFI, TLI >= .95, RMSEA <= .06,
    # SRMR <= .08; Browne & Cudeck (1993): RMSEA < .08 acceptable; Bentler & Bonett (1980): NFI .90.
    assert CUTOFFS["cfi"][:2] == (">=", 0.95) and "Hu & Bentler (1999)" in CUTOFFS["cfi"][2]
    assert CUTOFFS["tli"][:2] == (">=", 0.95) and "Hu & Bentler (1999)" in CUTOFFS["tli"][2]
    assert CUTOFFS["rmsea"][:2] == ("<=", 0.06) and "Hu & Bentler (1999)" in CUTOFFS["rmsea"][2]
    assert CUTOFFS["srmr"][:2] == ("<=", 0.08) and "Hu & Bentler (1999)" in CUTOFFS["srmr"][2]
    assert CUTOFFS["nfi"][:2] == (">=", 0.90)
    assert CUTOFFS["cmin_df"][:2] == ("<", 3.0)
    # Nunnally (1978): alpha .70; Fornell & Larcker (1981): AVE .50, CR .70 (as Hair et al. 2019);
    # Henseler, Ringle & Sarstedt (2015): HTMT .85 / .90; Kaiser (1974): KMO .60 (mediocre);
    # Podsakoff et al. (2003): a single factor explaining most (> 50%) of the variance.
    assert THRESHOLDS["alpha"] == (0.70, "Nunnally (1978)")
    assert THRESHOLDS["ave"][0] == 0.50 and "Fornell & Larcker (1981)" in THRESHOLDS["ave"][1]
    assert THRESHOLDS["cr"][0] == 0.70 and "Fornell & Larcker (1981)" in THRESHOLDS["cr"][1]
    assert THRESHOLDS["htmt_strict"][0] == 0.85 and THRESHOLDS["htmt_liberal"][0] == 0.90
    assert THRESHOLDS["kmo"][0] == 0.60 and THRESHOLDS["harman"][0] == 0.50


def _verdict(**measures):
    return {r["index"]: r["verdict"] for r in verdicts(measures)}


@pytest.mark.parametrize("value,expected", [(0.0, "good"), (0.05, "good"), (0.06, "good"), (0.061, "acceptable"),
                                            (0.08, "acceptable"), (0.081, "poor"), (0.15, "poor")])
def test_rmsea_verdict_direction(value, expected):
    # small RMSEA is good: <= .06 good (Hu & Bentler 1999), <= .08 acceptable (Browne & Cudeck 1993)
    assert _verdict(rmsea=value)["rmsea"] == expected


@pytest.mark.parametrize("index,good,poor", [("cfi", 0.95, 0.949), ("tli", 0.96, 0.90), ("srmr", 0.08, 0.081),
                                             ("nfi", 0.90, 0.89), ("cmin_df", 2.9, 3.0), ("pvalue", 0.06, 0.05),
                                             ("gfi", 0.90, 0.89), ("pcfi", 0.50, 0.49)])
def test_verdict_on_each_side_of_the_cutoff(index, good, poor):
    assert _verdict(**{index: good})[index] == "good"
    assert _verdict(**{index: poor})[index] == "poor"


def test_verdicts_on_lavaan_holzinger_swineford():
    # lavaan: CFI .931 and TLI .896 (< .95: poor), RMSEA .092 (> .08: poor), SRMR .065 (good)
    e = next(c for c in FIT_CASES if c.id == "hs_ml").expected()
    v = _verdict(**e)
    assert (v["cfi"], v["tli"], v["rmsea"], v["srmr"]) == ("poor", "poor", "poor", "good")
    assert _verdict(valid=False, cfi=0.99)["cfi"].startswith("not valid")
    assert _verdict(cfi=float("nan"))["cfi"] == "not available"
