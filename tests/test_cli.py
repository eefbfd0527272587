"""The sem-upgrade command: exit codes, one-line errors, outputs."""

import json
import subprocess
import sys

import pytest

from sem_upgrade.cli import main


def test_run_bundled_writes_results(tmp_path, capsys):
    assert main(["run", "-o", str(tmp_path), "--bootstrap", "200", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out and "results:" in out and "bootstrap: 200 of 200 resamples fitted" in out
    assert json.loads((tmp_path / "timing.json").read_text())["bootstrap_seconds"] > 0
    assert json.loads((tmp_path / "results.json").read_text())["n_used"] == 218
    assert (tmp_path / "rejected_rows.csv").exists()


@pytest.mark.parametrize("args,message", [
    (["run", "nope.csv", "-q", "nope.yaml"], "nope.yaml: no such questionnaire file"),
    (["run", "nope.csv"], "give both the survey file and its questionnaire"),
    (["run", "--bootstrap", "-5"], "--bootstrap: must be a whole number >= 0, got -5"),
    (["validate", "nope.csv", "-q", "nope.yaml"], "nope.yaml: no such questionnaire file"),
])
def test_user_errors_exit_2_with_one_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sem-upgrade: error: {message}"), err
    assert err.count("\n") == 1


def test_bad_questionnaire_through_the_installed_command(tmp_path):
    q = tmp_path / "q.yaml"
    q.write_text("constructs:\n  A: {items: [a1, a2]}\npaths: [A ~ B]\n")
    data = tmp_path / "d.csv"
    data.write_text("a1,a2\n1,2\n")
    proc = subprocess.run([sys.executable, "-m", "sem_upgrade.cli", "run", str(data), "-q", str(q), "-o",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == f"sem-upgrade: error: {q}: paths[0]: unknown construct 'B' in 'A ~ B' (constructs: A)\n"
    assert "Traceback" not in proc.stderr


def test_non_integer_seed_rejected(capsys):
    with pytest.raises(SystemExit) as err:
        main(["run", "--seed", "abc"])
    assert err.value.code == 2
    assert "invalid int value: 'abc'" in capsys.readouterr().err


def test_validate_prints_quality(tmp_path, capsys):
    from sem_upgrade.pipeline import bundled_paths

    data, q = bundled_paths()
    assert main(["validate", str(data), "-q", str(q)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{data}: 218 rows read, 218 valid, 0 rejected\n")
    assert "{" not in out  # one format: the readable summary, no JSON mixed in
    assert "H10   TST -> KCR -> UPG  expected sign +" in out


def test_validate_json_is_one_document(tmp_path, capsys):
    import json

    from sem_upgrade.pipeline import bundled_paths

    data, q = bundled_paths()
    assert main(["validate", str(data), "-q", str(q), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # the whole output parses as one document
    assert doc["data_quality"]["n_valid"] == 218 and doc["rejected"] == []
    assert doc["hypotheses"][0] == {"id": "H1", "effect": "NSC -> KAQ", "sign": "+", "sign_given": True}


def test_help_of_each_command():
    for cmd in ("run", "validate", "simulate"):
        proc = subprocess.run([sys.executable, "-m", "sem_upgrade.cli", cmd, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "usage: sem-upgrade " + cmd in proc.stdout
