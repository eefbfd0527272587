"""The result of one run: one field per stage plus provenance, and its JSON form.

Nothing here computes statistics; it holds and serialises them. JSON is plain: numbers,
strings, lists, objects; NaN and infinities become ``null`` and, where a table row holds
them, a ``note`` says why.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SemUpgradeError

__all__ = ["Results", "to_plain"]


@dataclass
class Results:
    """Everything a run computed.

    Attributes hold plain dicts and pandas DataFrames; ``data`` holds the whole JSON
    document in schema order (see docs/results_schema.md).
    """

    data: dict = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    rejected: pd.DataFrame | None = None
    bootstrap: object = None  # BootstrapResult when a bootstrap ran (every draw)
    timing: dict = field(default_factory=dict)  # wall times; kept out of results.json

    def __getitem__(self, key):
        return self.data[key]

    def table(self, name: str) -> pd.DataFrame:
        """A result table as a DataFrame.

        ``loadings``, ``paths``, ``hypotheses``, ``indirect``, ``total_effects`` as the stages
        made them, and, built from the document: ``fit`` (model, index, value), ``reliability``
        (construct and its scalar figures: alpha, omega, cr, ave, ...), ``r2`` (construct, r2),
        ``htmt`` (lhs, rhs, htmt, htmt2). Any other name raises SemUpgradeError naming the tables.
        """
        tables = {**self.tables, **self._derived_tables()}
        if name not in tables:
            raise SemUpgradeError(f"no result table '{name}'; the tables of this run: {', '.join(tables)}")
        return tables[name]

    def _derived_tables(self) -> dict[str, pd.DataFrame]:
        d, out = self.data, {}
        if d.get("fit"):
            out["fit"] = pd.DataFrame([{"model": m, "index": k, "value": v} for m, block in d["fit"].items()
                                       for k, v in block.items() if k not in ("valid", "note", "robust_note")],
                                      columns=["model", "index", "value"])
        if d.get("reliability"):
            out["reliability"] = pd.DataFrame([{"construct": c, **{k: v for k, v in r.items()
                                                                   if not isinstance(v, (dict, list))}}
                                               for c, r in d["reliability"].items()])
        if d.get("r2") is not None:
            out["r2"] = pd.DataFrame(list(d["r2"].items()), columns=["construct", "r2"])
        if d.get("htmt"):
            names = list(d["htmt"])
            h, h2 = d["htmt"], d.get("htmt2") or {}
            out["htmt"] = pd.DataFrame([{"lhs": a, "rhs": b, "htmt": _pair(h, a, b), "htmt2": _pair(h2, a, b)}
                                        for i, a in enumerate(names) for b in names[i + 1:]],
                                       columns=["lhs", "rhs", "htmt", "htmt2"])
        return out

    def to_json(self, path: str | Path | None = None) -> str:
        """The results as JSON text (written to ``path`` when given)."""
        text = json.dumps(to_plain(self.data), ensure_ascii=False, indent=2, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text


def _pair(matrix: dict, a: str, b: str) -> float:
    """A symmetric figure stored in one triangle of a nested dict (the other holds NaN or None)."""
    for x, y in ((a, b), (b, a)):
        v = (matrix.get(x) or {}).get(y)
        if v is not None and np.isfinite(v):
            return float(v)
    return float("nan")


def to_plain(obj):
    """Convert numpy/pandas values to JSON-ready Python; NaN/inf -> None."""
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, pd.DataFrame):
        return [to_plain(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_plain(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)
