"""Reports: render a :class:`~sem_upgrade.results.Results` as Markdown. Renders only; computes nothing.

Numbers are printed as papers print them: three decimals, p-values below .001 as "< .001".
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["fmt_number", "fmt_p", "markdown_table", "hypothesis_markdown", "markdown_report"]


def fmt_number(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}f}"


def fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "—"
    return "< .001" if p < 0.001 else f"{p:.3f}"


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A GitHub-flavoured Markdown table; ``columns`` is [(key, header)], cells already text or numbers."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = []
    for r in rows:
        cells = []
        for key, _ in columns:
            v = r.get(key)
            text = v if isinstance(v, str) else fmt_number(v)
            cells.append(str(text).replace("|", "\\|"))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *body])


def hypothesis_markdown(hyp: pd.DataFrame) -> str:
    """The hypothesis table: id, effect, standardized and unstandardized estimate, S.E., p, CI, verdict."""
    rows = []
    for _, h in hyp.iterrows():
        ci = "—" if pd.isna(h["ci_lower"]) else f"[{h['ci_lower']:.3f}, {h['ci_upper']:.3f}]"
        rows.append({"id": h["id"], "effect": h["effect"].replace("->", "→"), "sign": h["expected_sign"],
                     "std": fmt_number(h["std_estimate"]), "est": fmt_number(h["estimate"]),
                     "se": fmt_number(h["se"]), "p": fmt_p(h["pvalue"]), "ci": ci, "method": h["method"],
                     "verdict": "supported" if h["supported"] else f"not supported: {h['reason']}"})
    return markdown_table(rows, [("id", "H"), ("effect", "effect"), ("sign", "expected"), ("std", "β (std)"),
                                 ("est", "B"), ("se", "S.E."), ("p", "p"), ("ci", "CI"), ("method", "method"),
                                 ("verdict", "verdict")])


def markdown_report(res) -> str:
    """The Markdown report (grows with the report stage)."""
    d = res.data
    parts = [f"# {d['questionnaire']['title'] or d['questionnaire']['name']}", "",
             f"Rows read {d['n_rows_read']}, rejected {d['n_rejected']}, used {d['n_used']} ({d['missing']})."]
    if "hypotheses" in res.tables:
        parts += ["", "## Hypotheses", "", hypothesis_markdown(res.table("hypotheses"))]
    return "\n".join(parts) + "\n"
