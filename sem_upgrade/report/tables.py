"""The tables a paper prints, built from a run's results (read only) in English or Chinese.

Each table is a :class:`Table`: a title, human column headers (χ², CFI, B, SE, C.R., β,
Cronbach's α, CR, AVE, √AVE, HTMT ...) and rows of :class:`Cell` (the text a reader sees and
the number behind it, so Excel keeps numbers as numbers). Constructs and items are shown
by their labels from the questionnaire; no internal key reaches a reader. Nothing is
computed or judged here: verdicts and thresholds come from the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ..results import to_plain
from .fmt import DASH, apa, ci, cite, clean, cutoff, is_missing, num, p_apa, stars
from .i18n import words

__all__ = ["Cell", "Table", "build_tables", "construct_label", "effect_label"]

_F3 = "0.000"
_B3 = ".000;-.000"  # Excel: no leading zero for values bounded by 1
_P = '[<0.001]"< .001";.000'


class Cell(NamedTuple):
    """``text`` as printed; ``value`` the number behind it (None for text); ``fmt`` its Excel format."""

    text: str
    value: object = None
    fmt: str | None = None
    bold: bool = False


@dataclass
class Table:
    key: str
    title: str
    header: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""


def _t(text) -> Cell:
    return Cell(clean(text))


def _n(x, digits=3) -> Cell:
    return Cell(num(x, digits), None if is_missing(x) else float(x), _F3 if digits == 3 else "0.00")


def _b(x, bold=False) -> Cell:
    return Cell(apa(x), None if is_missing(x) else float(x), _B3, bold)


def _p(x) -> Cell:
    return Cell(p_apa(x), None if is_missing(x) else float(x), _P)


def _i(x) -> Cell:
    return Cell(DASH, None) if is_missing(x) else Cell(str(int(x)), int(x), "0")


def construct_label(d: dict, name: str, lang: str) -> str:
    """A construct's label in ``lang`` (the questionnaire's), else its name."""
    c = d["questionnaire"]["constructs"].get(name)
    if c is None:
        return name
    labels = c.get("labels") or {}
    return clean(labels.get(lang) or labels.get("en") or c.get("label") or name)


def effect_label(d: dict, chain, lang: str) -> str:
    return " → ".join(construct_label(d, c, lang) for c in chain)


def build_tables(res, lang: str = "en") -> list[Table]:
    """Every table of the report, in reading order, in ``lang``."""
    d = to_plain(res.data)
    w = words(lang)
    out = [_sample(d, w, lang), _items(d, w, lang), _convergent(d, w, lang), _discriminant(d, w, lang),
           _fit(d, w)]
    if "paths" in res.tables:
        out += [_paths(d, w, lang), _hypotheses(d, w, lang), _mediation(d, w, lang)]
    out += _model_tables(d, w, lang)
    if d.get("efa") and "skipped" not in d["efa"]:
        out.append(_efa(d, w))
    out.append(_mi(d, w))
    if res.rejected is not None and len(res.rejected):
        out.append(_rejected(res, w))
    return out


def _sample(d, w, lang) -> Table:
    q = d["data_quality"]
    rows = [[_t(w("rows_read")), _i(q["n_rows_read"])], [_t(w("rows_rejected")), _i(q["n_rejected"])]]
    rows += [[_t(w("rejected_for", reason=clean(k))), _i(v)] for k, v in q["rejected_by_reason"].items()]
    rows += [[_t(w("rows_valid")), _i(q["n_valid"])], [_t(w("rows_complete")), _i(q["n_complete"])],
             [_t(w("rows_used")), _i(q["n_used"])], [_t(w("missing_policy")), _t(w(q["missing_policy"]))],
             [_t(w("missing_cells")), _i(q["missing_cells"])],
             [_t(w("straight")), _i(q["straight_liners"]["count"])],
             [_t(w("reverse")), _t(", ".join(map(clean, q["reverse_recoded"])) or w("none"))]]
    if d.get("kmo"):
        b = d["bartlett"]
        rows += [[_t(w("kmo")), _b(d["kmo"]["overall"])],
                 [_t(w("bartlett", df=b["df"])), _n(b["chi2"], 2)], [_t(w("bartlett_p")), _p(b["pvalue"])]]
    cm = d.get("common_method") or {}
    if cm.get("harman_first_factor_share") is not None:
        rows.append([_t(w("harman")), _b(cm["harman_first_factor_share"])])
    one = cm.get("one_factor_cfa") or {}
    if one.get("chisq_diff") is not None:
        rows.append([_t(w("one_factor", df=one["df_diff"])), _n(one["chisq_diff"], 2)])
    return Table("sample", w("t_sample"), [w("measure"), w("value")], rows)


def _wording(d, c, item, lang) -> str:
    text = (d["questionnaire"]["constructs"][c].get("wording") or {}).get(item)
    if isinstance(text, dict):
        text = text.get(lang) or text.get("en") or next(iter(text.values()), "")
    return clean(text or "")


def _items(d, w, lang) -> Table:
    has_wording = any(c.get("wording") for c in d["questionnaire"]["constructs"].values())
    header = [w("construct"), w("item")] + ([w("wording")] if has_wording else []) + [
        w("mean"), w("sd"), w("citc"), w("alpha_if_deleted"), w("alpha")]
    rows = []
    for c, r in d["reliability"].items():
        for k, (item, s) in enumerate(r["items"].items()):
            rows.append([_t(construct_label(d, c, lang) if k == 0 else ""), _t(item)]
                        + ([_t(_wording(d, c, item, lang))] if has_wording else [])
                        + [_n(s["mean"], 2), _n(s["sd"], 2), _b(s["citc"]), _b(s["alpha_if_deleted"]),
                           _b(r["alpha"]) if k == 0 else _t("")])
    th = d["verdicts"]["thresholds"]
    note = w("n_items", alpha=apa(th["alpha"]["value"], 2), alpha_src=cite(th["alpha"]["source"]),
             citc=apa(th["citc"]["value"], 2), citc_src=cite(th["citc"]["source"]))
    return Table("items", w("t_items"), header, rows, note)


def _convergent(d, w, lang) -> Table:
    load = d["loadings"]
    header = [w("construct"), w("item"), w("b"), w("se"), w("cr_z"), w("p"), w("std_loading"), w("cr"), w("ave")]
    rows, seen = [], set()
    for r in load:
        c = r["construct"]
        first = c not in seen
        seen.add(c)
        rel = d["reliability"][c]
        rows.append([_t(construct_label(d, c, lang) if first else ""), _t(r["item"]), _n(r["estimate"]),
                     _n(r["se"]), _n(r["z"], 2), _p(r["pvalue"]), _b(r["std_loading"]),
                     _b(rel.get("cr")) if first else _t(""), _b(rel.get("ave")) if first else _t("")])
    th = d["verdicts"]["thresholds"]
    note = w("n_convergent", cr=apa(th["cr"]["value"], 2), ave=apa(th["ave"]["value"], 2), src=cite(th["cr"]["source"]))
    return Table("convergent", w("t_convergent"), header, rows, note)


def _discriminant(d, w, lang) -> Table:
    fl = d["fornell_larcker"]["matrix"]
    htmt = d["htmt"]
    names = list(d["questionnaire"]["constructs"])
    header = [w("construct")] + names
    rows = []
    for i, a in enumerate(names):
        row = [_t(f"{construct_label(d, a, lang)} ({a})")]
        for j, b in enumerate(names):
            if i == j:
                row.append(_b(fl[a][a], bold=True))
            elif j < i:
                row.append(_b(fl[a][b]))
            else:
                row.append(_b(htmt[a][b]))
        rows.append(row)
    th = d["verdicts"]["thresholds"]
    return Table("discriminant", w("t_discriminant"), header, rows,
                 w("n_discriminant", htmt=apa(th["htmt_strict"]["value"], 2), src=cite(th["htmt_strict"]["source"])))


_FIT_ROWS = ["chisq", "df", "cmin_df", "pvalue", "cfi", "tli", "nfi", "ifi", "gfi", "agfi", "rmsea", "rmsea_pvalue",
             "srmr", "rmr", "aic", "bic"]
_BOUNDED = {"cfi", "tli", "nfi", "ifi", "gfi", "agfi", "srmr", "cfi_robust", "tli_robust", "cfi_scaled", "tli_scaled",
            "rmsea_scaled"}
# Under MLM / MLR these rows come first: the figures the verdicts use (lavaan's summary order).
_ROBUST_ROWS = ["chisq_scaled", "chisq_scaling_factor", "pvalue_scaled", "cfi_robust", "tli_robust", "rmsea_robust"]


def _fit_cell(block, key) -> Cell:
    v = block.get(key)
    if key == "df":
        return _i(v)
    if key in ("pvalue", "rmsea_pvalue", "pvalue_scaled"):
        return _p(v)
    if key in ("rmsea", "rmsea_robust"):
        sfx = "_robust" if key == "rmsea_robust" else ""
        text = f"{apa(v)} {ci(block.get('rmsea_ci_lower' + sfx), block.get('rmsea_ci_upper' + sfx), bounded=True)}"
        return Cell(text if not is_missing(v) else DASH, None if is_missing(v) else float(v), _B3)
    if key in _BOUNDED:
        return _b(v)
    return _n(v, 2 if key in ("chisq", "aic", "bic") else 3)


def _fit(d, w) -> Table:
    models = [m for m in ("measurement", "structural") if m in d["fit"]]
    cut = {m: {v["index"]: v for v in d["fit_verdicts"][m]} for m in models}
    header = [w("index"), w("criterion")] + [w(f"{m}_model") for m in models]
    rows, rules = [], []
    robust = "chisq_scaled" in d["fit"][models[0]]
    by_basis = {v["basis"]: v for v in cut[models[0]].values() if v.get("basis", v["index"]) != v["index"]}
    robust_rows = [k if k in d["fit"][models[0]] else k.replace("_robust", "_scaled") for k in _ROBUST_ROWS]
    for key in robust_rows if robust else []:
        v = by_basis.get(key)
        rows.append([_t(w(key)), _t(cutoff(v["cutoff"]) if v else "")] + [_fit_cell(d["fit"][m], key) for m in models])
    for key in _FIT_ROWS:
        v = cut[models[0]].get(key)
        criterion = cutoff(v["cutoff"]) if v and not (robust and v.get("basis", key) != key) else ""
        if v:
            rules.append(f"{w(key).split(' [')[0]} {criterion} ({cite(v['source'])})")
        rows.append([_t(w(key)), _t(criterion)] + [_fit_cell(d["fit"][m], key) for m in models])
    note = w("n_fit", rules="; ".join(rules))
    if robust:
        est = str(d.get("estimator", "")).upper()
        test = "Satorra-Bentler" if est == "MLM" else "Yuan-Bentler"
        note = w("n_robust", est=est, test=test) + " " + note
    return Table("fit", w("t_fit"), header, rows, note)


def _paths(d, w, lang) -> Table:
    header = [w("path"), w("b"), w("se"), w("cr_z"), w("p"), w("beta")]
    rows = [[_t(effect_label(d, (p["rhs"], p["lhs"]), lang)), _n(p["estimate"]), _n(p["se"]), _n(p["z"], 2),
             _p(p["pvalue"]), Cell(apa(p["std_estimate"]) + stars(p["pvalue"]), float(p["std_estimate"]), _B3)]
            for p in d["paths"]]
    r2 = ", ".join(f"{construct_label(d, c, lang)} = {apa(v)}" for c, v in d.get("r2", {}).items())
    return Table("paths", w("t_paths"), header, rows, w("n_paths", r2=r2) + " " + w("n_stars"))


def _verdict(h, w, lang) -> str:
    if h["supported"]:
        return w("supported")
    o, c = ("（", "）") if lang == "zh" else (" (", ")")
    reason = str(h.get("reason") or "")
    if reason.startswith("not tested"):
        return f"{w('not_tested')}{o}{clean(reason[len('not tested'):].lstrip(': '))}{c}"
    key = "not significant" if reason.startswith("not significant") else reason
    return f"{w('not_supported')}{o}{w(key)}{c}" if key else w("not_supported")


def _hypotheses(d, w, lang) -> Table:
    level = d["provenance"]["options"].get("ci_level", 0.95)
    labels = (d["questionnaire"].get("hypotheses") or {})
    header = [w("id"), w("hypothesis"), w("path"), w("beta"), w("evidence"), w("verdict")]
    rows = []
    for h in d["hypotheses"]:
        chain = h["effect"].split(" -> ")
        if h["method"].startswith("bootstrap"):
            evidence = f"{level:.0%} CI {ci(h['ci_lower'], h['ci_upper'])}"
        else:
            evidence = f"p {'< .001' if p_apa(h['pvalue']) == '< .001' else '= ' + p_apa(h['pvalue'])}"
        rows.append([_t(h["id"]), _t(labels.get(h["id"], "")), _t(effect_label(d, chain, lang)),
                     Cell(apa(h["std_estimate"]) + stars(h["pvalue"]), None if is_missing(h["std_estimate"])
                          else float(h["std_estimate"]), _B3),
                     _t(evidence), _t(_verdict(h, w, lang))])
    b = d.get("bootstrap") or {}
    note = w("n_hyp", alpha=apa(d["provenance"]["options"]["alpha"], 2), level=f"{level:.0%}",
             kind=w(b.get("interval_for_hypotheses", "percentile")))
    return Table("hypotheses", w("t_hypotheses"), header, rows, note + " " + w("n_stars"))


def _mediation(d, w, lang) -> Table:
    level = f"{d['provenance']['options'].get('ci_level', 0.95):.0%}"
    header = [w("effect"), w("type"), w("b"), w("beta"), w("boot_se"), w("ci_perc", level=level),
              w("ci_bc", level=level)]
    paths = {(p["rhs"], p["lhs"]): p for p in d.get("paths", [])}
    totals = {tuple(t["chain"]): t for t in d.get("total_effects", [])}
    rows = []
    for r in d.get("indirect", []):
        chain = tuple(r["chain"])
        mark = " †" if r.get("interval_note") else ""  # an interval that judges no hypothesis
        kind = w("indirect") + (f" ({w(r['mediation_type'])})" if r.get("mediation_type") else "")
        rows.append([_t(f"{r['name']}: {effect_label(d, chain, lang)}"), _t(kind), _n(r["estimate"]),
                     _b(r["std_estimate"]), _n(r.get("boot_se")),
                     _t(ci(r.get("perc_lower"), r.get("perc_upper")) + mark),
                     _t(ci(r.get("bc_lower"), r.get("bc_upper")) + mark)])
        direct = paths.get((chain[0], chain[-1]))
        if direct is not None:
            rows.append([_t(""), _t(w("direct")), _n(direct["estimate"]), _b(direct["std_estimate"]),
                         _n(direct["se"]), _t(f"p = {p_apa(direct['pvalue'])}".replace("= <", "<")), _t("")])
        else:
            rows.append([_t(""), _t(w("direct")), _t(w("no_direct")), _t(""), _t(""), _t(""), _t("")])
        t = totals.get((chain[0], chain[-1]))
        if t is not None:
            rows.append([_t(""), _t(w("total")), _n(t["estimate"]), _b(t["std_estimate"]), _n(t["boot_se"]),
                         _t(ci(t["perc_lower"], t["perc_upper"])), _t(ci(t["bc_lower"], t["bc_upper"]))])
    b = d.get("bootstrap")
    note = (w("n_boot", ok=b["n_ok"], req=b["n_requested"], failed=b["n_failed"], inad=b["n_inadmissible"],
              seed=b["seed"], kind=w(b.get("interval_for_hypotheses", "percentile")))
            if b else w("n_noboot"))
    if b and b.get("unstable"):
        note += " " + w("n_unstable", failed=b["n_failed"], req=b["n_requested"], share=f"{b['failure_threshold']:.0%}")
    marked = [r["interval_note"] for r in d.get("indirect", []) if r.get("interval_note")]
    if marked and not (b and b.get("unstable")):
        note += " " + w("n_untested_ci", reason=marked[0].replace("interval not used: ", ""))
    return Table("mediation", w("t_mediation"), header, rows, note)


def _efa(d, w) -> Table:
    e = d["efa"]
    header = [w("item")] + [w("factor", k=i + 1) for i in range(e["n_factors"])]
    rows = [[_t(item)] + [_b(v) for v in vals] for item, vals in e["loadings"].items()]
    return Table("efa", w("t_efa"), header, rows, clean(e.get("statement", "")))


def _param(r) -> str:
    op = {"~~": "↔", "=~": "→", "~": "←"}.get(r["op"], r["op"])
    return clean(f"{r['lhs']} {op} {r['rhs']}")


def _mi(d, w) -> Table:
    mi = d.get("modification_indices") or {}
    header = [w("parameter"), w("mi"), w("epc"), w("sepc")]
    model = "structural" if mi.get("structural") else "measurement"
    rows = [[_t(_param(r)), _n(r["mi"], 2), _n(r["epc"]), _b(r.get("sepc_all"))] for r in (mi.get(model) or [])]
    return Table("modification_indices", f"{w('t_mi')} ({w(model + '_model')})", header, rows, w("n_mi"))


def _rejected(res, w) -> Table:
    df = res.rejected
    cols = [c for c in df.columns if c != "kind"]
    return Table("rejected_rows", w("t_rejected"), [clean(c) for c in cols],
                 [[_t(v) if isinstance(v, str) or v is None else _t(num(v) if isinstance(v, float) else v)
                   for v in rec] for rec in df[cols].itertuples(index=False)])


def _model_tables(d, w, lang) -> list[Table]:
    """The tables of group comparisons, moderation and ordinal items, where the run has them."""
    out = []
    if d.get("invariance"):
        out.append(_invariance(d, w))
    if d.get("latent_means"):
        out.append(_latent_means(d, w, lang))
    if d.get("paths_by_group"):
        out.append(_paths_by_group(d, w, lang))
    if d.get("hypotheses_by_group"):
        out.append(_hypotheses_by_group(d, w, lang))
    if d.get("simple_slopes"):
        out.append(_simple_slopes(d, w, lang))
    if d.get("conditional_indirect"):
        out.append(_conditional_indirect(d, w, lang))
    if d.get("thresholds"):
        out.append(_thresholds(d, w))
    return out


def _invariance(d, w) -> Table:
    inv = d["invariance"]
    header = [w("level"), w("chisq"), w("df"), w("cfi"), w("tli"), w("rmsea"), w("srmr"), w("delta_chisq"),
              w("delta_df"), w("delta_p"), w("delta_cfi"), w("delta_rmsea"), w("verdict")]
    rows = []
    for lv in inv["levels"]:
        name = w(lv["level"]) + (f" ({', '.join(map(clean, lv['freed']))})" if lv.get("freed") else "")
        rows.append([_t(name), _n(lv.get("chisq"), 2), _i(lv.get("df")), _b(lv.get("cfi")), _b(lv.get("tli")),
                     _b(lv.get("rmsea")), _b(lv.get("srmr")), _n(lv.get("delta_chisq"), 2), _i(lv.get("delta_df")),
                     _p(lv.get("delta_pvalue")), _n(lv.get("delta_cfi")), _n(lv.get("delta_rmsea")),
                     _t(lv.get("verdict") or "")])
    sizes = ", ".join(f"{clean(g)}: {n}" for g, n in (inv.get("group_sizes") or {}).items())
    note = w("n_invariance") + (f" N: {sizes}." if sizes else "")
    if inv.get("conclusion"):
        note += " " + clean(inv["conclusion"])
    return Table("invariance", w("t_invariance", group=clean(inv.get("group", ""))), header, rows, note)


def _latent_means(d, w, lang) -> Table:
    rows = [[_t(clean(r["group"])), _t(construct_label(d, r["construct"], lang)), _n(r["estimate"]), _n(r["se"]),
             _p(r["pvalue"])] for r in d["latent_means"]]
    ref = (d.get("invariance") or {}).get("group_sizes") or {}
    return Table("latent_means", w("t_latent_means", ref=clean(next(iter(ref), ""))),
                 [w("group"), w("construct"), w("b"), w("se"), w("p")], rows)


def _paths_by_group(d, w, lang) -> Table:
    groups = list(dict.fromkeys(r["group"] for r in d["paths_by_group"]))
    by = {(r["group"], r["lhs"], r["rhs"]): r for r in d["paths_by_group"]}
    tests = {(t["lhs"], t["rhs"]): t for t in d.get("path_differences") or []}
    header = [w("path")] + [f"{w('beta')} {clean(g)}" for g in groups] + [w("equal_test"), w("wald"), w("verdict")]
    rows = []
    for lhs, rhs in dict.fromkeys((r["lhs"], r["rhs"]) for r in d["paths_by_group"]):
        row = [_t(effect_label(d, (rhs, lhs), lang))]
        for g in groups:
            r = by.get((g, lhs, rhs)) or {}
            v = r.get("std_estimate")
            row.append(Cell(apa(v) + stars(r.get("pvalue")), None if is_missing(v) else float(v), _B3))
        t = tests.get((lhs, rhs)) or {}
        lrt = (f"{num(t.get('chisq_diff'), 2)}({t.get('df_diff', DASH)}), p = {p_apa(t.get('pvalue'))}"
               if t else DASH).replace("= <", "<")
        wald = (f"{num(t.get('wald'), 2)}({t.get('wald_df', DASH)}), p = {p_apa(t.get('wald_pvalue'))}"
                if t else DASH).replace("= <", "<")
        row += [_t(lrt), _t(wald), _t(clean(t.get("verdict") or ""))]
        rows.append(row)
    return Table("paths_by_group", w("t_path_groups"), header, rows, w("n_stars"))


def _hypotheses_by_group(d, w, lang) -> Table:
    rows = []
    for h in d["hypotheses_by_group"]:
        chain = str(h.get("effect", "")).split(" -> ")
        rows.append([_t(clean(h["group"])), _t(h["id"]), _t(effect_label(d, chain, lang)),
                     Cell(apa(h.get("std_estimate")) + stars(h.get("pvalue")),
                          None if is_missing(h.get("std_estimate")) else float(h["std_estimate"]), _B3),
                     _p(h.get("pvalue")), _t(_verdict(h, w, lang))])
    return Table("hypotheses_by_group", w("t_hyp_groups"),
                 [w("group"), w("id"), w("path"), w("beta"), w("p"), w("verdict")], rows, w("n_stars"))


def _simple_slopes(d, w, lang) -> Table:
    rows = []
    first = d["simple_slopes"][0]
    for r in d["simple_slopes"]:
        rows.append([_t(f"{construct_label(d, r.get('focal', ''), lang)} × {construct_label(d, r.get('moderator', ''), lang)}"),
                     _t(clean(r.get("level", ""))), _n(r.get("moderator_value")), _n(r.get("slope")), _n(r.get("se")),
                     _n(r.get("z"), 2), _p(r.get("pvalue"))])
    note = w("n_slopes", focal=construct_label(d, first.get("focal", ""), lang),
             outcome=construct_label(d, first.get("outcome", ""), lang))
    return Table("simple_slopes", w("t_slopes"), [w("effect"), w("moderator_at", mod=""), w("value"), w("slope"),
                                                  w("se"), w("cr_z"), w("p")], rows, note)


def _conditional_indirect(d, w, lang) -> Table:
    level = f"{d['provenance']['options'].get('ci_level', 0.95):.0%}"
    rows = [[_t(effect_label(d, r.get("chain", []), lang)), _t(clean(r.get("level", ""))), _n(r.get("estimate")),
             _n(r.get("boot_se")), _t(ci(r.get("ci_lower"), r.get("ci_upper")))]
            for r in d["conditional_indirect"]]
    for r in d.get("index_of_moderated_mediation") or []:
        rows.append([_t(effect_label(d, r.get("chain", []), lang)), _t(w("index_modmed")), _n(r.get("estimate")),
                     _n(r.get("boot_se")), _t(ci(r.get("ci_lower"), r.get("ci_upper")))])
    return Table("conditional_indirect", w("t_conditional"),
                 [w("effect"), w("moderator_at", mod=""), w("b"), w("boot_se"), w("ci_perc", level=level)], rows)


def _thresholds(d, w) -> Table:
    rows = [[_t(r["item"]), _t(r["threshold"]), _n(r["estimate"]), _n(r.get("se"))] for r in d["thresholds"]]
    return Table("thresholds", w("t_thresholds"), [w("item"), w("threshold"), w("b"), w("se")], rows,
                 w("n_thresholds"))
