"""Reports: the paper's tables with human names, APA numbers, escaping, English and Chinese, and the page
in a real browser. Expected values are read from the run's own results.json (the reports must print
exactly what was computed) and formatted here by APA 7's rules (section 6.36: no leading zero for
values bounded by 1, p to three decimals, '< .001')."""

import re
import shutil
import subprocess

import pandas as pd
import pytest
from numpy.testing import assert_allclose
from openpyxl import load_workbook

from sem_upgrade import pipeline
from sem_upgrade.errors import SemUpgradeError
from sem_upgrade.report import build_tables
from sem_upgrade.report.fmt import apa, cite, cutoff, num, p_apa

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ALL = ("html", "md", "xlsx", "docx")
# machine names that must never reach a reader (results.json keeps them)
INTERNAL = ["cfi", "rmsea_ci_lower", "rmsea_ci_upper", "pvalue", "std_estimate", "perc_lower", "perc_upper",
            "bc_lower", "alpha_ok", "cr_ok", "measurement_verdict", "cmin_df", "std_loading", "alpha_if_deleted",
            "std_alpha", "boot_se", "delta_se", "rmsea_pvalue", "chisq", "n_used", "fornell_larcker"]


def _apa_p(v):
    return "< .001" if v < 0.001 else f"{v:.3f}".replace("0.", ".", 1)


def _apa3(v):
    return re.sub(r"^(-?)0\.", r"\1.", f"{v:.3f}")


@pytest.fixture(scope="module")
def bundled(bundled_reports):
    """The bundled study, every format, English; the same results written again in Chinese."""
    return bundled_reports


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The bundled survey under a questionnaire with hostile and Chinese labels, and broken cells."""
    tmp = tmp_path_factory.mktemp("hostile")
    src, _ = pipeline.bundled_paths()
    df = pd.read_csv(src, dtype=str)
    df.loc[4, "upg2"] = "<b>bold</b>"
    df.loc[5, "upg1"] = "=1+2"
    df.loc[6, "kaq1"] = "4\x0b"  # a control character: the row is rejected, the workbook still written
    df.loc[7, "kaq2"] = "\x1a"
    df.loc[8, "firm_id"] = "@SUM(A1)"
    df.loc[8, "nsc1"] = "+9"
    data = tmp / "survey.csv"
    df.to_csv(data, index=False)
    q = tmp / "q.yaml"
    q.write_text("""title: "<script>alert('x')</script> 集群升级研究\\n# injected heading"
id: firm_id
scale: [1, 7]
constructs:
  NSC: {label: "<script>alert(1)</script>", items: [nsc1, nsc2, nsc3, nsc4]}
  KAQ: {label: {en: "=HYPERLINK(\\"http://evil\\")", zh: 知识获取}, items: [kaq1, kaq2, kaq3, kaq4]}
  UPG: {label: "$\\\\alpha$ 集群升级 $x^2$", items: [upg1, upg2, upg3]}
paths: [KAQ ~ NSC, UPG ~ KAQ + NSC]
hypotheses:
  H1: {path: NSC -> KAQ, sign: +}
  H2: {path: NSC -> UPG, sign: "-"}
  H3: {indirect: NSC -> KAQ -> UPG, sign: +}
""", encoding="utf-8")
    out = tmp / "out"
    res = pipeline.run(data, q, out, bootstrap=200, progress=False, formats=ALL)
    return res, out


# ---------------------------------------------------------------- human names and values
def test_tables_carry_the_names_papers_print(bundled):
    res, *_ = bundled
    t = {x.key: x for x in build_tables(res, "en")}
    assert list(t) == ["sample", "items", "convergent", "discriminant", "fit", "paths", "hypotheses", "mediation",
                       "efa", "modification_indices"]
    assert t["convergent"].header == ["Construct", "Item", "B", "SE", "C.R.", "p", "Standardized loading", "CR", "AVE"]
    assert t["items"].header == ["Construct", "Item", "Wording", "M", "SD", "CITC", "α if item deleted", "Cronbach's α"]
    assert t["paths"].header == ["Path", "B", "SE", "C.R.", "p", "β"]
    assert t["discriminant"].header == ["Construct", "NSC", "NHE", "TST", "KAQ", "KCR", "UPG"]
    assert [r[0].text for r in t["fit"].rows] == ["χ²", "df", "χ²/df", "p", "CFI", "TLI", "NFI", "IFI", "GFI", "AGFI",
                                                  "RMSEA [90% CI]", "PCLOSE", "SRMR", "RMR", "AIC", "BIC"]
    assert t["mediation"].header[:5] == ["Effect", "Type", "B", "β", "Boot SE"]
    assert [r[1].text for r in t["mediation"].rows[:3]] == ["Indirect", "Direct", "Total"]
    assert "Hu & Bentler, 1999" in t["fit"].note  # thresholds with their sources in the note
    assert t["paths"].rows[0][0].text == "Network scale → Knowledge acquisition and absorption"


def test_no_internal_key_in_any_human_report(bundled):
    res, en, zh, _ = bundled
    texts = [(en / "report.md").read_text(encoding="utf-8"), (zh / "report.md").read_text(encoding="utf-8")]
    for lang in ("en", "zh"):
        for t in build_tables(res, lang):
            texts.append(" ".join(t.header + [c.text for r in t.rows for c in r] + [t.title, t.note]))
    page = (en / "report.html").read_text(encoding="utf-8")
    texts.append(re.sub(r"<svg.*?</svg>", "", re.sub(r"<[^>]+>", " ", page.split("</style>")[1]), flags=re.S))
    for text in texts:
        for key in INTERNAL:
            assert not re.search(rf"(?<![\w.]){key}(?![\w])", text), key


def test_table_cells_are_the_numbers_in_results_json(bundled):
    res, _, _, js = bundled
    t = {x.key: x for x in build_tables(res, "en")}
    conv = t["convergent"].rows
    nsc2 = next(r for r in conv if r[1].text == "nsc2")
    ref = next(r for r in js["loadings"] if r["item"] == "nsc2")
    assert_allclose([nsc2[2].value, nsc2[3].value, nsc2[6].value], [ref["estimate"], ref["se"], ref["std_loading"]],
                    rtol=0, atol=0)
    assert nsc2[2].text == f"{ref['estimate']:.3f}" and nsc2[6].text == _apa3(ref["std_loading"])
    assert nsc2[5].text == _apa_p(ref["pvalue"]) == "< .001"
    disc = t["discriminant"].rows
    for i, c in enumerate(["NSC", "NHE", "TST", "KAQ", "KCR", "UPG"]):
        assert disc[i][i + 1].bold
        assert_allclose(disc[i][i + 1].value, js["reliability"][c]["ave"] ** 0.5, rtol=1e-12)
    assert_allclose(disc[3][1].value, js["factor_correlations"]["KAQ"]["NSC"], rtol=1e-12)  # below: r
    assert_allclose(disc[0][4].value, js["htmt"]["NSC"]["KAQ"], rtol=1e-12)  # above: HTMT
    fit = {r[0].text: r for r in t["fit"].rows}
    f = js["fit"]["measurement"]
    assert fit["CFI"][2].text == _apa3(f["cfi"]) and fit["df"][2].text == str(f["df"])
    assert fit["RMSEA [90% CI]"][2].text == (f"{_apa3(f['rmsea'])} [{_apa3(f['rmsea_ci_lower'])}, "
                                             f"{_apa3(f['rmsea_ci_upper'])}]")
    assert fit["χ²"][3].text == f"{js['fit']['structural']['chisq']:.2f}"
    h4 = next(r for r in t["hypotheses"].rows if r[0].text == "H4")
    assert h4[5].text == "Not supported (not significant)"
    assert h4[4].text == "p = " + _apa_p(js["hypotheses"][3]["pvalue"])
    p = t["paths"].rows[0]
    assert p[5].text == _apa3(js["paths"][0]["std_estimate"]) + "***"  # stars explained in the note
    assert "*** p < .001" in t["paths"].note


def test_apa_numbers():
    assert p_apa(0.0004) == "< .001" and p_apa(0.0123) == ".012" and p_apa(float("nan")) == "—"
    assert apa(-0.0912) == "-.091" and apa(1.0) == "1.000" and num(-0.00004) == "-0.000" and num(12) == "12"
    assert cite("Fornell & Larcker (1981); Hair et al. (2019)") == "Fornell & Larcker, 1981; Hair et al., 2019"
    assert cutoff(">= 0.9") == "≥ .90" and cutoff("< 3") == "< 3"


def test_chinese_terms(bundled):
    res, _, zh, _ = bundled
    t = {x.key: x for x in build_tables(res, "zh")}
    assert t["convergent"].title == "聚合效度"
    assert {"标准化载荷", "组合信度CR", "平均方差抽取量AVE"} <= set(t["convergent"].header)
    assert t["fit"].title == "模型拟合指数" and t["discriminant"].title == "区分效度"
    verdicts = {r[5].text for r in t["hypotheses"].rows}
    assert "假设成立" in verdicts and "假设不成立（不显著）" in verdicts
    assert t["mediation"].title.startswith("中介效应")
    assert t["paths"].rows[0][0].text == "网络规模 → 知识获取与吸收"  # labels from the questionnaire
    md = (zh / "report.md").read_text(encoding="utf-8")
    assert "## 研究结果" in md and "本企业与集群内许多企业开展合作。" in md  # item wording in Chinese


def test_unknown_language_is_a_clear_error(tmp_path, capsys):
    from sem_upgrade.cli import main

    assert main(["run", "-o", str(tmp_path / "o"), "--lang", "fr"]) == 2
    assert capsys.readouterr().err.strip() == "sem-upgrade: error: --lang: unknown language 'fr' (choose from en, zh)"
    with pytest.raises(SemUpgradeError, match="--lang: unknown language 'de'"):
        pipeline.run(lang="de")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- hostile text in every output
def test_user_strings_are_escaped_in_html(hostile):
    _, out = hostile
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page  # the rejected raw value, shown as text
    assert "<b>bold</b>" not in page


def test_markdown_is_escaped_like_html(hostile):
    res, out = hostile
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "<script" not in md.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert not any(line.startswith("# injected") for line in md.splitlines())
    first = md.splitlines()[0]  # the title's newline became a space: one heading line
    assert first.startswith("# &lt;script&gt;") and first.endswith("集群升级研究 # injected heading")


def test_workbook_has_no_formula_cells(hostile):
    _, out = hostile
    wb = load_workbook(out / "tables.xlsx")
    formulas, texts = [], []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.data_type == "f":
                    formulas.append((ws.title, c.coordinate, c.value))
                if isinstance(c.value, str):
                    texts.append(c.value)
    assert formulas == []
    assert any(t.startswith('=HYPERLINK("http://evil")') for t in texts)  # shown as text
    assert "nhe4 ↔ kcr2" in texts or any("↔" in t for t in texts)  # lavaan's =~ / ~~ as symbols, not formulas
    assert not any(re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", t) for t in texts)
    ws = wb["paths"]
    assert ws["A1"].value.startswith("Table 6.")
    assert [c.value for c in ws[2]] == ["Path", "B", "SE", "C.R.", "p", "β"]
    assert isinstance(ws["B3"].value, float) and ws["B3"].number_format == "0.000"
    assert ws["E3"].number_format == '[<0.001]"< .001";.000' and ws["F3"].number_format == ".000;-.000"


def test_csv_cells_cannot_start_a_formula(hostile):
    _, out = hostile
    rejected = (out / "rejected_rows.csv").read_text(encoding="utf-8")
    assert "'=1+2" in rejected and "'@SUM(A1)" in rejected and "'+9" in rejected
    for line in rejected.splitlines() + [ln for p in (out / "tables").glob("*.csv")
                                         for ln in p.read_text(encoding="utf-8").splitlines()]:
        for cell in next(__import__("csv").reader([line])):
            assert not re.match(r"^[=+@\t\r]", cell), cell
            assert not re.match(r"^-[^\d.]", cell), cell  # a negative number stays a number
    conv = (out / "tables" / "convergent.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in conv


def test_control_characters_never_break_the_workbook(hostile):
    res, out = hostile
    assert res["n_rejected"] >= 4  # the rows with control characters are rejected, not lost silently
    load_workbook(out / "tables.xlsx")["rejected_rows"]  # written whole


def test_dollar_signs_are_plain_text_in_plots(hostile):
    res, out = hostile
    assert (out / "path_diagram.png").stat().st_size > 0
    svg = (out / "report.html").read_text(encoding="utf-8")
    assert "$\\alpha$ 集群升级 $x^2$" in svg  # printed as given, not parsed as mathtext


def test_formats_choose_outputs(tmp_path):
    pipeline.run(outdir=tmp_path, bootstrap=0, formats=("md",))
    shown = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert shown == ["rejected_rows.csv", "report.md", "reproduce", "results.json", "timing.json"]


def test_missing_cjk_font_is_said_not_hidden(hostile, monkeypatch):
    from sem_upgrade.report import html as html_mod

    res, _ = hostile
    monkeypatch.setattr(html_mod, "cjk_font", lambda: None)
    assert "No CJK font is installed" in html_mod.html_report(res)


def _wqy_installed():
    from matplotlib import font_manager

    return any("wqy" in p.lower() for p in font_manager.findSystemFonts())


@pytest.mark.skipif(not _wqy_installed(), reason="needs fonts-wqy-microhei (.ci/run installs it)")
def test_cjk_font_is_found_for_plots():
    from sem_upgrade.report.plots import cjk_font

    assert cjk_font() in ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei")


# ---------------------------------------------------------------- the page in a real browser
def _dom(path, tmp_path):
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", path.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_in_a_real_browser(bundled, tmp_path):
    _, en, zh, js = bundled
    dom = _dom(en / "report.html", tmp_path)
    for name in ["CFI", "RMSEA [90% CI]", "SRMR", "χ²/df", "Cronbach's α", "√AVE", "HTMT", "C.R.", "PCLOSE"]:
        assert name in dom, name
    assert dom.count("class=\"three-line\"") == 10
    f = js["fit"]["measurement"]
    sentence = (f"χ²({f['df']}) = {f['chisq']:.2f}, p = {_apa_p(f['pvalue'])}, CFI = {_apa3(f['cfi'])}, "
                f"TLI = {_apa3(f['tli'])}, RMSEA = {_apa3(f['rmsea'])}, 90% CI [{_apa3(f['rmsea_ci_lower'])}, "
                f"{_apa3(f['rmsea_ci_upper'])}], SRMR = {_apa3(f['srmr'])}")
    assert sentence in dom
    diagram = dom[dom.index('class="path-diagram"'):]
    diagram = diagram[:diagram.index("</svg>")]
    assert diagram.count("<ellipse") == 6 and diagram.count('class="path"') == 7
    assert 'data-style="dashed" data-from="TST" data-to="KCR"' in diagram  # H4 not supported
    dom_zh = _dom(zh / "report.html", tmp_path)
    assert '<html lang="zh-CN">' in dom_zh
    for name in ["标准化载荷", "组合信度", "平均方差抽取量", "模型拟合指数", "假设成立", "假设不成立", "中介效应", "区分效度",
                 "聚合效度", "CFI", "RMSEA", "SRMR", "χ²/df"]:
        assert name in dom_zh, name
