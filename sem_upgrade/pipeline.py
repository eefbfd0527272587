"""The pipeline: ingest -> normality -> reliability -> measurement -> structural -> bootstrap ->
hypotheses -> diagnostics -> provenance -> outputs.

A thin orchestrator. Each stage's statistics live in their own module; each step function here
calls them and returns one typed field of :class:`~sem_upgrade.results.Results` (the step's
name is the field's name, see :data:`sem_upgrade.results.STEPS`). :func:`run` checks the
options, runs the steps in order, times each one (timing.json), and writes the files.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from . import fit_indices, measurement, normality, reliability, structural
from .engine.fit import Fit, check_estimator, fit_model
from .engine.identification import not_pd_message
from .engine.linalg import cov_to_cor
from .errors import ModelNotIdentifiedError, SemUpgradeError
from .ingest import MISSING_POLICIES, SurveyData, read_survey
from .questionnaire import Questionnaire, load_questionnaire
from .reproduce import write_reproduce
from .results import (BootstrapStage, DiagnosticsResult, HypothesesResult, IngestResult, MeasurementResult,
                      NormalityResult, ProvenanceResult, ReliabilityResult, Results, StructuralResult)

__all__ = ["run", "validate", "bundled_paths", "write_outputs", "conventions", "Options", "SKIPPABLE"]

# Stages a user may skip (--skip): the exploratory factor analysis and its parallel analysis are
# the slowest part of a survey with hundreds of items and not needed to fit a confirmed model.
SKIPPABLE = ("efa",)
# The smallest sample commonly recommended for SEM (a caveat in the reports, not a refusal).
_RECOMMENDED_N = (200, "Kline (2016)")


def bundled_paths() -> tuple[Path, Path]:
    """The bundled survey (218 simulated firms) and its questionnaire (the Liaoning study)."""
    here = Path(__file__).parent
    qdir = here / "questionnaires"
    if not qdir.is_dir():  # source checkout / editable install: the top-level folder
        qdir = here.parent / "questionnaires"
    return here / "data" / "liaoning_2012_survey.csv", qdir / "liaoning_2012.yaml"


def validate(data: str | Path, questionnaire: str | Path | Questionnaire, encoding: str | None = None):
    """Check a questionnaire and a survey file without fitting anything; returns (Questionnaire, SurveyData)."""
    q = questionnaire if isinstance(questionnaire, Questionnaire) else load_questionnaire(questionnaire)
    kwargs = {"encoding": encoding} if encoding else {}
    return q, read_survey(data, q, **kwargs)


@dataclass(frozen=True)
class Options:
    """A run's options, checked once (see :func:`run` for their meaning)."""

    missing: str = "listwise"
    likelihood: str = "normal"
    estimator: str = "ml"
    alpha: float = 0.05
    seed: int = 2012
    bootstrap: int = 2000
    ci: str = "percentile"
    ci_level: float = 0.95
    bootstrap_max_failure: float = 0.05
    progress: bool | None = None
    formats: tuple = ("html", "md", "xlsx")
    lang: str = "en"
    skip: tuple = ()
    encoding: str | None = None

    def check(self) -> Options:
        from .report import check_formats, check_lang

        check_formats(self.formats)
        check_lang(self.lang)
        if self.missing not in MISSING_POLICIES:
            raise SemUpgradeError(f"--missing: '{self.missing}' is not one of {', '.join(MISSING_POLICIES)}")
        if self.likelihood not in ("normal", "wishart"):
            raise SemUpgradeError(f"--likelihood: '{self.likelihood}' is not 'normal' or 'wishart'")
        check_estimator(self.estimator, self.missing, self.likelihood)
        if not 0 < self.alpha < 1:
            raise SemUpgradeError(f"--alpha: must be between 0 and 1, got {self.alpha}")
        if not _whole(self.seed):
            raise SemUpgradeError(f"--seed: must be a whole number >= 0, got {self.seed!r}")
        if not _whole(self.bootstrap):
            raise SemUpgradeError(f"--bootstrap: must be a whole number >= 0, got {self.bootstrap!r}")
        if self.ci not in ("percentile", "bc"):
            raise SemUpgradeError(f"--ci: '{self.ci}' is not 'percentile' or 'bc'")
        if not 0 < self.ci_level < 1:
            raise SemUpgradeError(f"--ci-level: must be between 0 and 1, got {self.ci_level}")
        share = self.bootstrap_max_failure
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise SemUpgradeError(f"--bootstrap-max-failure: must be a share between 0 and 1, got {share!r}")
        unknown = [s for s in self.skip if s not in SKIPPABLE]
        if unknown:
            raise SemUpgradeError(f"--skip: '{unknown[0]}' cannot be skipped (choose from {', '.join(SKIPPABLE)})")
        return self


def _whole(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer)) and v >= 0


@dataclass
class _Run:
    """What the steps share: the options, the inputs, the fitted models and the warnings so far."""

    opts: Options
    q: Questionnaire
    survey: SurveyData
    x: pd.DataFrame  # the analysis frame (items, rows used)
    data: str | Path
    questionnaire: str | Path
    res: Results = field(default_factory=Results)
    cfa: Fit | None = None
    sem: Fit | None = None
    one_factor_syntax: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def blocks(self) -> dict[str, list[str]]:
        return {c.name: list(c.items) for c in self.q.constructs.values()}

    @property
    def chains(self) -> dict[str, tuple]:
        return {h.id: h.chain for h in self.q.hypotheses if h.kind == "indirect"}

    def fit(self, syntax: str) -> Fit:
        o = self.opts
        return fit_model(syntax, self.x, missing=o.missing, likelihood=o.likelihood, estimator=o.estimator)


def run(data: str | Path | None = None, questionnaire: str | Path | None = None,
        outdir: str | Path | None = None, missing: str = "listwise", likelihood: str = "normal",
        alpha: float = 0.05, seed: int = 2012, bootstrap: int | None = None, ci: str = "percentile",
        ci_level: float = 0.95, progress: bool | None = None, formats=("html", "md", "xlsx"),
        lang: str = "en", estimator: str = "ml", bootstrap_max_failure: float = 0.05, skip=(),
        encoding: str | None = None) -> Results:
    """Run the whole analysis; write results.json, the reports and rejected_rows.csv when ``outdir`` is given.

    Parameters
    ----------
    data, questionnaire : path, optional
        Survey file (CSV, xlsx, sav) and questionnaire YAML; both default to the bundled study.
    missing : {"listwise", "fiml"}
    likelihood : {"normal", "wishart"}
        lavaan's default (N) or AMOS's convention (N - 1).
    estimator : {"ml", "mlm", "mlr"}
        ML (default), or ML with robust standard errors and a scaled test: lavaan's MLM
        (Satorra-Bentler) or MLR (Huber-White, Yuan-Bentler).
    alpha : float
        Significance level of the hypothesis tests.
    seed : int
        Seed of every random step (parallel analysis, bootstrap).
    bootstrap : int, optional
        Resamples for indirect and total effects (0: delta method only). Default 2000; under
        FIML each resample is a full-information refit.
    ci : {"percentile", "bc"}
        The interval that judges indirect hypotheses.
    ci_level : float
    progress : bool, optional
        Progress bar (default: when stderr is a terminal).
    formats : iterable of {"html", "md", "xlsx", "docx"}
        Reports written beside results.json (xlsx also writes tables/*.csv; html and docx the
        path diagram as 300-dpi PNG and PDF).
    lang : {"en", "zh"}
        Language of the reports (results.json keeps machine names).
    bootstrap_max_failure : float
        Share of failed resamples above which the bootstrap is unstable and judges no
        hypothesis (default 0.05); its intervals are still reported, marked.
    skip : iterable of {"efa"}
        Stages not run: ``efa`` skips the exploratory factor analysis and parallel analysis.
    encoding : str, optional
        The text encoding of a CSV file, when its detection fails.

    Returns
    -------
    Results
        One typed field per step (``res.ingest``, ``res.reliability``, ...); ``res.to_dict()``
        is results.json and ``res.timing`` each step's wall time.
    """
    opts = Options(missing=missing, likelihood=likelihood, estimator=estimator, alpha=alpha, seed=seed,
                   bootstrap=2000 if bootstrap is None else bootstrap, ci=ci, ci_level=ci_level,
                   bootstrap_max_failure=bootstrap_max_failure, progress=progress, formats=tuple(formats),
                   lang=lang, skip=tuple(skip), encoding=encoding).check()
    if data is None and questionnaire is None:
        data, questionnaire = bundled_paths()
    elif data is None or questionnaire is None:
        raise SemUpgradeError("give both the survey file and its questionnaire (-q), or neither for the bundled study")
    if outdir is not None:  # refuse before any work an output folder that would overwrite an input
        from .report import check_outdir

        check_outdir(outdir, (data, questionnaire))
    started = time.perf_counter()
    q, survey = validate(data, questionnaire, encoding=opts.encoding)
    x = survey.analysis_frame(opts.missing)
    _check_variances(x, survey.source, survey)
    ctx = _Run(opts, q, survey, x, data, questionnaire)
    ctx.res.timing["read"] = time.perf_counter() - started
    for name, step in _STEPS:
        if name in ("structural", "bootstrap_stage", "hypotheses") and not q.has_structure:
            continue
        t0 = time.perf_counter()
        setattr(ctx.res, name, step(ctx))
        ctx.res.timing[name] = time.perf_counter() - t0
    if outdir is not None:
        t0 = time.perf_counter()
        _write(ctx, outdir)
        ctx.res.timing["write"] = time.perf_counter() - t0
    return ctx.res


def step_ingest(ctx: _Run) -> IngestResult:
    """The rows read, rejected and used, the data quality, and the questionnaire as analysed."""
    q, survey, o = ctx.q, ctx.survey, ctx.opts
    constructs = {c.name: {"label": c.label, "labels": dict(c.labels), "items": list(c.items),
                           "reverse": list(c.reverse), "wording": dict(c.wording)} for c in q.constructs.values()}
    return IngestResult(
        n_rows_read=survey.n_rows_read, n_rejected=int(len(survey.rejected)), n_used=int(len(ctx.x)),
        missing=o.missing, likelihood=o.likelihood, estimator=o.estimator, data_quality=survey.quality(o.missing),
        questionnaire={"name": q.name, "title": q.title, "source": q.source, "constructs": constructs,
                       "hypotheses": {h.id: h.label for h in q.hypotheses},
                       "paths": [f"{lhs} ~ {rhs}" for lhs, rhs in q.paths]},
        rejected=survey.rejected)


def step_normality(ctx: _Run) -> NormalityResult:
    """Mardia's tests and item skewness/kurtosis; under ML a clear violation suggests MLR."""
    result = normality.normality(ctx.x)
    if result["violated"] and ctx.opts.estimator == "ml":
        m = result["mardia"]
        ctx.warnings.append(f"the items are not multivariate normal (Mardia: skewness p = {m['small_skew_pvalue']:.3f}, "
                            f"kurtosis p = {m['kurtosis_pvalue']:.3f}); ML's standard errors and chi-square assume "
                            "normality: consider --estimator mlr (robust standard errors, scaled chi-square)")
    return NormalityResult(result)


def step_reliability(ctx: _Run) -> ReliabilityResult:
    """Item statistics and alpha per construct; KMO, Bartlett, EFA with parallel analysis, Harman."""
    x, o = ctx.x, ctx.opts
    complete = x.dropna()
    complete_pd = _complete_cases_pd(complete, ctx.survey.source, strict=o.missing == "listwise")
    sample_note = ("complete cases (listwise)" if o.missing == "listwise"
                   else "complete cases of each construct's items (item statistics do not use FIML)")
    constructs = {}
    for c, items in ctx.blocks.items():
        constructs[c] = {**reliability.item_analysis(x[items].dropna()), "sample": sample_note}
    out = ReliabilityResult(constructs)
    sample, sample_name = (complete, f"complete cases (N = {len(complete)})") if complete_pd else (None, "")
    if sample is None and o.missing == "fiml":
        sample = _em_correlations(x)
        if sample is not None:
            sample_name = (f"EM (full-information) correlations of all {sample.n} rows: too few complete "
                           f"rows ({len(complete)}) for complete-case statistics")
    if sample is None:
        ctx.warnings.append("too few complete rows for KMO, Bartlett, EFA and Harman's test"
                            if len(complete) <= len(ctx.survey.items) else
                            "the complete rows' covariance matrix is not positive definite: no KMO, "
                            "Bartlett, EFA or Harman's test")
        return out
    kb = reliability.kmo_bartlett(sample)
    out.kmo, out.bartlett = {**kb["kmo"], "sample": sample_name}, kb["bartlett"]
    if "efa" in o.skip:
        out.efa = {"skipped": "--skip efa: no exploratory factor analysis or parallel analysis was run"}
    else:
        pa = reliability.parallel_analysis(sample, rng=o.seed)
        out.efa = {"parallel_analysis": pa, **reliability.efa(sample, pa["n_factors"], ctx.blocks),
                   "n": int(sample.shape[0]), "sample": sample_name}
    out.harman = {**reliability.harman_single_factor(sample), "sample": sample_name}
    return out


def step_measurement(ctx: _Run) -> MeasurementResult:
    """The CFA; CR, AVE, omega, Fornell-Larcker, HTMT; the one-factor (common-method) CFA; MIs."""
    q, blocks = ctx.q, ctx.blocks
    try:
        ctx.cfa = cfa = ctx.fit(q.measurement_syntax())
    except ModelNotIdentifiedError as exc:  # a model problem: the questionnaire's
        raise SemUpgradeError(f"{q.source}: {exc}") from None
    except SemUpgradeError as exc:  # a data problem first shows here: name the file
        raise SemUpgradeError(f"{ctx.survey.source}: {exc}") from None
    item_corr = pd.DataFrame(cov_to_cor(cfa.sample_cov), index=cfa.structure.observed, columns=cfa.structure.observed)
    val = measurement.validity(cfa, blocks, item_corr)
    validity = {c: {k: v for k, v in val["constructs"][c].items() if k != "sqrt_ave"} for c in blocks}
    rel = ctx.res.reliability.constructs
    citc = {c: {i: s.get("citc") for i, s in rel[c]["items"].items()} for c in blocks}
    suspects = measurement.reverse_key_suspects(val["loadings"], citc)
    for c, items in suspects.items():
        for it in items:
            shown = "n/a" if it["citc"] is None else f"{it['citc']:.2f}"
            ctx.warnings.append(f"item {it['item']} of {c} has a negative standardized loading "
                                f"({it['std_loading']:.2f}) or CITC ({shown}) while the construct's other items "
                                "load positively: did you forget to declare it under `reverse`?")
    verdicts = {"reliability": _reliability_verdicts({c: {**rel[c], **validity[c]} for c in blocks}, val, suspects),
                "thresholds": {k: {"value": v[0], "source": v[1]} for k, v in reliability.THRESHOLDS.items()}}
    # the common-method factor's name starts with '_', which the questionnaire reserves: no clash
    ctx.one_factor_syntax = "_CMV =~ " + " + ".join(ctx.survey.items)
    try:
        one_factor = measurement.one_factor_comparison(ctx.fit(ctx.one_factor_syntax), cfa)
    except SemUpgradeError as exc:
        one_factor = {"error": str(exc)}
    return MeasurementResult(
        loadings=val["loadings"], validity=validity, factor_correlations=_matrix(val["factor_correlations"]),
        fornell_larcker={"matrix": _matrix(val["fornell_larcker"]), "criterion_met": val["fornell_larcker_ok"],
                         "note": "diagonal: square root of AVE; off-diagonal: factor correlations"},
        htmt=_matrix(val["htmt"]), htmt_table=val["htmt"], htmt2=_matrix(val["htmt2"]), htmt_flags=val["htmt_flags"], verdicts=verdicts,
        fit=_fit_block(cfa), admissibility=_admissibility(cfa), one_factor_cfa=one_factor,
        modification_indices=structural.modification_indices(cfa), reverse_key_suspects=suspects)


def step_structural(ctx: _Run) -> StructuralResult:
    """The structural model: fit, path table, R², exogenous correlations, delta-method indirect effects."""
    ctx.sem = sem = ctx.fit(ctx.q.structural_syntax())
    names = list(ctx.blocks)
    saturated = sem.df == ctx.cfa.df  # the same model as the CFA: the same indices
    return StructuralResult(
        fit=_fit_block(sem), admissibility=_admissibility(sem), paths=structural.path_table(sem, names),
        r2=structural.construct_r2(sem, names), exogenous_correlations=structural.exogenous_correlations(sem, names),
        delta={hid: structural.indirect_delta(sem, chain, ctx.opts.ci_level) for hid, chain in ctx.chains.items()},
        modification_indices=None if saturated else structural.modification_indices(sem),
        modification_note=("the structural model is saturated (df equal to the CFA's): its indices are the "
                           "measurement model's") if saturated else "")


def step_bootstrap(ctx: _Run) -> BootstrapStage:
    """Case resampling of the structural model for indirect and total effects."""
    from .bootstrap import bootstrap

    o, sem = ctx.opts, ctx.sem
    if not o.bootstrap:
        return BootstrapStage()
    if not sem.converged:  # resampling a fit that found no optimum measures nothing (lavaan refuses as well)
        out = BootstrapStage(skipped="the structural model did not converge: no bootstrap")
    else:
        try:  # the bootstrap keeps the rows the fit used (listwise: complete rows only)
            boot = bootstrap(sem, ctx.x, o.bootstrap, o.seed, indirect=ctx.chains, totals=structural.total_effect_pairs(sem.structure),
                             level=o.ci_level, progress=o.progress, max_failure=o.bootstrap_max_failure)
        except SemUpgradeError as exc:  # too few rows, or no resample could be fitted: the rest stands
            out = BootstrapStage(skipped=f"no bootstrap: {exc}")
        else:
            ctx.res.bootstrap = boot
            ctx.res.timing["bootstrap_seconds"] = boot.seconds
            summary = {**boot.summary(o.ci), "seconds": None,
                       "note": "wall time is in timing.json, so that results.json is identical across runs",
                       "method": "case resampling of the cleaned rows; percentile and bias-corrected (BC) "
                                 "intervals by lavaan's interpolation (boot::norm.inter)"}
            totals = pd.DataFrame([e for e in boot.effects if e["kind"] == "total"])
            if boot.unstable:
                ctx.warnings.append(f"the bootstrap is unstable: {boot.n_failed} of {boot.n_requested} resamples "
                                    f"failed (more than {boot.max_failure:.0%}); its intervals are shown but judge "
                                    "no hypothesis")
            return BootstrapStage(summary=summary, total_effects=totals)
    ctx.warnings.append(out.skipped)
    return out


def step_hypotheses(ctx: _Run) -> HypothesesResult:
    """Every hypothesis judged (z-test for paths, the bootstrap interval or the delta method for
    indirect effects), the structural admissibility checks, and the indirect-effects table."""
    from .bootstrap import indirect_results

    sem, o, boot = ctx.sem, ctx.opts, ctx.res.bootstrap
    delta = ctx.res.structural.delta
    boot_rows, boot_reasons, boot_extra = indirect_results(boot, sem, ctx.chains, o.ci) if boot else ({}, {}, {})
    hyp = structural.hypothesis_table(sem, ctx.q.hypotheses, alpha=o.alpha, indirect=boot_rows)
    for hid, reason in boot_reasons.items():  # too few resamples, or an unstable bootstrap
        if reason and sem.converged:
            hyp.loc[hyp["id"] == hid, ["supported", "reason"]] = [False, reason]
    names = list(ctx.blocks)
    adm = structural.structural_admissibility(sem, names, ctx.res.measurement.htmt_table)
    problems = ctx.res.structural.admissibility["problems"] + adm["problems"]
    admissibility = {"problems": problems, "paths": adm["paths"], "limits": adm["limits"], "admissible": not problems}
    hyp = structural.mark_inadmissible(hyp, ctx.q.hypotheses, adm)
    by_name = {(e["kind"], e["name"]): e for e in boot.effects} if boot else {}
    rows = []
    for hid, chain in ctx.chains.items():
        d = delta[hid]
        row = {"name": hid, "chain": list(chain), **{f"delta_{k}": v for k, v in d.items() if k != "method"},
               "estimate": d["estimate"], "std_estimate": d["std_estimate"]}
        if boot is not None:
            e = by_name[("indirect", hid)]
            row.update({k: e[k] for k in ("boot_se", "perc_lower", "perc_upper", "bc_lower", "bc_upper",
                                          "std_boot_se", "std_perc_lower", "std_perc_upper", "std_bc_lower",
                                          "std_bc_upper")})
            row.update(boot_extra[hid])
        rows.append(row)
    return HypothesesResult(hypotheses=hyp, indirect=pd.DataFrame(rows), admissibility=admissibility)


def step_diagnostics(ctx: _Run) -> DiagnosticsResult:
    """Fit verdicts, residual correlations of the last model, every warning, the sample-size caveat."""
    d = ctx.res.to_dict()
    last = ctx.sem if ctx.q.has_structure else ctx.cfa
    resid = fit_indices.residual_correlations(last.sample_cov, last.sigma)
    obs = last.structure.observed
    warnings = ctx.warnings + [f"{fit} model: {w}" for fit in ("measurement", "structural")
                               for key in ("problems", "warnings")
                               for w in d["admissibility"].get(fit, {}).get(key, [])]
    last_fit = d["fit"].get("structural", d["fit"]["measurement"])
    n = d["n_used"]
    return DiagnosticsResult(
        fit_verdicts={k: fit_indices.verdicts(v) for k, v in d["fit"].items()},
        residual_correlations={"model": "structural" if ctx.q.has_structure else "measurement",
                               "items": [i for i in ctx.survey.items if i in obs],
                               "matrix": {a: {b: resid[i, j] for j, b in enumerate(obs)} for i, a in enumerate(obs)}},
        warnings=warnings,
        sample_size={"n": n, "npar": last_fit.get("npar"), "recommended_n": _RECOMMENDED_N[0],
                     "source": _RECOMMENDED_N[1], "below_recommended": n < _RECOMMENDED_N[0]})


def step_provenance(ctx: _Run) -> ProvenanceResult:
    """The inputs, every option, the package versions and the conventions of each figure."""
    o = ctx.opts
    versions = {}
    for pkg in ("sem_upgrade", "semopy", "numpy", "scipy", "pandas", "pingouin", "factor_analyzer", "statsmodels"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    options = {"missing": o.missing, "likelihood": o.likelihood, "alpha": o.alpha, "seed": o.seed,
               "bootstrap": o.bootstrap, "ci": o.ci, "ci_level": o.ci_level, "estimator": o.estimator,
               "lang": o.lang, "bootstrap_max_failure": o.bootstrap_max_failure, "skip": list(o.skip)}
    return ProvenanceResult({"data": Path(ctx.data).name, "questionnaire": Path(ctx.questionnaire).name,
                             "options": options, "versions": versions, "python": platform.python_version(),
                             "conventions": conventions(o.likelihood)})


# The steps in order; each returns the field of Results named like it.
_STEPS = (("ingest", step_ingest), ("normality", step_normality), ("reliability", step_reliability),
          ("measurement", step_measurement), ("structural", step_structural), ("bootstrap_stage", step_bootstrap),
          ("hypotheses", step_hypotheses), ("diagnostics", step_diagnostics), ("provenance", step_provenance))


def _write(ctx: _Run, outdir) -> Path:
    q, o = ctx.q, ctx.opts
    models = {"measurement": q.measurement_syntax(), "one_factor": ctx.one_factor_syntax}
    if q.has_structure:
        models["structural"] = q.structural_syntax()
    prov = ctx.res.provenance.provenance
    trail = {"frame": ctx.x, "models": models, "chains": ctx.chains,
             "options": {"data": prov["data"], "questionnaire": prov["questionnaire"], **prov["options"]},
             "versions": prov["versions"]}
    return write_outputs(ctx.res, outdir, o.formats, o.lang, inputs=(ctx.data, ctx.questionnaire), trail=trail)


def write_outputs(res: Results, outdir: str | Path, formats=("html", "md", "xlsx"), lang: str = "en",
                  inputs=(), trail: dict | None = None) -> Path:
    """Write results.json, rejected_rows.csv and the chosen reports into ``outdir`` as one complete run
    (see :func:`sem_upgrade.report.write_run`).

    ``trail``: the cleaned frame, model syntaxes, indirect chains, options and versions for
    ``outdir/reproduce`` (:func:`sem_upgrade.reproduce.write_reproduce`).
    """
    from .report import write_run

    extra = None if trail is None else (lambda folder: write_reproduce(folder / "reproduce", **trail))
    return write_run(res, outdir, formats, lang, inputs=inputs, extra=extra)


def _check_variances(x: pd.DataFrame, source: str, survey=None):
    """A clear error for an item that is empty or constant in the rows used, saying why it is.

    An item can be constant in the rows used only because other rows were rejected or dropped for
    missing cells elsewhere; the message then says so instead of blaming the item.
    """
    sd = x.std(ddof=0)
    empty = [c for c in x.columns if x[c].isna().all()]
    if empty:
        raise SemUpgradeError(f"{source}: item column(s) with no answer at all in the rows used: {', '.join(empty)} "
                              "(the column is empty; check the file or drop the item from the questionnaire)")
    const = [c for c in x.columns if not sd[c] > 0]
    if not const:
        return
    valid = survey.frame[const] if survey is not None else x[const]
    varies = [c for c in const if valid[c].std(ddof=0) > 0]
    n_rejected = len(survey.rejected) if survey is not None else 0
    if varies:
        raise SemUpgradeError(f"{source}: item(s) {', '.join(varies)} take one value in the {len(x)} rows used but "
                              f"vary among the {len(valid)} valid rows: rows dropped for missing answers elsewhere "
                              "leave them constant (try --missing fiml)")
    if n_rejected:
        raise SemUpgradeError(f"{source}: item(s) with one value in the {len(x)} rows kept: {', '.join(const)}; "
                              f"{n_rejected} rows were rejected (see rejected_rows.csv), so the item may vary in the "
                              "file: check why those rows were rejected before dropping it")
    raise SemUpgradeError(f"{source}: item(s) with zero variance in the sample used: {', '.join(const)} "
                          "(every respondent gave the same answer; drop the item from the questionnaire)")


def _complete_cases_pd(complete: pd.DataFrame, source: str, strict: bool) -> bool:
    """Whether the complete rows are enough for a positive-definite covariance matrix.

    Under listwise deletion these rows are the whole sample, so a singular matrix (identical or
    collinear items) is an error naming the items; under FIML it only rules out the
    complete-case statistics (KMO, EFA), and the fit checks the EM moments itself."""
    if len(complete) <= complete.shape[1]:
        return False
    S = np.cov(complete.to_numpy(float), rowvar=False, bias=True)
    eig = np.linalg.eigvalsh(cov_to_cor(S))
    if eig[0] > 1e-10 * eig[-1]:
        return True
    if strict:
        raise SemUpgradeError(f"{source}: {not_pd_message(S, list(complete.columns))}")
    return False


def _em_correlations(x: pd.DataFrame):
    """Item correlations estimated by EM from every row with an answer (the saturated model of
    FIML), for KMO, EFA and Harman's test when complete rows are too few; None when singular."""
    from .engine.mvnorm_missing import em_saturated

    rows = x[x.notna().any(axis=1)]
    try:
        _, sigma, _, _ = em_saturated(rows.to_numpy(float))
    except (np.linalg.LinAlgError, SemUpgradeError):
        return None
    R = cov_to_cor(sigma)
    if not np.all(np.isfinite(R)) or np.linalg.eigvalsh(R)[0] <= 1e-10:
        return None
    return reliability.Correlations(pd.DataFrame(R, index=x.columns, columns=x.columns), len(rows))


def _matrix(df: pd.DataFrame) -> dict:
    return {str(r): {str(c): df.loc[r, c] for c in df.columns} for r in df.index}


def _fit_block(fit) -> dict:
    """Fit indices under lavaan's names plus ``valid``: False when the fit did not converge."""
    block = fit_indices.fit_measures(fit)
    block["valid"] = bool(fit.converged)
    if not fit.converged:
        block["note"] = f"the fit did not converge ({fit.message}): these indices are not valid"
    return block


def _admissibility(fit) -> dict:
    problems = fit.admissibility()
    if not fit.converged:
        problems.insert(0, f"the fit did not converge ({fit.message}); its figures are not valid")
    return {"converged": bool(fit.converged), "iterations": fit.iterations, "admissible": not problems,
            "problems": problems, "warnings": list(fit.warnings), "method": fit.method, "n": fit.n}


def _reliability_verdicts(rel: dict, val: dict, suspects: dict | None = None) -> dict:
    """Threshold verdicts per construct; a construct holding a suspected undeclared reverse-keyed
    item cannot pass (its alpha, CR, AVE and omega mix two directions)."""
    th = reliability.THRESHOLDS
    out = {}
    for c, r in rel.items():
        v = {}
        flagged = bool(suspects and suspects.get(c))
        for key in ("alpha", "cr", "ave", "omega"):
            value = r.get(key)
            v[key] = None if value is None else bool(value >= th[key][0]) and not flagged
        v["reverse_key_suspects"] = [s["item"] for s in (suspects or {}).get(c, [])]
        v["citc_below"] = [i for i, s in r["items"].items() if s.get("citc") is not None and s["citc"] < th["citc"][0]]
        v["fornell_larcker"] = val["fornell_larcker_ok"].get(c)
        out[c] = v
    return out


def conventions(likelihood: str) -> dict:
    """Which formula each reported figure uses, relative to lavaan's and semTools' defaults."""
    return {
        "chisq": "N * F_ML (lavaan)" if likelihood == "normal" else "(N - 1) * F_ML (AMOS, wishart)",
        "rmsea": "uses N" if likelihood == "normal" else "uses N - 1",
        "standardized": "std.all (lavaan)",
        "cr": "composite reliability from standardized loadings, (sum l)^2 / ((sum l)^2 + sum(1 - l^2)) "
              "(Fornell & Larcker 1981); residual covariances are not counted",
        "ave": "mean of squared standardized loadings (Fornell & Larcker 1981)",
        "omega": "omega with the model-implied variance of the sum score, residual covariances included: "
                 "semTools compRelSEM(obs.var = FALSE); omega_obs uses the observed variance, semTools' "
                 "default compRelSEM(); both are reported where they differ",
        "htmt": "the column HTMT is the classic HTMT (arithmetic means of absolute item correlations; "
                "Henseler et al. 2015), semTools htmt(htmt2 = FALSE); HTMT2 (geometric means; Roemer et al. "
                "2021, semTools 0.5-6's default) is given beside it",
    }
