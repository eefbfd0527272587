"""Numbers and text as a paper prints them (APA 7), and text made safe for every output.

Nothing here computes a statistic: it turns a value from the results into the characters a
reader sees. APA 7 (section 6.36): no leading zero for a value that cannot exceed 1 (p, r, β,
CFI, RMSEA, α, CR, AVE); p to three decimals, ``< .001`` below that.
"""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = ["cite", "cutoff", "is_missing", "num", "apa", "p_apa", "stars", "ci", "clean", "fmt_number", "fmt_p", "DASH"]

DASH = "—"
# C0 and C1 control characters other than tab/newline, which no XML (xlsx, docx) may hold.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def is_missing(x) -> bool:
    if x is None:
        return True
    if isinstance(x, (float, np.floating)):
        return not math.isfinite(float(x))
    return False


def num(x, digits: int = 3) -> str:
    """A number with ``digits`` decimals and its leading zero (B, SE, C.R., χ²); whole numbers whole."""
    if is_missing(x):
        return DASH
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{digits}f}"  # '-0.000' keeps its sign: a bound just below zero reads as such


def apa(x, digits: int = 3) -> str:
    """A value bounded by 1 without its leading zero: ``.287``, ``-.091``."""
    text = num(x, digits)
    if text == DASH:
        return text
    return re.sub(r"^(-?)0\.", r"\1.", text)


def p_apa(p) -> str:
    """``< .001`` or ``.012`` (APA: three decimals, no leading zero)."""
    if is_missing(p):
        return DASH
    return "< .001" if p < 0.001 else apa(p, 3)


def stars(p) -> str:
    if is_missing(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def ci(lo, hi, digits: int = 3, bounded: bool = False) -> str:
    if is_missing(lo) or is_missing(hi):
        return DASH
    f = apa if bounded else num
    return f"[{f(lo, digits)}, {f(hi, digits)}]"


def clean(text) -> str:
    """User text with control characters removed (XML cannot hold them; a terminal may act on them)."""
    return _CONTROL.sub("", "" if text is None else str(text))


# the names earlier versions exported
fmt_number = num
fmt_p = p_apa


def cite(source) -> str:
    """A source as an APA in-text citation inside parentheses: 'Hu & Bentler (1999)' -> 'Hu & Bentler, 1999'."""
    return re.sub(r"\s*\((\d{4}[a-z]?)\)", r", \1", clean(source))


def cutoff(rule) -> str:
    """A cut-off such as '>= 0.95' as printed: '≥ .95'."""
    text = clean(rule).replace(">=", "≥").replace("<=", "≤")
    return re.sub(r"(?<![\d.])0\.(\d+)", lambda m: "." + m.group(1).ljust(2, "0"), text)
