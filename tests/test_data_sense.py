"""Data that cannot support an analysis stops it with a reason that points at the real cause.

Surveys are built in the tests from the bundled one. Expected outcomes are exact: exit code 2 and
one line naming the file, the counts and the columns.
"""

import pandas as pd
import pytest

from sem_upgrade.cli import main
from sem_upgrade.errors import SemUpgradeError
from sem_upgrade.pipeline import bundled_paths, run, validate


@pytest.fixture
def bundled():
    data, q = bundled_paths()
    return pd.read_csv(data), q


def test_most_rows_rejected_stops_validate_and_run_with_the_commonest_reason(tmp_path, bundled, capsys):
    df, q = bundled
    # a 0-10 recoding of two columns: every row outside the questionnaire's 1-7 scale there
    df.loc[df.index[:150], ["kaq1", "kaq2"]] = 9
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    for cmd in (["validate", str(path), "-q", str(q)], ["run", str(path), "-q", str(q), "-o", str(tmp_path / "o")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert "150 of 218 rows rejected, most for invalid value (150 rows; columns kaq1 (150 rows), " \
               "kaq2 (150 rows))" in err[0]
    df.loc[df.index[:100], ["kaq1", "kaq2"]] = 4  # 50 of 218 rejected: the run goes on, nothing lost
    df.to_csv(path, index=False)
    _, survey = validate(path, q)
    assert len(survey.rejected) == 50 and len(survey.frame) == 168


def test_an_empty_item_is_called_empty(tmp_path, bundled):
    df, q = bundled
    df["tst3"] = ""
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    with pytest.raises(SemUpgradeError, match="no answer at all in the rows used: tst3 .the column is empty"):
        run(path, q, bootstrap=0, missing="fiml", progress=False)


def test_constant_only_because_of_listwise_deletion_is_not_blamed_on_the_item(tmp_path, bundled):
    df, q = bundled
    df["tst3"] = 4
    df.loc[df.index[:20], "tst3"] = 5
    df.loc[df.index[:20], "kaq1"] = None  # the rows where tst3 varies are dropped under listwise
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    with pytest.raises(SemUpgradeError, match=r"tst3 take one value in the 198 rows used but vary among the 218 "
                                              r"valid rows.*try --missing fiml"):
        run(path, q, bootstrap=0, progress=False)


def test_constant_after_rejections_points_at_the_rejected_rows(tmp_path, bundled):
    df, q = bundled
    df["tst3"] = 4.0
    df.loc[df.index[:10], "tst3"] = 99.5  # invalid: these 10 rows are rejected, the rest answer 4
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    with pytest.raises(SemUpgradeError, match=r"one value in the 208 rows kept: tst3; 10 rows were rejected"):
        run(path, q, bootstrap=0, progress=False)


def test_a_truly_constant_item_is_still_named(tmp_path, bundled):
    df, q = bundled
    df["tst3"] = 4
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    with pytest.raises(SemUpgradeError, match="zero variance in the sample used: tst3 .every respondent"):
        run(path, q, bootstrap=0, progress=False)


def test_non_directional_hypotheses_are_judged_two_sided(tmp_path, bundled, capsys):
    import yaml

    df, q = bundled
    spec = yaml.safe_load(q.read_text(encoding="utf-8"))
    spec["hypotheses"] = {"Hneg": {"path": "KAQ -> KCR", "sign": "-"}, "Hany": {"path": "KAQ -> KCR", "sign": "any"},
                          "Hind": {"indirect": "KAQ -> KCR -> UPG", "sign": "any"},
                          "Hdef": {"path": "TST -> KCR"}}
    qpath = tmp_path / "q.yaml"
    qpath.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    hyp = run(bundled_paths()[0], qpath, bootstrap=1000, progress=False).table("hypotheses").set_index("id")
    # KAQ -> KCR is +0.589, p < .001 (README table): against '-' it is the opposite sign; 'any' accepts it
    assert not hyp.loc["Hneg", "supported"] and hyp.loc["Hneg", "reason"] == "opposite sign"
    assert hyp.loc["Hany", "supported"] and hyp.loc["Hany", "expected_sign"] == "any"
    assert hyp.loc["Hind", "supported"] and hyp.loc["Hind", "ci_lower"] > 0  # bootstrap, either side of 0
    assert main(["validate", str(bundled_paths()[0]), "-q", str(qpath)]) == 0
    out = capsys.readouterr().out
    assert "Hdef  TST -> KCR  expected sign + (no sign given: + assumed)" in out
    assert "Hany  KAQ -> KCR  expected sign any\n" in out


def test_a_construct_may_declare_its_own_scale(tmp_path, bundled):
    df, q = bundled
    df = df[["firm_id", "nsc1", "nsc2", "nsc3", "kaq1", "kaq2", "kaq3"]].copy()
    rng = __import__("numpy").random.default_rng(1)
    df["stf1"] = rng.integers(0, 25, len(df))  # a 0-24 score beside the 7-point items
    df["stf2"] = (df["stf1"] + rng.integers(0, 3, len(df))).clip(0, 24)
    df["stf3"] = 24 - df["stf1"]  # reverse-keyed on its own 0-24 scale
    df.loc[df.index[0], "nsc1"] = 20  # outside the questionnaire's 1-7
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    qpath = tmp_path / "q.yaml"
    qpath.write_text("id: firm_id\nscale: [1, 7]\nconstructs:\n  NSC: {items: [nsc1, nsc2, nsc3]}\n"
                     "  KAQ: {items: [kaq1, kaq2, kaq3]}\n"
                     "  STF: {items: [stf1, stf2, stf3], reverse: [stf3], scale: [0, 24]}\n", encoding="utf-8")
    _, survey = validate(path, qpath)
    assert list(survey.rejected["columns"]) == ["nsc1"]  # 20 is out of 1-7 but in STF's 0-24 it would be fine
    kept = survey.frame
    # reverse coding on the construct's own scale: min + max - x = 0 + 24 - x
    assert (kept["stf3"].to_numpy() == df["stf1"].to_numpy()[1:]).all()  # row 0 was rejected


@pytest.mark.parametrize("text, message", [
    ("constructs:\n  A: {items: [a1, a2], scale: [.nan, 7]}\n", "constructs.A.scale: the end points must be finite"),
    ("scale: [-.inf, .inf]\nconstructs:\n  A: {items: [a1, a2]}\n", "scale: the end points must be finite"),
    ('constructs:\n  "A\\n": {items: [a1, a2]}\n', "a construct name must start with a letter"),
])
def test_bad_scales_and_names_are_refused(tmp_path, text, message):
    from sem_upgrade.questionnaire import load_questionnaire

    path = tmp_path / "q.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SemUpgradeError, match=message.replace(".", r"\.")):
        load_questionnaire(path)


@pytest.mark.parametrize("text, message", [
    ("scale: [1, 7]\nmissing_codes: [4]\nconstructs:\n  A: {items: [a1, a2]}\n",
     "missing_codes: 4 lies inside scale [1.0, 7.0]: it would turn real answers into missing ones"),
    ("scale: [1, 7]\nmissing_codes: [99]\nconstructs:\n  A: {items: [a1, a2], scale: [0, 100]}\n",
     "missing_codes: 99 lies inside constructs.A.scale [0.0, 100.0]"),
    ("constructs:\n  A: {items: [a1, a2]}\n  B: {items: [b1, b2]}\npaths: [B ~ 0*A]\n",
     "paths[0]: 'B ~ 0*A': fixed values and labels ('0*X', 'a*X') are not taken in paths"),
    ("constructs:\n  A: {items: [a1, a2]}\ncovariances: [a1 ~~ 0*a2]\n",
     "covariances[0]: 'a1 ~~ 0*a2': fixed values and labels are not taken in covariances"),
])
def test_silent_changes_to_the_data_or_model_are_refused(tmp_path, text, message):
    from sem_upgrade.questionnaire import load_questionnaire

    path = tmp_path / "q.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SemUpgradeError, match=__import__("re").escape(message)):
        load_questionnaire(path)


def test_a_missing_code_inside_the_scale_when_meant(tmp_path):
    from sem_upgrade.questionnaire import load_questionnaire

    path = tmp_path / "q.yaml"
    path.write_text("scale: [1, 7]\nmissing_codes: [4]\nallow_missing_codes_in_scale: true\n"
                    "constructs:\n  A: {items: [a1, a2]}\n", encoding="utf-8")
    assert load_questionnaire(path).missing_codes == (4.0,)


@pytest.mark.parametrize("args, message", [
    (["run", "--seed", "-1", "--bootstrap", "0"], "--seed: must be a whole number >= 0, got -1"),
    (["simulate", "--n", "10", "--replications", "-1", "-o", "{tmp}/x.json"], "--replications: must be a whole number >= 0"),
    (["simulate", "--n", "10", "-o", "/nonexistent/x.csv"], "/nonexistent/x.csv: the folder /nonexistent does not exist"),
    (["simulate", "--n", "10", "-o", "{tmp}/x.sav"], "-o must end in .csv or .txt or .xlsx"),
    (["simulate", "--n", "0"], "--n: must be a whole number >= 1"),
])
def test_bad_command_arguments_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if args[0] == "run":
        args += ["-o", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_questionnaire_name_is_not_a_path(tmp_path, monkeypatch):
    data, q = bundled_paths()
    text = q.read_text(encoding="utf-8").replace("name: liaoning_2012", "name: ../a/b")
    qpath = tmp_path / "q.yaml"
    qpath.write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "-q", str(qpath), "--n", "20", "--seed", "3"]) == 0
    assert (tmp_path / "a_b_simulated.csv").exists() and not (tmp_path.parent / "a").exists()


def test_an_item_named_like_an_internal_variable_does_not_clash(tmp_path, bundled):
    df, q = bundled
    df = df.rename(columns={"nsc1": "G"})
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    text = q.read_text(encoding="utf-8").replace("nsc1", "G")
    qpath = tmp_path / "q.yaml"
    qpath.write_text(text, encoding="utf-8")
    res = run(path, qpath, bootstrap=0, progress=False)
    assert res["common_method"]["one_factor_cfa"]["one_factor_df"] == 230  # 23 items: 276 - 46
    qpath.write_text(text.replace("  NSC:", "  _NSC:").replace("NSC ", "_NSC ").replace("NSC\n", "_NSC\n"),
                     encoding="utf-8")
    with pytest.raises(SemUpgradeError, match="reserved for the tool's own variables"):
        run(path, qpath, bootstrap=0, progress=False)


def test_hostile_yaml_is_refused(tmp_path):
    from sem_upgrade.questionnaire import load_questionnaire

    laughs = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    cases = [(laughs, "expand to more than 100,000 values"), ("x: " + "[" * 20000 + "]" * 20000 + "\n", "nested"),
             ("# " + "x" * 1_100_000 + "\n", "larger than 1000 kB")]
    for text, message in cases:
        path = tmp_path / "q.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(SemUpgradeError, match=message):
            load_questionnaire(path)
