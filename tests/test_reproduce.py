"""The reproduce folder: cleaned data, lavaan syntax of each model and an R script.

Tests never call R. The script was run once with R 4.2.2 / lavaan 0.6.14 on the bundled survey:
chi-square 207.010 (df 220), CFI 1.000, KAQ ~ NSC 0.270 (std 0.287), the same as results.json.
"""

import numpy as np
import pandas as pd
import pytest
import semopy

from sem_upgrade import reproduce, run
from sem_upgrade.pipeline import bundled_paths


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    res = run(outdir=out, bootstrap=50, formats=("md",), progress=False)
    return res, out / "reproduce"


def test_folder_holds_data_syntax_script_and_command(bundled_run):
    res, folder = bundled_run
    assert sorted(p.name for p in folder.iterdir()) == [
        "cleaned.csv", "command.txt", "measurement.lav", "one_factor.lav", "refit.R", "structural.lav"]
    cleaned = pd.read_csv(folder / "cleaned.csv")
    assert len(cleaned) == res["n_used"]
    # reverse-keyed nhe4 is recoded as the models saw it: 1 + 7 - raw on the 1-7 scale
    raw = pd.read_csv(bundled_paths()[0])
    np.testing.assert_array_equal(cleaned["nhe4"].to_numpy(), 8 - raw["nhe4"].to_numpy())
    script = (folder / "refit.R").read_text(encoding="utf-8")
    assert 'se = "bootstrap", bootstrap = 50' in script and 'boot.ci.type = "perc"' in script
    assert "missing =" not in script and "wishart" not in script
    first = (folder / "command.txt").read_text(encoding="utf-8").splitlines()[0]
    assert first == ("command: sem-upgrade run liaoning_2012_survey.csv -q liaoning_2012.yaml --missing listwise "
                     "--likelihood normal --bootstrap 50 --seed 2012 --ci percentile --ci-level 0.95 --alpha 0.05 "
                     "--estimator ml --lang en --bootstrap-max-failure 0.05")


@pytest.mark.parametrize("name", ["measurement", "one_factor", "structural"])
def test_every_syntax_parses_in_semopy(bundled_run, name):
    _, folder = bundled_run
    text = (folder / f"{name}.lav").read_text(encoding="utf-8")
    model_text = "\n".join(line for line in text.splitlines() if ":=" not in line and not line.startswith("#"))
    model = semopy.Model(model_text)
    assert model.vars["observed"]


def test_structural_paths_labelled_and_indirect_effects_defined():
    syntax = "A =~ a1 + a2\nM =~ m1 + m2\nY =~ y1 + y2\nM ~ A\nY ~ M + A\nY ~~ M"
    out, labels = reproduce.labelled_structural_syntax(syntax, {"H3": ("A", "M", "Y")})
    assert labels == {"M~A": "b1", "Y~M": "b2", "Y~A": "b3"}
    assert "M ~ b1*A" in out and "Y ~ b2*M + b3*A" in out and "Y ~~ M" in out
    assert out.splitlines()[-1] == "ind_1 := b1 * b2"


def test_options_reach_the_r_call():
    script = reproduce.r_script({"measurement": "measurement.lav", "structural": "structural.lav"},
                                {"missing": "fiml", "likelihood": "normal", "bootstrap": 0})
    assert 'cfa(m_meas, data = d, missing = "ml")' in script
    assert "bootstrap =" not in script
    script = reproduce.r_script({"structural": "structural.lav"},
                                {"missing": "listwise", "likelihood": "wishart", "bootstrap": 1000, "ci": "bc",
                                 "seed": 7})
    assert 'likelihood = "wishart"' in script and 'boot.ci.type = "bca.simple"' in script
    assert "set.seed(7)" in script
    script = reproduce.r_script({"measurement": "measurement.lav"}, {"estimator": "mlr"})
    assert 'cfa(m_meas, data = d, estimator = "MLR")' in script
