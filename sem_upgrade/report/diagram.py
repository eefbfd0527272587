"""The path diagram: SVG for the HTML page, and 300-dpi PNG and PDF (matplotlib) for print and Word.

Layout (one function, both renderers): constructs in columns by causal order (longest chain
of paths leading to each), ordered within a column by the mean row of their predictors
(the barycentre heuristic of Sugiyama et al. 1981) to limit crossings; arrows bend around
constructs they would cross; coefficient labels are moved along their arrow until they
overlap no other label and no construct. Paths of unsupported hypotheses are dashed;
paths neither hypothesised nor significant at the run's α are thin and grey.
"""

from __future__ import annotations

import html
import math
import textwrap

import numpy as np

from ..results import to_plain
from .fmt import apa, clean, stars
from .i18n import words
from .tables import construct_label

__all__ = ["layout", "path_diagram_svg", "write_diagram"]

_RX, _RY, _W_COL, _H_ROW = 85.0, 38.0, 270.0, 125.0


def layout(res, lang: str = "en") -> dict | None:
    """Positions (SVG units, y down) of constructs, arrows and labels; None without a structural model."""
    d = to_plain(res.data)
    paths = d.get("paths")
    if not paths:
        return None
    cons = list(d["questionnaire"]["constructs"])
    alpha = d["provenance"]["options"].get("alpha", 0.05)
    depth = {c: 0 for c in cons}
    for _ in range(len(cons)):
        for p in paths:
            depth[p["lhs"]] = max(depth[p["lhs"]], depth[p["rhs"]] + 1)
    cols: dict[int, list[str]] = {}
    for c in cons:
        cols.setdefault(depth[c], []).append(c)
    row: dict[str, float] = {}
    for k in sorted(cols):
        names = cols[k]
        if k > 0:  # barycentre of the predictors already placed
            bary = {c: np.mean([row[p["rhs"]] for p in paths if p["lhs"] == c and p["rhs"] in row] or [0.0])
                    for c in names}
            names = sorted(names, key=lambda c: (bary[c], cons.index(c)))
            cols[k] = names
        for i, c in enumerate(names):
            row[c] = i - (len(names) - 1) / 2
    n_rows = max(len(v) for v in cols.values())
    height = _H_ROW * n_rows + 60
    pos = {c: (40 + _RX + depth[c] * _W_COL, 30 + height / 2 + row[c] * _H_ROW) for c in cons}
    width = _W_COL * len(cols) + 40
    hyp = {}
    for h in d.get("hypotheses") or []:
        if h["kind"] == "path":
            a, b = h["effect"].split(" -> ")
            hyp[(a, b)] = bool(h["supported"])
    edges, boxes = [], [(x - _RX, y - _RY, x + _RX, y + _RY) for x, y in pos.values()]
    for p in paths:
        a, b = p["rhs"], p["lhs"]
        src, dst = pos[a], pos[b]
        others = [xy for c, xy in pos.items() if c not in (a, b)]
        ctrl = _clear_control_point(src, dst, others)
        (x1, y1), (x2, y2), (cx, cy) = src, dst, ctrl
        a1, a2 = math.atan2(cy - y1, cx - x1), math.atan2(y2 - cy, x2 - cx)
        start = (x1 + _RX * math.cos(a1), y1 + _RY * math.sin(a1))
        end = (x2 - _RX * math.cos(a2), y2 - _RY * math.sin(a2))
        significant = p["pvalue"] is not None and p["pvalue"] < alpha
        style = ("dashed" if (a, b) in hyp and not hyp[(a, b)] else
                 "solid" if (a, b) in hyp or significant else "grey")
        label = f"{apa(p['std_estimate'], 2)}{stars(p['pvalue'])}"
        lx, ly = _place_label(start, ctrl, end, label, boxes)
        edges.append({"from": a, "to": b, "start": start, "ctrl": ctrl, "end": end,
                      "straight": ctrl == ((x1 + x2) / 2, (y1 + y2) / 2), "style": style, "label": label,
                      "label_xy": (lx, ly)})
    r2 = d.get("r2") or {}
    nodes = {}
    for c in cons:
        lab = construct_label(d, c, lang)
        cjk = any("\u3000" <= ch <= "\u9fff" for ch in lab)
        lines = textwrap.wrap(lab, 9 if cjk else 20) or [c]
        if len(lines) > 3:
            lines = lines[:2] + [lines[2][:-1] + "…"]
        sub = f"R² = {apa(r2[c], 2)}" if c in r2 else ""
        nodes[c] = {"xy": pos[c], "lines": lines, "code": c, "r2": sub}
    t = np.linspace(0, 1, 41)
    ys = [_bezier(e["start"], e["ctrl"], e["end"], t)[1] for e in edges]
    top = min([0.0] + [e["label_xy"][1] - 16 for e in edges] + [float(y.min()) - 6 for y in ys])
    bottom = max([float(height)] + [e["label_xy"][1] + 8 for e in edges] + [float(y.max()) + 6 for y in ys]) + 30
    return {"nodes": nodes, "edges": edges, "width": width, "top": math.floor(top), "bottom": math.ceil(bottom),
            "note": words(lang)("diagram_note")}


def _bezier(start, ctrl, end, t):
    t = np.asarray(t)
    return ((1 - t) ** 2 * start[0] + 2 * (1 - t) * t * ctrl[0] + t ** 2 * end[0],
            (1 - t) ** 2 * start[1] + 2 * (1 - t) * t * ctrl[1] + t ** 2 * end[1])


def _place_label(start, ctrl, end, label, boxes):
    """The first point along the arrow (from the middle outwards) whose label box hits no box."""
    w, h = 8.0 * len(label) + 6, 18.0
    for t in (0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78, 0.45, 0.55, 0.35, 0.65):
        x, y = (float(v) for v in _bezier(start, ctrl, end, t))
        y -= 8
        box = (x - w / 2, y - h + 4, x + w / 2, y + 4)
        if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes):
            boxes.append(box)
            return x, y
    x, y = (float(v) for v in _bezier(start, ctrl, end, 0.5))
    boxes.append((x - w / 2, y - h - 4, x + w / 2, y - 4))
    return x, y - 8


def _clear_control_point(src, dst, others):
    """Control point of a quadratic curve from ``src`` to ``dst`` that misses the ellipses at ``others``:
    the midpoint (a straight line) when nothing is in the way, else the midpoint pushed sideways,
    a little further each try, alternating sides (up first)."""
    (x1, y1), (x2, y2) = src, dst
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    nx, ny = -(y2 - y1) / length, (x2 - x1) / length
    if ny > 0:
        nx, ny = -nx, -ny
    t = np.linspace(0.0, 1.0, 60)
    for k in range(13):
        off = 0.0 if k == 0 else (0.15 + 0.1 * ((k - 1) // 2)) * length * (1 if k % 2 else -1)
        cx, cy = mx + off * nx, my + off * ny
        px, py = _bezier((x1, y1), (cx, cy), (x2, y2), t)
        if all(np.min(((px - ox) / (_RX * 1.15)) ** 2 + ((py - oy) / (_RY * 1.4)) ** 2) > 1 for ox, oy in others):
            return (mx, my) if k == 0 else (cx, cy)
    return mx, my


_STROKE = {"solid": ("#333", 1.6, ""), "dashed": ("#333", 1.6, ' stroke-dasharray="7 5"'),
           "grey": ("#aaa", 0.8, "")}


def path_diagram_svg(res, lang: str = "en") -> str:
    """The diagram as inline SVG; every user string escaped."""
    lay = layout(res, lang)
    if lay is None:
        return ""
    e = html.escape
    svg = ['<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="context-stroke"/></marker></defs>']
    labels = []
    for ed in lay["edges"]:
        colour, width, dash = _STROKE[ed["style"]]
        attrs = (f'fill="none" stroke="{colour}" stroke-width="{width}"{dash} marker-end="url(#arrow)" class="path" '
                 f'data-style="{ed["style"]}" data-from="{e(ed["from"])}" data-to="{e(ed["to"])}"')
        (sx, sy), (cx, cy), (ex, ey) = ed["start"], ed["ctrl"], ed["end"]
        if ed["straight"]:
            svg.append(f'<line x1="{sx:.1f}" y1="{sy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" {attrs}/>')
        else:
            svg.append(f'<path d="M {sx:.1f} {sy:.1f} Q {cx:.1f} {cy:.1f} {ex:.1f} {ey:.1f}" {attrs}/>')
        lx, ly = ed["label_xy"]
        labels.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle" font-size="13" class="coef" '
                      f'fill="{"#0b3d91" if ed["style"] != "grey" else "#888"}" paint-order="stroke" stroke="#fff" '
                      f'stroke-width="4">{e(ed["label"])}</text>')
    for c, n in lay["nodes"].items():
        x, y = n["xy"]
        svg.append(f'<ellipse cx="{x:.1f}" cy="{y:.1f}" rx="{_RX:g}" ry="{_RY:g}" fill="#eef3fb" stroke="#0b3d91" '
                   f'stroke-width="1.5"/>')
        y0 = y - 5.5 * (len(n["lines"]) + bool(n["r2"]))  # the block of lines centred in the ellipse
        svg.append(f'<text x="{x:.1f}" y="{y0 - 2:.1f}" text-anchor="middle" font-size="13" font-weight="bold">'
                   f'{e(clean(c))}</text>')
        for k, line in enumerate(n["lines"]):
            svg.append(f'<text x="{x:.1f}" y="{y0 + 11 + 11 * k:.1f}" text-anchor="middle" font-size="10.5">'
                       f'{e(line)}</text>')
        if n["r2"]:
            svg.append(f'<text x="{x:.1f}" y="{y0 + 11 + 11 * len(n["lines"]):.1f}" text-anchor="middle" '
                       f'font-size="10" fill="#555">{e(n["r2"])}</text>')
    svg += labels  # on top of arrows and ellipses
    top, bottom, width = lay["top"], lay["bottom"], lay["width"]
    svg.append(f'<text x="10" y="{bottom - 8}" font-size="11" fill="#555">{e(lay["note"])}</text></svg>')
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 {top} {width} {bottom - top}" width="{width}" '
            f'height="{bottom - top}" role="img" aria-label="path diagram" class="path-diagram" font-family="sans-serif">')
    return "\n".join([head] + svg)


def write_diagram(res, folder, lang: str = "en") -> list:
    """``path_diagram.png`` (300 dpi) and ``path_diagram.pdf`` in ``folder``; [] without a structural model."""
    from pathlib import Path

    from matplotlib.patches import Ellipse, FancyArrowPatch
    from matplotlib.path import Path as MPath

    from .plots import figure_context

    lay = layout(res, lang)
    if lay is None:
        return []
    top, bottom, width = lay["top"], lay["bottom"], lay["width"]
    written = []
    cjk = any(any("\u3000" <= ch <= "\u9fff" for ch in n["code"] + "".join(n["lines"]) + lay["note"]) for n in lay["nodes"].values())
    with figure_context(cjk) as (new_figure, cjk_ok):
        fig = new_figure(figsize=(width / 100, (bottom - top) / 100))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(bottom, top)
        ax.axis("off")
        for ed in lay["edges"]:
            colour, lw, dash = _STROKE[ed["style"]]
            path = MPath([ed["start"], ed["ctrl"], ed["end"]], [MPath.MOVETO, MPath.CURVE3, MPath.CURVE3])
            ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=12, color=colour, lw=lw,
                                         linestyle="--" if dash else "-"))
        for c, n in lay["nodes"].items():
            x, y = n["xy"]
            ax.add_patch(Ellipse((x, y), 2 * _RX, 2 * _RY, facecolor="#eef3fb", edgecolor="#0b3d91", lw=1.2))
            lines = n["lines"] if cjk_ok or not any("\u3000" <= ch <= "\u9fff" for ch in "".join(n["lines"])) else []
            y0 = y - 5.5 * (len(lines) + bool(n["r2"]))
            ax.text(x, y0 - 6, c, ha="center", va="center", fontsize=9.5, fontweight="bold", parse_math=False)
            for k, line in enumerate(lines):
                ax.text(x, y0 + 7 + 11 * k, line, ha="center", va="center", fontsize=7.2, parse_math=False)
            if n["r2"]:
                ax.text(x, y0 + 7 + 11 * len(lines), n["r2"], ha="center", va="center", fontsize=6.8, color="#555",
                        parse_math=False)
        for ed in lay["edges"]:
            lx, ly = ed["label_xy"]
            ax.text(lx, ly - 4, ed["label"], ha="center", va="center", fontsize=9, parse_math=False,
                    color="#0b3d91" if ed["style"] != "grey" else "#888",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
        note = lay["note"] if cjk_ok or lang != "zh" else words("en")("diagram_note")
        ax.text(10, bottom - 10, note, fontsize=7, color="#555", parse_math=False)
        for ext in ("png", "pdf"):
            out = Path(folder) / f"path_diagram.{ext}"
            fig.savefig(out, dpi=300, metadata={"Software": None} if ext == "png" else
                        {"Creator": None, "Producer": None, "CreationDate": None})
            written.append(out)
    return written
