"""Population model, simulated surveys and the recovery study."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sem_upgrade.errors import SemUpgradeError
from sem_upgrade.pipeline import bundled_paths
from sem_upgrade.questionnaire import load_questionnaire, parse_questionnaire
from sem_upgrade.simulate import population_model, recovery_study, simulate_survey


@pytest.fixture(scope="module")
def liaoning():
    return load_questionnaire(bundled_paths()[1])


def test_population_latent_correlations_closed_form(liaoning):
    pop = population_model(liaoning)
    names = pop.constructs
    phi = pop.phi
    i = {c: k for k, c in enumerate(names)}
    assert_allclose(np.diag(phi), 1.0, atol=1e-12)
    # KAQ = .30 NSC + .25 NHE + .20 TST + zeta; R2 = b' Phi_x b with r(NSC,NHE)=.35, r(NSC,TST)=.30, r(NHE,TST)=.20
    r2 = .3**2 + .25**2 + .2**2 + 2 * (.3 * .25 * .35 + .3 * .2 * .30 + .25 * .2 * .20)
    assert_allclose(pop.residual_var["KAQ"], 1 - r2, atol=1e-12)
    # cov(KAQ, NSC) = .30 + .25 * .35 + .20 * .30
    assert_allclose(phi[i["KAQ"], i["NSC"]], 0.30 + 0.25 * 0.35 + 0.20 * 0.30, atol=1e-12)
    assert pop.indirect(("NSC", "KAQ", "UPG")) == pytest.approx(0.30 * 0.25)


def test_simulated_survey_shape_scale_reverse_and_determinism(liaoning):
    a = simulate_survey(liaoning, 500, seed=7)
    b = simulate_survey(liaoning, 500, seed=7)
    assert a.equals(b)
    assert list(a.columns) == ["firm_id"] + liaoning.items
    items = a[liaoning.items]
    assert items.isin(range(1, 8)).all().all()
    raw = simulate_survey(liaoning, 500, seed=7, reverse=False)
    assert (a["nhe4"] == 8 - raw["nhe4"]).all()
    assert (a["nhe1"] == raw["nhe1"]).all()
    miss = simulate_survey(liaoning, 2000, seed=3, missing_rate=0.1)[liaoning.items]
    assert 0.09 < miss.isna().mean().mean() < 0.11


def test_bundled_survey_is_the_documented_draw(liaoning, tmp_path):
    from sem_upgrade.cli import main

    out = tmp_path / "s.csv"
    assert main(["simulate", "--n", "218", "--seed", "2012", "-o", str(out)]) == 0
    assert out.read_bytes() == bundled_paths()[0].read_bytes()


def test_recovery_study_bias_small(liaoning):
    rep = recovery_study(liaoning, n=218, replications=8, seed=5, progress=False)
    assert rep["n_ok"] == 8
    for row in rep["paths"]:
        assert abs(row["bias"]) < 0.05, row
    rates = {h["id"]: h for h in rep["hypotheses"]}
    assert rates["H4"]["kind_of_rate"] == "type I error" and rates["H1"]["kind_of_rate"] == "power"
    assert rates["H5"]["supported_rate"] == 1.0  # beta = .55 at N = 218: power is essentially 1


@pytest.mark.parametrize("pop,msg", [
    ("loadings: {a1: .7, a2: .7}\n  thresholds: [-1, 0, 1, 2]", "population.loadings: no loading for item 'b1'"),
    ("loadings: {a1: .7, a2: 1.2, b1: .7, b2: .7}\n  thresholds: [-1, 0, 1, 2]", "population.loadings.a2: 1.2 is not"),
    ("loadings: {a1: .7, a2: .7, b1: .7, b2: .7}\n  thresholds: [-1, 0, 1]", "population.thresholds: needs 4 increasing"),
    ("loadings: {a1: .7, a2: .7, b1: .7, b2: .7}\n  paths: {B ~ A: 1.1}\n  thresholds: [-1, 0, 1, 2]",
     "population.paths: the paths into B explain 1.210"),
])
def test_population_mistakes_named(pop, msg):
    q = parse_questionnaire("scale: [1, 5]\nconstructs:\n  A: {items: [a1, a2]}\n  B: {items: [b1, b2]}\n"
                            f"paths: [B ~ A]\npopulation:\n  {pop}\n", source="q.yaml")
    with pytest.raises(SemUpgradeError) as err:
        simulate_survey(q, 10, seed=1)
    assert str(err.value).startswith(f"q.yaml: {msg}"), str(err.value)
