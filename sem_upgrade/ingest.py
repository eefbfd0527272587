"""Ingestion: read a survey file, check every item cell, set broken rows aside, recode reverse items.

Cell rules (for every item column of the questionnaire):

* **missing**: an empty cell, NA-like text (``NA``, ``N/A``, ``n/a``, ``null``, ``none``,
  ``nan``, ``.``, ``-``; any case), or a value equal to one of the questionnaire's
  ``missing_codes``;
* **valid**: a number within ``scale`` (inclusive). On a Likert scale with whole-number
  end points a value must be a whole scale point: ``4`` and ``4.0`` are valid, ``3.5``
  is *invalid* ("not a whole scale point"), because a half point is not an answer the
  questionnaire offered and usually signals a typing or merging error. Without a
  ``scale`` (continuous measures) any finite number is valid;
* **invalid**: anything else (other text, a number outside the scale).

A row with any invalid cell is rejected whole and written, with its line number in the
source file (CSV line, Excel row, SPSS case number), its id, the columns, the raw values
and the reason, to the rejected-rows table. When the id repeats, the first row is kept
and each later one is rejected with reason ``duplicate id``. Nothing else is dropped here
and the input file is never written to. Reverse-keyed items are recoded ``min + max - x``.
"""

from __future__ import annotations

from collections import Counter

import csv
import difflib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SemUpgradeError
from .questionnaire import Questionnaire

__all__ = ["SurveyData", "read_survey", "MISSING_POLICIES"]

MISSING_POLICIES = ("listwise", "fiml")
_NA_TEXT = {"", "na", "n/a", "null", "none", "nan", ".", "-", "#n/a"}
_MISSING, _INVALID = object(), object()
_DECIMAL_COMMA = re.compile(r"[-+]?\d+,\d+")


@dataclass
class SurveyData:
    """A checked survey.

    Attributes
    ----------
    frame : DataFrame
        Every accepted row: the item columns as floats (reverse items already recoded,
        missing as NaN) plus the other columns of the file as text. Index: the source
        line number.
    items : list of str
        Item columns in questionnaire order.
    rejected : DataFrame
        Columns ``line, id, columns, values, kind, reason``; one row per rejected source row;
        ``kind`` is ``invalid value``, ``duplicate id`` or ``malformed row``.
    source : str
        The file that was read.
    n_rows_read : int
        Data rows in the file (blank lines not counted).
    """

    frame: pd.DataFrame
    items: list[str]
    rejected: pd.DataFrame
    source: str
    n_rows_read: int
    id_column: str | None = None
    reverse_items: list[str] = field(default_factory=list)
    encoding: str | None = None  # the text encoding a CSV was read in
    sheet: str | None = None  # the worksheet read, when the workbook has several
    other_sheets: list[str] = field(default_factory=list)
    formula_cells: list[str] = field(default_factory=list)  # formula cells without a saved value

    def analysis_frame(self, missing: str = "listwise") -> pd.DataFrame:
        """Item data entering the models under a missing-data policy.

        ``listwise``: the valid rows with no missing item (lavaan's default).
        ``fiml``: the valid rows with at least one observed item (rows with every
        item missing carry no information and are dropped, as lavaan does).
        """
        if missing not in MISSING_POLICIES:
            raise SemUpgradeError(f"--missing: '{missing}' is not one of {', '.join(MISSING_POLICIES)}")
        x = self.frame[self.items]
        keep = x.notna().all(axis=1) if missing == "listwise" else x.notna().any(axis=1)
        return x[keep]

    def quality(self, missing: str = "listwise") -> dict:
        """Data-quality summary: counts, rejections by reason, missing rates, straight-liners."""
        x = self.frame[self.items]
        used = self.analysis_frame(missing)
        complete = x.dropna()
        straight = complete.index[complete.nunique(axis=1) == 1] if len(self.items) > 1 else complete.index[:0]
        reasons = {str(k): int(v) for k, v in self.rejected["kind"].value_counts(sort=False).items()}
        return {
            "source": self.source,
            "n_rows_read": self.n_rows_read,
            "n_rejected": int(len(self.rejected)),
            "rejected_by_reason": reasons,
            "n_valid": int(len(x)),
            "n_complete": int(len(complete)),
            "n_all_items_missing": int(x.isna().all(axis=1).sum()),
            "n_used": int(len(used)),
            "missing_policy": missing,
            "missing_rate": {c: float(x[c].isna().mean()) if len(x) else 0.0 for c in self.items},
            "missing_cells": int(x.isna().sum().sum()),
            "reverse_recoded": list(self.reverse_items),
            "encoding": self.encoding,
            "sheet": self.sheet,
            "other_sheets": list(self.other_sheets),
            "formula_cells_without_value": {"count": len(self.formula_cells), "cells": self.formula_cells[:10],
                                            "note": "formulas the file saved no value for (written by a program "
                                                    "that does not calculate them): their rows are rejected"},
            "straight_liners": {
                "count": int(len(straight)),
                "lines": [int(v) for v in straight],
                "note": "same answer on every item; flagged, not dropped",
            },
        }


def read_survey(path: str | Path, questionnaire: Questionnaire, encoding: str | None = None) -> SurveyData:
    """Read a CSV, Excel (.xlsx) or SPSS (.sav) survey and check it against a questionnaire.

    ``encoding``: the text encoding of a CSV file; by default the first of UTF-8, GB18030, Big5,
    Windows-1252, UTF-16 and UTF-32 in which the header names the questionnaire's items.

    Raises
    ------
    SemUpgradeError
        No such file, an undecodable file, missing item columns (with close matches),
        or no valid rows left.
    """
    path = Path(path)
    if not path.is_file():
        raise SemUpgradeError(f"{path}: no such data file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        header, rows, used = _read_csv(path, questionnaire.items, encoding)
        data = _check(path, header, rows, questionnaire)
        data.encoding = used
        return data
    if encoding:
        raise SemUpgradeError(f"--encoding: applies to CSV files only, not to {path.name}")
    if suffix in (".xlsx", ".xlsm"):
        header, rows, sheet, others, formulas = _read_xlsx(path, questionnaire.items)
        data = _check(path, header, rows, questionnaire, sheet=sheet)
        data.sheet, data.other_sheets = sheet, others
        rejected = set(data.rejected["line"])
        data.formula_cells = [cell for line, cell in formulas if line in rejected]
        return data
    if suffix == ".sav":
        header, rows = _read_sav(path)
    else:
        raise SemUpgradeError(f"{path}: unsupported file type '{suffix}' (use .csv, .xlsx or .sav)")
    return _check(path, header, rows, questionnaire)


# ---------------------------------------------------------------- readers
# Encodings tried in turn for a CSV without a byte-order mark: the one whose header names the
# questionnaire's items is taken (Chinese Excel saves "CSV" as GBK, of which GB18030 is a superset;
# Taiwan and Hong Kong as Big5; Western Windows as Windows-1252; some tools as UTF-16 or UTF-32).
ENCODINGS = ("utf-8", "gb18030", "big5", "cp1252", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _decode(path: Path, items, encoding: str | None = None) -> tuple[str, str]:
    """The file's text and the encoding it was read in.

    With ``encoding`` given, that one (strictly). Otherwise a byte-order mark decides; without
    one, each of :data:`ENCODINGS` that decodes the file and gives a header without NULs or
    replacement characters is scored by how many item names its header holds, and the first
    with every item wins. A file no candidate reads is refused with the candidates named, never
    decoded wrongly and then blamed on its column names.
    """
    import codecs

    raw = path.read_bytes()
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise SemUpgradeError(f"--encoding: unknown encoding '{encoding}' (e.g. utf-8, gb18030, big5, cp1252, "
                                  "utf-16)") from None
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            raise SemUpgradeError(f"{path}: not valid {encoding} (byte {exc.start}): check --encoding") from None
    for bom, name in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(name), name
            except UnicodeDecodeError:
                raise SemUpgradeError(f"{path}: the file starts with a {name} byte-order mark but is not valid "
                                      f"{name}; give its encoding with --encoding") from None
    wanted, best, tried = set(items), None, []
    for name in ENCODINGS:
        try:
            text = raw.decode(name)
        except UnicodeDecodeError:
            tried.append(name)
            if name == "utf-8":  # UTF-8 with a few stray bytes: those cells become invalid, not the file
                text = raw.decode(name, errors="replace")
                bad = text.count("\ufffd")
                header = _first_line(text)
                if bad <= max(3, len(raw) // 10000) and "\ufffd" not in header and wanted <= {
                        c.strip().strip('"') for c in _split_header(header)}:
                    return text, f"utf-8 ({bad} invalid byte{'s' if bad > 1 else ''} replaced)"
            continue
        header = _first_line(text)
        if "\x00" in header or "\ufffd" in header:
            tried.append(name)
            continue
        hits = len(wanted.intersection(c.strip().strip('"') for c in _split_header(header)))
        if hits == len(wanted):
            return text, name
        if best is None or hits > best[2]:
            best = (text, name, hits)
        tried.append(name)
    # a header that names most items (or any clean UTF-8) is readable: the missing items are named next
    if best is not None and (2 * best[2] >= len(wanted) or best[1] == "utf-8"):
        return best[0], best[1]
    raise SemUpgradeError(f"{path}: the text encoding is unreadable: no header naming the questionnaire's items in "
                          f"{', '.join(tried)}; give the file's encoding with --encoding (e.g. --encoding cp1252), "
                          "or save it from Excel as 'CSV UTF-8'")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _split_header(line: str) -> list[str]:
    for sep in (",", ";", "\t", "|"):
        if sep in line:
            return line.split(sep)
    return [line]


def _read_csv(path: Path, items=(), encoding: str | None = None):
    text, used = _decode(path, items, encoding)
    sample = text[:65536]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header, rows, last = None, [], 0
    for record in reader:
        start, last = last + 1, reader.line_num
        if not record or all(not c.strip() for c in record):
            continue
        if header is None:
            header = [c.strip() for c in record]
            continue
        rows.append((start, record))
    if header is None:
        raise SemUpgradeError(f"{path}: the file is empty (no header row)")
    return header, rows, used


class _Formula(str):
    """A formula cell the workbook saved no value for (its text, e.g. '=B2+1', and its cell)."""

    cell = ""


def _read_xlsx(path: Path, items):
    """Header and rows of the worksheet that holds the questionnaire's items.

    A workbook often carries a codebook, notes or an old pilot beside the data, and a title line
    above the header: the sheet with the most item columns is read, the active sheet first on a
    tie, then the visible ones in order, hidden sheets last; its header is the first of its first
    ten non-empty rows that names the most items. Every row is read, whatever the sheet's stored
    dimension says. A formula cell without a saved value (a workbook written by a program that
    does not calculate) comes back as :class:`_Formula`. Returns (header, rows, sheet name or
    None when the workbook has one sheet, the other sheets' names, [(line, cell)] of such formulas).
    """
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a broken file
        raise SemUpgradeError(f"{path}: cannot open as an Excel workbook ({exc})") from None
    wanted = set(items)
    sheets = list(wb.worksheets)
    active = wb.active
    order = sorted(range(len(sheets)), key=lambda k: (sheets[k] is not active,
                                                       getattr(sheets[k], "sheet_state", "visible") != "visible", k))
    best = None
    for k in order:
        ws = sheets[k]
        ws.reset_dimensions()  # a stale <dimension> tag would cut the rows short
        lines = [(rownum, list(values)) for rownum, values in enumerate(ws.iter_rows(values_only=True), start=1)
                 if not all(v is None or (isinstance(v, str) and not v.strip()) for v in values)]
        if not lines:
            continue
        texts = [["" if v is None else str(v).strip() for v in values] for _, values in lines[:10]]
        hits = [len(wanted.intersection(t)) for t in texts]
        j = int(np.argmax(hits))
        if best is None or hits[j] > best[0]:
            best = (hits[j], ws.title, texts[j], lines[j + 1:], lines[j][0])
    names = [ws.title for ws in sheets]
    wb.close()
    if best is None:
        raise SemUpgradeError(f"{path}: the workbook is empty (no header row)")
    _, title, header, rows, header_row = best
    formulas = _unsaved_formulas(path, title, header_row, rows)
    several = len(names) > 1
    return header, rows, title if several else None, [n for n in names if n != title], formulas


def _unsaved_formulas(path: Path, title: str, header_row: int, rows: list) -> list[tuple[int, str]]:
    """Mark, in ``rows``, the cells that hold a formula but no saved value; return (line, cell) of each."""
    empty = {(line, c) for line, values in rows for c, v in enumerate(values) if v is None}
    if not empty:
        return []
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    wb = load_workbook(path, read_only=True, data_only=False)
    ws = wb[title]
    ws.reset_dimensions()
    found = []
    by_line = dict(rows)
    for rownum, values in enumerate(ws.iter_rows(values_only=True), start=1):
        if rownum not in by_line:
            continue
        for c, v in enumerate(values):
            if (rownum, c) in empty and isinstance(v, str) and v.startswith("="):
                mark = _Formula(v)
                mark.cell = f"{get_column_letter(c + 1)}{rownum}"
                by_line[rownum][c] = mark
                found.append((rownum, mark.cell))
    wb.close()
    return found


def _read_sav(path: Path):
    import pyreadstat

    try:
        df, _meta = pyreadstat.read_sav(str(path))  # SPSS user-missing values arrive as NaN
    except Exception as exc:  # pyreadstat raises its own ReadstatError and others
        raise SemUpgradeError(f"{path}: cannot read as an SPSS .sav file ({exc})") from None
    header = [str(c) for c in df.columns]
    rows = [(k + 1, list(r)) for k, r in enumerate(df.itertuples(index=False, name=None))]
    return header, rows


# ---------------------------------------------------------------- checks
def _parse_cell(value, q: Questionnaire, scale: tuple[float, float] | None = None):
    """Return a float, _MISSING, or (_INVALID, reason); ``scale`` is the item's [min, max] (None: no range)."""
    if value is None:
        return _MISSING
    if isinstance(value, _Formula):
        return _INVALID, (f"formula without a saved value in cell {value.cell} ({value}): open and save the file "
                          "in Excel, or export it as CSV")
    if isinstance(value, bool):
        return _INVALID, "not a number"
    if isinstance(value, (int, float, np.integer, np.floating)):
        x = float(value)
        if math.isnan(x):
            return _MISSING
    else:
        text = str(value).strip()
        if text.lower() in _NA_TEXT:
            return _MISSING
        try:
            x = float(text)
        except ValueError:
            if _DECIMAL_COMMA.fullmatch(text):
                return _INVALID, f"decimal comma ('{text}'): write decimals with a point"
            return _INVALID, "not a number"
    if any(x == code for code in q.missing_codes):
        return _MISSING
    if not math.isfinite(x):
        return _INVALID, "not a finite number"
    if scale is not None:
        lo, hi = scale
        if x < lo or x > hi:
            return _INVALID, f"outside the scale {_fmt(lo)}-{_fmt(hi)}"
        if float(lo).is_integer() and float(hi).is_integer() and not x.is_integer():
            return _INVALID, "not a whole scale point"
    return x


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _check(path: Path, header: list[str], rows, q: Questionnaire, sheet: str | None = None) -> SurveyData:
    label = f"{path} (sheet '{sheet}')" if sheet else str(path)
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        raise SemUpgradeError(f"{label}: column(s) {', '.join(dupes)} appear more than once in the header")
    missing = [i for i in q.items if i not in header]
    if missing:
        hints = []
        for item in missing:
            close = difflib.get_close_matches(item, header, n=2, cutoff=0.6)
            close += [h for h in header if h.lower() == item.lower() and h not in close]
            hints.append(f"{item} (did you mean {' or '.join(close)}?)" if close else item)
        raise SemUpgradeError(f"{label}: {len(missing)} questionnaire item(s) missing from the columns: {', '.join(hints)}")
    if q.id_column and q.id_column not in header:
        close = difflib.get_close_matches(q.id_column, header, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SemUpgradeError(f"{label}: the id column '{q.id_column}' named in the questionnaire is not in the file{hint}")

    col = {h: k for k, h in enumerate(header)}
    reverse = set(q.reverse_items)
    scales = {item: q.scale_of(item) for item in q.items}  # a construct's own scale overrides the questionnaire's
    kept_lines, kept_values, kept_extra = [], [], []
    rejected = []
    seen_ids: dict[str, int] = {}
    extras = [h for h in header if h and h not in set(q.items)]
    for line, record in rows:
        rid = _id_text(record[col[q.id_column]]) if q.id_column and col[q.id_column] < len(record) else ""
        if len(record) != len(header) and path.suffix.lower() in (".csv", ".txt", ".tsv"):
            rejected.append((line, rid, "", "", "malformed row", f"row has {len(record)} fields, the header has {len(header)}"))
            continue
        values, bad_cols, bad_vals, reasons = [], [], [], []
        for item in q.items:
            raw = record[col[item]]
            parsed = _parse_cell(raw, q, scales[item])
            if isinstance(parsed, tuple):
                bad_cols.append(item)
                bad_vals.append("" if raw is None else str(raw))
                reasons.append(f"{item}: {parsed[1]}")
                values.append(np.nan)
            elif parsed is _MISSING:
                values.append(np.nan)
            else:
                values.append(sum(scales[item]) - parsed if item in reverse else parsed)  # min + max - x
        if bad_cols:
            rejected.append((line, rid, "; ".join(bad_cols), "; ".join(bad_vals), "invalid value",
                             "invalid value: " + "; ".join(reasons)))
            continue
        if rid:
            if rid in seen_ids:
                rejected.append((line, rid, q.id_column, rid, "duplicate id", f"duplicate id: first seen on line {seen_ids[rid]}"))
                continue
            seen_ids[rid] = line
        kept_lines.append(line)
        kept_values.append(values)
        kept_extra.append([_id_text(record[col[h]]) for h in extras])

    frame = pd.DataFrame(kept_values, columns=q.items, index=pd.Index(kept_lines, name="line"), dtype=float)
    for k, h in enumerate(extras):
        frame[h] = [r[k] for r in kept_extra]
    rejected_df = pd.DataFrame(rejected, columns=["line", "id", "columns", "values", "kind", "reason"])
    data = SurveyData(frame=frame, items=list(q.items), rejected=rejected_df, source=label,
                      n_rows_read=len(rows), id_column=q.id_column, reverse_items=sorted(reverse))
    if rejected and 2 * len(rejected) > len(rows) and not frame.empty:
        raise SemUpgradeError(_mass_rejection(label, rejected, len(rows)))
    if frame.empty:
        raise SemUpgradeError(f"{label}: no valid rows left: all {len(rows)} data rows were rejected "
                              f"(first reason: {rejected[0][5] if rejected else 'the file has no data rows'})")
    return data


def _mass_rejection(label: str, rejected: list[tuple], n_rows: int) -> str:
    """One line for a file most of whose rows were rejected: the commonest reason and its columns.

    More than half the rows rejected is a mismatch between file and questionnaire (a scale that
    does not fit some columns, a wrong missing code, a decimal comma), not bad respondents: the
    run stops instead of analysing the remnant.
    """
    kinds = Counter(r[4] for r in rejected)
    kind, count = kinds.most_common(1)[0]
    cols = Counter(c for r in rejected if r[4] == kind for c in str(r[2]).split("; ") if c)
    where = ", ".join(f"{c} ({k} rows)" for c, k in cols.most_common(5))
    example = next(r[5] for r in rejected if r[4] == kind)
    return (f"{label}: {len(rejected)} of {n_rows} rows rejected, most for {kind} ({count} rows"
            + (f"; columns {where}" if where else "") + f"), e.g. {example}; check the questionnaire's "
            "scale and missing codes against the file")


def _id_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()
