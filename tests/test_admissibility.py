"""Admissibility of the structural model and hints for forgotten reverse keys.

The data are simulated in the test. The limits are the published ones named in
``structural.ADMISSIBILITY_LIMITS`` (Belsley, Kuh & Welsch 1980: condition index 30; Henseler et al.
2015: HTMT .90); the checks on std paths and R-squared follow from their definitions (a
standardized path beyond 1 or R-squared of 1 needs a residual variance at or below 0).
"""

import numpy as np
import pandas as pd
import pytest

from sem_upgrade import run, structural


def _survey(tmp_path, rho, n=300, seed=3, reverse_item=False):
    """Two predictor constructs with latent correlation rho, one outcome, 3 seven-point items each."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, rho], [rho, 1.0]])
    f = rng.multivariate_normal([0, 0], cov, size=n)
    y = 0.4 * f[:, 0] + 0.3 * f[:, 1] + rng.normal(0, 0.7, n)
    cols = {}
    for name, lat in (("a", f[:, 0]), ("b", f[:, 1]), ("y", y)):
        for k in range(1, 4):
            raw = 0.8 * lat + rng.normal(0, 0.6, n)
            cols[f"{name}{k}"] = np.clip(np.round(4 + 1.2 * raw), 1, 7).astype(int)
    if reverse_item:  # the respondent answered a3 reverse-keyed; the questionnaire forgets it
        cols["a3"] = 8 - cols["a3"]
    pd.DataFrame(cols).to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "q.yaml").write_text(
        "scale: [1, 7]\nconstructs:\n  A: {items: [a1, a2, a3]}\n  B: {items: [b1, b2, b3]}\n"
        "  Y: {items: [y1, y2, y3]}\npaths:\n  - Y ~ A + B\n"
        "hypotheses:\n  H1: {path: A -> Y, sign: +}\n  H2: {path: B -> Y, sign: +}\n", encoding="utf-8")
    return tmp_path / "s.csv", tmp_path / "q.yaml"


def test_collinear_predictors_make_their_hypotheses_untested(tmp_path):
    data, q = _survey(tmp_path, rho=0.995)
    res = run(data, q, bootstrap=0, progress=False)
    adm = res["admissibility"]["structural"]
    assert adm["admissible"] is False
    # a latent correlation near .995 drives the two standardized paths beyond +-1 (2.12 and -1.39
    # on this seed) and the HTMT to 1.00
    assert sum("beyond +-1" in p for p in adm["problems"]) == 2
    assert any("not distinct: HTMT" in p for p in adm["problems"])
    assert set(adm["paths"]) == {"A -> Y", "B -> Y"}
    hyp = res.table("hypotheses").set_index("id")
    for hid in ("H1", "H2"):
        assert not hyp.loc[hid, "supported"]
        assert hyp.loc[hid, "reason"].startswith("not tested: the structural solution is not admissible")
    assert any("not distinct: HTMT" in w for w in res["warnings"])


def test_distinct_predictors_stay_admissible(tmp_path):
    data, q = _survey(tmp_path, rho=0.3)
    res = run(data, q, bootstrap=0, progress=False)
    adm = res["admissibility"]["structural"]
    assert adm["admissible"] is True and adm["paths"] == {}
    hyp = res.table("hypotheses").set_index("id")
    assert hyp["supported"].all()


class _Fit:
    """A stand-in with just what structural_admissibility reads (a closed-form case)."""

    def __init__(self, std_path, r2, phi):
        self._t = pd.DataFrame({"lhs": ["Y", "Y"], "op": ["~", "~"], "rhs": ["A", "B"],
                                "estimate": [1.0, -1.0], "std_estimate": std_path})
        self._r2, self.phi = r2, phi
        self.structure = type("S", (), {"inner": ["A", "B", "Y"]})()

    def table(self):
        return self._t

    def r2(self):
        return self._r2


@pytest.mark.parametrize("std_path, r2, rho, expected", [
    ([1.02, -0.3], 0.5, 0.2, {"A -> Y"}),          # a standardized path beyond 1
    ([0.6, 0.3], 0.95, 0.2, {"A -> Y", "B -> Y"}),  # R-squared at the limit
    ([0.6, 0.3], 0.5, 0.9989, {"A -> Y", "B -> Y"}),  # condition index sqrt(1.9989/0.0011) = 42.6 > 30
    ([0.6, 0.3], 0.5, 0.9977, set()),  # condition index sqrt(1.9977/0.0023) = 29.5 <= 30
    ([1.0, 0.3], 0.9499, 0.2, set()),  # exactly 1 and just under .95 are admissible
])
def test_limits_at_their_published_values(std_path, r2, rho, expected):
    phi = np.array([[1.0, rho, 0], [rho, 1.0, 0], [0, 0, 1.0]])
    adm = structural.structural_admissibility(_Fit(std_path, {"Y": r2}, phi), ["A", "B", "Y"])
    assert set(adm["paths"]) == expected


def test_undeclared_reverse_item_gets_a_hint_and_fails_its_construct(tmp_path):
    data, q = _survey(tmp_path, rho=0.3, reverse_item=True)
    res = run(data, q, bootstrap=0, progress=False)
    v = res["verdicts"]["reliability"]
    assert v["A"]["reverse_key_suspects"] == ["a3"]
    assert v["A"]["cr"] is False and v["A"]["ave"] is False and v["A"]["alpha"] is False
    assert v["B"]["reverse_key_suspects"] == [] and v["B"]["cr"] is True
    hints = [w for w in res["warnings"] if "forget to declare it under `reverse`" in w]
    assert len(hints) == 1 and hints[0].startswith("item a3 of A")
    loading = res.table("loadings").set_index("item").loc["a3", "std_loading"]
    assert loading < 0


def test_declaring_the_reverse_item_removes_the_hint(tmp_path):
    data, q = _survey(tmp_path, rho=0.3, reverse_item=True)
    q.write_text(q.read_text().replace("A: {items: [a1, a2, a3]}", "A: {items: [a1, a2, a3], reverse: [a3]}"))
    res = run(data, q, bootstrap=0, progress=False)
    assert res["verdicts"]["reliability"]["A"]["reverse_key_suspects"] == []
    assert not [w for w in res["warnings"] if "reverse" in w]


def test_both_omegas_equal_semtools_and_conventions_are_stated():
    """omega (obs.var = FALSE) and omega_obs (semTools' default) against compRelSEM on the bundled
    survey (tests/reference/omega.json, made by tests/reference/r/omega.R)."""
    import json

    from numpy.testing import assert_allclose

    from references import REF

    ref = json.loads((REF / "omega.json").read_text())["liaoning"]
    res = run(bootstrap=0, progress=False)
    # lavaan stops ~1e-6 short of the optimum; an N - 1 divisor in S would move omega_obs by ~4e-3
    for c, value in ref["omega_obs"].items():
        assert_allclose(res["reliability"][c]["omega_obs"], value, rtol=0, atol=1e-5, err_msg=c)
        assert_allclose(res["reliability"][c]["omega"], ref["omega_model"][c], rtol=0, atol=1e-5, err_msg=c)
        assert abs(res["reliability"][c]["omega_obs"] - res["reliability"][c]["omega"]) < 0.01
    conv = res["conventions"]
    assert "obs.var = FALSE" in conv["omega"] and "classic HTMT" in conv["htmt"]


def test_modification_indices_once_when_saturated_and_fixed_residuals_marked(tmp_path):
    from sem_upgrade.pipeline import bundled_paths

    src, _ = bundled_paths()
    q = tmp_path / "q.yaml"
    # C ~ A + B with A, B, C the only constructs: the structural model is the CFA reparametrised
    q.write_text("scale: [1, 7]\nconstructs:\n  A: {items: [nsc1, nsc2, nsc3]}\n  B: {items: [upg1]}\n"
                 "  C: {items: [kaq1, kaq2, kaq3]}\npaths: [C ~ A + B]\n", encoding="utf-8")
    res = run(src, q, bootstrap=0, progress=False)
    mi = res["modification_indices"]
    assert "structural" not in mi and "saturated" in mi["structural_note"]
    assert res["fit"]["structural"]["df"] == res["fit"]["measurement"]["df"]
    table = mi["measurement"]
    on_single = table[(table["rhs"] == "upg1") | (table["lhs"] == "upg1")]
    assert len(on_single) and on_single["fixed_residual"].all()
    assert not table.loc[~table.index.isin(on_single.index), "fixed_residual"].any()
    # a model that is not saturated keeps its own table
    q.write_text(q.read_text().replace("paths: [C ~ A + B]", "paths: [C ~ A, B ~ C]"), encoding="utf-8")
    res = run(src, q, bootstrap=0, progress=False)
    assert "structural" in res["modification_indices"]
