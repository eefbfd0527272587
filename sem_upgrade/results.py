"""The result of one run: one typed field per pipeline step, and its JSON form.

Nothing here computes statistics; it holds and serialises them. Each step of the pipeline
(:mod:`sem_upgrade.pipeline`) fills one field of :class:`Results` with its own dataclass, whose
``to_dict()`` gives that step's keys of results.json (documented in docs/results_schema.md).
:meth:`Results.to_dict` joins them in schema order. JSON is plain: numbers, strings, lists,
objects; NaN and infinities become ``null`` and, where a table row holds them, a ``note`` says why.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SemUpgradeError

__all__ = ["Results", "IngestResult", "NormalityResult", "ReliabilityResult", "MeasurementResult",
           "StructuralResult", "BootstrapStage", "HypothesesResult", "DiagnosticsResult", "ProvenanceResult",
           "STEPS", "to_plain", "records"]


def records(df: pd.DataFrame | None, key: str | None = None, note: str = "") -> list[dict]:
    """A table's rows as dicts; a row whose ``key`` is missing or non-finite gets ``note``."""
    if df is None:
        return []
    rows = df.to_dict(orient="records")
    if key is not None:
        for r in rows:
            v = r.get(key)
            if v is None or (isinstance(v, float) and not np.isfinite(v)):
                r["note"] = note
    return rows


@dataclass
class IngestResult:
    """Step ``ingest``: the rows read, set aside and used, and the questionnaire."""

    n_rows_read: int
    n_rejected: int
    n_used: int
    missing: str
    likelihood: str
    estimator: str
    data_quality: dict
    questionnaire: dict
    rejected: pd.DataFrame | None = None  # rejected_rows.csv, not results.json

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("n_rows_read", "n_rejected", "n_used", "missing", "likelihood",
                                               "estimator", "data_quality", "questionnaire")}


@dataclass
class NormalityResult:
    """Step ``normality``: Mardia's tests and each item's skewness and kurtosis."""

    normality: dict

    def to_dict(self) -> dict:
        return {"normality": self.normality}


@dataclass
class ReliabilityResult:
    """Step ``reliability``: item statistics and alpha per construct, KMO, Bartlett, EFA, Harman."""

    constructs: dict  # construct -> item analysis (alpha, omega, items ...)
    kmo: dict | None = None
    bartlett: dict | None = None
    efa: dict | None = None
    harman: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"reliability": self.constructs, "kmo": self.kmo, "bartlett": self.bartlett, "efa": self.efa,
                "common_method": dict(self.harman)}


@dataclass
class MeasurementResult:
    """Step ``measurement``: the CFA, convergent and discriminant validity, their verdicts."""

    loadings: pd.DataFrame
    validity: dict  # construct -> cr, ave, omega ... (joins reliability.<C> in results.json)
    factor_correlations: dict
    fornell_larcker: dict
    htmt: dict
    htmt2: dict
    htmt_flags: list
    verdicts: dict
    fit: dict
    admissibility: dict
    one_factor_cfa: dict
    modification_indices: list
    reverse_key_suspects: dict = field(default_factory=dict)
    htmt_table: pd.DataFrame | None = None  # htmt as a frame (for the structural admissibility checks)

    def to_dict(self) -> dict:
        return {"reliability": self.validity,
                "loadings": records(self.loadings, "se", "marker loading fixed to 1: no standard error"),
                "factor_correlations": self.factor_correlations, "fornell_larcker": self.fornell_larcker,
                "htmt": self.htmt, "htmt2": self.htmt2, "htmt_flags": self.htmt_flags, "verdicts": self.verdicts,
                "fit": {"measurement": self.fit}, "admissibility": {"measurement": self.admissibility},
                "common_method": {"one_factor_cfa": self.one_factor_cfa},
                "modification_indices": {"measurement": self.modification_indices}}


@dataclass
class StructuralResult:
    """Step ``structural``: the structural model's fit, paths, R² and delta-method indirect effects."""

    fit: dict
    admissibility: dict
    paths: pd.DataFrame
    r2: dict
    exogenous_correlations: list
    delta: dict  # indirect hypothesis -> delta-method figures
    modification_indices: list | None = None
    modification_note: str = ""

    def to_dict(self) -> dict:
        mi = ({"structural_note": self.modification_note} if self.modification_note
              else {"structural": self.modification_indices})
        return {"fit": {"structural": self.fit}, "admissibility": {"structural": self.admissibility},
                "paths": records(self.paths), "r2": self.r2, "exogenous_correlations": self.exogenous_correlations,
                "modification_indices": mi}


@dataclass
class BootstrapStage:
    """Step ``bootstrap``: the resampling summary, or why it was skipped."""

    summary: dict | None = None
    skipped: str = ""
    total_effects: pd.DataFrame | None = None

    def to_dict(self) -> dict:
        out = {}
        if self.skipped:
            out["bootstrap_skipped"] = self.skipped
        if self.summary is not None:
            out["bootstrap"] = self.summary
            out["total_effects"] = records(self.total_effects)
        return out


@dataclass
class HypothesesResult:
    """Step ``hypotheses``: every hypothesis judged, and the indirect effects table."""

    hypotheses: pd.DataFrame
    indirect: pd.DataFrame
    admissibility: dict = field(default_factory=dict)  # joins admissibility.structural

    def to_dict(self) -> dict:
        return {"admissibility": {"structural": self.admissibility} if self.admissibility else {},
                "hypotheses": records(self.hypotheses, "ci_lower",
                                      "path hypotheses are judged by the z-test; no interval"),
                "indirect": records(self.indirect)}


@dataclass
class DiagnosticsResult:
    """Step ``diagnostics``: fit verdicts, residual correlations, warnings, sample size."""

    fit_verdicts: dict
    residual_correlations: dict
    warnings: list
    sample_size: dict

    def to_dict(self) -> dict:
        return {"fit_verdicts": self.fit_verdicts, "residual_correlations": self.residual_correlations,
                "warnings": self.warnings, "sample_size": self.sample_size}


@dataclass
class ProvenanceResult:
    """Step ``provenance``: inputs, options, versions and the conventions of every figure."""

    provenance: dict

    def to_dict(self) -> dict:
        return {"conventions": self.provenance["conventions"], "provenance": self.provenance}


# The steps in pipeline order: the name of each step is the name of its field in Results.
STEPS = ("ingest", "normality", "reliability", "measurement", "structural", "bootstrap_stage", "hypotheses",
         "diagnostics", "provenance")
# results.json keys several steps contribute to: merged one level deep, in step order.
_MERGED = ("reliability", "fit", "admissibility", "common_method", "modification_indices")


@dataclass
class Results:
    """Everything a run computed: one typed field per pipeline step (see :data:`STEPS`).

    ``to_dict()`` (also ``data``) is results.json; ``tables`` the stages' result tables;
    ``bootstrap`` the bootstrap draws when a bootstrap ran; ``timing`` each step's wall time
    (timing.json, kept out of results.json so that it is identical across runs).
    """

    ingest: IngestResult | None = None
    normality: NormalityResult | None = None
    reliability: ReliabilityResult | None = None
    measurement: MeasurementResult | None = None
    structural: StructuralResult | None = None
    bootstrap_stage: BootstrapStage | None = None
    hypotheses: HypothesesResult | None = None
    diagnostics: DiagnosticsResult | None = None
    provenance: ProvenanceResult | None = None
    bootstrap: object = None  # BootstrapResult: every draw
    timing: dict = field(default_factory=dict)
    document: dict | None = None  # a results.json read back (Results.from_dict), instead of the steps

    @classmethod
    def from_dict(cls, document: dict, rejected: pd.DataFrame | None = None) -> Results:
        """Results read back from a results.json document (to write its reports again)."""
        res = cls(document=dict(document))
        res._rejected = rejected
        return res

    def to_dict(self) -> dict:
        """results.json as a dict, the steps' keys joined in schema order."""
        if self.document is not None:
            return self.document
        out: dict = {}
        for name in STEPS:
            step = getattr(self, name)
            if step is None:
                continue
            for key, value in step.to_dict().items():
                if key in _MERGED and isinstance(value, dict):
                    target = out.setdefault(key, {})
                    for k, v in value.items():
                        if isinstance(v, dict) and isinstance(target.get(k), dict):
                            target[k] = {**target[k], **v}
                        else:
                            target[k] = v
                else:
                    out[key] = value
        return out

    @property
    def data(self) -> dict:
        return self.to_dict()

    def __getitem__(self, key):
        return self.to_dict()[key]

    @property
    def rejected(self) -> pd.DataFrame | None:
        if self.ingest is not None:
            return self.ingest.rejected
        return getattr(self, "_rejected", None)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The stages' result tables as they made them: loadings, paths, hypotheses, indirect,
        total_effects (those the run has)."""
        out = {}
        if self.measurement is not None:
            out["loadings"] = self.measurement.loadings
        if self.structural is not None:
            out["paths"] = self.structural.paths
        if self.hypotheses is not None:
            out["hypotheses"] = self.hypotheses.hypotheses
            out["indirect"] = self.hypotheses.indirect
        if self.bootstrap_stage is not None and self.bootstrap_stage.total_effects is not None:
            out["total_effects"] = self.bootstrap_stage.total_effects
        return out

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
        d, out = self.to_dict(), {}
        if d.get("fit"):
            out["fit"] = pd.DataFrame([{"model": m, "index": k, "value": v} for m, block in d["fit"].items()
                                       for k, v in block.items() if k not in ("valid", "note")],
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
        text = json.dumps(to_plain(self.to_dict()), ensure_ascii=False, indent=2, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def steps(self) -> dict[str, object]:
        """The filled step fields by name, in pipeline order."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name in STEPS and getattr(self, f.name) is not None}


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
