"""Questionnaire files: the documented shape is accepted as written; each mistake gets one message."""

import textwrap

import pytest

from sem_upgrade.errors import SemUpgradeError
from sem_upgrade.questionnaire import load_questionnaire, parse_questionnaire

EXAMPLE = textwrap.dedent("""\
    name: cluster-study          # short id
    title: free text
    id: firm_id                  # optional respondent-id column
    scale: [1, 7]                # Likert range, inclusive
    missing_codes: [-99, 99]     # optional: cell values that mean 'no answer'
    constructs:
      NSC: {label: Network scale, items: [nsc1, nsc2, nsc3]}
      NHE: {label: Network heterogeneity, items: [nhe1, nhe2, nhe3], reverse: [nhe3]}
      KAC: {label: Knowledge acquisition, items: [kac1, kac2, kac3, kac4]}
      UPG: {label: Cluster upgrade, items: [upg1, upg2, upg3]}
    paths:                        # structural regressions, lavaan syntax
      - KAC ~ NSC + NHE
      - UPG ~ KAC + NSC
    hypotheses:
      H1: {path: NSC -> KAC, sign: +}
      H2: {path: NHE -> KAC, sign: +}
      H3: {path: KAC -> UPG, sign: +}
      H4: {path: NSC -> UPG, sign: +}
      H5: {indirect: NSC -> KAC -> UPG, sign: +}
    """)


def test_documented_shape_is_accepted_as_written(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    q = load_questionnaire(path)
    assert q.name == "cluster-study" and q.id_column == "firm_id"
    assert q.scale == (1.0, 7.0) and q.missing_codes == (-99.0, 99.0)
    assert list(q.constructs) == ["NSC", "NHE", "KAC", "UPG"]
    assert q.reverse_items == ["nhe3"]
    assert q.paths == (("KAC", "NSC"), ("KAC", "NHE"), ("UPG", "KAC"), ("UPG", "NSC"))
    assert [h.id for h in q.hypotheses] == ["H1", "H2", "H3", "H4", "H5"]
    assert q.hypotheses[4].kind == "indirect" and q.hypotheses[4].chain == ("NSC", "KAC", "UPG")
    assert all(h.sign == 1 for h in q.hypotheses)
    assert "KAC ~ NSC + NHE" in q.structural_syntax()
    assert "NHE =~ nhe1 + nhe2 + nhe3" in q.measurement_syntax()


def test_yaml11_booleans_stay_names_and_signs_words_accepted():
    q = parse_questionnaire(textwrap.dedent("""\
        constructs:
          N: {items: [a1, a2, a3]}
          Y: {items: [b1, b2, b3]}
          ON: {items: [c1, c2, c3]}
          NO: {label: 中文标签 网络规模, items: [d1, d2, d3]}
        paths: [Y ~ N, ON ~ Y, NO ~ ON]
        hypotheses:
          H1: {path: N -> Y, sign: positive}
          H2: {path: Y -> ON, sign: -}
          H3: {path: ON -> NO, sign: negative}
        """))
    assert list(q.constructs) == ["N", "Y", "ON", "NO"]
    assert q.constructs["NO"].label == "中文标签 网络规模"
    assert [h.sign for h in q.hypotheses] == [1, -1, -1]


def test_measurement_only_file():
    q = parse_questionnaire("constructs:\n  A: {items: [a1, a2, a3]}\n")
    assert not q.has_structure and q.hypotheses == ()


@pytest.mark.parametrize("body,message", [
    ("constructs:\n  A: {items: [a1, a2]}\npaths: [A ~ B]\n",
     "q.yaml: paths[0]: unknown construct 'B' in 'A ~ B'"),
    ("constructs:\n  A: {items: [a1, a2]}\n  B: {items: [a2, b2]}\n",
     "q.yaml: constructs.B.items: item 'a2' is also in construct A"),
    ("scale: [1, 5]\nconstructs:\n  A: {items: [a1, a2], reverse: [b1]}\n",
     "q.yaml: constructs.A.reverse: 'b1' is not among the items of A"),
    ("constructs:\n  A: {items: [a1, a2]}\n  B: {items: [b1, b2]}\npaths: [B ~ A]\nhypotheses:\n  H1: {path: B -> A}\n",
     "q.yaml: hypotheses.H1.path: 'B -> A' is not a path of the model"),
    ("constructs:\n  A: {items: [a1, a2]}\n  B: {items: [b1, b2]}\n  C: {items: [c1, c2]}\n"
     "paths: [B ~ A, C ~ A]\nhypotheses:\n  H1: {indirect: A -> B -> C}\n",
     "q.yaml: hypotheses.H1.indirect: 'A -> B -> C' has the link B -> C, which is not a path of the model"),
    ("scale: [5, 1]\nconstructs:\n  A: {items: [a1, a2]}\n",
     "q.yaml: scale: min (5) must be below max (1)"),
    ("constructs:\n  A: {items: [a1, a2]}\n  A: {items: [b1, b2]}\n",
     "q.yaml: constructs.A: duplicate construct"),
    ("constructs:\n  A: {items: [a1, a2]}\n  B: {items: [b1, b2]}\npaths: [B ~ A]\n"
     "hypotheses:\n  H1: {path: A -> B}\n  H1: {path: A -> B}\n",
     "q.yaml: hypotheses.H1: duplicate hypothesis id"),
    ("constructs:\n  A: {items: [a1, a2]}\n  B: {items: [b1, b2]}\npaths: [B ~ A]\n"
     "hypotheses:\n  H1: {path: A -> B, sign: up}\n",
     "q.yaml: hypotheses.H1.sign: 'up' is not a sign"),
    ("constructs:\n  A: {items: [a1, a2]}\n  B: {items: [b1, b2]}\npaths: [B ~ A, A ~ B]\n",
     "q.yaml: paths: the paths form a loop"),
    ("constructs:\n  A: {items: [a1, a2], reverse: [a2]}\n",
     "q.yaml: scale: reverse-keyed items need a scale"),
    ("constructs:\n  A:\n    items: [a1, a2]\nhypotheses:\n  H1:\n    path: A -> A\n    sign: -\n",
     "q.yaml: YAML syntax error at line 7, column 11: sequence entries are not allowed here (write a sign as"),
    ("constructs:\n  A: {items: [a1, 'a 2']}\n",
     "q.yaml: constructs.A.items: 'a 2' is not a usable column name: it must start with a letter and hold "
     "only letters, digits, '_' or '.' (rename the column, e.g. 'a_2')"),
    ("constructs:\n  A: {items: [a1, 2a]}\n",
     "q.yaml: constructs.A.items: '2a' is not a usable column name"),
])
def test_each_mistake_names_file_and_key(body, message):
    with pytest.raises(SemUpgradeError) as err:
        parse_questionnaire(body, source="q.yaml")
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_duplicate_keys_are_caught_not_overwritten():
    # PyYAML silently keeps the last of two equal keys; the duplicate must be reported.
    with pytest.raises(SemUpgradeError, match="duplicate"):
        parse_questionnaire("constructs:\n  A: {items: [a1, a2]}\n  A: {items: [b1, b2]}\n", source="q.yaml")


def test_missing_file():
    with pytest.raises(SemUpgradeError, match="no such questionnaire file"):
        load_questionnaire("/nonexistent/q.yaml")
