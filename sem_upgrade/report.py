"""Reports: publication tables, Markdown, a self-contained HTML page, Excel and CSV, the path diagram.

Renders a :class:`~sem_upgrade.results.Results`; computes no statistic. Numbers are shown
as papers print them (three decimals, p < .001); in Excel they stay numbers with that
number format. Every user-supplied string is escaped in HTML and SVG.
"""

from __future__ import annotations

import html
import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["fmt_number", "fmt_p", "markdown_table", "hypothesis_markdown", "publication_tables",
           "markdown_report", "html_report", "write_excel", "write_csv", "path_diagram_svg", "write_reports",
           "FORMATS"]

FORMATS = ("html", "md", "xlsx")
_CJK = re.compile(r"[\u3000-\u9fff\uf900-\ufaff\uff00-\uffef]")
_CJK_FONTS = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC",
              "Source Han Sans SC", "SimHei", "Microsoft YaHei", "PingFang SC")


def fmt_number(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return f"{x:.{digits}f}"
    return str(x)


def fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "—"
    return "< .001" if p < 0.001 else f"{p:.3f}"


def _stars(p) -> str:
    if p is None or not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A GitHub-flavoured Markdown table; ``columns`` is [(key, header)]."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = []
    for r in rows:
        cells = [str(r.get(k) if isinstance(r.get(k), str) else fmt_number(r.get(k))).replace("|", "\\|")
                 for k, _ in columns]
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


# ---------------------------------------------------------------- tables
def publication_tables(res) -> dict[str, pd.DataFrame]:
    """Every table of the report as a DataFrame of numbers and text (nothing rounded).

    Keys: data_quality, rejected_rows, item_statistics, reliability, sampling_adequacy, efa,
    loadings, fornell_larcker, htmt, common_method, fit_indices, and with a structural model
    paths, r2, hypotheses, mediation; modification_indices.
    """
    d = res.data
    labels = {c: v["label"] for c, v in d["questionnaire"]["constructs"].items()}
    q = d["data_quality"]
    out = {"data_quality": pd.DataFrame([
        ("rows read", q["n_rows_read"]), ("rows rejected", q["n_rejected"]), ("valid rows", q["n_valid"]),
        ("complete rows", q["n_complete"]), ("rows used", q["n_used"]), ("missing-data policy", q["missing_policy"]),
        ("missing cells", q["missing_cells"]), ("straight-liners (flagged, kept)", q["straight_liners"]["count"]),
        ("reverse-keyed items recoded", ", ".join(q["reverse_recoded"]) or "none"),
    ] + [(f"rejected: {k}", v) for k, v in q["rejected_by_reason"].items()], columns=["measure", "value"])}
    out["rejected_rows"] = res.rejected.drop(columns=["kind"]) if res.rejected is not None else pd.DataFrame()
    items, rel = [], []
    for c, r in d["reliability"].items():
        for item, s in r["items"].items():
            items.append({"construct": c, "item": item, "mean": s["mean"], "sd": s["sd"], "citc": s["citc"],
                          "alpha_if_deleted": s["alpha_if_deleted"]})
        v = d["verdicts"]["reliability"][c]
        rel.append({"construct": c, "label": labels[c], "items": r["k"], "n": r["n"], "alpha": r["alpha"],
                    "std_alpha": r["std_alpha"], "omega": r.get("omega"), "cr": r.get("cr"), "ave": r.get("ave"),
                    "alpha_ok": v["alpha"], "cr_ok": v["cr"], "ave_ok": v["ave"],
                    "note": r.get("reason", "")})
    out["item_statistics"] = pd.DataFrame(items)
    out["reliability"] = pd.DataFrame(rel)
    if d.get("kmo"):
        out["sampling_adequacy"] = pd.DataFrame([
            {"measure": "KMO (overall)", "value": d["kmo"]["overall"], "threshold": ">= .60 (Kaiser 1974)",
             "verdict": "adequate" if d["kmo"]["overall"] >= 0.6 else "inadequate"},
            {"measure": f"Bartlett chi2 (df {d['bartlett']['df']})", "value": d["bartlett"]["chi2"],
             "threshold": "p < .05", "verdict": "p < .001" if d["bartlett"]["pvalue"] < 0.001 else fmt_p(d["bartlett"]["pvalue"])}])
        e = d["efa"]
        out["efa"] = pd.DataFrame(e["loadings"], index=[f"F{i + 1}" for i in range(e["n_factors"])]).T.rename_axis("item").reset_index()
    out["loadings"] = res.table("loadings")
    fl = pd.DataFrame(d["fornell_larcker"]["matrix"]).T.rename_axis("construct").reset_index()
    fl["criterion_met"] = fl["construct"].map(d["fornell_larcker"]["criterion_met"])
    out["fornell_larcker"] = fl
    out["htmt"] = pd.DataFrame(d["htmt"]).T.rename_axis("construct").reset_index()
    cm = d["common_method"]
    one = cm.get("one_factor_cfa", {})
    out["common_method"] = pd.DataFrame([
        {"check": "Harman: first unrotated factor's share of variance", "value": cm.get("harman_first_factor_share"),
         "threshold": "< .50 (Podsakoff et al. 2003)", "verdict": "bias flagged" if cm.get("flag") else "no dominant factor"},
        {"check": "one-factor CFA vs measurement model: chi2 difference", "value": one.get("chisq_diff"),
         "threshold": f"df {one.get('df_diff')}, p < .05",
         "verdict": "one factor fits worse" if one.get("one_factor_worse") else "one factor not rejected"}])
    rows = []
    verdicts = {m: {v["index"]: v for v in vs} for m, vs in d["fit_verdicts"].items()}
    for key in ["chisq", "df", "pvalue", "cmin_df", "cfi", "tli", "nfi", "rfi", "ifi", "pnfi", "pcfi", "rmsea",
                "rmsea_ci_lower", "rmsea_ci_upper", "rmsea_pvalue", "rmr", "srmr", "gfi", "agfi", "pgfi", "aic",
                "bic", "logl", "ecvi", "npar"]:
        row = {"index": key}
        for m in d["fit"]:
            row[m] = d["fit"][m][key]
            v = verdicts[m].get(key)
            row[f"{m}_verdict"] = v["verdict"] if v else ""
        any_v = next((verdicts[m][key] for m in d["fit"] if key in verdicts[m]), None)
        row["cutoff"] = any_v["cutoff"] if any_v else ""
        row["source"] = any_v["source"] if any_v else ""
        rows.append(row)
    out["fit_indices"] = pd.DataFrame(rows, dtype=object)  # object: df and npar stay whole numbers
    if "paths" in res.tables:
        out["paths"] = res.table("paths")
        out["r2"] = pd.DataFrame([{"construct": k, "label": labels.get(k, k), "r2": v} for k, v in d["r2"].items()])
        out["hypotheses"] = res.table("hypotheses")
        out["mediation"] = _mediation_table(res)
    mi = d["modification_indices"]
    out["modification_indices"] = pd.concat(
        [pd.DataFrame(mi[m]).assign(model=m) for m in ("measurement", "structural") if m in mi and len(mi[m])],
        ignore_index=True) if any(len(mi.get(m, [])) for m in ("measurement", "structural")) else pd.DataFrame()
    return out


def bootstrap_statement(d: dict) -> str | None:
    """One sentence on the bootstrap beside its intervals: resamples requested, fitted, failed and
    inadmissible, the seed, the interval that judges hypotheses, and whether it is unstable."""
    b = d.get("bootstrap")
    if not b:
        return d.get("bootstrap_skipped")
    text = (f"Bootstrap: {b['n_requested']} resamples requested, {b['n_ok']} fitted, {b['n_failed']} failed, "
            f"{b['n_inadmissible']} inadmissible (kept); seed {b['seed']}; {b['ci_level']:.0%} "
            f"{'percentile' if b['interval_for_hypotheses'] == 'percentile' else 'bias-corrected (BC)'} intervals "
            f"judge the indirect hypotheses (at least {b['minimum_resamples']} resamples; at most "
            f"{b['failure_threshold']:.0%} failed).")
    if b["unstable"]:
        text += (f" UNSTABLE: {b['n_failed']} of {b['n_requested']} resamples failed; the intervals are shown "
                 "but judge no hypothesis.")
    return text


def _mediation_table(res) -> pd.DataFrame:
    """Indirect effects (bootstrap and delta method) and total effects, one row each."""
    rows = []
    for r in res.data.get("indirect", []):
        rows.append({"effect": f"indirect ({r['name']})", "chain": " → ".join(r["chain"]), "estimate": r["estimate"],
                     "std_estimate": r["std_estimate"], "boot_se": r.get("boot_se"),
                     "perc_lower": r.get("perc_lower"), "perc_upper": r.get("perc_upper"),
                     "bc_lower": r.get("bc_lower"), "bc_upper": r.get("bc_upper"),
                     "delta_se": r["delta_se"], "delta_pvalue": r["delta_pvalue"],
                     "mediation_type": r.get("mediation_type"), "interval_note": r.get("interval_note")})
    for r in res.data.get("total_effects", []):
        rows.append({"effect": "total", "chain": " → ".join(r["chain"]), "estimate": r["estimate"],
                     "std_estimate": r["std_estimate"], "boot_se": r["boot_se"], "perc_lower": r["perc_lower"],
                     "perc_upper": r["perc_upper"], "bc_lower": r["bc_lower"], "bc_upper": r["bc_upper"],
                     "delta_se": None, "delta_pvalue": None})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- Markdown
def _df_markdown(df: pd.DataFrame, p_cols=("pvalue", "delta_pvalue")) -> str:
    if df is None or df.empty:
        return "_none_"
    rows = []
    for rec in df.to_dict(orient="records"):
        rows.append({k: (fmt_p(v) if k in p_cols else v if isinstance(v, str) else fmt_number(v)) for k, v in rec.items()})
    return markdown_table(rows, [(c, str(c)) for c in df.columns])


def markdown_report(res) -> str:
    """The report's tables in Markdown, for a README or a paper draft."""
    d = res.data
    t = publication_tables(res)
    title = d["questionnaire"]["title"] or d["questionnaire"]["name"]
    parts = [f"# {title}", "", f"Survey `{d['provenance']['data']}`, questionnaire `{d['provenance']['questionnaire']}`. "
             f"Rows read {d['n_rows_read']}, rejected {d['n_rejected']}, used {d['n_used']} ({d['missing']}).", ""]
    sections = [("Data quality", "data_quality"), ("Rejected rows", "rejected_rows"),
                ("Reliability and convergent validity", "reliability"), ("Item statistics", "item_statistics"),
                ("Sampling adequacy", "sampling_adequacy"), ("Exploratory factor analysis (oblimin)", "efa"),
                ("CFA loadings", "loadings"), ("Fornell-Larcker criterion (diagonal: sqrt AVE)", "fornell_larcker"),
                ("HTMT", "htmt"), ("Common-method bias", "common_method"), ("Fit indices", "fit_indices"),
                ("Structural paths", "paths"), ("R²", "r2"), ("Mediation (indirect and total effects)", "mediation"),
                ("Modification indices (largest)", "modification_indices")]
    for title, key in sections:
        if key not in t:
            continue
        parts += [f"## {title}", "", _df_markdown(t[key]), ""]
        if key == "efa":
            parts += [d["efa"]["statement"], ""]
        if key == "mediation" and bootstrap_statement(d):
            parts += [bootstrap_statement(d), ""]
        if key == "sampling_adequacy" and d["kmo"].get("sample"):
            parts += [f"Sample: {d['kmo']['sample']}.", ""]
    if "hypotheses" in res.tables:
        parts += ["## Hypotheses", "", hypothesis_markdown(res.table("hypotheses")), ""]
    if d["warnings"]:
        parts += ["## Warnings", ""] + [f"- {w}" for w in d["warnings"]] + [""]
    return "\n".join(parts)


# ---------------------------------------------------------------- Excel and CSV
def write_excel(res, path: str | Path) -> Path:
    """One sheet per table; numbers stay numbers, shown with 3 decimals and p < .001."""
    from openpyxl.utils import get_column_letter

    path = Path(path)
    tables = publication_tables(res)
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df in tables.items():
            df = df.copy()
            for c in df.columns:
                if df[c].dtype == object:
                    df[c] = df[c].map(lambda v: ", ".join(map(str, v)) if isinstance(v, list) else v)
            df.to_excel(xw, sheet_name=name[:31], index=False)
            ws = xw.sheets[name[:31]]
            for j, col in enumerate(df.columns, start=1):
                letter = get_column_letter(j)
                ws.column_dimensions[letter].width = max(10, min(40, len(str(col)) + 4))
                fmt = '[<0.001]"< .001";0.000' if "pvalue" in str(col) else "0.000"
                if pd.api.types.is_float_dtype(df[col]):
                    for cell in ws[letter][1:]:
                        cell.number_format = fmt
    return path


def write_csv(res, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in publication_tables(res).items():
        df.to_csv(folder / f"{name}.csv", index=False, encoding="utf-8")
    return folder


# ---------------------------------------------------------------- path diagram (SVG, no Graphviz)
def path_diagram_svg(res) -> str:
    """Constructs as ellipses, standardized coefficients with stars on the arrows, paths of
    unsupported hypotheses dashed. Layout: constructs in columns by causal depth."""
    d = res.data
    cons = d["questionnaire"]["constructs"]
    paths = res.tables.get("paths")
    if paths is None:
        return ""
    hyp = res.tables.get("hypotheses")
    unsupported = set()
    if hyp is not None:
        for _, h in hyp.iterrows():
            if h["kind"] == "path" and not h["supported"]:
                a, b = h["effect"].split(" -> ")
                unsupported.add((b, a))
    depth = {c: 0 for c in cons}
    for _ in range(len(cons)):
        for lhs, rhs in zip(paths["lhs"], paths["rhs"]):
            depth[lhs] = max(depth[lhs], depth[rhs] + 1)
    cols: dict[int, list[str]] = {}
    for c in cons:
        cols.setdefault(depth[c], []).append(c)
    w_col, h_row, rx, ry = 260, 120, 85, 34
    width = w_col * len(cols) + 40
    height = h_row * max(len(v) for v in cols.values()) + 60
    pos = {}
    for k, names in cols.items():
        for i, c in enumerate(names):
            pos[c] = (40 + rx + k * w_col, 50 + ry + i * h_row + (height - 60 - len(names) * h_row) / 2)
    r2 = d.get("r2", {})
    svg = ['<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/></marker></defs>']
    top, bottom = 0.0, float(height)
    edges = []
    for _, p in paths.iterrows():
        src, dst = pos[p["rhs"]], pos[p["lhs"]]
        others = [xy for c, xy in pos.items() if c not in (p["rhs"], p["lhs"])]
        ctrl = _clear_control_point(src, dst, others, rx, ry)
        (x1, y1), (x2, y2), (cx, cy) = src, dst, ctrl
        a1 = math.atan2(cy - y1, cx - x1)  # leave and enter each ellipse towards the control point
        a2 = math.atan2(y2 - cy, x2 - cx)
        sx, sy = x1 + rx * math.cos(a1), y1 + ry * math.sin(a1)
        ex, ey = x2 - rx * math.cos(a2), y2 - ry * math.sin(a2)
        dash = ' stroke-dasharray="7 5"' if (p["lhs"], p["rhs"]) in unsupported else ""
        label = f"{p['std_estimate']:.2f}{_stars(p['pvalue'])}"
        attrs = (f'fill="none" stroke="#333" stroke-width="1.6"{dash} marker-end="url(#arrow)" class="path" '
                 f'data-from="{html.escape(p["rhs"])}" data-to="{html.escape(p["lhs"])}"')
        if ctrl == ((x1 + x2) / 2, (y1 + y2) / 2):
            edges.append(f'<line x1="{sx:.1f}" y1="{sy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" {attrs}/>')
        else:  # a curve around the constructs the straight line would cross
            edges.append(f'<path d="M {sx:.1f} {sy:.1f} Q {cx:.1f} {cy:.1f} {ex:.1f} {ey:.1f}" {attrs}/>')
        mx, my = 0.25 * sx + 0.5 * cx + 0.25 * ex, 0.25 * sy + 0.5 * cy + 0.25 * ey - 6
        top = min(top, my - 14, 0.25 * sy + 0.5 * cy + 0.25 * ey)
        bottom = max(bottom, 0.25 * sy + 0.5 * cy + 0.25 * ey + 8)
        edges.append(f'<text x="{mx:.1f}" y="{my:.1f}" text-anchor="middle" font-size="13" fill="#0b3d91" '
                     f'paint-order="stroke" stroke="#fff" stroke-width="4">{html.escape(label)}</text>')
    svg += edges
    for c, (x, y) in pos.items():
        svg.append(f'<ellipse cx="{x:.1f}" cy="{y:.1f}" rx="{rx}" ry="{ry}" fill="#eef3fb" stroke="#0b3d91" stroke-width="1.5"/>')
        svg.append(f'<text x="{x:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="14" font-weight="bold">{html.escape(c)}</text>')
        sub = cons[c]["label"][:28]
        if c in r2:
            sub = f"R² = {r2[c]:.2f}"
        svg.append(f'<text x="{x:.1f}" y="{y + 14:.1f}" text-anchor="middle" font-size="11">{html.escape(sub)}</text>')
    bottom = max(bottom + 24, float(height))
    svg.append(f'<text x="10" y="{bottom - 10:.1f}" font-size="11" fill="#555">Standardized coefficients; * p &lt; .05, '
               '** p &lt; .01, *** p &lt; .001; dashed: hypothesis not supported.</text></svg>')
    top = math.floor(min(top, 0.0))
    h = math.ceil(bottom - top)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 {top} {width} {h}" width="{width}" height="{h}" '
            'role="img" aria-label="path diagram" class="path-diagram" font-family="sans-serif">')
    return "\n".join([head] + svg)


def _clear_control_point(src, dst, others, rx, ry):
    """Control point of the quadratic curve from ``src`` to ``dst`` that misses the ellipses at
    ``others``: the midpoint (a straight line) when nothing is in the way, else the midpoint
    pushed sideways, a little further each try, alternating sides (up first)."""
    (x1, y1), (x2, y2) = src, dst
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    nx, ny = -(y2 - y1) / length, (x2 - x1) / length  # unit normal
    if ny > 0:
        nx, ny = -nx, -ny  # the first side tried is upwards
    t = np.linspace(0.0, 1.0, 60)
    for k in range(13):
        off = 0.0 if k == 0 else (0.15 + 0.1 * ((k - 1) // 2)) * length * (1 if k % 2 else -1)
        cx, cy = mx + off * nx, my + off * ny
        px = (1 - t) ** 2 * x1 + 2 * (1 - t) * t * cx + t ** 2 * x2
        py = (1 - t) ** 2 * y1 + 2 * (1 - t) * t * cy + t ** 2 * y2
        if all(np.min(((px - ox) / (rx * 1.15)) ** 2 + ((py - oy) / (ry * 1.4)) ** 2) > 1 for ox, oy in others):
            return (mx, my) if k == 0 else (cx, cy)
    return mx, my


# ---------------------------------------------------------------- plots
def _cjk_font():
    """Name of an installed CJK-capable font, or None.

    matplotlib's font cache may predate a font installed later (e.g. fonts-wqy-microhei), so
    when the cache knows none, known CJK font files on the system are registered with it.
    """
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    found = next((n for n in _CJK_FONTS if n in names), None)
    if found:
        return found
    for path in font_manager.findSystemFonts():
        if re.search(r"wqy|NotoSansCJK|NotoSansSC|SourceHanSans", Path(path).name, re.I):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError):  # an unreadable font file: try the next one
                continue
    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((n for n in _CJK_FONTS if n in names), None)


def _plot_svg(draw) -> str:
    """Render ``draw(new_figure, cjk_ok)`` to an SVG string.

    Uses matplotlib Figure objects directly (no pyplot, no backend switch) and an rc
    context, so no global matplotlib state of the caller changes.
    """
    import matplotlib
    from matplotlib.figure import Figure

    font = _cjk_font()
    rc = {"svg.fonttype": "path", "font.size": 9,
          "font.family": ["sans-serif"], "font.sans-serif": ([font] if font else []) + ["DejaVu Sans"],
          "svg.hashsalt": "sem_upgrade", "axes.unicode_minus": False}
    with matplotlib.rc_context(rc):
        fig = draw(lambda **kw: Figure(**kw), font is not None)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _plots(res) -> dict[str, str]:
    d = res.data
    cons = d["questionnaire"]["constructs"]
    load = res.table("loadings")
    out = {}

    def label(c, cjk_ok):
        import textwrap

        lab = cons[c]["label"]
        if not cjk_ok and _CJK.search(lab):
            return c  # no CJK font: the construct name, never boxes
        width = 12 if _CJK.search(lab) else 24
        return c + "\n" + "\n".join(textwrap.wrap(lab, width)[:2])

    def loadings(new_figure, cjk_ok):
        n = len(cons)
        fig = new_figure(figsize=(2.3 * n, 2.8))
        axes = fig.subplots(1, n, sharey=True, squeeze=False)
        for ax, c in zip(axes[0], cons):
            sub = load[load["construct"] == c]
            ax.bar(sub["item"], sub["std_loading"], color="#4c78a8")
            ax.axhline(0.7, color="#c44", lw=0.8, ls="--")
            ax.set_title(label(c, cjk_ok), fontsize=8)
            ax.set_ylim(0, 1.05)
            ax.tick_params(axis="x", rotation=60)
        axes[0][0].set_ylabel("standardized loading (dashed: .70)")
        return fig
    out["loadings"] = _plot_svg(loadings)
    resid = d.get("residual_correlations")
    if resid:
        m = pd.DataFrame(resid["matrix"]).loc[resid["items"], resid["items"]]

        def heat(new_figure, cjk_ok):
            fig = new_figure(figsize=(6.5, 5.5))
            ax = fig.subplots()
            lim = max(0.1, float(np.nanmax(np.abs(m.to_numpy()))))
            im = ax.imshow(m.to_numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks(range(len(m)), m.columns, rotation=90, fontsize=6)
            ax.set_yticks(range(len(m)), m.index, fontsize=6)
            ax.set_title(f"residual correlations ({resid['model']} model)")
            fig.colorbar(im, ax=ax, shrink=0.8)
            return fig
        out["residuals"] = _plot_svg(heat)
    boot = getattr(res, "bootstrap", None)
    if boot is not None and res.tables.get("indirect") is not None and len(res.table("indirect")):
        ind = res.table("indirect")

        def hist(new_figure, cjk_ok):
            k = len(ind)
            fig = new_figure(figsize=(3.0 * k, 2.6))
            axes = fig.subplots(1, k, squeeze=False)
            for ax, (_, row) in zip(axes[0], ind.iterrows()):
                draws = boot.draws[f"indirect:{row['name']}"].dropna()
                ax.hist(draws, bins=40, color="#9ecae1", edgecolor="#4c78a8", lw=0.3)
                ax.axvline(row["perc_lower"], color="#c44", ls="--", lw=1)
                ax.axvline(row["perc_upper"], color="#c44", ls="--", lw=1)
                ax.axvline(0, color="#000", lw=0.8)
                ax.set_title(f"{row['name']}: {' → '.join(row['chain'])}", fontsize=8)
            return fig
        out["bootstrap"] = _plot_svg(hist)
    return out


# ---------------------------------------------------------------- HTML
_CSS = """
body{font-family:"Segoe UI","Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei",sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em;border-bottom:2px solid #0b3d91}h2{font-size:1.25em;margin-top:1.8em;color:#0b3d91}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}th,td{padding:.25em .6em;border-bottom:1px solid #ddd;
text-align:left}th{border-bottom:2px solid #444;background:#f5f7fb}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600}.good{color:#1b7f3b}.note{color:#555;font-size:.9em}
.simulated{background:#fff4ce;border:1px solid #e0b400;padding:.5em 1em;border-radius:4px}
figure{margin:1em 0;overflow-x:auto}figure svg{max-width:100%;height:auto}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{{ css }}</style></head>
<body>
<h1>{{ title }}</h1>
<p>Survey <code>{{ data_name }}</code>, questionnaire <code>{{ q_name }}</code>; rows read {{ d.n_rows_read }},
rejected {{ d.n_rejected }}, used {{ d.n_used }} (missing data: {{ d.missing }}; likelihood: {{ d.likelihood }}).</p>
{% if simulated %}<p class="simulated">The bundled survey is <strong>simulated</strong>: 218 firms drawn from the
questionnaire's stated population model, not the thesis' data.</p>{% endif %}
{% for w in d.warnings %}<p class="bad">Warning: {{ w }}</p>{% endfor %}
{% for sec in sections %}
<section id="{{ sec.id }}"><h2>{{ sec.title }}</h2>
{% if sec.text %}<p>{{ sec.text }}</p>{% endif %}
{% if sec.svg %}<figure>{{ sec.svg }}</figure>{% endif %}
{% if sec.table is not none %}{{ sec.table }}{% endif %}
{% if sec.note %}<p class="note">{{ sec.note }}</p>{% endif %}
</section>
{% endfor %}
<p class="note">sem_upgrade {{ version }}; conventions: {{ conventions }}.</p>
</body></html>
"""


def _html_table(df: pd.DataFrame, p_cols=("pvalue", "delta_pvalue"), verdict_cols=()) -> str:
    from markupsafe import Markup, escape

    if df is None or df.empty:
        return Markup("<p class='note'>none</p>")
    head = "".join(f"<th>{escape(str(c))}</th>" for c in df.columns)
    rows = []
    for rec in df.to_dict(orient="records"):
        cells = []
        for k, v in rec.items():
            if k in p_cols:
                cells.append(f"<td class='num'>{escape(fmt_p(v))}</td>")
            elif isinstance(v, (bool, np.bool_)) or k in verdict_cols:
                good = bool(v) if isinstance(v, (bool, np.bool_)) else None
                cls = "" if good is None else ("good" if good else "bad")
                cells.append(f"<td class='{cls}'>{escape(fmt_number(v) if not isinstance(v, str) else v)}</td>")
            elif isinstance(v, (int, float, np.integer, np.floating)):
                cells.append(f"<td class='num'>{escape(fmt_number(v))}</td>")
            else:
                text = ", ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else str(v))
                cells.append(f"<td>{escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def html_report(res) -> str:
    """One self-contained HTML page (CSS and SVG inline; opens offline)."""
    from jinja2 import Environment
    from markupsafe import Markup

    d = res.data
    t = publication_tables(res)
    plots = _plots(res)
    thr = d["verdicts"]["thresholds"]
    secs = [
        {"id": "data-quality", "title": "Data quality", "table": _html_table(t["data_quality"])},
        {"id": "rejected", "title": "Rejected rows", "table": _html_table(t["rejected_rows"]),
         "note": "Rows set aside at ingestion, with the line in the source file, the columns, raw values and reason."},
        {"id": "reliability", "title": "Reliability and convergent validity", "table": _html_table(t["reliability"]),
         "note": (f"Thresholds: alpha >= {thr['alpha']['value']} ({thr['alpha']['source']}); CR >= {thr['cr']['value']}, "
                  f"AVE >= {thr['ave']['value']} ({thr['cr']['source']}); CITC >= {thr['citc']['value']} "
                  f"({thr['citc']['source']}).")},
        {"id": "items", "title": "Item statistics", "table": _html_table(t["item_statistics"])},
    ]
    if "sampling_adequacy" in t:
        secs += [{"id": "kmo", "title": "KMO and Bartlett's test", "table": _html_table(t["sampling_adequacy"]),
                  "note": f"Sample: {d['kmo']['sample']}." if d["kmo"].get("sample") else None},
                 {"id": "efa", "title": f"Exploratory factor analysis ({d['efa']['n_factors']} factors by parallel "
                  "analysis, minres, oblimin)", "text": d["efa"]["statement"], "table": _html_table(t["efa"])}]
    secs += [
        {"id": "loadings", "title": "CFA: loadings", "table": _html_table(t["loadings"]), "svg": Markup(plots["loadings"]),
         "note": None if _cjk_font() or not any(_CJK.search(c["label"]) for c in d["questionnaire"]["constructs"].values())
         else "No CJK font is installed, so the plots name constructs by their short names instead of their Chinese "
              "labels (install one, e.g. apt-get install fonts-wqy-microhei)."},
        {"id": "fornell-larcker", "title": "Fornell-Larcker criterion", "table": _html_table(t["fornell_larcker"]),
         "note": "Diagonal: square root of AVE; off-diagonal: factor correlations. Met when the diagonal exceeds "
                 "every correlation in its row (Fornell & Larcker 1981)."},
        {"id": "htmt", "title": "HTMT", "table": _html_table(t["htmt"]),
         "note": f"Below {thr['htmt_strict']['value']} (strict) or {thr['htmt_liberal']['value']} (liberal): "
                 f"discriminant validity ({thr['htmt_strict']['source']})."},
        {"id": "common-method", "title": "Common-method bias", "table": _html_table(t["common_method"])},
        {"id": "fit", "title": "Fit indices", "table": _html_table(t["fit_indices"], p_cols=()),
         "note": "lavaan's names and conventions; cut-offs with their sources."},
    ]
    if "residuals" in plots:
        secs.append({"id": "residuals", "title": "Residual correlations", "svg": Markup(plots["residuals"])})
    if "paths" in t:
        secs += [
            {"id": "diagram", "title": "Path diagram", "svg": Markup(path_diagram_svg(res))},
            {"id": "paths", "title": "Structural paths (regression weights)", "table": _html_table(t["paths"])},
            {"id": "r2", "title": "Squared multiple correlations", "table": _html_table(t["r2"])},
            {"id": "hypotheses", "title": "Hypotheses", "table": _html_table(t["hypotheses"], verdict_cols=("supported",))},
            {"id": "mediation", "title": "Mediation: indirect and total effects", "table": _html_table(t["mediation"]),
             "note": bootstrap_statement(d), "svg": Markup(plots["bootstrap"]) if "bootstrap" in plots else None},
        ]
    secs.append({"id": "mi", "title": "Modification indices (largest)", "table": _html_table(t["modification_indices"])})
    for s in secs:
        s.setdefault("table", None)
    env = Environment(autoescape=True)
    prov = d["provenance"]
    return env.from_string(_TEMPLATE).render(
        title=d["questionnaire"]["title"] or d["questionnaire"]["name"], css=Markup(_CSS), d=d, sections=secs,
        data_name=prov["data"], q_name=prov["questionnaire"], version=prov["versions"].get("sem_upgrade"),
        conventions="; ".join(f"{k}: {v}" for k, v in prov["conventions"].items()),
        simulated=prov["data"] == "liaoning_2012_survey.csv")


def write_reports(res, outdir: str | Path, formats=FORMATS) -> list[Path]:
    """Write the chosen outputs (html, md, xlsx; xlsx also writes tables/*.csv) into ``outdir``."""
    outdir = Path(outdir)
    written = []
    if "md" in formats:
        p = outdir / "report.md"
        p.write_text(markdown_report(res), encoding="utf-8")
        written.append(p)
    if "html" in formats:
        p = outdir / "report.html"
        p.write_text(html_report(res), encoding="utf-8")
        written.append(p)
    if "xlsx" in formats:
        written.append(write_excel(res, outdir / "tables.xlsx"))
        written.append(write_csv(res, outdir / "tables"))
    return written
