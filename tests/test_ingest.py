"""Survey ingestion: files the tests write themselves (GBK CSV, xlsx, sav), each rule asserted."""

import textwrap

import numpy as np
import pandas as pd
import pytest

from sem_upgrade.errors import SemUpgradeError
from sem_upgrade.ingest import read_survey
from sem_upgrade.questionnaire import parse_questionnaire

Q = parse_questionnaire(textwrap.dedent("""\
    id: firm_id
    scale: [1, 5]
    missing_codes: [-99, 99]
    constructs:
      A: {label: 网络规模, items: [a1, a2, a3], reverse: [a3]}
      B: {label: Upgrade, items: [b1, b2]}
    """), source="q.yaml")

HEADER = ["firm_id", "region", "a1", "a2", "a3", "b1", "b2"]
ROWS = [
    ["f1", "沈阳", "1", "2", "5", "3", "4"],      # line 2: valid; a3 5 -> 1
    ["f2", "大连", "4", "", "1", "NA", "2"],      # line 3: valid with two missing cells
    ["f3", "鞍山", "3", "6", "2", "2", "2"],      # line 4: a2 outside scale -> rejected
    ["f4", "沈阳", "2", "abc", "3.5", "1", "1"],  # line 5: text and a half point -> rejected
    ["f1", "沈阳", "5", "5", "5", "5", "5"],      # line 6: duplicate id -> rejected
    ["f5", "抚顺", "-99", "n/a", ".", "99", "-"],  # line 7: all items missing (codes, NA text)
    ["f6", "营口", "3", "3", "3", "3", "3"],      # line 8: straight-liner, kept
    ["f7", "营口", " 4 ", "4.0", "2", "1", "5"],  # line 9: whitespace and 4.0 are valid
]


def _write_csv(path, encoding="utf-8", delimiter=","):
    lines = [delimiter.join(HEADER)] + [delimiter.join(r) for r in ROWS]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def _check_outcome(data):
    assert data.n_rows_read == 8
    rej = data.rejected.set_index("line")
    assert list(rej.index) == [4, 5, 6]
    assert rej.loc[4, "id"] == "f3" and rej.loc[4, "columns"] == "a2" and rej.loc[4, "values"] == "6"
    assert rej.loc[4, "reason"] == "invalid value: a2: outside the scale 1-5"
    assert rej.loc[5, "columns"] == "a2; a3" and rej.loc[5, "values"] == "abc; 3.5"
    assert rej.loc[5, "reason"] == "invalid value: a2: not a number; a3: not a whole scale point"
    assert rej.loc[6, "reason"] == "duplicate id: first seen on line 2"
    f = data.frame
    assert list(f.index) == [2, 3, 7, 8, 9]
    assert f.loc[2, "a3"] == 1.0  # reverse-keyed: 1 + 5 - 5
    assert f.loc[3, "a3"] == 5.0 and np.isnan(f.loc[3, "a2"]) and np.isnan(f.loc[3, "b1"])
    assert f.loc[7, ["a1", "a2", "a3", "b1", "b2"]].isna().all()
    assert f.loc[9, "a1"] == 4.0 and f.loc[9, "a2"] == 4.0
    assert f.loc[2, "region"] == "沈阳"  # extra columns kept
    q = data.quality("listwise")
    assert q["n_rejected"] == 3 and q["rejected_by_reason"] == {"invalid value": 2, "duplicate id": 1}
    assert q["n_valid"] == 5 and q["n_complete"] == 3 and q["n_used"] == 3
    assert q["straight_liners"]["lines"] == [8]
    assert q["missing_rate"]["a2"] == pytest.approx(2 / 5)
    assert data.quality("fiml")["n_used"] == 4  # line 7 carries no item at all
    assert list(data.analysis_frame("listwise").index) == [2, 8, 9]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings_detected(tmp_path, encoding):
    path = _write_csv(tmp_path / "survey.csv", encoding=encoding)
    before = path.read_bytes()
    _check_outcome(read_survey(path, Q))
    assert path.read_bytes() == before  # the input is never modified


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_csv_delimiter_sniffed(tmp_path, delimiter):
    _check_outcome(read_survey(_write_csv(tmp_path / "survey.csv", delimiter=delimiter), Q))


def test_xlsx(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for row in ROWS:
        # Excel stores numbers as numbers: write numeric-looking cells as numbers
        ws.append([_num_or_text(v) for v in row])
    path = tmp_path / "survey.xlsx"
    wb.save(path)
    _check_outcome(read_survey(path, Q))


def test_xlsx_data_sheet_found_behind_a_codebook_and_a_title_line(tmp_path):
    # Workbooks often carry a codebook sheet first and a title line above the header: the sheet
    # and header row holding the items are read, rows keep their Excel numbers (here + 2), and
    # messages name the sheet.
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "codebook"
    wb.active.append(["item", "wording"])
    wb.active.append(["a1", "We have many partners"])
    ws = wb.create_sheet("data")
    ws.append(["Survey of firms, wave 1"])
    ws.append([])
    ws.append(HEADER)
    for row in ROWS:
        ws.append([_num_or_text(v) for v in row])
    path = tmp_path / "survey.xlsx"
    wb.save(path)
    data = read_survey(path, Q)
    assert data.source == f"{path} (sheet 'data')"
    assert list(data.rejected["line"]) == [6, 7, 8]
    assert list(data.frame.index) == [4, 5, 9, 10, 11]
    assert data.frame.loc[4, "a3"] == 1.0
    del wb["data"]
    wb.create_sheet("notes").append(["collected 2024"])
    wb.save(path)
    # No sheet has the items: the one with the most (the codebook's row naming a1) is blamed.
    with pytest.raises(SemUpgradeError, match=r"\(sheet 'codebook'\): 4 questionnaire item\(s\) missing "
                                              r"from the columns: a2, a3, b1, b2$"):
        read_survey(path, Q)


def _num_or_text(v):
    try:
        return float(v) if v.strip() not in ("", "-", ".") else (None if not v.strip() else v)
    except ValueError:
        return v


def test_sav(tmp_path):
    import pyreadstat

    df = pd.DataFrame({
        "firm_id": ["f1", "f2", "f3", "f1"],
        "a1": [1, 4, 3, 5], "a2": [2, np.nan, 6, 5], "a3": [5, 1, 2, 5], "b1": [3, -99, 2, 5], "b2": [4, 2, 2, 5],
    })
    path = tmp_path / "survey.sav"
    pyreadstat.write_sav(df, str(path))
    data = read_survey(path, Q)
    assert data.n_rows_read == 4
    assert list(data.rejected["line"]) == [3, 4]
    assert data.rejected["reason"].tolist() == ["invalid value: a2: outside the scale 1-5",
                                                "duplicate id: first seen on line 1"]
    assert data.frame.loc[1, "a3"] == 1.0 and np.isnan(data.frame.loc[2, "b1"])


def test_missing_columns_listed_with_close_matches(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("firm_id,A1,a2,a_3,b1,b2\nf1,1,2,3,4,5\n")
    with pytest.raises(SemUpgradeError) as err:
        read_survey(path, Q)
    assert str(err.value) == (f"{path}: 2 questionnaire item(s) missing from the columns: "
                              "a1 (did you mean A1?), a3 (did you mean a_3?)")


def test_ragged_row_rejected_not_lost(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("firm_id,a1,a2,a3,b1,b2\nf1,1,2,3,4,5\nf2,1,2,3\nf3,2,2,2,2,1\n")
    data = read_survey(path, Q)
    assert data.rejected[["line", "id", "reason"]].values.tolist() == [[3, "f2", "row has 4 fields, the header has 6"]]


def test_no_valid_rows(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("firm_id,a1,a2,a3,b1,b2\nf1,9,2,3,4,5\n")
    with pytest.raises(SemUpgradeError, match="no valid rows left: all 1 data rows were rejected"):
        read_survey(path, Q)


def test_undecodable_and_unknown_files(tmp_path):
    with pytest.raises(SemUpgradeError, match="no such data file"):
        read_survey(tmp_path / "nope.csv", Q)
    bad = tmp_path / "s.json"
    bad.write_text("{}")
    with pytest.raises(SemUpgradeError, match="unsupported file type '.json'"):
        read_survey(bad, Q)
    broken = tmp_path / "s.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(SemUpgradeError, match="cannot open as an Excel workbook"):
        read_survey(broken, Q)
