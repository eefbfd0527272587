"""The ``sem-upgrade`` command: run, validate, simulate.

A mistake in the user's input ends with one line on stderr and exit code 2; a bug keeps
its traceback.
"""

from __future__ import annotations

import argparse
import json
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
                   help="reports to write beside results.json, comma-separated (default html,md,xlsx)")

    v = sub.add_parser("validate", help="check a questionnaire and a survey file only", description=(
        "Check the questionnaire and every item cell of the survey; print the data-quality summary "
        "and the rejected rows. Fits nothing."))
    v.add_argument("data", help="survey file: .csv, .xlsx or .sav")
    v.add_argument("-q", "--questionnaire", required=True, help="questionnaire YAML file")

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
    return p


def main(argv: list[str] | None = None) -> int:
    args = _build().parse_args(argv)
    try:
        return {"run": _run, "validate": _validate, "simulate": _simulate}[args.command](args)
    except SemUpgradeError as exc:
        print(f"sem-upgrade: error: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from .pipeline import run

    res = run(args.data, args.questionnaire, args.outdir, missing=args.missing, likelihood=args.likelihood,
              alpha=args.alpha, seed=args.seed, bootstrap=args.bootstrap, ci=args.ci, ci_level=args.ci_level,
              bootstrap_max_failure=args.bootstrap_max_failure, progress=False if args.quiet else None,
              formats=[f.strip() for f in args.format.split(",") if f.strip()])
    d = res.data
    if args.data is None:
        print("Ran the bundled Liaoning study (218 SIMULATED firms drawn from a stated population model).")
    print(f"rows read {d['n_rows_read']}, rejected {d['n_rejected']}, used {d['n_used']} ({d['missing']})")
    for name, fit in d["fit"].items():
        shown = " ".join(f"{label} {_num(fit.get(key))}" for label, key in
                         [("chisq", "chisq"), ("df", "df"), ("CFI", "cfi"), ("TLI", "tli"),
                          ("RMSEA", "rmsea"), ("SRMR", "srmr")])
        print(f"{name:12s} {shown}")
    if "hypotheses" in res.tables:
        for _, h in res.tables["hypotheses"].iterrows():
            verdict = "supported" if h["supported"] else f"not supported ({h['reason']})"
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


def _validate(args) -> int:
    from .pipeline import validate

    q, survey = validate(args.data, args.questionnaire)
    quality = {k: v for k, v in survey.quality("listwise").items() if k != "missing_rate"}
    print(json.dumps(quality, ensure_ascii=False, indent=2))
    if len(survey.rejected):
        print(survey.rejected.to_string(index=False))
    print(f"{args.data}: {quality['n_valid']} valid rows of {quality['n_rows_read']}; questionnaire {q.name} is valid")
    return 0


def _simulate(args) -> int:
    from .pipeline import bundled_paths
    from .questionnaire import load_questionnaire
    from .simulate import recovery_study, simulate_survey

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
    out = Path(args.output or f"{q.name}_simulated.csv")
    if out.suffix.lower() == ".xlsx":
        data.to_excel(out, index=False)
    else:
        data.to_csv(out, index=False, float_format="%.0f", lineterminator="\n")
    print(f"wrote {len(data)} simulated respondents to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
