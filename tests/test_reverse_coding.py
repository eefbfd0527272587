"""Reverse-keyed items are recoded as min + max - x (closed form), also on scales that do not
start at 1 (a 0-6 scale, where max + 1 - x would be off by one)."""

import numpy as np
import pandas as pd
from numpy.testing import assert_allclose

from sem_upgrade.ingest import read_survey
from sem_upgrade.questionnaire import parse_questionnaire
from sem_upgrade.simulate import simulate_survey

from references import EXACT

ZERO_TO_SIX = """
name: zero_to_six
scale: [0, 6]
constructs:
  A: {items: [a1, a2, a3], reverse: [a3]}
  B: {items: [b1, b2, b3]}
paths: [B ~ A]
"""


def test_reverse_item_on_a_zero_based_scale(tmp_path):
    q = parse_questionnaire(ZERO_TO_SIX)
    answers = np.arange(7.0)  # every category 0..6 once
    frame = pd.DataFrame({c: answers for c in ["a1", "a2", "a3", "b1", "b2", "b3"]})
    path = tmp_path / "s.csv"
    frame.to_csv(path, index=False)
    got = read_survey(path, q).frame
    # closed form: 0 + 6 - x -> 6, 5, ..., 0 (max + 1 - x would give 7, ..., 1)
    assert_allclose(got["a3"].to_numpy(), 6.0 - answers, **EXACT)
    assert_allclose(got["a1"].to_numpy(), answers, **EXACT)


def test_simulated_reverse_answers_stay_on_a_zero_based_scale():
    # simulate writes reverse items as respondents answer them (min + max - x): still within 0..6,
    # and recoding them back gives the unreversed draw.
    q = parse_questionnaire(ZERO_TO_SIX + """
population:
  loadings: {a1: 0.7, a2: 0.7, a3: 0.7, b1: 0.7, b2: 0.7, b3: 0.7}
  paths: {B ~ A: 0.4}
  thresholds: [-1.5, -0.9, -0.25, 0.45, 1.0, 1.6]
""")
    raw = simulate_survey(q, 200, 1, reverse=True)
    plain = simulate_survey(q, 200, 1, reverse=False)
    assert raw["a3"].min() >= 0 and raw["a3"].max() <= 6
    assert_allclose(raw["a3"].to_numpy(float), 6.0 - plain["a3"].to_numpy(float), **EXACT)
