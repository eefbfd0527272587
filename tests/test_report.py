"""Reports: escaping, Chinese labels, Excel number formats, format choice, and the page in a real browser."""

import shutil
import subprocess

import pandas as pd
import pytest
from openpyxl import load_workbook

from sem_upgrade import pipeline
from sem_upgrade.report import fmt_p, markdown_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The bundled survey under a questionnaire with hostile and Chinese labels, and a broken row."""
    tmp = tmp_path_factory.mktemp("hostile")
    src, _ = pipeline.bundled_paths()
    df = pd.read_csv(src, dtype=str)
    df.loc[4, "upg2"] = "<b>bold</b>"
    data = tmp / "survey.csv"
    df.to_csv(data, index=False)
    q = tmp / "q.yaml"
    q.write_text("""title: "<script>alert('x')</script> 集群升级研究"
id: firm_id
scale: [1, 7]
constructs:
  NSC: {label: "<script>alert(1)</script>", items: [nsc1, nsc2, nsc3, nsc4]}
  KAQ: {label: 知识获取, items: [kaq1, kaq2, kaq3, kaq4]}
  UPG: {label: 集群升级, items: [upg1, upg2, upg3]}
paths: [KAQ ~ NSC, UPG ~ KAQ + NSC]
hypotheses:
  H1: {path: NSC -> KAQ, sign: +}
  H2: {path: NSC -> UPG, sign: "-"}
  H3: {indirect: NSC -> KAQ -> UPG, sign: +}
""", encoding="utf-8")
    out = tmp / "out"
    res = pipeline.run(data, q, out, bootstrap=200, progress=False)
    return res, out


def test_user_strings_are_escaped(hostile):
    _, out = hostile
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page  # the rejected raw value
    assert "<b>bold</b>" not in page


def test_chinese_labels_render(hostile):
    _, out = hostile
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "知识获取" in page and "集群升级研究" in page
    assert "知识获取" in (out / "report.md").read_text(encoding="utf-8")


def test_excel_numbers_are_numbers_with_paper_formats(hostile):
    _, out = hostile
    wb = load_workbook(out / "tables.xlsx")
    assert {"reliability", "loadings", "fit_indices", "hypotheses", "mediation", "rejected_rows"} <= set(wb.sheetnames)
    ws = wb["paths"]
    header = [c.value for c in ws[1]]
    est = ws.cell(row=2, column=header.index("estimate") + 1)
    p = ws.cell(row=2, column=header.index("pvalue") + 1)
    assert isinstance(est.value, float) and est.number_format == "0.000"
    assert isinstance(p.value, float) and p.number_format == '[<0.001]"< .001";0.000'
    csv = pd.read_csv(out / "tables" / "hypotheses.csv")
    assert list(csv["id"]) == ["H1", "H2", "H3"]


def test_markdown_has_every_section(hostile):
    res, _ = hostile
    md = markdown_report(res)
    for title in ["## Reliability and convergent validity", "## CFA loadings", "## HTMT", "## Fit indices",
                  "## Structural paths", "## Mediation", "## Hypotheses", "## Rejected rows"]:
        assert title in md
    assert "| H2 | NSC → UPG | - |" in md


def test_formats_choose_outputs(tmp_path):
    pipeline.run(outdir=tmp_path, bootstrap=0, formats=("md",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rejected_rows.csv", "report.md", "results.json"]


def test_p_value_format():
    assert fmt_p(0.0004) == "< .001" and fmt_p(0.0123) == "0.012" and fmt_p(float("nan")) == "—"


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_in_a_real_browser(hostile, tmp_path):
    res, out = hostile
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (out / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    for section in ["Reliability and convergent validity", "CFA: loadings", "Fornell-Larcker criterion", "HTMT",
                    "Common-method bias", "Fit indices", "Path diagram", "Structural paths", "Hypotheses",
                    "Mediation: indirect and total effects", "Rejected rows"]:
        assert f">{section}" in dom, section
    assert dom.count("<table>") >= 12
    diagram = dom[dom.index('class="path-diagram"'):]
    diagram = diagram[:diagram.index("</svg>")]
    assert diagram.count("<ellipse") == 3  # one per construct
    assert diagram.count('class="path"') == 3
    assert 'stroke-dasharray="7 5"' in diagram  # H2 (expected negative) is not supported: dashed
    assert "<script" not in dom.lower()


def _wqy_installed():
    from matplotlib import font_manager

    return any("wqy" in p.lower() for p in font_manager.findSystemFonts())


@pytest.mark.skipif(not _wqy_installed(), reason="needs fonts-wqy-microhei (.ci/run installs it)")
def test_cjk_font_is_found_for_plots():
    from sem_upgrade.report import _cjk_font

    assert _cjk_font() in ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei")


def test_missing_cjk_font_is_said_not_hidden(hostile, monkeypatch):
    from sem_upgrade import report

    res, _ = hostile
    monkeypatch.setattr(report, "_cjk_font", lambda: None)
    page = report.html_report(res)
    assert "No CJK font is installed" in page


def test_path_diagram_arrows_go_around_other_constructs(hostile):
    # NSC, KAQ and UPG sit in one row; NSC -> UPG must bend around KAQ, not hide behind it.
    # Geometry read back from the SVG: each arrow (line or quadratic curve) sampled at 200
    # points, none inside an ellipse other than its own two ends.
    import re

    import numpy as np

    from sem_upgrade.report import path_diagram_svg

    svg = path_diagram_svg(hostile[0])
    ellipses = {name: tuple(map(float, e)) for *e, name in re.findall(
        r'<ellipse cx="([\d.]+)" cy="([\d.]+)" rx="([\d.]+)" ry="([\d.]+)"[^>]*/>\s*<text[^>]*>([^<]+)</text>', svg)}
    assert set(ellipses) == {"NSC", "KAQ", "UPG"}
    arrows = re.findall(r'<(line|path) ([^>]*)data-from="(\w+)" data-to="(\w+)"', svg)
    assert sorted((a[2], a[3]) for a in arrows) == [("KAQ", "UPG"), ("NSC", "KAQ"), ("NSC", "UPG")]
    t = np.linspace(0, 1, 200)
    for kind, attrs, a, b in arrows:
        if kind == "line":
            x1, y1, x2, y2 = (float(re.search(f'{k}="([-\\d.]+)"', attrs).group(1)) for k in ("x1", "y1", "x2", "y2"))
            px, py = x1 + t * (x2 - x1), y1 + t * (y2 - y1)
        else:
            x1, y1, cx, cy, x2, y2 = map(float, re.search(
                r'd="M ([-\d.]+) ([-\d.]+) Q ([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)"', attrs).groups())
            px = (1 - t) ** 2 * x1 + 2 * (1 - t) * t * cx + t ** 2 * x2
            py = (1 - t) ** 2 * y1 + 2 * (1 - t) * t * cy + t ** 2 * y2
        for name, (ex, ey, rx, ry) in ellipses.items():
            if name not in (a, b):
                assert np.min(((px - ex) / rx) ** 2 + ((py - ey) / ry) ** 2) > 1, f"{a} -> {b} crosses {name}"
    assert any(kind == "path" and (a, b) == ("NSC", "UPG") for kind, _, a, b in arrows)
