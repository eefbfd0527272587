"""The whole pipeline on the bundled survey, pinned to lavaan / psych / semTools run on the same file.

Expected values: reference/lavaan_extra.json["liaoning"], made by make_reference.R from
reference/liaoning_2012_survey.csv (a copy of the bundled survey) with nhe4 recoded 8 - x.
"""

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from sem_upgrade import pipeline
from sem_upgrade.errors import SemUpgradeError

from references import CLOSED_FORM, ML, ML_REL, RELATIVE_KEYS, REF, load_json

FIT_KEYS = ["chisq", "df", "pvalue", "cfi", "tli", "nfi", "rfi", "ifi", "pnfi", "rmsea", "rmsea_ci_lower",
            "rmsea_ci_upper", "rmsea_pvalue", "rmr", "srmr", "gfi", "agfi", "pgfi", "aic", "bic", "logl", "ecvi",
            "baseline_chisq", "npar"]


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return pipeline.run(outdir=out, bootstrap=300, progress=False), out


@pytest.fixture(scope="module")
def ref():
    return load_json("lavaan_extra.json")["liaoning"]


def test_bundled_survey_is_the_reference_copy():
    assert (REF / "liaoning_2012_survey.csv").read_bytes() == pipeline.bundled_paths()[0].read_bytes()


@pytest.mark.parametrize("model", ["measurement", "structural"])
def test_fit_indices_equal_lavaan(bundled, ref, model):
    got = bundled[0]["fit"][model]
    want = ref[f"fit_{model}"]
    for key in FIT_KEYS:
        tol = ML_REL if key in RELATIVE_KEYS else ML
        assert_allclose(got[key], want[key], **tol, err_msg=key)


def test_paths_r2_and_hypotheses_equal_lavaan(bundled, ref):
    res = bundled[0]
    params = pd.DataFrame(ref["params_structural"])
    regs = params[params["op"] == "~"]
    got = res.table("paths").merge(regs, on=["lhs", "rhs"])
    assert len(got) == 7
    for a, b in [("estimate", "est"), ("se", "se_y"), ("z", "z_y"), ("pvalue", "pvalue_y"), ("std_estimate", "std.all")]:
        assert_allclose(got[a if a not in ("se", "z", "pvalue") else a + "_x"], got[b], **ML, err_msg=a)
    for c in ["KAQ", "KCR", "UPG"]:
        assert_allclose(res["r2"][c], ref["r2"][c], **ML)
    hyp = res.table("hypotheses").set_index("id")
    h1 = regs[(regs["lhs"] == "KAQ") & (regs["rhs"] == "NSC")].iloc[0]
    assert_allclose(hyp.loc["H1", "std_estimate"], h1["std.all"], **ML)
    assert hyp.loc["H1", "supported"] == bool(h1["pvalue"] < 0.05 and h1["est"] > 0)
    h4 = regs[(regs["lhs"] == "KCR") & (regs["rhs"] == "TST")].iloc[0]
    assert hyp.loc["H4", "supported"] == bool(h4["pvalue"] < 0.05 and h4["est"] > 0)
    assert len(hyp) == 11


def test_reliability_and_validity_equal_r(bundled, ref):
    res = bundled[0]
    for c, a in ref["alpha"].items():
        r = res["reliability"][c]
        assert_allclose(r["alpha"], a["alpha"], **CLOSED_FORM)
        assert_allclose(r["std_alpha"], a["std_alpha"], **CLOSED_FORM)
        for item, v in a["citc"].items():
            assert_allclose(r["items"][item]["citc"], v, **CLOSED_FORM)
            assert_allclose(r["items"][item]["alpha_if_deleted"], a["alpha_if_deleted"][item], **CLOSED_FORM)
        assert_allclose(r["omega"], ref["omega"][c], **ML)
    names = list(ref["alpha"])
    htmt = np.array(ref["htmt"])
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            assert_allclose(res["htmt"][a][b], htmt[i][j], **ML)
    params = pd.DataFrame(ref["params_measurement"])
    load = params[params["op"] == "=~"].set_index(["lhs", "rhs"])["std.all"]
    got = res.table("loadings").set_index(["construct", "item"])["std_loading"]
    assert_allclose(got.loc[load.index], load, **ML)


def test_constructs_that_are_only_outcomes_covary_as_in_lavaan(tmp_path):
    # lavaan's sem() frees the residual covariance of constructs that predict nothing (here KCR
    # and UPG); the same model must give lavaan's df, chi-square and paths.
    # Expected: lavaan_extra.json["liaoning_two_outcomes"] (make_reference.R, section 9).
    import yaml

    ref = load_json("lavaan_extra.json")["liaoning_two_outcomes"]
    src, qpath = pipeline.bundled_paths()
    spec = yaml.safe_load(qpath.read_text(encoding="utf-8"))
    spec["paths"] = ["KAQ ~ NSC + NHE", "KCR ~ TST + KAQ", "UPG ~ KAQ"]
    spec.pop("hypotheses"), spec.pop("population")
    q = tmp_path / "two.yaml"
    q.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    res = pipeline.run(src, q, tmp_path / "o", bootstrap=0)
    fit = res["fit"]["structural"]
    assert fit["df"] == ref["fit"]["df"] == 221
    for key in ("chisq", "cfi", "tli", "rmsea", "srmr", "aic", "bic"):
        assert_allclose(fit[key], ref["fit"][key], **(ML_REL if key in RELATIVE_KEYS else ML), err_msg=key)
    params = pd.DataFrame(ref["params"])
    want = params[params["op"] == "~"].set_index(["lhs", "rhs"])
    got = res.table("paths").set_index(["lhs", "rhs"]).loc[want.index]
    assert_allclose(got["estimate"], want["est"], **ML)
    assert_allclose(got["se"], want["se"], **ML)
    assert_allclose(got["std_estimate"], want["std.all"], **ML)


def test_structural_modification_indices_equal_lavaan(bundled, ref):
    mi = pd.DataFrame(bundled[0]["modification_indices"]["structural"])
    want = pd.DataFrame(ref["modindices_structural"])
    merged = want.merge(mi, on=["lhs", "op", "rhs"])
    assert len(merged) >= 18  # the same candidates rank in the top 20
    assert_allclose(merged["mi_x"], merged["mi_y"], rtol=1e-3)


def test_results_json_plain_and_deterministic(bundled, tmp_path):
    res, out = bundled
    text = (out / "results.json").read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    for key in ["n_rows_read", "n_rejected", "n_used", "missing", "data_quality", "reliability", "loadings",
                "factor_correlations", "htmt", "fornell_larcker", "kmo", "bartlett", "efa", "common_method",
                "fit", "paths", "r2", "hypotheses", "modification_indices", "provenance"]:
        assert key in doc, key
    assert doc["n_rows_read"] == 218 and doc["n_used"] == 218 and doc["n_rejected"] == 0
    assert doc["bootstrap"]["n_requested"] == 300 and doc["bootstrap"]["n_ok"] + doc["bootstrap"]["n_failed"] == 300
    ind = {r["name"]: r for r in doc["indirect"]}
    h8 = next(h for h in doc["hypotheses"] if h["id"] == "H8")
    assert h8["method"] == "bootstrap-percentile"
    assert (h8["ci_lower"], h8["ci_upper"]) == (ind["H8"]["perc_lower"], ind["H8"]["perc_upper"])
    assert any(t["name"] == "NSC->UPG" for t in doc["total_effects"])
    marker = next(r for r in doc["loadings"] if r["item"] == "nsc1")
    assert marker["se"] is None and "fixed" in marker["note"]
    again = pipeline.run(outdir=tmp_path, bootstrap=300, progress=False)
    assert (tmp_path / "results.json").read_bytes() == (out / "results.json").read_bytes()
    assert again["fit"]["structural"]["chisq"] == res["fit"]["structural"]["chisq"]


def _messy_survey(tmp_path):
    """The bundled survey with missing cells, a broken row, a duplicate id and a text cell."""
    src, qpath = pipeline.bundled_paths()
    df = pd.read_csv(src, dtype=str)
    rng = np.random.default_rng(1)
    items = [c for c in df.columns if c != "firm_id"]
    for _ in range(150):
        df.iloc[rng.integers(len(df)), rng.integers(1, len(df.columns))] = ""
    df.loc[5, "kaq2"] = "agree"
    df.loc[9, "upg1"] = "9"
    df = pd.concat([df, df.iloc[[3]]], ignore_index=True)
    path = tmp_path / "messy.csv"
    df.to_csv(path, index=False)
    return path, qpath, items


def test_fiml_and_listwise_on_messy_survey(tmp_path):
    path, qpath, items = _messy_survey(tmp_path)
    lw = pipeline.run(path, qpath, tmp_path / "lw", bootstrap=0)
    fi = pipeline.run(path, qpath, tmp_path / "fi", missing="fiml", bootstrap=200, progress=False)
    assert lw["n_rows_read"] == 219 and lw["n_rejected"] == 3
    rej = pd.read_csv(tmp_path / "lw" / "rejected_rows.csv")
    assert sorted(rej["line"]) == [7, 11, 220]
    assert set(rej["kind"]) == {"invalid value", "duplicate id"}
    assert fi["n_used"] == 216 and lw["n_used"] < 216
    assert fi["fit"]["structural"]["df"] == lw["fit"]["structural"]["df"]  # lavaan: the same df with means
    assert fi["admissibility"]["structural"]["converged"]
    assert fi["reliability"]["NSC"]["sample"].startswith("complete cases of each construct")
    # FIML bootstrap: every resample a full-information refit; indirect hypotheses judged by it
    assert fi["bootstrap"]["n_ok"] + fi["bootstrap"]["n_failed"] == 200 and fi["bootstrap"]["n_ok"] >= 190
    indirect = [h for h in fi["hypotheses"] if h["kind"] == "indirect"]
    assert indirect and all(h["method"] == "bootstrap-percentile" for h in indirect)
    assert all(h["ci_lower"] < h["estimate"] < h["ci_upper"] for h in indirect)


def test_fiml_with_few_complete_rows_uses_em_correlations_for_kmo_and_efa(tmp_path):
    # 25% of cells blanked at random leaves no complete row, so KMO, Bartlett, EFA and Harman's
    # test use the EM (saturated FIML) correlations of all rows, and say so.
    # Expected: psych::KMO / cortest.bartlett on lavaan::lavCor(missing = "ml"),
    # lavaan_extra.json["liaoning_25pct_em_kmo"] (make_reference.R section 10; lavaan's EM stops
    # at its own tolerance, hence 1e-3).
    ref = load_json("lavaan_extra.json")["liaoning_25pct_em_kmo"]
    _, qpath = pipeline.bundled_paths()
    res = pipeline.run(REF / "liaoning_25pct_missing.csv", qpath, tmp_path / "o", missing="fiml", bootstrap=0)
    assert res["kmo"]["sample"].startswith("EM (full-information) correlations of all 218 rows: too few "
                                           "complete rows (0)")
    assert res["efa"]["n"] == ref["n"] == 218 and res["common_method"]["sample"] == res["kmo"]["sample"]
    assert_allclose(res["kmo"]["overall"], ref["overall"], **ML)
    items = list(ref["items"])
    assert_allclose([res["kmo"]["items"][i] for i in items], [ref["items"][i] for i in items], **ML)
    assert_allclose(res["bartlett"]["chi2"], ref["bartlett_chisq"], **ML_REL)
    assert "too few complete rows" not in " ".join(res["warnings"])


def test_single_item_construct_reported_not_nan(tmp_path):
    src, _ = pipeline.bundled_paths()
    q = tmp_path / "q.yaml"
    q.write_text("scale: [1, 7]\nconstructs:\n  A: {items: [nsc1, nsc2, nsc3]}\n  B: {items: [upg1]}\n"
                 "  C: {items: [kaq1, kaq2, kaq3]}\npaths: [C ~ A + B]\n", encoding="utf-8")
    res = pipeline.run(src, q, tmp_path / "o", bootstrap=0)
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["reliability"]["B"]["alpha"] is None and "single-item" in doc["reliability"]["B"]["reason"]
    assert doc["reliability"]["B"]["cr"] is None
    assert res["fit"]["structural"]["df"] > 0


def test_zero_variance_item_named(tmp_path):
    src, qpath = pipeline.bundled_paths()
    df = pd.read_csv(src)
    df["tst3"] = 4
    path = tmp_path / "flat.csv"
    df.to_csv(path, index=False)
    with pytest.raises(SemUpgradeError, match="zero variance in the sample used: tst3"):
        pipeline.run(path, qpath, bootstrap=0)


@pytest.mark.parametrize("missing", ["listwise", "fiml"])
@pytest.mark.parametrize("make,message", [
    (lambda df: df["kaq1"], r"survey.csv: the sample covariance matrix is not positive definite: "
                            r"duplicated items: kaq2 and kaq1 \(r = 1.0000\)"),
    # kaq2 = kaq1 + kaq3 - kaq4, clipped to the scale by keeping only the rows where it fits:
    (None, r"survey.csv: the sample covariance matrix is not positive definite: collinear items: "
           r"(?=.*kaq1)(?=.*kaq2)(?=.*kaq3)(?=.*kaq4)"),
])
def test_identical_or_collinear_items_named_before_any_statistic(tmp_path, make, message, missing):
    # Before KMO, EFA or a fit: one message naming the file and the items to blame.
    src, qpath = pipeline.bundled_paths()
    df = pd.read_csv(src)
    if make is None:
        df["kaq2"] = df["kaq1"] + df["kaq3"] - df["kaq4"]
        df = df[df["kaq2"].between(1, 7)]
    else:
        df["kaq2"] = make(df)
    path = tmp_path / "survey.csv"
    df.to_csv(path, index=False)
    with pytest.raises(SemUpgradeError, match=message):
        pipeline.run(path, qpath, tmp_path / "o", bootstrap=0, missing=missing)


def test_chinese_and_dotted_names_give_the_same_analysis(tmp_path):
    # Renaming columns and constructs cannot change a fit: Chinese construct and item names and
    # SPSS-style dotted item names give the ASCII-named chi-square (1e-10) and paths (1e-8: the
    # optimiser stops at a gradient of 1e-9, and parameter order may differ).
    src, _ = pipeline.bundled_paths()
    df = pd.read_csv(src)
    ren = {"nsc1": "网络规模1", "nsc2": "网络规模2", "nsc3": "网络规模3", "kaq1": "Q4.1", "kaq2": "Q4.2",
           "kaq3": "Q4.3"}
    body = ("scale: [1, 7]\nconstructs:\n  {A}: {{items: [{nsc1}, {nsc2}, {nsc3}]}}\n"
            "  B: {{items: [{kaq1}, {kaq2}, {kaq3}]}}\n  C: {{items: [upg1, upg2, upg3]}}\n"
            "paths: [B ~ {A}, C ~ B + {A}]\nhypotheses:\n  H1: {{path: {A} -> B, sign: +}}\n")
    fits = []
    for tag, names, a in [("ascii", {k: k for k in ren}, "A"), ("zh", ren, "网络规模")]:
        df.rename(columns=names).to_csv(tmp_path / f"{tag}.csv", index=False)
        (tmp_path / f"{tag}.yaml").write_text(body.format(A=a, **names), encoding="utf-8")
        fits.append(pipeline.run(tmp_path / f"{tag}.csv", tmp_path / f"{tag}.yaml", tmp_path / tag, bootstrap=0))
    ascii_, zh = fits
    assert_allclose(zh["fit"]["structural"]["chisq"], ascii_["fit"]["structural"]["chisq"], rtol=1e-10)
    assert_allclose(zh.table("paths")["estimate"], ascii_.table("paths")["estimate"], atol=1e-8)
    assert zh.table("hypotheses")["effect"].tolist() == ["网络规模 -> B"]
    assert "网络规模" in (tmp_path / "zh" / "report.html").read_text(encoding="utf-8")


def test_structural_model_without_convergence_is_not_bootstrapped(tmp_path, monkeypatch):
    # A structural fit that stops short of an optimum: no bootstrap, every hypothesis "not
    # tested", the reason in the warnings; the run itself completes.
    import dataclasses

    real = pipeline.fit_model

    def stuck_structural(syntax, *args, **kwargs):
        fit = real(syntax, *args, **kwargs)
        return dataclasses.replace(fit, converged=False, message="iteration limit reached") if " ~ " in syntax else fit

    monkeypatch.setattr(pipeline, "fit_model", stuck_structural)
    res = pipeline.run(outdir=tmp_path / "o", bootstrap=50, progress=False)
    assert res["bootstrap_skipped"] == "the structural model did not converge: no bootstrap"
    assert "bootstrap" not in res.data and res.bootstrap is None
    assert {h["reason"] for h in res["hypotheses"]} == {"not tested: the model did not converge"}
    assert res["fit"]["structural"]["valid"] is False
    assert "structural model: the fit did not converge (iteration limit reached); its figures are not valid" \
        in res["warnings"]
    assert (tmp_path / "o" / "report.html").exists()


def test_too_few_rows_to_bootstrap_keeps_the_rest_of_the_analysis(tmp_path):
    # 45 firms, 56 free parameters: the model can be fitted, a resample cannot. The run completes,
    # says why there is no bootstrap, and judges indirect hypotheses by the delta method.
    src, qpath = pipeline.bundled_paths()
    path = tmp_path / "small.csv"
    pd.read_csv(src).head(45).to_csv(path, index=False)
    res = pipeline.run(path, qpath, tmp_path / "o", bootstrap=100, progress=False)
    assert res["bootstrap_skipped"] == ("no bootstrap: too few rows to bootstrap: 45 rows for 56 free parameters "
                                        "(a resample needs more rows than parameters)")
    assert res["bootstrap_skipped"] in res["warnings"] and "bootstrap" not in res.data
    assert {h["method"] for h in res["hypotheses"] if h["kind"] == "indirect"} == {"delta (Sobel)"}


def test_non_converged_fit_is_not_presented_as_valid():
    import dataclasses

    from sem_upgrade.engine.fit import fit_model
    from sem_upgrade.fit_indices import verdicts
    from sem_upgrade.pipeline import _admissibility, _fit_block

    from references import HS_MODEL, load_csv

    fit = fit_model(HS_MODEL, load_csv("holzinger_swineford.csv"))
    stuck = dataclasses.replace(fit, converged=False, message="iteration limit reached")
    block = _fit_block(stuck)
    assert block["valid"] is False and "did not converge" in block["note"]
    assert {v["verdict"] for v in verdicts(block)} == {"not valid (no convergence)"}
    adm = _admissibility(stuck)
    assert not adm["admissible"] and adm["problems"][0].startswith("the fit did not converge")
    assert _fit_block(fit)["valid"] is True


@pytest.mark.parametrize("data,missing,ref_key", [
    ("holzinger_swineford.csv", "listwise", None),
    ("holzinger_swineford_missing.csv", "fiml", "fiml"),
])
def test_measurement_only_study_end_to_end(tmp_path, data, missing, ref_key):
    # Continuous measures (no scale), constructs only: everything that applies runs, and the
    # numbers equal lavaan's (reference/holzinger_swineford*.json).
    q = tmp_path / "hs.yaml"
    q.write_text("name: hs\nid: id\nconstructs:\n  visual: {items: [x1, x2, x3]}\n"
                 "  textual: {items: [x4, x5, x6]}\n  speed: {items: [x7, x8, x9]}\n", encoding="utf-8")
    res = pipeline.run(REF / data, q, tmp_path / "out", missing=missing, progress=False)
    ref = load_json(data.replace(".csv", ".json"))
    ref = ref[ref_key] if ref_key else ref
    assert "structural" not in res["fit"] and "hypotheses" not in res.data
    for key in ("chisq", "cfi", "tli", "rmsea", "srmr", "aic", "bic"):
        tol = ML_REL if key in RELATIVE_KEYS else ML
        assert_allclose(res["fit"]["measurement"][key], ref["fit"][key], **tol, err_msg=key)
    got = res.table("loadings").set_index("item")["std_loading"]
    assert_allclose([got[r["item"]] for r in ref["loadings"]], [r["std_loading"] for r in ref["loadings"]], **ML)
    if ref_key is None:
        for c, r in ref["reliability"].items():
            assert_allclose(res["reliability"][c]["cr"], r["cr"], **ML)
            assert_allclose(res["reliability"][c]["alpha"], ref["alpha"][c]["alpha"], **CLOSED_FORM)
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Path diagram" not in page and "Convergent validity" in page and "Standardized loadings" in page
