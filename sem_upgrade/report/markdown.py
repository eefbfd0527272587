"""The report in Markdown (for a README or a paper draft).

User text is escaped as HTML is (``<``, ``>``, ``&``), ``|`` is escaped inside tables and
line breaks become spaces, so no label can inject markup, a script or a heading.
"""

from __future__ import annotations

import html
import re

from ..results import to_plain
from .fmt import clean
from .i18n import words
from .narrative import narrative
from .tables import Table, build_tables

__all__ = ["md_escape", "markdown_table", "markdown_report", "hypothesis_markdown"]


def md_escape(text, block: bool = True) -> str:
    """One line of inert text: HTML-escaped, no line breaks; as a ``block`` (a paragraph or list
    item) a leading heading, list or quote marker is escaped too."""
    one = re.sub(r"[\r\n\u2028\u2029]+", " ", html.escape(clean(text), quote=False))
    return re.sub(r"^(\s*)([#>*+=-])", r"\1\\\2", one) if block else one


def markdown_table(t: Table, number: int | None, w) -> str:
    """An APA table in Markdown ('Table n', the title, the rows, the note); the rows alone when ``number`` is None."""
    cell = lambda s: md_escape(s, block=False).replace("|", "\\|")  # noqa: E731
    lines = [] if number is None else [f"**{w('table')} {number}**", "", f"*{md_escape(t.title)}*", ""]
    lines += ["| " + " | ".join(cell(h) for h in t.header) + " |",
             "|" + "|".join("---:" if any(r[j].fmt is not None for r in t.rows) else "---"
                            for j in range(len(t.header))) + "|"]
    for row in t.rows:
        lines.append("| " + " | ".join(f"**{cell(c.text)}**" if c.bold else cell(c.text) for c in row) + " |")
    if t.note and number is not None:
        lines += ["", f"*{w('note')}* {md_escape(t.note)}"]
    return "\n".join(lines)


def hypothesis_markdown(res, lang: str = "en") -> str:
    """The hypothesis table's rows in Markdown (for a README)."""
    t = next(t for t in build_tables(res, lang) if t.key == "hypotheses")
    return markdown_table(t, None, words(lang))


def markdown_report(res, lang: str = "en") -> str:
    d = to_plain(res.data)
    w = words(lang)
    q = d["questionnaire"]
    prov = d["provenance"]
    parts = [f"# {md_escape(q['title'] or q['name'])}", "",
             md_escape(w("header_line", data=prov["data"], q=prov["questionnaire"], read=d["n_rows_read"],
                         rej=d["n_rejected"], used=d["n_used"], missing=w(d["missing"]), lik=d["likelihood"])), ""]
    if prov["data"] == "liaoning_2012_survey.csv":
        parts += [f"> {md_escape(w('simulated'))}", ""]
    parts += [f"## {w('t_narrative')}", ""]
    stage = None
    para: list[str] = []
    for s in narrative(res, lang) + [None]:
        if s is None or s.stage != stage:
            if para:
                parts += [("" if lang == "zh" else " ").join(para), ""]
            para = []
            stage = s.stage if s else None
        if s is not None:
            para.append(md_escape(s.text))
    for n, t in enumerate(build_tables(res, lang), start=1):
        parts += [f"## {md_escape(t.title)}", "", markdown_table(t, n, w), ""]
    if d.get("warnings"):
        parts += [f"## {w('t_warnings')}", ""] + [f"- {md_escape(x)}" for x in d["warnings"]] + [""]
    return "\n".join(parts)
