"""The parameter table: the one description of a model that every part of the engine reads.

One row per model matrix entry, as lavaan's ``parTable()`` (see docs/parameter_table.md):
``lhs, op, rhs`` (``=~`` loading, ``~`` regression, ``~~`` (co)variance), ``group``, ``free``
(estimated or fixed), ``index`` (the free parameter the entry holds; entries with the same
``label`` share one index, which is how equality constraints are expressed), ``value`` (the
fixed value, or the start of a free entry), ``start``, ``label``, ``plabel`` and the LISREL
location ``matrix, row, col`` with ``matrix`` a :class:`MatrixId`.

semopy parses the syntax and supplies starting values; everything the engine needs is copied
here, so nothing downstream reads semopy objects.

The matrices are those of the LISREL all-y model (Joreskog & Sorbom; lavaan's "LISREL"
representation):

    Sigma = Lambda (I - B)^-1 Psi (I - B)^-T Lambda' + Theta
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import pandas as pd

from .syntax import parse_model

__all__ = ["MatrixId", "ModelStructure", "build_structure", "syntax_order", "TABLE_COLUMNS"]


class MatrixId(IntEnum):
    """The model matrices, in semopy's order (``Model.matrices[:4]``)."""

    BETA = 0  # regressions among the inner (latent and structural observed) variables
    LAMBDA = 1  # loadings: observed x inner
    PSI = 2  # (residual) covariances of the inner variables
    THETA = 3  # residual covariances of the observed variables


SYMMETRIC = (MatrixId.PSI, MatrixId.THETA)

TABLE_COLUMNS = ["id", "lhs", "op", "rhs", "group", "free", "index", "value", "start", "label", "plabel",
                 "exo", "matrix", "row", "col"]

@dataclass
class ModelStructure:
    """A model: its parameter table and the matrix layout derived from it.

    ``table`` is the parameter table (columns ``TABLE_COLUMNS``, documented in
    docs/parameter_table.md); ``base`` and the ``loc_*`` arrays are read off it by
    :meth:`from_table`, and are what the matrix algebra uses: ``base`` holds the fixed
    entries, and free entry ``j`` puts parameter ``loc_param[j]`` at
    ``(loc_matrix[j], loc_row[j], loc_col[j])`` (and its mirror in a symmetric matrix).
    ``start`` holds one starting value per free parameter.
    """

    syntax: str
    observed: list[str]
    inner: list[str]
    latent: list[str]
    base: list[np.ndarray]  # B, Lambda, Psi, Theta with fixed values filled in (index: MatrixId)
    loc_matrix: np.ndarray  # per free entry: its MatrixId
    loc_row: np.ndarray
    loc_col: np.ndarray
    loc_param: np.ndarray  # parameter index of each free entry
    table: pd.DataFrame  # the parameter table
    start: np.ndarray

    @classmethod
    def from_table(cls, syntax: str, observed: list[str], inner: list[str], latent: list[str],
                   table: pd.DataFrame) -> ModelStructure:
        """Derive the matrix layout from a parameter table.

        Observed variables that take part in the structural part (they are inner variables
        too) carry a fixed unit loading on their own inner variable, as in semopy's and
        lavaan's LISREL representation; no table row describes it.
        """
        p, m = len(observed), len(inner)
        shapes = {MatrixId.BETA: (m, m), MatrixId.LAMBDA: (p, m), MatrixId.PSI: (m, m), MatrixId.THETA: (p, p)}
        base = [np.zeros(shapes[mid]) for mid in MatrixId]
        for v in observed:
            if v in inner:
                base[MatrixId.LAMBDA][observed.index(v), inner.index(v)] = 1.0
        fixed = table[~table["free"]]
        for mid, r, c, value in zip(fixed["matrix"], fixed["row"], fixed["col"], fixed["value"]):
            base[mid][r, c] = value
            if mid in SYMMETRIC:
                base[mid][c, r] = value
        free = table[table["free"]]
        n_free = int(free["index"].max()) + 1 if len(free) else 0
        start = np.zeros(n_free)
        start[free["index"].to_numpy(int)] = free["start"].to_numpy(float)
        return cls(syntax=syntax, observed=list(observed), inner=list(inner), latent=list(latent), base=base,
                   loc_matrix=free["matrix"].to_numpy(int), loc_row=free["row"].to_numpy(int),
                   loc_col=free["col"].to_numpy(int), loc_param=free["index"].to_numpy(int),
                   table=table, start=start)

    @functools.cached_property
    def free_locations(self) -> list[tuple[MatrixId, np.ndarray, np.ndarray, np.ndarray]]:
        """(matrix, rows, cols, parameter indices) of the free entries, one tuple per matrix."""
        out = []
        for mid in MatrixId:
            sel = self.loc_matrix == mid
            if sel.any():
                out.append((mid, self.loc_row[sel], self.loc_col[sel], self.loc_param[sel]))
        return out

    @property
    def n_free(self) -> int:
        return len(self.start)

    @property
    def fixed_x(self) -> list[int]:
        """Positions in ``observed`` of the exogenous covariates (lavaan's fixed.x)."""
        exo = self.table[self.table["exo"] == 1]
        names = set(exo["lhs"]) | set(exo["rhs"])
        return [i for i, v in enumerate(self.observed) if v in names]

    @property
    def constraints(self) -> list[tuple[int, int]]:
        """Equality constraints as pairs of table row ids that share one free parameter
        (lavaan's ``==`` rows of equal labels, solved by sharing the parameter)."""
        free = self.table[self.table["free"]]
        out = []
        for _, ids in free.groupby("index")["id"]:
            ids = list(ids)
            out += [(ids[0], i) for i in ids[1:]]
        return out

    def matrices(self, theta: np.ndarray) -> list[np.ndarray]:
        mats = [m.copy() for m in self.base]
        for mid in MatrixId:
            sel = self.loc_matrix == mid
            if sel.any():
                r, c, k = self.loc_row[sel], self.loc_col[sel], self.loc_param[sel]
                mats[mid][r, c] = theta[k]
                if mid in SYMMETRIC:
                    mats[mid][c, r] = theta[k]
        return mats


def build_structure(syntax: str, data: pd.DataFrame) -> ModelStructure:
    """Parse ``syntax`` with semopy and build the parameter table (see :class:`ModelStructure`).

    ``data`` (may hold NaN) only serves semopy's starting values. One table row per matrix
    entry; the entries of a labelled parameter share its index (equality constraint).
    """
    model = parse_model(syntax, data)
    obs = list(model.vars["observed"])
    inner = list(model.vars["inner"])
    latent = [v for v in inner if v in model.vars["latent"]]
    mats = model.matrices[:4]
    names = model.names[:4]
    rows = []
    k = 0
    for pname, prm in model.parameters.items():
        for loc in prm.locations:
            mid = MatrixId(next(i for i in MatrixId if mats[i] is loc.matrix))
            r, c = loc.indices
            rows.append(_table_row(mid, r, c, names, prm.active, k if prm.active else -1, float(prm.start),
                                   "" if pname.startswith("_") else pname))
        if prm.active:
            k += 1
    table = pd.DataFrame(rows, columns=[c for c in TABLE_COLUMNS if c not in ("id", "plabel")])
    table.insert(0, "id", np.arange(1, len(table) + 1))
    table.insert(TABLE_COLUMNS.index("plabel"), "plabel", [f".p{i}." for i in table["id"]])
    table = _canonical_order(_lavaan_order(_higher_order_loadings(table, syntax), syntax), syntax)
    _mark_fixed_x(table, obs, inner)
    return ModelStructure.from_table(syntax, obs, inner, latent, table)


def _mark_fixed_x(table: pd.DataFrame, observed: list[str], inner: list[str]) -> None:
    """Mark the (co)variances of observed exogenous covariates (``exo = 1``), lavaan's fixed.x.

    An observed variable that predicts (``y ~ x``) and is neither predicted nor an indicator is an
    exogenous covariate. lavaan's ``sem()`` (``fixed.x = TRUE``) conditions on such covariates:
    their variances and covariances are fixed to the sample values, not counted as parameters,
    and their moments are left out of the degrees of freedom and the baseline model. semopy fixes
    the same entries; ``exo`` records which they are.
    """
    xs = exogenous_covariates(table, observed, inner)
    sel = (table["op"] == "~~") & table["lhs"].isin(xs) & table["rhs"].isin(xs) & ~table["free"]
    table.loc[sel, "exo"] = 1


def exogenous_covariates(table: pd.DataFrame, observed: list[str], inner: list[str]) -> list[str]:
    """Observed variables that only predict: the covariates lavaan's fixed.x conditions on."""
    reg = table[table["op"] == "~"]
    indicators = set(table.loc[table["op"] == "=~", "rhs"])
    return [v for v in observed if v in inner and v in set(reg["rhs"])
            and v not in set(reg["lhs"]) and v not in indicators]


def _higher_order_loadings(table: pd.DataFrame, syntax: str) -> pd.DataFrame:
    """Write a second-order loading (``g =~ visual``) as lavaan does.

    semopy keeps a factor measured by factors in the Beta matrix, as the regression
    ``visual ~ g``; the row is the same parameter, written with lavaan's ``=~`` so that it is a
    loading in every table (the matrix position is unchanged).
    """
    measured = set()
    for line in syntax.splitlines():
        if "=~" in line:
            factor, rhs = line.split("=~", 1)
            measured |= {(factor.strip(), term.split("*")[-1].strip()) for term in rhs.split("+")}
    pairs = np.array([(r, lhs) in measured for lhs, r in zip(table["lhs"], table["rhs"])], dtype=bool)
    sel = (table["matrix"] == int(MatrixId.BETA)).to_numpy() & pairs
    if sel.any():
        table.loc[sel, ["lhs", "rhs"]] = table.loc[sel, ["rhs", "lhs"]].to_numpy()
        table.loc[sel, "op"] = "=~"
    return table


def _canonical_order(table: pd.DataFrame, syntax: str) -> pd.DataFrame:
    """Rows and free-parameter numbers in an order fixed by the model, not by the process.

    semopy gathers parameters through hash-ordered sets, so the order of its parameters, and the
    last bits of its starting values, change with Python's hash seed; the arithmetic would then
    differ in the last bits from one process to another. Rows are sorted by operator (=~, ~, ~~),
    then by the syntax order of lhs and rhs; free parameters are numbered by first appearance; and
    starting values are rounded to 1e-8 (they only start the optimiser).
    """
    order = syntax_order(syntax)
    sym = table["matrix"].isin([int(m) for m in SYMMETRIC]).to_numpy()
    r, c = table["row"].to_numpy(int), table["col"].to_numpy(int)
    table["row"], table["col"] = np.where(sym, np.maximum(r, c), r), np.where(sym, np.minimum(r, c), c)
    ops = {"=~": 0, "~": 1, "~~": 2}
    key = pd.DataFrame({"op": table["op"].map(ops), "lhs": table["lhs"].map(order), "rhs": table["rhs"].map(order),
                        "matrix": table["matrix"], "row": table["row"], "col": table["col"]})
    table = table.loc[key.sort_values(list(key.columns), kind="stable").index].reset_index(drop=True)
    free = table["free"].to_numpy(bool)
    number: dict[int, int] = {}
    for k in table.loc[free, "index"]:
        number.setdefault(int(k), len(number))
    table.loc[free, "index"] = [number[int(k)] for k in table.loc[free, "index"]]
    table["start"] = table["start"].round(8)
    table["id"] = np.arange(1, len(table) + 1)
    table["plabel"] = [f".p{i}." for i in table["id"]]
    return table


def syntax_order(syntax: str) -> dict[str, int]:
    """Rank of each name by first appearance in the model syntax (lavaan's variable order)."""
    order: dict[str, int] = {}
    for tok in re.findall(r"[^\W\d][\w.]*", syntax):  # any letters (Chinese names too), digits, _ and .
        order.setdefault(tok, len(order))
    return order


def _lavaan_order(table: pd.DataFrame, syntax: str) -> pd.DataFrame:
    """Write each covariance pair in order of first appearance in the syntax, as lavaan does."""
    order = syntax_order(syntax)
    swap = (table["op"] == "~~") & (table["lhs"].map(order) > table["rhs"].map(order))
    table.loc[swap, ["lhs", "rhs"]] = table.loc[swap, ["rhs", "lhs"]].to_numpy()
    return table


def _table_row(mid, r, c, names, free, index, value, label):
    rn, cn = names[mid]
    if mid == MatrixId.BETA:
        lhs, op, rhs = rn[r], "~", cn[c]
    elif mid == MatrixId.LAMBDA:
        lhs, op, rhs = cn[c], "=~", rn[r]
    else:
        lhs, op, rhs = rn[r], "~~", cn[c]
    return {"lhs": lhs, "op": op, "rhs": rhs, "group": 1, "free": bool(free), "index": index, "value": value,
            "start": value, "label": label, "exo": 0, "matrix": int(mid), "row": r, "col": c}
