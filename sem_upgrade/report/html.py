"""A self-contained HTML page (CSS and SVG inline, opens offline) with APA three-line tables.

Renders only: tables from :mod:`.tables`, sentences from :mod:`.narrative`, figures from
:mod:`.plots` and :mod:`.diagram`. jinja2 autoescapes every user string.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from ..results import to_plain
from .diagram import path_diagram_svg
from .i18n import words
from .narrative import narrative
from .plots import CJK, cjk_font, plots
from .tables import Table, build_tables

__all__ = ["html_report", "html_table"]

_CSS = """
body{font-family:"Times New Roman","Noto Serif CJK SC","Noto Sans CJK SC","WenQuanYi Micro Hei","SimSun",
"Microsoft YaHei",serif;margin:2em auto;max-width:1100px;color:#111;line-height:1.45;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em}
.apa{margin:1.4em 0}.apa .num-title{font-weight:bold;margin:0}.apa .title{font-style:italic;margin:.1em 0 .4em}
table.three-line{border-collapse:collapse;border-top:2px solid #000;border-bottom:2px solid #000;font-size:.92em}
table.three-line th{border-bottom:1px solid #000;padding:.3em .7em;text-align:center;font-weight:normal}
table.three-line td{padding:.2em .7em;text-align:left;vertical-align:top}
table.three-line td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.nowrap{white-space:nowrap}.note{font-size:.88em;margin:.3em 0 0}.note em{font-style:italic}
.warn{color:#b00020}.simulated{background:#fff4ce;border:1px solid #e0b400;padding:.5em 1em}
figure{margin:1em 0;overflow-x:auto}figure svg{max-width:100%;height:auto}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="{{ html_lang }}"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{{ css }}</style></head>
<body>
<h1>{{ title }}</h1>
<p>{{ header }}</p>
{% if simulated %}<p class="simulated">{{ simulated }}</p>{% endif %}
{% if sentences %}<section id="results"><h2>{{ w('t_narrative') }}</h2>
{% for para in sentences %}<p>{{ para }}</p>
{% endfor %}</section>{% endif %}
{% for sec in sections %}<section id="{{ sec.id }}">
{% if sec.heading %}<h2>{{ sec.heading }}</h2>{% endif %}
{% if sec.table %}{{ sec.table }}{% endif %}
{% if sec.svg %}<figure>{{ sec.svg }}</figure>{% endif %}
{% if sec.note %}<p class="note">{{ sec.note }}</p>{% endif %}
</section>
{% endfor %}
{% if warnings %}<section id="warnings"><h2>{{ w('t_warnings') }}</h2><ul>
{% for x in warnings %}<li class="warn">{{ x }}</li>{% endfor %}</ul></section>{% endif %}
<p class="note">{{ footer }}</p>
</body></html>
"""


def html_table(t: Table, number: int, w) -> Markup:
    """One APA table: 'Table n', the italic title, three rules, and the note."""
    head = "".join(f"<th>{escape(h)}</th>" for h in t.header)
    body = []
    for row in t.rows:
        cells = []
        for c in row:
            text = escape(c.text)
            if c.bold:
                text = Markup(f"<strong>{text}</strong>")
            if c.fmt is not None:
                cells.append(f"<td class='num'>{text}</td>")
            elif "[" in c.text or c.text.startswith("p "):  # an interval or a p value stays on one line
                cells.append(f"<td class='nowrap'>{text}</td>")
            else:
                cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = (f"<p class='note'><em>{escape(w('note'))}</em> {escape(t.note)}</p>" if t.note else "")
    return Markup(f"<div class='apa' id='table-{escape(t.key)}'><p class='num-title'>{escape(w('table'))} {number}</p>"
                  f"<p class='title'>{escape(t.title)}</p><table class='three-line'><thead><tr>{head}</tr></thead>"
                  f"<tbody>{''.join(body)}</tbody></table>{note}</div>")


def html_report(res, lang: str = "en") -> str:
    """The report as one HTML page in ``lang``."""
    from jinja2 import Environment

    d = to_plain(res.data)
    w = words(lang)
    tables = build_tables(res, lang)
    figs = plots(res, lang)
    secs = []
    for n, t in enumerate(tables, start=1):
        secs.append({"id": t.key, "table": html_table(t, n, w)})
        if t.key == "convergent":
            no_font = cjk_font() is None and any(CJK.search(str(c.get("labels") or c.get("label")))
                                                 for c in d["questionnaire"]["constructs"].values())
            secs.append({"id": "loadings-plot", "heading": w("t_loadings_plot"), "svg": Markup(figs["loadings"]),
                         "note": w("n_no_cjk") if no_font else None})
        if t.key == "paths":
            secs.append({"id": "diagram", "heading": w("t_diagram"), "svg": Markup(path_diagram_svg(res, lang))})
        if t.key == "mediation" and "bootstrap" in figs:
            secs.append({"id": "bootstrap-plot", "svg": Markup(figs["bootstrap"])})
    if "residuals" in figs:
        secs.append({"id": "residuals", "heading": w("t_residual_plot"), "svg": Markup(figs["residuals"])})
    prov = d["provenance"]
    sentences = narrative(res, lang)
    joiner = "" if lang == "zh" else " "
    paras, stage = [], None
    for s in sentences:
        if s.stage != stage:
            paras.append([])
            stage = s.stage
        paras[-1].append(s.text)
    env = Environment(autoescape=True)
    q = d["questionnaire"]
    return env.from_string(_TEMPLATE).render(
        html_lang="zh-CN" if lang == "zh" else "en", title=q["title"] or q["name"], css=Markup(_CSS), w=w,
        header=w("header_line", data=prov["data"], q=prov["questionnaire"], read=d["n_rows_read"],
                 rej=d["n_rejected"], used=d["n_used"], missing=w(d["missing"]), lik=d["likelihood"]),
        simulated=w("simulated") if prov["data"] == "liaoning_2012_survey.csv" else "",
        sentences=[joiner.join(p) for p in paras], sections=secs, warnings=d.get("warnings") or [],
        footer=w("version", v=prov["versions"].get("sem_upgrade"),
                 c="; ".join(f"{w('conv_' + k)}: {v}" for k, v in prov["conventions"].items())))
