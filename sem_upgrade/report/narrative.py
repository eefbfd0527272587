"""The results section, written: APA-style sentences per stage, in English or Chinese.

Every number in a sentence is read from the run's JSON results (``Results.data`` as written
to results.json) and recorded with its JSON path and print style in
:attr:`Sentence.numbers`, so a test can re-read each one from results.json. Verdict words
("supported", "fitted well") repeat the verdicts in the results; nothing is judged here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..results import to_plain
from .fmt import apa, cite, clean, is_missing, num, p_apa
from .tables import construct_label, effect_label

__all__ = ["Sentence", "narrative", "STYLES"]

STYLES = {
    "b3": lambda v: apa(v, 3),  # bounded by 1, no leading zero
    "b2": lambda v: apa(v, 2),
    "n2": lambda v: num(v, 2),
    "n3": lambda v: num(v, 3),
    "int": lambda v: str(int(v)),
    "p": p_apa,
    "pct": lambda v: f"{v:.0%}",
}


@dataclass
class Sentence:
    """One sentence; ``numbers`` lists (printed token, JSON path or None for a convention, style)."""

    stage: str
    text: str
    numbers: list = field(default_factory=list)


class _Writer:
    def __init__(self, d: dict, lang: str):
        self.d, self.lang, self.refs, self.out = d, lang, [], []

    def v(self, style: str, *path) -> str:
        value = self.d
        for k in path:
            value = value[k]
        token = STYLES[style](value)
        self.refs.append((token, path, style))
        return token

    def p(self, *path) -> str:
        """``p = .012`` or ``p < .001``."""
        token = self.v("p", *path)
        return f"p {token}" if token.startswith("<") else f"p = {token}"

    def const(self, token: str) -> str:
        self.refs.append((token, None, "const"))
        return token

    def say(self, stage: str, text: str):
        self.out.append(Sentence(stage, re.sub(r"\s+", " ", text).strip(), self.refs))
        self.refs = []


def narrative(res, lang: str = "en") -> list[Sentence]:
    """The sentences of the results section, in reading order."""
    d = to_plain(res.data)
    s = _Writer(d, lang)
    zh = lang == "zh"
    lab = lambda c: construct_label(d, c, lang)  # noqa: E731
    _sample(s, d, zh)
    _reliability(s, d, zh, lab)
    _validity(s, d, zh, lab)
    for m in ("measurement", "structural"):
        if m in d["fit"]:
            _fit(s, d, zh, m)
    for i, h in enumerate(d.get("hypotheses") or []):
        _hypothesis(s, d, zh, i, h, lang)
    _mediation(s, d, zh, lang)
    _caveats(s, d, zh)
    return s.out


def _sample(s, d, zh):
    policy = {"listwise": ("listwise deletion", "成列删除"), "fiml": ("full-information maximum likelihood",
                                                                     "全信息极大似然估计")}[d["missing"]][zh]
    if zh:
        s.say("sample", f"共读取{s.v('int', 'n_rows_read')}份样本，数据筛查剔除{s.v('int', 'n_rejected')}份，"
                        f"{s.v('int', 'n_used')}份进入分析（缺失值处理：{policy}）。")
    else:
        s.say("sample", f"Of the {s.v('int', 'n_rows_read')} rows read, {s.v('int', 'n_rejected')} were rejected at "
                        f"screening and {s.v('int', 'n_used')} were analysed ({policy}).")
    if d.get("kmo"):
        if zh:
            s.say("sample", f"KMO值为{s.v('b3', 'kmo', 'overall')}，Bartlett球形检验 χ²({s.v('int', 'bartlett', 'df')}) = "
                            f"{s.v('n2', 'bartlett', 'chi2')}，{s.p('bartlett', 'pvalue')}。")
        else:
            s.say("sample", f"Sampling adequacy was KMO = {s.v('b3', 'kmo', 'overall')}; Bartlett's test of sphericity "
                            f"gave χ²({s.v('int', 'bartlett', 'df')}) = {s.v('n2', 'bartlett', 'chi2')}, "
                            f"{s.p('bartlett', 'pvalue')}.")


def _range(d, key):
    vals = [(c, r.get(key)) for c, r in d["reliability"].items() if not is_missing(r.get(key))]
    if not vals:
        return None
    return min(vals, key=lambda t: t[1])[0], max(vals, key=lambda t: t[1])[0]


def _reliability(s, d, zh, lab):
    parts = []
    names = {"alpha": ("Cronbach's α", "Cronbach's α系数"), "cr": ("composite reliability (CR)", "组合信度（CR）"),
             "ave": ("the average variance extracted (AVE)", "平均方差抽取量（AVE）")}
    for key in ("alpha", "cr", "ave"):
        rng = _range(d, key)
        if rng is None:
            continue
        lo, hi = rng
        if zh:
            parts.append(f"{names[key][1]}介于{s.v('b3', 'reliability', lo, key)}（{lab(lo)}）与"
                         f"{s.v('b3', 'reliability', hi, key)}（{lab(hi)}）之间")
        else:
            parts.append(f"{names[key][0]} ranged from {s.v('b3', 'reliability', lo, key)} ({lab(lo)}) to "
                         f"{s.v('b3', 'reliability', hi, key)} ({lab(hi)})")
    if parts:
        s.say("reliability", ("；".join(parts) + "。") if zh else (parts[0][0].upper() + "; ".join(parts)[1:] + "."))
    verdicts = d["verdicts"]["reliability"]
    fails = [(c, k) for c, v in verdicts.items() for k in ("alpha", "cr", "ave") if v.get(k) is False]
    short = {"alpha": "α", "cr": "CR", "ave": "AVE"}
    if not fails:
        if zh:
            s.say("reliability", f"所有构念均满足 α ≥ {s.v('b2', 'verdicts', 'thresholds', 'alpha', 'value')}、"
                                 f"CR ≥ {s.v('b2', 'verdicts', 'thresholds', 'cr', 'value')}、"
                                 f"AVE ≥ {s.v('b2', 'verdicts', 'thresholds', 'ave', 'value')}的标准，信度与聚合效度良好。")
        else:
            s.say("reliability", f"Every construct met α ≥ {s.v('b2', 'verdicts', 'thresholds', 'alpha', 'value')}, "
                                 f"CR ≥ {s.v('b2', 'verdicts', 'thresholds', 'cr', 'value')} and "
                                 f"AVE ≥ {s.v('b2', 'verdicts', 'thresholds', 'ave', 'value')} "
                                 f"({cite(d['verdicts']['thresholds']['cr']['source'])}).")
    for c, k in fails:
        if zh:
            s.say("reliability", f"{lab(c)}的{short[k]}为{s.v('b3', 'reliability', c, k)}，低于"
                                 f"{s.v('b2', 'verdicts', 'thresholds', k, 'value')}的标准。")
        else:
            s.say("reliability", f"The {short[k]} of {lab(c)} ({s.v('b3', 'reliability', c, k)}) fell below "
                                 f"{s.v('b2', 'verdicts', 'thresholds', k, 'value')}.")
    load = d["loadings"]
    ok = [i for i, r in enumerate(load) if not is_missing(r.get("std_loading"))]
    if ok:
        lo = min(ok, key=lambda i: load[i]["std_loading"])
        hi = max(ok, key=lambda i: load[i]["std_loading"])
        if zh:
            s.say("reliability", f"标准化载荷介于{s.v('b3', 'loadings', lo, 'std_loading')}（{clean(load[lo]['item'])}）与"
                                 f"{s.v('b3', 'loadings', hi, 'std_loading')}（{clean(load[hi]['item'])}）之间。")
        else:
            s.say("reliability", f"Standardized loadings ranged from {s.v('b3', 'loadings', lo, 'std_loading')} "
                                 f"({clean(load[lo]['item'])}) to {s.v('b3', 'loadings', hi, 'std_loading')} "
                                 f"({clean(load[hi]['item'])}).")


def _validity(s, d, zh, lab):
    met = d["fornell_larcker"]["criterion_met"]
    failing = [lab(c) for c, ok in met.items() if ok is False]
    if zh:
        s.say("validity", "各构念AVE的平方根均大于其与其他构念的相关系数，区分效度良好（Fornell & Larcker, 1981）。"
              if not failing else f"{'、'.join(failing)}的AVE平方根未大于其与其他构念的相关系数（Fornell & Larcker, 1981）。")
    else:
        s.say("validity", "For every construct, the square root of the AVE exceeded its correlations with the other "
              "constructs (Fornell & Larcker, 1981)." if not failing else
              f"The square root of the AVE did not exceed every correlation for {', '.join(failing)} "
              "(Fornell & Larcker, 1981).")
    names = list(d["htmt"])
    pairs = [(a, b) for i, a in enumerate(names) for b in names[:i] if not is_missing(d["htmt"][a][b])]
    if pairs:
        a, b = max(pairs, key=lambda t: d["htmt"][t[0]][t[1]])
        flagged = d.get("htmt_flags") or []
        top = s.v("b3", "htmt", a, b)  # first in the sentence, so recorded first
        if zh:
            tail = (f"，{len(flagged) and '、'.join(lab(f['pair'][0]) + '—' + lab(f['pair'][1]) for f in flagged)}"
                    f"达到或超过{s.v('b2', 'verdicts', 'thresholds', 'htmt_strict', 'value')}") if flagged else \
                f"，均低于{s.v('b2', 'verdicts', 'thresholds', 'htmt_strict', 'value')}"
            s.say("validity", f"HTMT最大值为{top}（{lab(a)}—{lab(b)}）{tail}。")
        else:
            tail = (f"; {', '.join(lab(f['pair'][0]) + '–' + lab(f['pair'][1]) for f in flagged)} reached "
                    f"{s.v('b2', 'verdicts', 'thresholds', 'htmt_strict', 'value')} or more") if flagged else \
                f", below {s.v('b2', 'verdicts', 'thresholds', 'htmt_strict', 'value')}"
            s.say("validity", f"The largest HTMT ratio was {top} ({lab(a)}–{lab(b)}){tail}.")


def _fit(s, d, zh, m):
    f = d["fit"][m]
    if f.get("valid") is False:
        s.say("fit", f"{'测量' if m == 'measurement' else '结构'}模型未收敛，其拟合指数无效。" if zh else
              f"The {m} model did not converge; its fit indices are not valid.")
        return
    v = {r["index"]: r["verdict"] for r in d["fit_verdicts"][m]}
    core = [v.get(k) for k in ("cfi", "rmsea", "srmr")]
    how = "well" if all(x == "good" for x in core) else "poorly" if "poor" in core else "acceptably"
    stats = (f"χ²({s.v('int', 'fit', m, 'df')}) = {s.v('n2', 'fit', m, 'chisq')}, {s.p('fit', m, 'pvalue')}, "
             f"CFI = {s.v('b3', 'fit', m, 'cfi')}, TLI = {s.v('b3', 'fit', m, 'tli')}, "
             f"RMSEA = {s.v('b3', 'fit', m, 'rmsea')}, {s.const('90%')} CI [{s.v('b3', 'fit', m, 'rmsea_ci_lower')}, "
             f"{s.v('b3', 'fit', m, 'rmsea_ci_upper')}], SRMR = {s.v('b3', 'fit', m, 'srmr')}")
    if zh:
        word = {"well": "良好", "acceptably": "可以接受", "poorly": "不佳"}[how]
        s.say("fit", f"{'测量' if m == 'measurement' else '结构'}模型的拟合指数{word}：{stats}。")
    else:
        s.say("fit", f"The {m} model fitted the data {how}, {stats}.")


def _hypothesis(s, d, zh, i, h, lang):
    eff = effect_label(d, h["effect"].split(" -> "), lang)
    reason = str(h.get("reason") or "")
    if reason.startswith("not tested"):
        why = clean(reason[len("not tested"):].lstrip(": ")) if not re.search(r"\d", reason) else ""
        s.say("hypotheses", (f"假设{h['id']}（{eff}）未能检验" + (f"：{why}" if why else "") + "。") if zh else
              f"{h['id']} ({eff}) could not be tested" + (f": {why}." if why else "."))
        return
    if h["method"].startswith("bootstrap"):
        kind = h["method"].split("-", 1)[1]
        kind_w = {"percentile": ("percentile", "百分位"), "bc": ("bias-corrected", "偏差校正")}.get(kind, (kind, kind))[zh]
        ev = (f"B = {s.v('n3', 'hypotheses', i, 'estimate')}, β = {s.v('b3', 'hypotheses', i, 'std_estimate')}, "
              f"{s.v('pct', 'provenance', 'options', 'ci_level')} CI [{s.v('n3', 'hypotheses', i, 'ci_lower')}, "
              f"{s.v('n3', 'hypotheses', i, 'ci_upper')}]")
        ev = f"{'间接效应' if zh else 'indirect effect '}{ev}" + (f"（{kind_w} Bootstrap）" if zh else f" ({kind_w} bootstrap)")
    else:
        ev = (f"B = {s.v('n3', 'hypotheses', i, 'estimate')}, β = {s.v('b3', 'hypotheses', i, 'std_estimate')}, "
              f"{s.p('hypotheses', i, 'pvalue')}")
    if zh:
        verdict = "假设成立" if h["supported"] else "假设不成立" + {"opposite sign": "（方向与预期相反）",
                                                               "interval includes 0": "（置信区间包含零）"}.get(reason, "")
        s.say("hypotheses", f"假设{h['id']}（{eff}）：{ev}，{verdict}。")
    else:
        verdict = "was supported" if h["supported"] else "was not supported" + {
            "opposite sign": " (the effect has the opposite sign)", "interval includes 0": " (the interval includes zero)"
        }.get(reason, "")
        s.say("hypotheses", f"{h['id']} ({eff}) {verdict}, {ev}.")


def _mediation(s, d, zh, lang):
    b = d.get("bootstrap")
    if b:
        if zh:
            s.say("mediation", f"中介效应采用Bootstrap法检验：共抽样{s.v('int', 'bootstrap', 'n_requested')}次，"
                               f"成功拟合{s.v('int', 'bootstrap', 'n_ok')}次（随机种子{s.v('int', 'bootstrap', 'seed')}）。")
        else:
            s.say("mediation", f"Indirect effects were tested with {s.v('int', 'bootstrap', 'n_requested')} bootstrap "
                               f"resamples, of which {s.v('int', 'bootstrap', 'n_ok')} were fitted "
                               f"(seed {s.v('int', 'bootstrap', 'seed')}).")
    paths = {(p["rhs"], p["lhs"]): i for i, p in enumerate(d.get("paths") or [])}
    totals = {tuple(t["chain"]): i for i, t in enumerate(d.get("total_effects") or [])}
    lab = lambda c: construct_label(d, c, lang)  # noqa: E731
    for i, r in enumerate(d.get("indirect") or []):
        chain = r["chain"]
        x, y, via = lab(chain[0]), lab(chain[-1]), "、".join(map(lab, chain[1:-1])) if zh else ", ".join(map(lab, chain[1:-1]))
        est = s.v("n3", "indirect", i, "estimate")  # recorded in the order printed
        if b and not is_missing(r.get("perc_lower")):
            ci_ind = (f"{s.v('pct', 'provenance', 'options', 'ci_level')} CI [{s.v('n3', 'indirect', i, 'perc_lower')}, "
                      f"{s.v('n3', 'indirect', i, 'perc_upper')}]")
        else:
            ci_ind = f"SE = {s.v('n3', 'indirect', i, 'delta_se')}, {s.p('indirect', i, 'delta_pvalue')}"
        if zh:
            text = f"{x}经由{via}影响{y}的间接效应 B = {est}，{ci_ind}"
        else:
            text = f"The indirect effect of {x} on {y} through {via} was B = {est}, {ci_ind}"
        j = paths.get((chain[0], chain[-1]))
        if j is None:
            text += "；模型中没有直接路径" if zh else "; the model has no direct path"
        else:
            text += (f"；直接效应 B = {s.v('n3', 'paths', j, 'estimate')}，{s.p('paths', j, 'pvalue')}" if zh else
                     f"; the direct effect was B = {s.v('n3', 'paths', j, 'estimate')}, {s.p('paths', j, 'pvalue')}")
        k = totals.get((chain[0], chain[-1]))
        if k is not None:
            tot = (f"B = {s.v('n3', 'total_effects', k, 'estimate')}, {s.v('pct', 'provenance', 'options', 'ci_level')} "
                   f"CI [{s.v('n3', 'total_effects', k, 'perc_lower')}, {s.v('n3', 'total_effects', k, 'perc_upper')}]")
            text += f"；总效应 {tot}" if zh else f"; the total effect was {tot}"
        s.say("mediation", text + ("。" if zh else "."))


def _caveats(s, d, zh):
    if d["provenance"]["data"] == "liaoning_2012_survey.csv":
        s.say("caveats", "注意：内置数据为模拟数据，由问卷设定的总体模型生成，并非原论文数据。" if zh else
              "Caution: the bundled survey is simulated from the questionnaire's stated population model; it is not "
              "the thesis' data.")
    for m, a in (d.get("admissibility") or {}).items():
        if a.get("problems"):
            s.say("caveats", f"{'测量' if m == 'measurement' else '结构'}模型的解不可接受（见警告），其估计值不宜解释。" if zh else
                  f"The {m} model's solution is inadmissible (see Warnings); its estimates should not be interpreted.")
    nrm = d.get("normality")
    if nrm and nrm.get("violated"):
        sk, ku = s.p("normality", "mardia", "small_skew_pvalue"), s.p("normality", "mardia", "kurtosis_pvalue")
        robust = d.get("estimator", "ml") != "ml"
        est = str(d.get("estimator", "ml")).upper()
        if zh:
            s.say("caveats", f"Mardia检验拒绝多元正态性（偏度 {sk}，峰度 {ku}）；" +
                  (f"已采用{est}稳健标准误与校正χ²。" if robust else "ML的标准误与χ²以正态为前提，可改用稳健估计（--estimator mlr）。"))
        else:
            s.say("caveats", f"Mardia's test rejects multivariate normality (skewness {sk}, kurtosis {ku}); " +
                  (f"robust ({est}) standard errors and the scaled chi-square were used." if robust else
                   "ML's standard errors and chi-square assume normality, and robust ones (--estimator mlr) "
                   "are advisable."))
    ss = d.get("sample_size")
    if ss and ss.get("below_recommended"):
        if zh:
            s.say("caveats", f"样本量 N = {s.v('int', 'sample_size', 'n')} 低于建议的"
                             f"{s.v('int', 'sample_size', 'recommended_n')}（{cite(ss['source'])}），估计与拟合指数的稳定性较低。")
        else:
            s.say("caveats", f"The sample (N = {s.v('int', 'sample_size', 'n')}) is smaller than the "
                             f"{s.v('int', 'sample_size', 'recommended_n')} rows recommended ({cite(ss['source'])}); "
                             "estimates and fit indices are less stable.")
    b = d.get("bootstrap")
    if b and b.get("n_failed"):
        s.say("caveats", f"Bootstrap抽样中有{s.v('int', 'bootstrap', 'n_failed')}次未能拟合。" if zh else
              f"{s.v('int', 'bootstrap', 'n_failed')} bootstrap resamples could not be fitted.")
    if d.get("warnings"):
        s.say("caveats", "其他警告见“警告”部分。" if zh else "Further warnings are listed under Warnings.")
