"""Writing a run's files: all into a temporary folder, then moved into place together.

The output folder then holds one complete run: a report an earlier run wrote and this one
did not (another format) is removed, a failed or interrupted run leaves the folder as it
was, and two runs into one folder take turns (a lock file) instead of mixing files. Files
in the folder that are not outputs (a user's own) are left alone; an input file sitting
there under an output's name is refused before anything is computed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import SemUpgradeError
from .diagram import write_diagram
from .excel import write_csv, write_excel, write_frame_csv
from .html import html_report
from .i18n import check_lang
from .markdown import markdown_report
from .word import write_docx

__all__ = ["FORMATS", "OUTPUT_NAMES", "check_formats", "check_outdir", "write_reports", "write_run"]

FORMATS = ("html", "md", "xlsx", "docx")
# Every name a run may write at the top of the output folder.
OUTPUT_NAMES = ("results.json", "timing.json", "rejected_rows.csv", "report.html", "report.md", "report.docx",
                "tables.xlsx", "tables", "path_diagram.png", "path_diagram.pdf", "reproduce")
_DIRS = {"tables", "reproduce"}
_LOCK = ".sem_upgrade.lock"


def check_formats(formats) -> tuple[str, ...]:
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise SemUpgradeError(f"--format: unknown output '{unknown[0]}' (choose from {', '.join(FORMATS)})")
    return formats


def check_outdir(outdir, inputs=()) -> Path:
    """Refuse an output folder that holds an input under an output's name, or an output name of the
    wrong kind (a file named ``tables``); call before the run so nothing is computed in vain."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise SemUpgradeError(f"{outdir}: the output folder is a file; choose another -o")
    targets = {(outdir / n).resolve(): n for n in OUTPUT_NAMES}
    for f in inputs:
        if f is None:
            continue
        src = Path(f).resolve()
        for target, name in targets.items():
            if src == target or (name in _DIRS and target in src.parents):
                raise SemUpgradeError(f"{f}: this input is in the output folder under the name of an output "
                                      f"({name}) and would be overwritten; move it or choose another -o")
    for name in OUTPUT_NAMES:
        p = outdir / name
        if name in _DIRS and p.exists() and not p.is_dir():
            raise SemUpgradeError(f"{p}: a file is in the way of the output folder '{name}'; move it away")
        if name not in _DIRS and p.is_dir():
            raise SemUpgradeError(f"{p}: a folder is in the way of the output file '{name}'; move it away")
    return outdir


def write_reports(res, outdir, formats=("html", "md", "xlsx"), lang: str = "en") -> list[Path]:
    """Write the chosen reports into ``outdir`` (no temporary folder; see :func:`write_run`)."""
    lang = check_lang(lang)
    formats = check_formats(formats)
    outdir = Path(outdir)
    written = []
    png = None
    if {"html", "docx"} & set(formats):
        figs = write_diagram(res, outdir, lang)
        written += figs
        png = next((p for p in figs if p.suffix == ".png"), None)
    if "md" in formats:
        p = outdir / "report.md"
        p.write_text(markdown_report(res, lang), encoding="utf-8")
        written.append(p)
    if "html" in formats:
        p = outdir / "report.html"
        p.write_text(html_report(res, lang), encoding="utf-8")
        written.append(p)
    if "xlsx" in formats:
        written.append(write_excel(res, outdir / "tables.xlsx", lang))
        written.append(write_csv(res, outdir / "tables", lang))
    if "docx" in formats:
        written.append(write_docx(res, outdir / "report.docx", lang, diagram_png=png))
    return written


@contextmanager
def _locked(outdir: Path):
    import fcntl

    with open(outdir / _LOCK, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _os_error(outdir, exc: OSError) -> SemUpgradeError:
    why = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why += " (the folder is not writable)"
    where = exc.filename or outdir
    return SemUpgradeError(f"{where}: cannot write the outputs: {why}")


def write_run(res, outdir, formats=("html", "md", "xlsx"), lang: str = "en", inputs=(), extra=None) -> Path:
    """Write results.json, timing.json, rejected_rows.csv and the reports into ``outdir`` as one run.

    Everything is written into a temporary folder inside ``outdir`` first, then moved into
    place under a lock; outputs of an earlier run that this run does not write are removed.
    ``extra(folder)`` may write further files into the temporary folder.
    """
    lang = check_lang(lang)
    formats = check_formats(formats)
    outdir = check_outdir(outdir, inputs)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".sem_upgrade-", dir=outdir))
    except OSError as exc:
        raise _os_error(outdir, exc) from None
    try:
        res.to_json(tmp / "results.json")
        if res.timing:
            (tmp / "timing.json").write_text(json.dumps(res.timing, indent=2) + "\n", encoding="utf-8")
        if res.rejected is not None:
            write_frame_csv(res.rejected, tmp / "rejected_rows.csv")
        write_reports(res, tmp, formats, lang)
        if extra is not None:
            extra(tmp)
        with _locked(outdir):
            new = {p.name for p in tmp.iterdir()}
            for name in set(OUTPUT_NAMES) | new:
                old = outdir / name
                if old.is_dir() and not old.is_symlink():
                    shutil.rmtree(old)
                elif old.exists() or old.is_symlink():
                    old.unlink()
            for name in sorted(new):
                os.replace(tmp / name, outdir / name)
    except OSError as exc:
        raise _os_error(outdir, exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return outdir
