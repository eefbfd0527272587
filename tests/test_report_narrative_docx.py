"""The written results section and the Word document.

Each number in each generated sentence is re-read here from results.json at the JSON path the
sentence names, formatted by APA 7's rules written out below (not the package's formatter), and
must equal the printed token; a sentence may hold no other number (the only convention allowed
is the '90%' of RMSEA's interval, lavaan's fixed level). The Word file is read back with
python-docx: native tables, header cells, a value, the diagram picture.
"""

import re

import pytest

from sem_upgrade.report import build_tables, narrative
from sem_upgrade.results import Results

_NUM = re.compile(r"(?<![A-Za-z0-9_.])-?\d*\.?\d+")  # CJK next to a number still splits
_CITATION_YEAR = re.compile(r"(?<=, )(?:19|20)\d\d[a-z]?(?=[);）；])")  # "(Fornell & Larcker, 1981)": not a result


def _fmt(style, v):
    """APA 7 (section 6.36) by hand: bounded values without the leading zero."""
    strip = lambda t: re.sub(r"^(-?)0\.", r"\1.", t)  # noqa: E731
    return {"b3": lambda: strip(f"{v:.3f}"), "b2": lambda: strip(f"{v:.2f}"), "n2": lambda: f"{v:.2f}",
            "n3": lambda: f"{v:.3f}", "int": lambda: str(int(v)), "pct": lambda: f"{round(v * 100)}%",
            "p": lambda: "< .001" if v < 0.001 else strip(f"{v:.3f}")}[style]()


@pytest.fixture(scope="module")
def run(bundled_reports):
    res, en, _, js = bundled_reports
    return res, en.parent, js


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_number_in_the_narrative_is_in_results_json(run, lang):
    res, _, js = run
    sentences = narrative(res, lang)
    assert {s.stage for s in sentences} >= {"sample", "reliability", "validity", "fit", "hypotheses", "mediation",
                                             "caveats"}
    checked = 0
    for s in sentences:
        printed = _NUM.findall(_CITATION_YEAR.sub("", s.text))
        declared = [n for token, _, _ in s.numbers for n in _NUM.findall(token)]
        assert printed == declared, s.text
        for token, path, style in s.numbers:
            if path is None:
                assert token == "90%", s.text  # RMSEA's 90% interval: lavaan's fixed level
                continue
            value = js
            for k in path:
                value = value[k]
            assert _fmt(style, value) == token, (s.text, path)
            checked += 1
    assert checked > 80


def test_narrative_sentences_read_as_apa(run):
    res, _, js = run
    text = " ".join(s.text for s in narrative(res, "en"))
    f = js["fit"]["measurement"]
    assert (f"The measurement model fitted the data well, χ²({f['df']}) = {f['chisq']:.2f}, p = "
            f"{_fmt('p', f['pvalue'])}, CFI = {_fmt('b3', f['cfi'])}") in text
    h1 = js["hypotheses"][0]
    assert (f"H1 (Network scale → Knowledge acquisition and absorption) was supported, B = {h1['estimate']:.3f}, "
            f"β = {_fmt('b3', h1['std_estimate'])}, p < .001.") in text
    assert "H4 (Tie strength → Knowledge transformation and creation) was not supported" in text
    assert "the bundled survey is simulated" in text
    zh = "".join(s.text for s in narrative(res, "zh"))
    assert "假设H4（关系强度 → 知识转化与创造）" in zh and "假设不成立" in zh and "假设成立" in zh and "间接效应" in zh


def test_caveats_follow_the_results(run):
    res, _, _ = run
    other = Results.from_dict({**res.data, "sample_size": {**res.data["sample_size"], "n": 150,
                                                           "below_recommended": True},
                               "admissibility": {"structural": {"problems": ["negative variance"]}}}, res.rejected)
    caveats = [s.text for s in narrative(other, "en") if s.stage == "caveats"]
    assert any("The sample (N = 150) is smaller than the 200 rows recommended (Kline, 2016)" in c for c in caveats)
    assert any("structural model's solution is inadmissible" in c for c in caveats)


def test_word_document_has_native_tables_and_the_diagram(run):
    from docx import Document

    res, tmp, js = run
    doc = Document(tmp / "en" / "report.docx")
    tables = build_tables(res, "en")
    assert len(doc.tables) == len(tables) == 10
    conv = doc.tables[[t.key for t in tables].index("convergent")]
    assert [c.text for c in conv.rows[0].cells] == ["Construct", "Item", "B", "SE", "C.R.", "p",
                                                    "Standardized loading", "CR", "AVE"]
    fit = doc.tables[[t.key for t in tables].index("fit")]
    cfi = next(r for r in fit.rows if r.cells[0].text == "CFI")
    assert cfi.cells[2].text == _fmt("b3", js["fit"]["measurement"]["cfi"])
    assert len(doc.inline_shapes) == 1  # the path diagram
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "Table 5" in text and "Results" in text
    zh = Document(tmp / "zh" / "report.docx")
    assert any(t.rows[0].cells[6].text == "标准化载荷" for t in zh.tables if len(t.columns) == 9)
    assert 'w:eastAsia="SimSun"' in zh.styles["Normal"].element.xml  # Chinese text gets a Chinese font


def test_path_diagram_for_print(run):
    from PIL import Image

    _, tmp, _ = run
    with Image.open(tmp / "en" / "path_diagram.png") as im:
        assert [round(v) for v in im.info["dpi"]] == [300, 300]
        assert im.size[0] >= 2400  # about 8 inches wide at 300 dpi
    assert (tmp / "en" / "path_diagram.pdf").read_bytes().startswith(b"%PDF")
