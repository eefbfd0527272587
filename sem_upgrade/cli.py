"""The ``sem-upgrade`` command: run, validate, simulate, power.

A mistake in the user's input ends with one line on stderr and exit code 2; a bug keeps
its traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .errors import SemUpgradeError

__all__ = ["main"]

DEFAULT_OUTDIR = "sem_upgrade_results"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _num(value, spec: str = ".3f") -> str:
    """A number for the console summary; a value that is not defined shows as 'n/a'."""
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, int) and spec == ".3f":  # counts such as df print whole
        return str(value)
    return format(value, spec)


def _p(value) -> str:
    """A p-value as papers print it: 'p < .001' or 'p = 0.018'."""
    if value is None:
        return "p n/a"
    return "p < .001" if value < 0.001 else f"p = {value:.3f}"


def _build() -> argparse.ArgumentParser:
    p = _Parser(prog="sem-upgrade", description="Structural equation modeling of questionnaire surveys "
                "(reliability, validity, CFA, SEM, hypotheses) with lavaan-equal numbers.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run the whole analysis", description=(
        "Run the whole pipeline on a survey file and its questionnaire: ingestion, reliability and "
        "validity, CFA, the structural model, fit indices and hypothesis tests. With no DATA and no -q it "
        "runs the bundled Liaoning study (218 simulated firms)."))
    r.add_argument("data", nargs="?", help="survey file: .csv, .xlsx or .sav")
    r.add_argument("-q", "--questionnaire", help="questionnaire YAML file")
    r.add_argument("-o", "--outdir", default=DEFAULT_OUTDIR, help=f"output folder (default: {DEFAULT_OUTDIR})")
    r.add_argument("--missing", choices=["listwise", "fiml"], default="listwise",
                   help="missing-data handling: complete cases (default, as lavaan) or full-information ML")
    r.add_argument("--likelihood", choices=["normal", "wishart"], default="normal",
                   help="normal: lavaan's N convention (default); wishart: AMOS's N - 1")
    r.add_argument("--estimator", default="ml", metavar="{ml,mlr,mlm}",
                   help="ml (default); mlr: robust (Huber-White) SEs and the Yuan-Bentler scaled test; "
                   "mlm: robust SEs and the Satorra-Bentler scaled test (lavaan's MLR / MLM)")
    r.add_argument("--alpha", type=float, default=0.05, help="significance level of hypothesis tests (default .05)")
    r.add_argument("--bootstrap", type=int, default=None, metavar="N",
                   help="bootstrap resamples for indirect and total effects (default 2000; "
                   "0 turns it off: delta method)")
    r.add_argument("--ci", choices=["percentile", "bc"], default="percentile",
                   help="bootstrap interval that judges indirect hypotheses (default percentile; bc = bias-corrected, as AMOS)")
    r.add_argument("--ci-level", type=float, default=0.95, help="confidence level (default .95)")
    r.add_argument("--bootstrap-max-failure", type=float, default=0.05, metavar="SHARE",
                   help="share of failed resamples above which the bootstrap is unstable and judges no "
                   "hypothesis (default .05)")
    r.add_argument("--seed", type=int, default=2012, help="random seed (default 2012)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--format", default="html,md,xlsx",
                   help="reports to write beside results.json, comma-separated: html, md, xlsx, docx "
                   "(default html,md,xlsx)")
    r.add_argument("--lang", default="en", help="language of the reports: en or zh (default en)")
    r.add_argument("--encoding", metavar="NAME", help="text encoding of a CSV file when detection fails "
                   "(e.g. cp1252, gb18030, big5, utf-16)")
    r.add_argument("--skip", default="", metavar="STAGE", help="stages not run, comma-separated: efa (the "
                   "exploratory factor analysis and parallel analysis, slow with hundreds of items)")

    v = sub.add_parser("validate", help="check a questionnaire and a survey file only", description=(
        "Check the questionnaire and every item cell of the survey; print a readable summary "
        "(or, with --json, one JSON document with the data quality and the rejected rows). Fits nothing."))
    v.add_argument("data", help="survey file: .csv, .xlsx or .sav")
    v.add_argument("-q", "--questionnaire", required=True, help="questionnaire YAML file")
    v.add_argument("--json", action="store_true", help="print one JSON document instead of the readable summary")
    v.add_argument("--encoding", metavar="NAME", help="text encoding of a CSV file when detection fails")

    s = sub.add_parser("simulate", help="draw a survey from a questionnaire's population model", description=(
        "Draw Likert answers from the questionnaire's population model (latent scores -> thresholds -> "
        "categories). With --replications R, run a recovery study instead: power, type I error and bias "
        "over R simulated surveys."))
    s.add_argument("-q", "--questionnaire", help="questionnaire YAML with a population section "
                   "(default: the bundled Liaoning study)")
    s.add_argument("--n", type=int, default=218, help="respondents per survey (default 218)")
    s.add_argument("--seed", type=int, default=2012, help="random seed (default 2012)")
    s.add_argument("-o", "--output", help="survey file to write (.csv or .xlsx); recovery report (.json) "
                   "with --replications")
    s.add_argument("--missing-rate", type=float, default=0.0, help="share of item cells blanked at random")
    s.add_argument("--no-reverse", action="store_true",
                   help="write reverse-keyed items already recoded (default: as respondents answer them)")
    s.add_argument("--replications", type=int, default=0, metavar="R", help="run a recovery study of R surveys")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_power(sub)
    return p


def _add_power(sub) -> None:
    w = sub.add_parser("power", help="sample-size planning: Monte Carlo power of every hypothesis", description=(
        "Draw R surveys of every N of a grid from the questionnaire's population model, fit the model to each, "
        "and report the power (or type-I error rate) of every hypothesis with its Monte Carlo interval, bias, "
        "coverage and failures; the smallest N reaching the target; and the analytic RMSEA power. Replications "
        "run as Dask tasks (a local cluster by default); the numbers do not depend on the workers."))
    w.add_argument("-q", "--questionnaire", help="questionnaire YAML with a population section "
                   "(default: the bundled Liaoning study)")
    w.add_argument("--n", default="100:400:50", help="sample sizes: START:STOP:STEP (stop included) or a list "
                   "100,150,218 (default 100:400:50)")
    w.add_argument("--replications", type=int, default=1000, metavar="R", help="surveys per sample size (default 1000)")
    w.add_argument("--target", type=float, default=0.80, help="target power (default .80)")
    w.add_argument("--alpha", type=float, default=0.05, help="significance level of the tests (default .05)")
    w.add_argument("--seed", type=int, default=2012, help="random seed (default 2012)")
    w.add_argument("--missing-rate", type=float, default=0.0, help="share of item cells blanked at random "
                   "(incomplete rows are analysed listwise)")
    w.add_argument("--estimator", default="ml", choices=["ml", "fiml"],
                   help="ml (default; with --missing-rate, incomplete rows dropped listwise) or fiml "
                   "(full-information ML, one replication at a time: slower)")
    w.add_argument("--indirect", choices=["montecarlo", "bootstrap"], default="montecarlo",
                   help="how indirect hypotheses are judged: Monte Carlo CI (default) or a bootstrap per replication")
    w.add_argument("--bootstrap", type=int, default=1000, metavar="B",
                   help="resamples per replication with --indirect bootstrap (default 1000)")
    w.add_argument("--scheduler", help="address of a running Dask scheduler, tcp://HOST:PORT (default: a local cluster)")
    w.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long to try to reach --scheduler before giving up (default 10)")
    w.add_argument("--workers", type=int, default=None, metavar="K",
                   help="worker processes of the local cluster (default: one per core; 0: no cluster, this process)")
    w.add_argument("--resume", action="store_true", help="keep the tasks already finished in OUTDIR; run only the rest")
    w.add_argument("-o", "--outdir", default="sem_upgrade_power", help="output folder (default: sem_upgrade_power)")
    w.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv: list[str] | None = None) -> int:
    args = _build().parse_args(argv)
    try:
        return {"run": _run, "validate": _validate, "simulate": _simulate, "power": _power}[args.command](args)
    except SemUpgradeError as exc:
        print(f"sem-upgrade: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line; the output folder keeps its previous run
        print("sem-upgrade: interrupted", file=sys.stderr)
        return 130


def _run(args) -> int:
    from .pipeline import run

    res = run(args.data, args.questionnaire, args.outdir, missing=args.missing, likelihood=args.likelihood,
              estimator=args.estimator,
              alpha=args.alpha, seed=args.seed, bootstrap=args.bootstrap, ci=args.ci, ci_level=args.ci_level,
              bootstrap_max_failure=args.bootstrap_max_failure, progress=False if args.quiet else None,
              formats=[f.strip() for f in args.format.split(",") if f.strip()], lang=args.lang,
              encoding=args.encoding, skip=[s.strip() for s in args.skip.split(",") if s.strip()])
    d = res.data
    if args.data is None:
        print("Ran the bundled Liaoning study (218 SIMULATED firms drawn from a stated population model).")
    _print_source(d["data_quality"])
    print(f"rows read {d['n_rows_read']}, rejected {d['n_rejected']}, used {d['n_used']} ({d['missing']})")
    for name, fit in d["fit"].items():
        kind = "robust" if "cfi_robust" in fit else "scaled"  # FIML: scaled indices only
        keys = ([("chisq (scaled)", "chisq_scaled"), ("df", "df"), (f"CFI ({kind})", f"cfi_{kind}"),
                 (f"TLI ({kind})", f"tli_{kind}"), (f"RMSEA ({kind})", f"rmsea_{kind}"), ("SRMR", "srmr")]
                if "chisq_scaled" in fit else
                [("chisq", "chisq"), ("df", "df"), ("CFI", "cfi"), ("TLI", "tli"), ("RMSEA", "rmsea"), ("SRMR", "srmr")])
        shown = " ".join(f"{label} {_num(fit.get(key))}" for label, key in keys)
        print(f"{name:12s} {shown}")
    if "hypotheses" in res.tables:
        for _, h in res.tables["hypotheses"].iterrows():
            reason = str(h["reason"] or "")
            verdict = ("supported" if h["supported"] else reason if reason.startswith("not tested")
                       else f"not supported ({reason})")
            evidence = (_p(h["pvalue"]) if h["method"] != f"bootstrap-{args.ci}"
                        else f"{args.ci_level:.0%} CI [{_num(h['ci_lower'], '+.3f')}, "
                             f"{_num(h['ci_upper'], '+.3f')}]")
            print(f"  {h['id']:4s} {h['effect']:28s} B {_num(h['estimate'], '+.3f')} "
                  f"(std {_num(h['std_estimate'], '+.3f')})  {evidence}  {verdict}")
    if "bootstrap" in d:
        b = d["bootstrap"]
        print(f"bootstrap: {b['n_ok']} of {b['n_requested']} resamples fitted, {b['n_failed']} failed, "
              f"{b['n_inadmissible']} inadmissible (kept), seed {b['seed']}, {b['interval_for_hypotheses']} "
              f"intervals judge hypotheses, {res.timing['bootstrap_seconds']:.1f} s"
              + (" - UNSTABLE: its intervals judge no hypothesis" if b["unstable"] else ""))
    for w in d["warnings"]:
        print(f"warning: {w}")
    print(f"results: {Path(args.outdir).resolve() / 'results.json'}")
    return 0


def _print_source(quality: dict) -> None:
    """Say which sheet of a workbook, or which encoding of a CSV file, was read, when it was a choice."""
    if quality.get("sheet"):
        others = ", ".join(f"'{s}'" for s in quality.get("other_sheets") or [])
        print(f"read sheet '{quality['sheet']}' of {Path(str(quality['source']).split(' (sheet')[0]).name}"
              + (f" (other sheets: {others})" if others else ""))
    if quality.get("encoding") not in (None, "utf-8", "utf-8-sig"):
        print(f"read as {quality['encoding']} text")
    formulas = quality.get("formula_cells_without_value") or {}
    if formulas.get("count"):
        print(f"warning: {formulas['count']} formula cell(s) without a saved value ({', '.join(formulas['cells'])}): "
              "their rows were rejected; open and save the workbook in Excel")


def _validate(args) -> int:
    from .pipeline import validate

    q, survey = validate(args.data, args.questionnaire, encoding=args.encoding)
    quality = {k: v for k, v in survey.quality("listwise").items() if k != "missing_rate"}
    if not args.json:
        _print_source(quality)
    hypotheses = [{"id": h.id, "effect": h.effect, "sign": h.expected, "sign_given": h.sign_given}
                  for h in q.hypotheses]
    if args.json:  # one format per call: the JSON document alone
        doc = {"data": str(args.data), "questionnaire": q.name, "valid": True, "data_quality": quality,
               "constructs": {c.name: list(c.items) for c in q.constructs.values()}, "hypotheses": hypotheses,
               "rejected": survey.rejected.to_dict(orient="records")}
        print(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
        return 0
    print(f"{args.data}: {quality['n_rows_read']} rows read, {quality['n_valid']} valid, "
          f"{quality['n_rejected']} rejected")
    for reason, count in (quality.get("rejected_by_reason") or {}).items():
        print(f"  rejected for {reason}: {count}")
    if len(survey.rejected):
        print("  (rows and reasons: rejected_rows.csv of a run, or validate --json)")
    print(f"questionnaire {q.name}: {len(q.constructs)} constructs, {len(q.items)} items, "
          f"{len(q.hypotheses)} hypotheses; valid")
    for h in hypotheses:
        assumed = "" if h["sign_given"] else " (no sign given: + assumed)"
        print(f"  {h['id']:5s} {h['effect']}  expected sign {h['sign']}{assumed}")
    return 0


def _simulate(args) -> int:
    from .pipeline import bundled_paths
    from .questionnaire import load_questionnaire
    from .simulate import recovery_study, simulate_survey

    if args.seed < 0:
        raise SemUpgradeError(f"--seed: must be a whole number >= 0, got {args.seed}")
    if args.n < 1:
        raise SemUpgradeError(f"--n: must be a whole number >= 1, got {args.n}")
    if args.replications is not None and args.replications < 0:
        raise SemUpgradeError(f"--replications: must be a whole number >= 0, got {args.replications}")
    target = Path(args.output) if args.output else None
    if target is not None:
        if not target.parent.is_dir():
            raise SemUpgradeError(f"{target}: the folder {target.parent} does not exist")
        allowed = (".json",) if args.replications else (".csv", ".txt", ".xlsx")
        if target.suffix.lower() not in allowed:
            raise SemUpgradeError(f"{target}: -o must end in {' or '.join(allowed)} (simulate writes "
                                  f"{'JSON' if args.replications else 'CSV or Excel'}, not {target.suffix or 'no extension'})")
    q = load_questionnaire(args.questionnaire or bundled_paths()[1])
    if args.replications:
        rep = recovery_study(q, args.n, args.replications, args.seed, progress=False if args.quiet else None)
        text = json.dumps(rep, indent=2, ensure_ascii=False)
        if args.output:
            Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"recovery study: {rep['n_ok']} of {rep['replications']} surveys of {rep['n']} fitted")
        for h in rep["hypotheses"]:
            print(f"  {h['id']:4s} {h['effect']:28s} truth {h['truth']:+.3f}  mean {h['mean_std_estimate']:+.3f}  "
                  f"bias {h['bias']:+.3f}  {h['kind_of_rate']} {h['supported_rate']:.2f}")
        return 0
    data = simulate_survey(q, args.n, args.seed, missing_rate=args.missing_rate, reverse=not args.no_reverse)
    safe = re.sub(r"[^\w.-]+", "_", q.name).strip("._") or "questionnaire"  # a name is not a path
    out = Path(args.output or f"{safe}_simulated.csv")
    if out.suffix.lower() == ".xlsx":
        data.to_excel(out, index=False)
    else:
        data.to_csv(out, index=False, float_format="%.0f", lineterminator="\n")
    print(f"wrote {len(data)} simulated respondents to {out}")
    return 0


def _power(args) -> int:
    from .power import power

    res = power(args.questionnaire, n=args.n, replications=args.replications, target=args.target, alpha=args.alpha,
                seed=args.seed, missing_rate=args.missing_rate, estimator=args.estimator, indirect=args.indirect,
                bootstrap=args.bootstrap, scheduler=args.scheduler, workers=args.workers, resume=args.resume,
                outdir=args.outdir, progress=False if args.quiet else None, connect_timeout=args.connect_timeout)
    print(f"power study: {res.replications} replications at N = {', '.join(map(str, res.grid))} "
          f"({res.settings['seconds']:.1f} s)")
    for h in res.hypotheses:
        rates = " ".join(_num(r["rate"], ".2f") for r in h["by_n"])
        what = "power" if h["truth"] != 0 else "type I"
        need = h["min_n"] if h["min_n"] is not None else ("-" if h["truth"] == 0 else "not reached")
        print(f"  {h['id']:4s} {h['effect']:28s} truth {h['truth']:+.3f}  {what:6s} {rates}  smallest N {need}")
    rp = res.rmsea_power
    print(f"smallest N for every true effect at power {args.target:.2f}: "
          f"{res.min_n_all if res.min_n_all is not None else 'not reached in the grid'}")
    print(f"RMSEA (df {rp['df']}): N for close-fit power {args.target:.2f}: {rp['n_close']}; not-close fit: {rp['n_not_close']}")
    print(f"results: {Path(args.outdir).resolve() / 'power.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
