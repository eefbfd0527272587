"""Latent interactions by double-mean-centred product indicators, and simple slopes.

Expected values: tests/reference/models.json, made by tests/reference/r/models.R
(semTools 0.5.6 indProd / probe2WayMC, lavaan 0.6.14 sem on the first 500 rows of
semTools::dat2way, stored as tests/reference/dat2way_500.csv).
"""

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from sem_upgrade import fit_indices, moderation
from sem_upgrade.errors import SemUpgradeError
from sem_upgrade.engine.fit import fit_model
from references import REF

FIT_ABS = dict(rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def interaction():
    ref = json.loads((REF / "models.json").read_text())["dat2way_interaction"]
    d = pd.read_csv(REF / "dat2way_500.csv")
    prods = moderation.product_indicators(d, ["x1", "x2", "x3"], ["x4", "x5", "x6"])
    pairs = moderation.product_residual_covariances(["x1", "x2", "x3"], ["x4", "x5", "x6"])
    syntax = ("f1 =~ x1 + x2 + x3\nf2 =~ x4 + x5 + x6\nf3 =~ x7 + x8 + x9\n"
              f"f12 =~ {' + '.join(prods.columns)}\nf3 ~ f1 + f2 + f12\n"
              + "\n".join(f"{a} ~~ {b}" for a, b in pairs))
    fit = fit_model(syntax, pd.concat([d, prods], axis=1))
    return ref, prods, pairs, fit


def test_products_named_and_ordered_as_semtools(interaction):
    ref, prods, pairs, _ = interaction
    assert list(prods.columns) == ref["product_names"]
    assert_allclose(prods.mean().to_numpy(), 0.0, rtol=0, atol=1e-12)
    # every product shares its x item with 2 others and its z item with 2 others: 9 * 4 / 2
    assert len(pairs) == 18
    assert sorted(f"{a} ~~ {b}" for a, b in pairs) == sorted(
        line for line in ref["model"].splitlines() if "~~" in line)


def test_interaction_model_equals_lavaan(interaction):
    ref, _, _, fit = interaction
    m = fit_indices.fit_measures(fit)
    assert m["df"] == ref["fit"]["df"]
    assert_allclose(m["chisq"], ref["fit"]["chisq"], rtol=1e-7, atol=0)
    for key in ("cfi", "tli", "rmsea", "srmr"):
        assert_allclose(m[key], ref["fit"][key], **FIT_ABS, err_msg=key)
    t = fit.table().set_index(["lhs", "op", "rhs"])
    for row in ref["params"]:
        if row["op"] == "~":
            got = t.loc[(row["lhs"], row["op"], row["rhs"])]
            assert_allclose([got["estimate"], got["se"], got["std_estimate"]],
                            [row["est"], row["se"], row["std.all"]], rtol=0, atol=1e-5)


def test_simple_slopes_equal_probe2waymc(interaction):
    ref, _, _, fit = interaction
    t = fit.table().reset_index(drop=True)
    k = {rhs: i for i, rhs in zip(t.index, t["rhs"]) if t.loc[i, "lhs"] == "f3" and t.loc[i, "op"] == "~"}
    free = t.index[t["se"].notna()].tolist()  # the vcov's rows are the free parameters, in table order
    idx = [free.index(k["f1"]), free.index(k["f12"])]
    vcov = fit.vcov[np.ix_(idx, idx)]
    sd = np.sqrt(t.loc[(t["lhs"] == "f2") & (t["op"] == "~~") & (t["rhs"] == "f2"), "estimate"].item())
    got = moderation.simple_slopes(t.loc[k["f1"], "estimate"], t.loc[k["f12"], "estimate"], vcov,
                                   [-sd, 0.0, sd])
    exp = pd.DataFrame(ref["simple_slopes"])
    # estimates agree with lavaan to ~1e-6, so values built from them to ~1e-5
    assert_allclose(got["moderator_value"], exp["f2"], rtol=0, atol=1e-5)
    assert_allclose(got[["estimate", "se", "z"]].to_numpy(), exp[["est", "se", "z"]].to_numpy(),
                    rtol=0, atol=1e-5)
    assert_allclose(got["pvalue"], exp["pvalue"], rtol=0, atol=1e-6)


def test_too_many_product_indicators_is_a_clear_error():
    d = pd.DataFrame(np.zeros((3, 22)), columns=[f"a{i}" for i in range(11)] + [f"b{i}" for i in range(11)])
    with pytest.raises(SemUpgradeError, match="121 product indicators"):
        moderation.product_indicators(d, [f"a{i}" for i in range(11)], [f"b{i}" for i in range(11)])


def test_product_name_clash_is_a_clear_error():
    d = pd.DataFrame({"a": [1.0, 2.0], "b": [2.0, 1.0], "a.b": [0.0, 1.0]})
    with pytest.raises(SemUpgradeError, match="'a.b'"):
        moderation.product_indicators(d, ["a"], ["b"], taken={"a", "b", "a.b"})


def test_conditional_indirect_index_of_moderated_mediation():
    # closed form: (a + a_mod w)(b + b_mod w); with b_mod = 0 it is linear in w with slope a_mod * b
    w = np.array([-1.0, 0.0, 1.0])
    eff = moderation.conditional_indirect(0.5, 0.2, 0.4, 0.0, w)
    assert_allclose(eff, [0.12, 0.2, 0.28], rtol=0, atol=1e-15)
    assert_allclose(np.diff(eff), 0.2 * 0.4, rtol=0, atol=1e-15)
    draws = moderation.conditional_indirect_draws(np.array([0.5, np.nan]), 0.0, np.array([0.4, 0.3]),
                                                  np.array([0.1, 0.1]), w)
    assert_allclose(draws[0], [0.15, 0.2, 0.25], rtol=0, atol=1e-15)
    assert np.isnan(draws[1]).all()
