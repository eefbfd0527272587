"""The engine's parameter table, the result's tables, and semopy's logging kept to itself."""

import logging

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from sem_upgrade import pipeline
from sem_upgrade.engine.fit import fit_model
from sem_upgrade.engine.partable import TABLE_COLUMNS, MatrixId, build_structure
from sem_upgrade.engine.syntax import quiet_semopy
from sem_upgrade.errors import SemUpgradeError

from references import EST, ML, ML_REL, load_csv, load_json


def test_equality_constraints_by_shared_labels_equal_lavaan():
    # tests/reference/r/partable.R: cfa(model, data = holzinger_swineford.csv) with x2, x3 (a) and
    # x5, x6 (b) sharing loadings; parameterEstimates(fit, standardized = TRUE), fitMeasures.
    ref = load_json("partable.json")
    fit = fit_model(ref["model"], load_csv("holzinger_swineford.csv"))
    assert fit.npar == ref["fit"]["npar"] and fit.df == ref["fit"]["df"]
    assert_allclose(fit.chisq, ref["fit"]["chisq"], **ML_REL)
    got = fit.table()
    want = pd.DataFrame(ref["params"])
    merged = got.merge(want, on=["lhs", "op", "rhs"], how="inner")
    assert len(merged) == len(got) == len(want)
    assert_allclose(merged["estimate"], merged["est"], **ML)
    assert_allclose(merged["std_estimate"], merged["std.all"], **ML)
    free = merged[merged["free"]]
    assert_allclose(free["se_x"], free["se_y"], **ML)


def test_parameter_table_mirrors_lavaan_partable():
    # One row per matrix entry with lavaan's lhs/op/rhs/group/label; rows sharing a label share
    # one free parameter (lavaan's ceq.simple numbering), and every matrix location is a MatrixId.
    ref = load_json("partable.json")
    st = build_structure(ref["model"], load_csv("holzinger_swineford.csv"))
    t = st.table
    assert list(t.columns) == TABLE_COLUMNS
    want = pd.DataFrame(ref["partable"])
    merged = t.merge(want, on=["lhs", "op", "rhs"], suffixes=("", "_lavaan"))
    assert len(merged) == len(want) == len(t)
    assert (merged["label"] == merged["label_lavaan"]).all()
    assert (merged["free"] == (merged["free_lavaan"] > 0)).all()
    assert (merged["group"] == merged["group_lavaan"]).all()
    x2, x3 = (t[(t["op"] == "=~") & (t["rhs"] == v)].iloc[0] for v in ("x2", "x3"))
    assert x2["index"] == x3["index"] >= 0
    assert st.n_free == 19 and len(st.constraints) == 2
    assert set(t["matrix"]) <= set(MatrixId)


def test_quiet_semopy_drops_only_semopy_records_and_restores_the_root_logger(caplog):
    import semopy.model

    root = logging.getLogger()
    handlers, filters = list(root.handlers), list(root.filters)
    with caplog.at_level(logging.WARNING):
        with quiet_semopy():
            # a record logged from semopy's own file, as semopy does through the root logger
            record = root.makeRecord("root", logging.WARNING, semopy.model.__file__, 1, "from semopy", None, None)
            root.handle(record)
            logging.warning("from elsewhere")
    assert [r.getMessage() for r in caplog.records] == ["from elsewhere"]
    assert root.handlers == handlers and root.filters == filters
    assert not logging.root.manager.disable  # no process-wide switch


@pytest.fixture(scope="module")
def bundled_res():
    return pipeline.run(bootstrap=0, progress=False)


def test_unknown_table_names_the_tables(bundled_res):
    with pytest.raises(SemUpgradeError, match=r"no result table 'nope'; the tables of this run: .*fit.*"):
        bundled_res.table("nope")


def test_fit_reliability_r2_htmt_tables_equal_r(bundled_res):
    # tests/reference/make_reference.R, section "liaoning": lavaan fitMeasures, lavInspect r2,
    # semTools::htmt, psych::alpha on the bundled survey.
    ref = load_json("lavaan_extra.json")["liaoning"]
    fit = bundled_res.table("fit").set_index(["model", "index"])["value"]
    for model in ("measurement", "structural"):
        assert_allclose(fit[(model, "chisq")], ref[f"fit_{model}"]["chisq"], **ML_REL)
        for key in ("cfi", "rmsea", "srmr"):
            assert_allclose(fit[(model, key)], ref[f"fit_{model}"][key], rtol=0, atol=1e-6, err_msg=key)
    r2 = bundled_res.table("r2").set_index("construct")["r2"]
    assert sorted(r2.index) == ["KAQ", "KCR", "UPG"]  # the endogenous constructs (lavaan's r2 adds the items)
    assert_allclose(r2[list(r2.index)], [ref["r2"][c] for c in r2.index], **EST)
    rel = bundled_res.table("reliability").set_index("construct")
    assert_allclose(rel.loc[list(ref["alpha"]), "alpha"], [a["alpha"] for a in ref["alpha"].values()],
                    rtol=1e-6, atol=1e-8)
    assert_allclose(rel.loc[list(ref["omega"]), "omega"], list(ref["omega"].values()), **EST)
    names = list(ref["alpha"])
    htmt = bundled_res.table("htmt")
    want = np.array(ref["htmt"])
    got = [want[names.index(a), names.index(b)] for a, b in zip(htmt["lhs"], htmt["rhs"])]
    assert len(htmt) == len(names) * (len(names) - 1) // 2
    assert_allclose(htmt["htmt"], got, **EST)
