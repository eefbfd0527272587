"""Excel workbook and CSV files of the report's tables.

Every text cell is written as text (openpyxl would store a string starting with ``=`` as a
live formula, ``=~`` included), numbers stay numbers with the paper's number format, and
control characters are removed (XML cannot hold them). CSV text cells that start with
``= + - @``, a tab or a carriage return get a leading apostrophe, as OWASP advises against
CSV injection (https://owasp.org/www-community/attacks/CSV_Injection).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from .fmt import clean
from .i18n import words
from .tables import build_tables

__all__ = ["write_excel", "write_csv", "csv_safe", "write_frame_csv", "fixed_zip"]

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """A CSV cell: numbers unchanged; text cleaned and, when it could start a formula, quoted with '."""
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return "" if value is None else value
    text = clean(value)
    return "'" + text if text.startswith(_TRIGGERS) else text


def fixed_zip(path) -> Path:
    """Rewrite an Office file (a zip) with fixed entry times, so the same run gives the same bytes."""
    import io
    import zipfile

    path = Path(path)
    src = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>2000-01-01T00:00:00Z", data)
            out.writestr(fixed, data)
    path.write_bytes(buf.getvalue())
    return path


def _text_cell(ws, row, col, text):
    cell = ws.cell(row=row, column=col)
    cell.value = clean(text)
    cell.data_type = "s"  # never a formula, whatever the first character
    return cell


def write_excel(res, path, lang: str = "en") -> Path:
    """``tables.xlsx``: one sheet per table (title, header, rows, note)."""
    from openpyxl import Workbook
    from openpyxl.styles import Border, Font, Side
    from openpyxl.utils import get_column_letter

    w = words(lang)
    wb = Workbook()
    wb.remove(wb.active)
    thick, thin = Side(style="medium"), Side(style="thin")
    for n, t in enumerate(build_tables(res, lang), start=1):
        ws = wb.create_sheet(t.key[:31])
        _text_cell(ws, 1, 1, f"{w('table')} {n}. {t.title}").font = Font(bold=True)
        for j, h in enumerate(t.header, start=1):
            c = _text_cell(ws, 2, j, h)
            c.border = Border(top=thick, bottom=thin)
            c.font = Font(bold=False)
        for i, row in enumerate(t.rows, start=3):
            for j, cell in enumerate(row, start=1):
                if cell.value is not None:
                    c = ws.cell(row=i, column=j, value=cell.value)
                    c.number_format = cell.fmt or "General"
                else:
                    c = _text_cell(ws, i, j, cell.text)
                if cell.bold:
                    c.font = Font(bold=True)
                if i == len(t.rows) + 2:
                    c.border = Border(bottom=thick)
        if t.note:
            _text_cell(ws, len(t.rows) + 4, 1, f"{w('note')} {t.note}")
        for j, h in enumerate(t.header, start=1):
            width = max([len(h)] + [len(r[j - 1].text) for r in t.rows]) + 2
            ws.column_dimensions[get_column_letter(j)].width = max(8, min(60, width))
    path = Path(path)
    wb.save(path)
    return fixed_zip(path)


def write_csv(res, folder, lang: str = "en") -> Path:
    """``tables/<table>.csv``: the header row, then one row per table row (numbers unrounded)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t in build_tables(res, lang):
        with open(folder / f"{t.key}.csv", "w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow([csv_safe(h) for h in t.header])
            for row in t.rows:
                out.writerow([c.value if c.value is not None else csv_safe(c.text) for c in row])
    return folder


def write_frame_csv(df: pd.DataFrame, path) -> Path:
    """A DataFrame (e.g. the rejected rows) as CSV with every text cell made safe."""
    safe = df.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(lambda v: v if v is None or (isinstance(v, float) and v != v) else csv_safe(v))
    safe.columns = [csv_safe(c) for c in safe.columns]
    safe.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    return Path(path)
