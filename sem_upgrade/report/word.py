"""The report as a Word document (report.docx) with native Word tables, built with python-docx.

APA three-line tables: a rule above the header, one below it and one below the last row, no
vertical rules; "Table n" in bold, the title in italics, the note below. The path diagram is
the 300-dpi PNG. Text uses Times New Roman, and East Asian text SimSun (宋体), set as the
run's eastAsia font so Word picks a Chinese font on the reader's machine.
"""

from __future__ import annotations

from pathlib import Path

from ..results import to_plain
from .excel import fixed_zip
from .fmt import clean
from .i18n import words
from .narrative import narrative
from .tables import Table, build_tables

__all__ = ["write_docx"]


def _fonts(style_or_run, size=None):
    from docx.oxml.ns import qn
    from docx.shared import Pt

    font = style_or_run.font
    font.name = "Times New Roman"
    if size:
        font.size = Pt(size)
    rpr = style_or_run.element.get_or_add_rPr()
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(rfonts)
    rfonts.set(qn("w:eastAsia"), "SimSun")


def _borders(element, tag: str, **sides):
    """Set ``w:top``/``w:bottom``/... borders on a table (tblBorders) or cell (tcBorders)."""
    from docx.oxml.ns import qn

    box = element.find(qn(f"w:{tag}"))
    if box is None:
        box = element.makeelement(qn(f"w:{tag}"), {})
        element.append(box)
    for side, size in sides.items():
        el = box.find(qn(f"w:{side}"))
        if el is None:
            el = box.makeelement(qn(f"w:{side}"), {})
            box.append(el)
        if size:
            el.set(qn("w:val"), "single")
            el.set(qn("w:sz"), str(size))
            el.set(qn("w:color"), "000000")
        else:
            el.set(qn("w:val"), "nil")


_TEXT_WIDTH = 11.0 - 1.6  # landscape letter/A4-ish page less the margins, inches


def _tight(cell):
    from docx.shared import Pt

    fmt = cell.paragraphs[0].paragraph_format
    fmt.space_before, fmt.space_after, fmt.line_spacing = Pt(1), Pt(1), 1.0


def _table(doc, t: Table, number: int, w):
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn
    from docx.shared import Inches, Pt

    p = doc.add_paragraph()
    p.add_run(f"{w('table')} {number}").bold = True
    p.paragraph_format.space_after = Pt(0)
    p.paragraph_format.keep_with_next = True
    p = doc.add_paragraph()
    p.add_run(clean(t.title)).italic = True
    p.paragraph_format.keep_with_next = True
    table = doc.add_table(rows=1 + len(t.rows), cols=len(t.header))
    table.autofit = False
    # column widths in proportion to their longest text (capped), over the page's text width
    need = [min(40, max([len(t.header[j])] + [len(r[j].text) for r in t.rows]) + 4) for j in range(len(t.header))]
    total = _TEXT_WIDTH * min(1.0, sum(need) / 110 + 0.25)
    widths = [Inches(total * n / sum(need)) for n in need]
    for j, width in enumerate(widths):
        table.columns[j].width = width  # the grid LibreOffice and Word lay out by
    head_tr = table.rows[0]._tr.get_or_add_trPr()
    head_tr.append(head_tr.makeelement(qn("w:tblHeader"), {}))  # header row repeats on each page
    tbl_pr = table._tbl.tblPr
    _borders(tbl_pr, "tblBorders", top=12, bottom=12, left=0, right=0, insideH=0, insideV=0)
    head_cells = table.rows[0].cells  # once per row: table.cell(i, j) walks the whole table
    for j, h in enumerate(t.header):
        cell = head_cells[j]
        cell.width = widths[j]
        _tight(cell)
        run = cell.paragraphs[0].add_run(clean(h))
        run.font.size = Pt(9)
        cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
        _borders(cell._tc.get_or_add_tcPr(), "tcBorders", bottom=6)
    for i, row in enumerate(t.rows, start=1):
        cells = table.rows[i].cells
        for j, c in enumerate(row):
            cell = cells[j]
            cell.width = widths[j]
            _tight(cell)
            run = cell.paragraphs[0].add_run(clean(c.text))
            run.font.size = Pt(9)
            run.bold = bool(c.bold)
            if c.fmt is not None:
                cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
    if t.note:
        p = doc.add_paragraph()
        r = p.add_run(w("note"))
        r.italic = True
        r.font.size = Pt(9)
        r = p.add_run(" " + clean(t.note))
        r.font.size = Pt(9)
    return table


def write_docx(res, path, lang: str = "en", diagram_png=None) -> Path:
    """Write ``report.docx``: narrative, every table as a Word table, and the path diagram."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.shared import Inches, Pt, RGBColor

    d = to_plain(res.data)
    w = words(lang)
    doc = Document()
    sec = doc.sections[0]
    sec.orientation = WD_ORIENT.LANDSCAPE
    sec.page_width, sec.page_height = sec.page_height, sec.page_width
    for m in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(sec, m, Inches(0.8))
    _fonts(doc.styles["Normal"], 11)
    for name in ("Title", "Heading 1", "Heading 2"):
        _fonts(doc.styles[name])
        doc.styles[name].font.color.rgb = RGBColor(0, 0, 0)  # APA headings are black
    q = d["questionnaire"]
    prov = d["provenance"]
    doc.add_heading(clean(q["title"] or q["name"]), level=1)
    doc.add_paragraph(clean(w("header_line", data=prov["data"], q=prov["questionnaire"], read=d["n_rows_read"],
                                rej=d["n_rejected"], used=d["n_used"], missing=w(d["missing"]), lik=d["likelihood"])))
    if prov["data"] == "liaoning_2012_survey.csv":
        doc.add_paragraph().add_run(w("simulated")).bold = True
    doc.add_heading(w("t_narrative"), level=2)
    stage, para = None, None
    for s in narrative(res, lang):
        if s.stage != stage or para is None:
            para = doc.add_paragraph()
            stage = s.stage
        elif lang != "zh":
            para.add_run(" ")
        para.add_run(clean(s.text))
    for n, t in enumerate(build_tables(res, lang), start=1):
        _table(doc, t, n, w)
        if t.key == "paths" and diagram_png is not None and Path(diagram_png).is_file():
            doc.add_paragraph().add_run(w("t_diagram")).bold = True
            doc.add_picture(str(diagram_png), width=Inches(8.5))
    if d.get("warnings"):
        doc.add_heading(w("t_warnings"), level=2)
        for x in d["warnings"]:
            doc.add_paragraph(clean(x), style="List Bullet")
    footer = doc.add_paragraph()
    r = footer.add_run(clean(w("version", v=prov["versions"].get("sem_upgrade"),
                                 c="; ".join(f"{w('conv_' + k)}: {v}" for k, v in prov["conventions"].items()))))
    r.font.size = Pt(8)
    doc.core_properties.title = clean(q["title"] or q["name"])[:250]
    doc.core_properties.author = "sem_upgrade"
    path = Path(path)
    doc.save(path)
    return fixed_zip(path)
