"""Spreadsheets and text files that used to be read wrongly without a word (issue: hostile files).

Each test builds the file itself and asserts the exact outcome: the sheet or encoding read, the
rows kept and rejected with their reasons, the data-quality counts, or the one-line error and
exit code 2. Expected values are the file's own contents (what a careful reader of the file sees).
"""

import re
import textwrap
import zipfile

import pytest
from openpyxl import Workbook, load_workbook

from sem_upgrade.cli import main
from sem_upgrade.errors import SemUpgradeError
from sem_upgrade.ingest import read_survey
from sem_upgrade.questionnaire import parse_questionnaire

Q_TEXT = """\
    id: firm_id
    scale: [1, 7]
    constructs:
      NET: {label: Réseau, items: [réseau1, réseau2, réseau3]}
      UPG: {label: 升级, items: [升级1, 升级2, 升级3]}
    """
Q = parse_questionnaire(textwrap.dedent(Q_TEXT), source="q.yaml")
HEADER = ["firm_id", "réseau1", "réseau2", "réseau3", "升级1", "升级2", "升级3"]


def _rows(n, start=0):
    return [[f"F{i:03d}"] + [1 + (i * 3 + j) % 7 for j in range(6)] for i in range(start, start + n)]


def _questionnaire(tmp_path, items=None):
    text = textwrap.dedent(Q_TEXT)
    path = tmp_path / "q.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- B4: the sheet read
def test_a_hidden_pilot_sheet_is_not_read_instead_of_the_active_data_sheet(tmp_path, capsys):
    wb = Workbook()
    pilot = wb.active
    pilot.title = "pilot"
    pilot.append(HEADER)
    for r in _rows(20, 900):
        pilot.append(r)
    pilot.sheet_state = "hidden"
    data = wb.create_sheet("survey")
    data.append(HEADER)
    for r in _rows(60):
        data.append(r)
    wb.active = 1
    path = tmp_path / "survey.xlsx"
    wb.save(path)
    survey = read_survey(path, Q)
    assert survey.sheet == "survey" and survey.other_sheets == ["pilot"]
    assert survey.n_rows_read == 60 and list(survey.frame["firm_id"])[:2] == ["F000", "F001"]
    quality = survey.quality()
    assert quality["sheet"] == "survey" and quality["other_sheets"] == ["pilot"]
    assert main(["validate", str(path), "-q", str(_questionnaire(tmp_path))]) == 0
    assert "read sheet 'survey' of survey.xlsx (other sheets: 'pilot')" in capsys.readouterr().out


# ---------------------------------------------------------------- B5: every row, whatever the dimension tag says
def test_a_stale_dimension_tag_loses_no_rows(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in _rows(300):
        ws.append(r)
    good = tmp_path / "good.xlsx"
    wb.save(good)
    stale = tmp_path / "stale.xlsx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(stale, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            body = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                body, k = re.subn(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:G50"/>', body)
                assert k == 1
            zout.writestr(item, body)
    survey = read_survey(stale, Q)
    assert survey.n_rows_read == 300 and len(survey.frame) == 300 and survey.rejected.empty


# ---------------------------------------------------------------- B6: formulas without saved values
def test_formula_cells_without_a_saved_value_reject_their_rows_and_are_counted(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in _rows(40):
        ws.append(r)
    ws["C5"] = "=B5+1"  # row 5 of the sheet: F003, réseau2; openpyxl saves no value for it
    ws["F9"] = "=2*3"
    path = tmp_path / "formulas.xlsx"
    wb.save(path)
    assert load_workbook(path, data_only=True).active["C5"].value is None  # what a naive reader sees
    survey = read_survey(path, Q)
    rej = survey.rejected.set_index("line")
    assert sorted(rej.index) == [5, 9] and len(survey.frame) == 38
    assert "formula without a saved value in cell C5 (=B5+1)" in rej.loc[5, "reason"]
    assert rej.loc[9, "columns"] == "升级2"
    q = survey.quality()
    assert q["formula_cells_without_value"]["count"] == 2 and q["formula_cells_without_value"]["cells"] == ["C5", "F9"]
    assert q["n_rejected"] == 2 and q["n_all_items_missing"] == 0


# ---------------------------------------------------------------- D21: the text encoding
def _csv_text(rows=30):
    return "\r\n".join([",".join(HEADER)] + [",".join(map(str, r)) for r in _rows(rows)]) + "\r\n"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "big5", "gb18030"])
def test_files_in_another_codec_are_read_in_the_codec_their_header_names_the_items_in(tmp_path, codec):
    if codec == "big5":  # Big5 writes neither é nor simplified 级: a traditional-Chinese questionnaire
        text = _csv_text().replace("升级", "升級").replace("réseau", "網絡")
        q = parse_questionnaire(textwrap.dedent(Q_TEXT).replace("升级", "升級").replace("réseau", "網絡"), source="q.yaml")
    else:
        text, q = _csv_text(), Q
    path = tmp_path / "s.csv"
    path.write_bytes(text.encode(codec))
    survey = read_survey(path, q)
    assert survey.encoding == codec and len(survey.frame) == 30 and survey.rejected.empty


def test_windows_1252_headers_are_read_as_such_not_blamed_on_the_column_names(tmp_path, capsys):
    header = ["firm_id", "réseau1", "réseau2", "réseau3", "qualité1", "qualité2", "qualité3"]
    q_text = textwrap.dedent(Q_TEXT).replace("升级", "qualité")
    qpath = tmp_path / "q.yaml"
    qpath.write_text(q_text, encoding="utf-8")
    text = "\r\n".join([";".join(header)] + [";".join(map(str, r)) for r in _rows(25)]) + "\r\n"
    path = tmp_path / "fr.csv"
    path.write_bytes(text.encode("cp1252"))
    survey = read_survey(path, parse_questionnaire(q_text, source="q.yaml"))
    assert survey.encoding == "cp1252" and len(survey.frame) == 25
    assert main(["validate", str(path), "-q", str(qpath), "--encoding", "cp1252"]) == 0
    assert main(["validate", str(path), "-q", str(qpath), "--encoding", "utf-8"]) == 2
    assert "not valid utf-8" in capsys.readouterr().err


def test_an_unreadable_encoding_is_said_with_the_candidates_tried(tmp_path, capsys):
    # a header in an encoding no candidate reads (EBCDIC): before, it was decoded anyhow and the
    # columns were reported missing with "did you mean" guesses
    q_text = textwrap.dedent(Q_TEXT).replace("升级", "qualité")
    qpath = tmp_path / "q.yaml"
    qpath.write_text(q_text, encoding="utf-8")
    path = tmp_path / "s.csv"
    path.write_bytes(_csv_text().replace("升级", "qualité").encode("cp500"))
    with pytest.raises(SemUpgradeError, match=r"s\.csv: the text encoding is unreadable: no header naming the "
                                              r"questionnaire's items in utf-8, gb18030, big5, cp1252, .*--encoding"):
        read_survey(path, parse_questionnaire(q_text, source="q.yaml"))
    assert main(["validate", str(path), "-q", str(qpath)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean" not in err
    assert main(["validate", str(path), "-q", str(qpath), "--encoding", "no-such-codec"]) == 2
    assert "--encoding: unknown encoding 'no-such-codec'" in capsys.readouterr().err
    assert main(["validate", str(path), "-q", str(qpath), "--encoding", "cp500"]) == 0  # named, it reads


def test_one_stray_byte_rejects_only_its_row(tmp_path):
    raw = _csv_text().encode("utf-8").replace(b"\r\nF004,", b"\r\nF004\xff,", 1)
    path = tmp_path / "s.csv"
    path.write_bytes(raw)
    survey = read_survey(path, Q)
    assert len(survey.frame) == 30 and survey.rejected.empty  # the stray byte sits in the id: kept, id shown
    raw = _csv_text().encode("utf-8").replace(b"\r\nF004,", b"\r\nF004,\xff", 1)
    assert raw.count(b"\xff") == 1
    path.write_bytes(raw)
    survey = read_survey(path, Q)
    assert len(survey.frame) == 29 and list(survey.rejected["id"]) == ["F004"]
    assert "not a number" in survey.rejected["reason"].iloc[0]
    assert survey.encoding == "utf-8 (1 invalid byte replaced)"


# ---------------------------------------------------------------- D22: decimal commas
def test_decimal_commas_are_named(tmp_path, capsys):
    rows = _rows(30)
    for r in rows:
        r[1] = f"{r[1]},5"
    text = "\r\n".join([";".join(HEADER)] + [";".join(map(str, r)) for r in rows]) + "\r\n"
    path = tmp_path / "s.csv"
    path.write_bytes(text.encode("utf-8"))
    with pytest.raises(SemUpgradeError, match=r"30 of 30 rows|decimal comma"):
        read_survey(path, Q)
    assert main(["validate", str(path), "-q", str(_questionnaire(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "decimal comma ('" in err and "réseau1" in err
    rows = _rows(30)
    rows[3][2] = "4,0"  # one row: rejected with the reason named
    text = "\r\n".join([";".join(HEADER)] + [";".join(map(str, r)) for r in rows]) + "\r\n"
    path.write_bytes(text.encode("utf-8"))
    survey = read_survey(path, Q)
    assert list(survey.rejected["reason"]) == ["invalid value: réseau2: decimal comma ('4,0'): write decimals with "
                                               "a point"]
