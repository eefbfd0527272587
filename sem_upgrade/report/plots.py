"""Figures of the report (loadings, residual correlations, bootstrap distributions) as SVG.

matplotlib Figure objects are used directly (no pyplot, no backend switch) inside an rc
context, so no global matplotlib state of the caller changes. ``text.parse_math`` is off:
every label is plain text, so ``$...$`` in a user's label is printed, not parsed as mathtext.
"""

from __future__ import annotations

import io
import re
import textwrap
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ..results import to_plain
from .i18n import words
from .tables import construct_label

__all__ = ["cjk_font", "figure_context", "plots", "CJK"]

CJK = re.compile(r"[\u3000-\u9fff\uf900-\ufaff\uff00-\uffef]")
_CJK_FONTS = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC",
              "Source Han Sans SC", "SimHei", "Microsoft YaHei", "PingFang SC")


def cjk_font():
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


@contextmanager
def figure_context(cjk: bool = True):
    """Yield ``(new_figure, cjk_ok)`` under the report's rc settings (plain-text labels; a CJK font
    only when ``cjk``: embedding one in a PDF takes seconds)."""
    import matplotlib
    from matplotlib.figure import Figure

    font = cjk_font() if cjk else None
    rc = {"svg.fonttype": "path", "font.size": 9, "text.parse_math": False, "pdf.fonttype": 3,
          "font.family": ["sans-serif"], "font.sans-serif": ([font] if font else []) + ["DejaVu Sans"],
          "svg.hashsalt": "sem_upgrade", "axes.unicode_minus": False}
    with matplotlib.rc_context(rc):
        yield (lambda **kw: Figure(**kw)), font is not None


def _svg(draw, cjk: bool = True) -> str:
    with figure_context(cjk) as (new_figure, cjk_ok):
        fig = draw(new_figure, cjk_ok)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def plots(res, lang: str = "en") -> dict[str, str]:
    """SVG text of each figure: ``loadings``, ``residuals`` and, after a bootstrap, ``bootstrap``."""
    d = to_plain(res.data)
    cons = list(d["questionnaire"]["constructs"])
    load = pd.DataFrame(d["loadings"])
    w = words(lang)
    out = {}
    # a CJK font only when some text needs it (construct names, items, labels): embedding one is slow
    cjk = lang == "zh" or bool(CJK.search(" ".join(
        [c + " " + construct_label(d, c, lang) for c in cons] + [str(i) for i in load["item"]])))

    def label(c, cjk_ok):
        lab = construct_label(d, c, lang)
        if not cjk_ok and CJK.search(lab):
            return c  # no CJK font: the construct's short name, never boxes
        return c + "\n" + "\n".join(textwrap.wrap(lab, 12 if CJK.search(lab) else 24)[:2])

    def loadings(new_figure, cjk_ok):
        fig = new_figure(figsize=(2.3 * len(cons), 2.8))
        axes = fig.subplots(1, len(cons), sharey=True, squeeze=False)
        for ax, c in zip(axes[0], cons):
            sub = load[load["construct"] == c]
            ax.bar(sub["item"].astype(str), sub["std_loading"].astype(float), color="#4c78a8")
            ax.axhline(0.7, color="#c44", lw=0.8, ls="--")
            ax.set_title(label(c, cjk_ok), fontsize=8)
            ax.set_ylim(0, 1.05)
            ax.tick_params(axis="x", rotation=60)
        axes[0][0].set_ylabel(w("std_loading") + " (--- .70)" if cjk_ok or lang == "en" else "std. loading (--- .70)")
        return fig
    out["loadings"] = _svg(loadings, cjk)
    resid = d.get("residual_correlations")
    if resid:
        m = pd.DataFrame(resid["matrix"]).loc[resid["items"], resid["items"]]

        def heat(new_figure, cjk_ok):
            fig = new_figure(figsize=(6.5, 5.5))
            ax = fig.subplots()
            arr = m.to_numpy(float)
            lim = max(0.1, float(np.nanmax(np.abs(arr))))
            im = ax.imshow(arr, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks(range(len(m)), [str(c) for c in m.columns], rotation=90, fontsize=6)
            ax.set_yticks(range(len(m)), [str(c) for c in m.index], fontsize=6)
            fig.colorbar(im, ax=ax, shrink=0.8)
            return fig
        out["residuals"] = _svg(heat, cjk)
    boot = getattr(res, "bootstrap", None)
    ind = d.get("indirect") or []
    if boot is not None and ind:
        def hist(new_figure, cjk_ok):
            fig = new_figure(figsize=(3.0 * len(ind), 2.6))
            axes = fig.subplots(1, len(ind), squeeze=False)
            for ax, row in zip(axes[0], ind):
                draws = boot.draws[f"indirect:{row['name']}"].dropna()
                ax.hist(draws, bins=40, color="#9ecae1", edgecolor="#4c78a8", lw=0.3)
                for bound in ("perc_lower", "perc_upper"):
                    if row.get(bound) is not None and np.isfinite(row[bound]):
                        ax.axvline(row[bound], color="#c44", ls="--", lw=1)
                ax.axvline(0, color="#000", lw=0.8)
                ax.set_title(f"{row['name']}: {' → '.join(row['chain'])}", fontsize=8)
            return fig
        out["bootstrap"] = _svg(hist, cjk)
    return out
