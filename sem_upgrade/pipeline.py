"""The pipeline: ingest -> reliability -> measurement -> structural -> fit indices -> outputs.

A thin orchestrator: each stage lives in its own module; this one calls them in order,
gathers their results into one :class:`~sem_upgrade.results.Results`, and writes the files.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from . import fit_indices, measurement, normality, reliability, structural
from .errors import SemUpgradeError
from .engine.fit import check_estimator, fit_model
from .engine.identification import not_pd_message
from .ingest import MISSING_POLICIES, read_survey
from .questionnaire import Questionnaire, load_questionnaire
from .reproduce import write_reproduce
from .results import Results

__all__ = ["run", "validate", "bundled_paths", "write_outputs"]


def bundled_paths() -> tuple[Path, Path]:
    """The bundled survey (218 simulated firms) and its questionnaire (the Liaoning study)."""
    here = Path(__file__).parent
    qdir = here / "questionnaires"
    if not qdir.is_dir():  # source checkout / editable install: the top-level folder
        qdir = here.parent / "questionnaires"
    return here / "data" / "liaoning_2012_survey.csv", qdir / "liaoning_2012.yaml"


def validate(data: str | Path, questionnaire: str | Path | Questionnaire):
    """Check a questionnaire and a survey file without fitting anything; returns the SurveyData."""
    q = questionnaire if isinstance(questionnaire, Questionnaire) else load_questionnaire(questionnaire)
    return q, read_survey(data, q)


def run(data: str | Path | None = None, questionnaire: str | Path | None = None,
        outdir: str | Path | None = None, missing: str = "listwise", likelihood: str = "normal",
        alpha: float = 0.05, seed: int = 2012, bootstrap: int | None = None, ci: str = "percentile",
        ci_level: float = 0.95, progress: bool | None = None, formats=("html", "md", "xlsx"),
        lang: str = "en", estimator: str = "ml", bootstrap_max_failure: float = 0.05) -> Results:
    """Run the whole analysis; write results.json and rejected_rows.csv when ``outdir`` is given.

    Parameters
    ----------
    data, questionnaire : path, optional
        Survey file (CSV, xlsx, sav) and questionnaire YAML; both default to the bundled study.
    missing : {"listwise", "fiml"}
    likelihood : {"normal", "wishart"}
        lavaan's default (N) or AMOS's convention (N - 1).
    estimator : {"ml", "mlm", "mlr"}
        ML (default), or ML with robust standard errors and a scaled test: lavaan's MLM
        (Satorra-Bentler) or MLR (Huber-White, Yuan-Bentler); complete data.
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
    """
    from .report import check_formats, check_lang

    formats = check_formats(formats)
    check_lang(lang)
    if missing not in MISSING_POLICIES:
        raise SemUpgradeError(f"--missing: '{missing}' is not one of {', '.join(MISSING_POLICIES)}")
    if likelihood not in ("normal", "wishart"):
        raise SemUpgradeError(f"--likelihood: '{likelihood}' is not 'normal' or 'wishart'")
    check_estimator(estimator, missing, likelihood)
    if not 0 < alpha < 1:
        raise SemUpgradeError(f"--alpha: must be between 0 and 1, got {alpha}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SemUpgradeError(f"--seed: must be a whole number >= 0, got {seed!r}")
    if bootstrap is None:
        bootstrap = 2000
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0:
        raise SemUpgradeError(f"--bootstrap: must be a whole number >= 0, got {bootstrap!r}")
    if ci not in ("percentile", "bc"):
        raise SemUpgradeError(f"--ci: '{ci}' is not 'percentile' or 'bc'")
    if not 0 < ci_level < 1:
        raise SemUpgradeError(f"--ci-level: must be between 0 and 1, got {ci_level}")
    if (isinstance(bootstrap_max_failure, bool) or not isinstance(bootstrap_max_failure, (int, float))
            or not 0 <= bootstrap_max_failure <= 1):
        raise SemUpgradeError(f"--bootstrap-max-failure: must be a share between 0 and 1, got {bootstrap_max_failure!r}")
    if data is None and questionnaire is None:
        data, questionnaire = bundled_paths()
    elif data is None or questionnaire is None:
        raise SemUpgradeError("give both the survey file and its questionnaire (-q), or neither for the bundled study")
    if outdir is not None:  # refuse before any work an output folder that would overwrite an input
        from .report import check_outdir

        check_outdir(outdir, (data, questionnaire))
    q, survey = validate(data, questionnaire)
    res = Results(rejected=survey.rejected)
    x = survey.analysis_frame(missing)
    blocks = {c.name: list(c.items) for c in q.constructs.values()}
    _check_variances(x, survey.source, survey)
    out = res.data
    out["n_rows_read"] = survey.n_rows_read
    out["n_rejected"] = int(len(survey.rejected))
    out["n_used"] = int(len(x))
    out["missing"] = missing
    out["likelihood"] = likelihood
    out["estimator"] = estimator
    out["data_quality"] = survey.quality(missing)
    out["questionnaire"] = {"name": q.name, "title": q.title, "source": q.source,
                            "constructs": {c.name: {"label": c.label, "labels": dict(c.labels), "items": list(c.items),
                                                    "reverse": list(c.reverse), "wording": dict(c.wording)}
                                           for c in q.constructs.values()},
                            "hypotheses": {h.id: h.label for h in q.hypotheses},
                            "paths": [f"{lhs} ~ {rhs}" for lhs, rhs in q.paths]}
    warnings: list[str] = []
    out["normality"] = normality.normality(x)
    if out["normality"]["violated"] and estimator == "ml":
        m = out["normality"]["mardia"]
        warnings.append(f"the items are not multivariate normal (Mardia: skewness p = {m['small_skew_pvalue']:.3f}, "
                        f"kurtosis p = {m['kurtosis_pvalue']:.3f}); ML's standard errors and chi-square assume "
                        "normality: consider --estimator mlr (robust standard errors, scaled chi-square)")

    # ---- reliability (item statistics, KMO/Bartlett, EFA, Harman) ----
    complete = x.dropna()
    complete_pd = _complete_cases_pd(complete, survey.source, strict=missing == "listwise")
    sample_note = ("complete cases (listwise)" if missing == "listwise"
                   else "complete cases of each construct's items (item statistics do not use FIML)")
    rel = {}
    for c, items in blocks.items():
        ia = reliability.item_analysis(x[items].dropna())
        ia["sample"] = sample_note
        rel[c] = ia
    out["reliability"] = rel
    sample, sample_name = (complete, f"complete cases (N = {len(complete)})") if complete_pd else (None, "")
    if sample is None and missing == "fiml":
        sample = _em_correlations(x)
        if sample is not None:
            sample_name = (f"EM (full-information) correlations of all {sample.n} rows: too few complete "
                           f"rows ({len(complete)}) for complete-case statistics")
    if sample is not None:
        kb = reliability.kmo_bartlett(sample)
        out["kmo"], out["bartlett"] = {**kb["kmo"], "sample": sample_name}, kb["bartlett"]
        pa = reliability.parallel_analysis(sample, rng=seed)
        out["efa"] = {"parallel_analysis": pa, **reliability.efa(sample, pa["n_factors"], blocks),
                      "n": int(sample.shape[0]), "sample": sample_name}
        harman = {**reliability.harman_single_factor(sample), "sample": sample_name}
    else:
        warnings.append("too few complete rows for KMO, Bartlett, EFA and Harman's test"
                        if len(complete) <= len(survey.items) else
                        "the complete rows' covariance matrix is not positive definite: no KMO, "
                        "Bartlett, EFA or Harman's test")
        out["kmo"] = out["bartlett"] = out["efa"] = None
        harman = {}

    # ---- measurement model (CFA) ----
    try:
        cfa = fit_model(q.measurement_syntax(), x, missing=missing, likelihood=likelihood, estimator=estimator)
    except SemUpgradeError as exc:  # a data or model problem first shows here: name the file
        blame = q.source if "not identified" in str(exc) else survey.source
        raise SemUpgradeError(f"{blame}: {exc}") from None
    item_corr = _correlation(cfa)
    val = measurement.validity(cfa, blocks, item_corr)
    for c in blocks:
        rel[c].update({k: v for k, v in val["constructs"][c].items() if k != "sqrt_ave"})
    res.tables["loadings"] = val["loadings"]
    out["loadings"] = _with_notes(val["loadings"], "se", "marker loading fixed to 1: no standard error")
    out["factor_correlations"] = _matrix(val["factor_correlations"])
    out["fornell_larcker"] = {"matrix": _matrix(val["fornell_larcker"]), "criterion_met": val["fornell_larcker_ok"],
                              "note": "diagonal: square root of AVE; off-diagonal: factor correlations"}
    out["htmt"] = _matrix(val["htmt"])
    out["htmt2"] = _matrix(val["htmt2"])
    out["htmt_flags"] = val["htmt_flags"]
    suspects = measurement.reverse_key_suspects(
        val["loadings"], {c: {i: s.get("citc") for i, s in rel[c]["items"].items()} for c in blocks})
    for c, items in suspects.items():
        for it in items:
            citc = "n/a" if it["citc"] is None else f"{it['citc']:.2f}"
            warnings.append(f"item {it['item']} of {c} has a negative standardized loading ({it['std_loading']:.2f}) "
                            f"or CITC ({citc}) while the construct's other items load positively: did you forget "
                            "to declare it under `reverse`?")
    out["verdicts"] = {"reliability": _reliability_verdicts(rel, val, suspects), "thresholds": {
        k: {"value": v[0], "source": v[1]} for k, v in reliability.THRESHOLDS.items()}}
    out["fit"] = {"measurement": _fit_block(cfa)}
    out["admissibility"] = {"measurement": _admissibility(cfa)}
    # the common-method factor's name starts with '_', which the questionnaire reserves: no clash
    one_factor_syntax = "_CMV =~ " + " + ".join(survey.items)
    try:
        one = fit_model(one_factor_syntax, x, missing=missing, likelihood=likelihood, estimator=estimator)
        cmp = measurement.one_factor_comparison(one, cfa)
    except SemUpgradeError as exc:
        cmp = {"error": str(exc)}
    out["common_method"] = {**harman, "one_factor_cfa": cmp}
    out["modification_indices"] = {"measurement": structural.modification_indices(cfa)}

    # ---- structural model ----
    if q.has_structure:
        sem = fit_model(q.structural_syntax(), x, missing=missing, likelihood=likelihood, estimator=estimator)
        names = list(blocks)
        out["fit"]["structural"] = _fit_block(sem)
        out["admissibility"]["structural"] = _admissibility(sem)
        paths = structural.path_table(sem, names)
        res.tables["paths"] = paths
        out["paths"] = paths
        out["r2"] = structural.construct_r2(sem, names)
        out["exogenous_correlations"] = structural.exogenous_correlations(sem, names)
        delta = {h.id: structural.indirect_delta(sem, h.chain, ci_level) for h in q.hypotheses if h.kind == "indirect"}
        chains = {h.id: h.chain for h in q.hypotheses if h.kind == "indirect"}
        boot_rows = {}
        boot = None
        if bootstrap and not sem.converged:
            # resampling a fit that found no optimum measures nothing (lavaan refuses as well)
            out["bootstrap_skipped"] = "the structural model did not converge: no bootstrap"
        elif bootstrap:
            try:
                boot = _bootstrap(sem, x, bootstrap, seed, chains, ci_level, progress, bootstrap_max_failure)
            except SemUpgradeError as exc:  # too few rows, or no resample could be fitted:
                out["bootstrap_skipped"] = f"no bootstrap: {exc}"  # the rest of the analysis stands
        if "bootstrap_skipped" in out:
            warnings.append(out["bootstrap_skipped"])
        boot_extra, boot_reasons = {}, {}
        if boot is not None:
            from .bootstrap import indirect_results

            res.bootstrap = boot
            out["bootstrap"] = {**boot.summary(ci), "seconds": None,
                                "note": "wall time is in timing.json, so that results.json is identical across runs",
                                "method": "case resampling of the cleaned rows; percentile and bias-corrected (BC) "
                                          "intervals by lavaan's interpolation (boot::norm.inter)"}
            res.timing["bootstrap_seconds"] = boot.seconds
            boot_rows, boot_reasons, boot_extra = indirect_results(boot, sem, chains, ci)
            by_name = {(e["kind"], e["name"]): e for e in boot.effects}
            out["total_effects"] = [dict(e, chain=e["chain"]) for e in boot.effects if e["kind"] == "total"]
            res.tables["total_effects"] = pd.DataFrame(out["total_effects"])
            if boot.unstable:
                warnings.append(f"the bootstrap is unstable: {boot.n_failed} of {boot.n_requested} resamples failed "
                                f"(more than {boot.max_failure:.0%}); its intervals are shown but judge no hypothesis")
        hyp = structural.hypothesis_table(sem, q.hypotheses, alpha=alpha, indirect=boot_rows)
        for hid, reason in boot_reasons.items():  # too few resamples, or an unstable bootstrap
            if reason and sem.converged:
                hyp.loc[hyp["id"] == hid, ["supported", "reason"]] = [False, reason]
        adm = structural.structural_admissibility(sem, names, val["htmt"])
        out["admissibility"]["structural"]["problems"] += adm["problems"]
        out["admissibility"]["structural"]["paths"] = adm["paths"]
        out["admissibility"]["structural"]["limits"] = adm["limits"]
        out["admissibility"]["structural"]["admissible"] = not out["admissibility"]["structural"]["problems"]
        hyp = structural.mark_inadmissible(hyp, q.hypotheses, adm)
        res.tables["hypotheses"] = hyp
        out["hypotheses"] = _with_notes(hyp, "ci_lower", "path hypotheses are judged by the z-test; no interval")
        out["indirect"] = []
        for hid, chain in chains.items():
            row = {"name": hid, "chain": list(chain), **{f"delta_{k}": v for k, v in delta[hid].items() if k != "method"},
                   "estimate": delta[hid]["estimate"], "std_estimate": delta[hid]["std_estimate"]}
            if res.bootstrap is not None:
                e = by_name[("indirect", hid)]
                row.update({k: e[k] for k in ("boot_se", "perc_lower", "perc_upper", "bc_lower", "bc_upper",
                                              "std_boot_se", "std_perc_lower", "std_perc_upper", "std_bc_lower",
                                              "std_bc_upper")})
                row.update(boot_extra[hid])
            out["indirect"].append(row)
        res.tables["indirect"] = pd.DataFrame(out["indirect"])
        if sem.df == cfa.df:  # structurally saturated: the same model as the CFA, the same indices
            out["modification_indices"]["structural_note"] = ("the structural model is saturated (df equal to "
                                                              "the CFA's): its indices are the measurement model's")
        else:
            out["modification_indices"]["structural"] = structural.modification_indices(sem)
    out["fit_verdicts"] = {k: fit_indices.verdicts(v) for k, v in out["fit"].items()}
    last = sem if q.has_structure else cfa
    resid = fit_indices.residual_correlations(last.sample_cov, last.sigma)
    obs = last.structure.observed
    out["residual_correlations"] = {"model": "structural" if q.has_structure else "measurement",
                                    "items": [i for i in survey.items if i in obs],
                                    "matrix": {a: {b: resid[i, j] for j, b in enumerate(obs)} for i, a in enumerate(obs)}}
    out["warnings"] = warnings + [f"{fit} model: {w}" for fit in ("measurement", "structural")
                                  for key in ("problems", "warnings")
                                  for w in out["admissibility"].get(fit, {}).get(key, [])]
    last_fit = out["fit"].get("structural", out["fit"]["measurement"])
    out["sample_size"] = {"n": out["n_used"], "npar": last_fit.get("npar"), "recommended_n": _RECOMMENDED_N[0],
                          "source": _RECOMMENDED_N[1], "below_recommended": out["n_used"] < _RECOMMENDED_N[0]}
    out["provenance"] = _provenance(data, questionnaire, missing, likelihood, alpha, seed, bootstrap)
    out["conventions"] = out["provenance"]["conventions"]
    out["provenance"]["options"].update(ci=ci, ci_level=ci_level, estimator=estimator, lang=lang,
                                        bootstrap_max_failure=bootstrap_max_failure)
    for k in ("kmo", "bartlett"):
        if out.get(k) is None:
            out[k] = None
    if outdir is not None:
        models = {"measurement": q.measurement_syntax(), "one_factor": one_factor_syntax}
        if q.has_structure:
            models["structural"] = q.structural_syntax()
        write_outputs(res, outdir, formats, lang, inputs=(data, questionnaire), trail={
            "frame": x, "models": models, "chains": {h.id: h.chain for h in q.hypotheses if h.kind == "indirect"},
            "options": {"data": out["provenance"]["data"], "questionnaire": out["provenance"]["questionnaire"],
                        **out["provenance"]["options"]}, "versions": out["provenance"]["versions"]})
    return res


# The smallest sample commonly recommended for SEM (a caveat in the reports, not a refusal).
_RECOMMENDED_N = (200, "Kline (2016)")


def _bootstrap(sem, x, n_boot, seed, chains, level, progress, max_failure=0.05):
    from .bootstrap import bootstrap

    st = sem.structure
    t = st.table
    regs = t[t["op"] == "~"]
    pairs = []
    # every (X, Y) joined by a directed path: their total effect
    succ: dict[str, set] = {}
    for lhs, rhs in zip(regs["lhs"], regs["rhs"]):
        succ.setdefault(rhs, set()).add(lhs)
    for a in st.inner:
        seen, stack = set(), [a]
        while stack:
            for nxt in succ.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        pairs += [(a, b) for b in st.inner if b in seen]
    # the bootstrap itself keeps the rows the fit used (listwise: complete rows only)
    return bootstrap(sem, x, n_boot, seed, indirect=chains, totals=pairs, level=level, progress=progress,
                     max_failure=max_failure)


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
    eig = np.linalg.eigvalsh(_to_correlation(S))
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
    R = _to_correlation(sigma)
    if not np.all(np.isfinite(R)) or np.linalg.eigvalsh(R)[0] <= 1e-10:
        return None
    return reliability.Correlations(pd.DataFrame(R, index=x.columns, columns=x.columns), len(rows))


def _correlation(fit) -> pd.DataFrame:
    """Item correlations of the sample the fit used (EM estimates under FIML)."""
    return pd.DataFrame(_to_correlation(fit.sample_cov), index=fit.structure.observed, columns=fit.structure.observed)


def _to_correlation(S: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(S))
    return S / np.outer(sd, sd)


def _matrix(df: pd.DataFrame) -> dict:
    return {str(r): {str(c): df.loc[r, c] for c in df.columns} for r in df.index}


def _with_notes(df: pd.DataFrame, key: str, note: str) -> list[dict]:
    rows = df.to_dict(orient="records")
    for r in rows:
        if r.get(key) is None or (isinstance(r.get(key), float) and not np.isfinite(r[key])):
            r["note"] = note
    return rows


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


def _provenance(data, questionnaire, missing, likelihood, alpha, seed, bootstrap) -> dict:
    versions = {}
    for pkg in ("sem_upgrade", "semopy", "numpy", "scipy", "pandas", "pingouin", "factor_analyzer", "statsmodels"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"data": Path(data).name, "questionnaire": Path(questionnaire).name,
            "options": {"missing": missing, "likelihood": likelihood, "alpha": alpha, "seed": seed,
                        "bootstrap": bootstrap},
            "versions": versions, "python": platform.python_version(),
            "conventions": conventions(likelihood)}


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
