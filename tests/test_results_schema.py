"""The typed result: one field per pipeline step, its JSON form, and the schema document.

Expected values here are structural (which keys exist, which step made them), read from
docs/results_schema.md and sem_upgrade.results.STEPS; the numbers themselves are pinned to R
in test_pipeline.py and the report tests.
"""

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from sem_upgrade import pipeline
from sem_upgrade.results import STEPS, Results
from sem_upgrade.errors import SemUpgradeError

SCHEMA = Path(__file__).parent.parent / "docs" / "results_schema.md"


def _documented() -> set[str]:
    keys = set()
    for line in SCHEMA.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| (`[^|]+`) \|", line)
        if m:
            for k in re.findall(r"`([a-z_0-9]+)[.`<]", m.group(1) + "`"):
                keys.add(k)
    return keys


def test_every_step_fills_its_field_and_is_timed(bundled_reports):
    res, en, _, doc = bundled_reports
    assert list(res.steps()) == list(STEPS)  # the bundled study has a structural model: every step ran
    timing = json.loads((en / "timing.json").read_text())
    assert set(STEPS) <= set(timing) and all(timing[s] >= 0 for s in STEPS)
    assert "bootstrap_seconds" in timing and "write" not in doc


def test_results_json_is_the_steps_joined_and_documented(bundled_reports):
    res, _, _, doc = bundled_reports
    assert json.loads(res.to_json()) == doc
    made = set()
    for step in res.steps().values():
        made |= set(step.to_dict())
    assert made == set(doc)  # no key appears that no step made, none is lost
    undocumented = set(doc) - _documented()
    assert not undocumented, f"keys missing from docs/results_schema.md: {sorted(undocumented)}"


def test_only_the_merged_keys_are_shared_between_steps(bundled_reports):
    res = bundled_reports[0]
    owners: dict[str, list[str]] = {}
    for name, step in res.steps().items():
        for key in step.to_dict():
            owners.setdefault(key, []).append(name)
    shared = {k for k, v in owners.items() if len(v) > 1}
    assert shared <= {"reliability", "fit", "admissibility", "common_method", "modification_indices"}
    # reliability: alpha from the reliability step, CR/AVE from the CFA, in one object per construct
    rel = res["reliability"]
    assert all({"alpha", "cr", "ave", "omega", "items"} <= set(r) for r in rel.values())


def test_results_read_back_give_the_same_document_and_tables(bundled_reports):
    res, _, _, doc = bundled_reports
    back = Results.from_dict(doc)
    assert json.loads(back.to_json()) == doc
    assert back.table("fit").equals(Results.from_dict(json.loads(res.to_json())).table("fit"))
    with pytest.raises(SemUpgradeError, match="no result table 'nope'; the tables of this run: fit"):
        back.table("nope")


def test_the_typed_fields_are_the_steps_in_order():
    names = [f.name for f in fields(Results)]
    assert names[:len(STEPS)] == list(STEPS)
    assert [n for n, _ in pipeline._STEPS] == list(STEPS)


def test_skipping_efa_keeps_kmo_and_harman(tmp_path):
    res = pipeline.run(outdir=tmp_path, bootstrap=0, skip=("efa",), progress=False, formats=("md", "xlsx"))
    assert "skipped" in res["efa"] and "loadings" not in res["efa"]
    assert (tmp_path / "report.md").exists() and (tmp_path / "tables.xlsx").exists()  # the reports do without it
    assert res["kmo"]["overall"] > 0.5 and res["common_method"]["harman_first_factor_share"] > 0
    with pytest.raises(SemUpgradeError, match="--skip: 'cfa' cannot be skipped"):
        pipeline.run(bootstrap=0, skip=("cfa",))
