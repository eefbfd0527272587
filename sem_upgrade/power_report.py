"""Power report: power.json, the power-curve plot, and HTML and Markdown summaries of a power study.

Renders a :class:`~sem_upgrade.power.PowerResult`; computes nothing. Rates print with three
decimals, as the other reports do; every user-supplied string is escaped in HTML.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from .report import fmt_number
from .report.markdown import md_escape

__all__ = ["write_power_reports", "power_markdown", "power_html", "power_curve_png"]


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A Markdown table of plain rows; ``columns`` is [(key, header)]; every cell escaped as inert text."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = []
    for r in rows:
        cells = [md_escape(r.get(k) if isinstance(r.get(k), str) else fmt_number(r.get(k)), block=False)
                 .replace("|", "\\|") for k, _ in columns]
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *body])


_FORMATS = ("json", "png", "html", "md")
_COLUMNS = [("n", "N"), ("rate", "rate"), ("ci", "MC 95% CI"), ("mean_estimate", "mean std. estimate"),
            ("bias", "bias"), ("coverage", "95% CI coverage"), ("n_ok", "fitted"), ("n_failed", "failed"),
            ("n_inadmissible", "inadmissible")]


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def _rows(h):
    out = []
    for r in h["by_n"]:
        row = dict(r)
        row["ci"] = ("—" if r["rate_ci_lower"] is None
                     else f"[{fmt_number(r['rate_ci_lower'])}, {fmt_number(r['rate_ci_upper'])}]")
        out.append(row)
    return out


def _what(h) -> str:
    return "power" if h["truth"] != 0 else "type-I error rate (true effect 0)"


def _answer(res) -> str:
    target = res.settings.get("target", 0.8)
    if res.min_n_all is not None:
        return (f"Smallest N in the grid at which every hypothesis with a true effect reaches power "
                f"{target:.2f}: **{res.min_n_all}**.")
    return (f"No N in the grid ({res.grid[0]}–{res.grid[-1]}) gives every hypothesis with a true effect "
            f"power {target:.2f}; see the hypotheses without a minimum N below.")


def power_markdown(res, title: str = "") -> str:
    """The Markdown summary of a power study."""
    s = res.settings
    setup = (f"{res.replications} replications at each N of {', '.join(map(str, res.grid))}; seed {res.seed}; "
             f"alpha {s.get('alpha')}; indirect effects by the {s.get('indirect')} interval; "
             f"missing rate {s.get('missing_rate')}; estimator {s.get('estimator')}.")
    lines = [f"# Sample-size planning: Monte Carlo power{': ' + title if title else ''}", "", setup, "",
             _answer(res), ""]
    summary = [{"id": h["id"], "effect": h["effect"], "kind": h["kind"], "truth": h["truth"],
                "min_n": h["min_n"] if h["min_n"] is not None else ("—" if h["truth"] == 0 else "not reached")}
               for h in res.hypotheses]
    lines += ["## Smallest N per hypothesis", "",
              markdown_table(summary, [("id", "hypothesis"), ("effect", "effect"), ("kind", "kind"),
                                       ("truth", "true std. effect"), ("min_n", "smallest N")]), ""]
    for h in res.hypotheses:
        head = (f"## {h['id']}: {h['effect']} ({h['kind']}; true std. effect {fmt_number(h['truth'])}; "
                f"rate = {_what(h)})")
        lines += [head, "", markdown_table(_rows(h), _COLUMNS), ""]
    rp = res.rmsea_power
    rmsea_text = (f"df = {rp['df']}; close fit: H0 RMSEA = .05 against .08; not-close fit: H0 RMSEA = .05 "
                  f"against .01. N for power {s.get('target')}: close fit {rp['n_close']}, not-close fit "
                  f"{rp['n_not_close']}.")
    lines += ["## Analytic RMSEA power (MacCallum, Browne & Sugawara 1996)", "", rmsea_text, "",
              markdown_table(rp["by_n"], [("n", "N"), ("power_close", "power (close fit)"),
                                          ("power_not_close", "power (not-close fit)")]), ""]
    return "\n".join(lines)


def power_html(res, title: str = "", plot: str | None = None) -> str:
    """A self-contained HTML page of the power study (the plot linked when given)."""
    import re

    md = power_markdown(res, title)
    body = []
    in_table = False
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if set(line) <= set("|-"):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append("<tr>" + "".join(f"<{tag}>{html.escape(c.replace(chr(92) + '|', '|'))}</{tag}>"
                                         for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
            if plot:
                body.append(f'<img src="{html.escape(plot)}" alt="power curves" style="max-width:100%">')
        elif line:
            text = html.escape(line)
            body.append("<p>" + re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text) + "</p>")
    if in_table:
        body.append("</table>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;"
             "text-align:right}th{background:#f4f4f4}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape('Power: ' + title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def power_curve_png(res, path, title: str = "") -> None:
    """Power against N, one line per hypothesis, the target as a dashed line; type-I rates dotted."""
    import textwrap

    from matplotlib import colormaps
    from matplotlib.figure import Figure

    # a Figure object, not pyplot: no backend switch, no global matplotlib state of the caller changes
    fig = Figure(figsize=(7, 4.8), dpi=120)
    ax = fig.subplots()
    colors = colormaps["tab20"].colors  # distinct colours for up to 20 hypotheses
    for k, h in enumerate(res.hypotheses):
        ns = [r["n"] for r in h["by_n"] if r["rate"] is not None]
        rates = [r["rate"] for r in h["by_n"] if r["rate"] is not None]
        style = "-" if h["truth"] != 0 else ":"
        ax.plot(ns, rates, style, marker="os^"[k // 20 % 3], ms=3, color=colors[k % 20],
                label=f"{h['id']} {h['effect']}")
    target = res.settings.get("target", 0.8)
    ax.axhline(target, color="black", ls="--", lw=1, label=f"target {target:.2f}")
    ax.axhline(res.settings.get("alpha", 0.05), color="grey", ls=":", lw=1, label="alpha")
    ax.set_xlabel("N (respondents)")
    ax.set_ylabel("power (dotted: type-I error rate)")
    ax.set_ylim(0, 1.02)
    ax.set_title(textwrap.fill(f"Monte Carlo power{': ' + title if title else ''}", 90), fontsize=9)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})


def write_power_reports(res, outdir, formats=_FORMATS, title: str = "") -> dict:
    """Write power.json, power_run.json and the chosen formats (png, html, md) to ``outdir``; return their paths."""
    unknown = [f for f in formats if f not in _FORMATS]
    if unknown:
        from .errors import SemUpgradeError

        raise SemUpgradeError(f"--format: unknown format(s) {', '.join(unknown)} (choose from {', '.join(_FORMATS)})")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "power.json"}
    paths["json"].write_text(json.dumps(_json_safe(res.to_json()), indent=2, ensure_ascii=False) + "\n",
                             encoding="utf-8")
    paths["run"] = out / "power_run.json"  # options, versions, wall times: what varies from run to run
    paths["run"].write_text(json.dumps(_json_safe(res.settings), indent=2, ensure_ascii=False) + "\n",
                            encoding="utf-8")
    if "png" in formats:
        paths["png"] = out / "power_curve.png"
        power_curve_png(res, paths["png"], title)
    if "md" in formats:
        paths["md"] = out / "power.md"
        paths["md"].write_text(power_markdown(res, title), encoding="utf-8")
    if "html" in formats:
        paths["html"] = out / "power.html"
        paths["html"].write_text(power_html(res, title, "power_curve.png" if "png" in formats else None),
                                 encoding="utf-8")
    return paths
