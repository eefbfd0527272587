"""Every bundled questionnaire runs end to end on data simulated from its own population model.

The check is against the stated truth: at N = 600 every effect of |beta| >= .30 must be supported
(power is essentially 1 there) and no estimate may have the wrong sign for an effect of |beta| >= .15.
"""

from pathlib import Path

import pytest

from sem_upgrade import pipeline
from sem_upgrade.cli import main
from sem_upgrade.questionnaire import load_questionnaire
from sem_upgrade.simulate import population_model

QDIR = Path(__file__).parents[1] / "questionnaires"
FILES = sorted(QDIR.glob("*.yaml"))


def test_every_seed_has_a_questionnaire():
    names = {p.stem for p in FILES}
    assert names == {"liaoning_2012", "gvc_upgrading_2007", "global_local_nexus_2006",
                     "disembedding_innovation_2020", "disruptive_innovation_lockin"}


def test_liaoning_has_eleven_hypotheses_with_mediation():
    q = load_questionnaire(QDIR / "liaoning_2012.yaml")
    assert [h.id for h in q.hypotheses] == [f"H{i}" for i in range(1, 12)]
    assert sum(h.kind == "indirect" for h in q.hypotheses) >= 3
    assert all(set(c.wording[i]) == {"en", "zh"} for c in q.constructs.values() for i in c.items)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_end_to_end_on_simulated_data(path, tmp_path):
    survey = tmp_path / "survey.csv"
    assert main(["simulate", "-q", str(path), "--n", "600", "--seed", "3", "-o", str(survey)]) == 0
    res = pipeline.run(survey, path, tmp_path / "out", bootstrap=200, progress=False, formats=("md",))
    q = load_questionnaire(path)
    pop = population_model(q)
    assert res["n_used"] == 600 and res["admissibility"]["structural"]["converged"]
    hyp = res.table("hypotheses").set_index("id")
    assert list(hyp.index) == [h.id for h in q.hypotheses]
    for h in q.hypotheses:
        truth = pop.indirect(h.chain)
        row = hyp.loc[h.id]
        if h.kind == "path" and abs(truth) >= 0.30:
            assert row["supported"] == (truth * h.sign > 0), (h.id, truth, row.to_dict())
        if abs(truth) >= 0.15:
            assert row["std_estimate"] * truth > 0, (h.id, truth, row["std_estimate"])
    assert (tmp_path / "out" / "report.md").exists()
