"""A trail the examiner can rerun: the cleaned data, each model's lavaan syntax and an R script.

``OUTDIR/reproduce/`` holds

* ``cleaned.csv``: the rows and items exactly as the models saw them (reverse-keyed items recoded,
  rejected rows out, the missing-data policy applied);
* ``measurement.lav``, ``structural.lav``, ``one_factor.lav``: the lavaan model syntax of each
  model the run fitted (the structural model with its paths labelled, and the indirect effects
  of the hypotheses defined with ``:=``);
* ``refit.R``: refits them with lavaan and semTools under the run's options (``missing = "ml"``
  for FIML, ``likelihood = "wishart"`` for AMOS's N - 1 convention, the bootstrap with the same
  count and interval type) and prints the figures the reports give;
* ``command.txt``: the command, options and package versions that produced the run.

The seed cannot carry over: R's random numbers are not numpy's, so bootstrap intervals agree with
R's within Monte Carlo error only; every deterministic number agrees to the printed precision.
"""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

import pandas as pd

__all__ = ["equivalent_command", "labelled_structural_syntax", "r_script", "write_reproduce"]

_R_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.]*")


def labelled_structural_syntax(syntax: str, chains: dict[str, tuple[str, ...]]) -> tuple[str, dict[str, str]]:
    """The structural syntax with every regression path labelled and each indirect effect defined.

    Parameters
    ----------
    syntax : str
        lavaan syntax whose regressions are written ``Y ~ X1 + X2`` (one outcome a line).
    chains : dict
        Hypothesis id -> chain of construct names (X, M, ..., Y).

    Returns
    -------
    (syntax, labels)
        ``labels`` maps ``"Y~X"`` to its label ``b1``, ``b2``, ...; each chain becomes
        ``ind_<k> := b.. * b..`` with ``<k>`` its position (hypothesis ids need not be R names).
    """
    labels: dict[str, str] = {}
    lines = []
    for line in syntax.splitlines():
        m = re.fullmatch(r"\s*(\S+)\s+~\s+(.+)", line)
        if m is None or "~~" in line:
            lines.append(line)
            continue
        lhs, terms = m.group(1), [t.strip() for t in m.group(2).split("+")]
        out = []
        for t in terms:
            if "*" in t:  # already fixed or labelled by the questionnaire
                out.append(t)
                continue
            lab = labels.setdefault(f"{lhs}~{t}", f"b{len(labels) + 1}")
            out.append(f"{lab}*{t}")
        lines.append(f"{lhs} ~ {' + '.join(out)}")
    for k, (hid, chain) in enumerate(chains.items(), start=1):
        parts = [labels.get(f"{b}~{a}") for a, b in pairwise(chain)]
        if all(parts):
            # lavaan 0.6.14 reads '<' and '>' even in a trailing comment: a comment line of its own
            lines.append(f"# ind_{k} is {hid}: {', '.join(chain)}")
            lines.append(f"ind_{k} := {' * '.join(parts)}")
    return "\n".join(lines), labels


def _r_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def r_script(models: dict[str, str], options: dict) -> str:
    """An R script refitting ``models`` (name -> file name of its syntax) on cleaned.csv.

    ``options``: ``missing`` (listwise / fiml), ``likelihood`` (normal / wishart), ``bootstrap``
    (count, 0 for none), ``ci`` (percentile / bc), ``ci_level``, ``seed``.
    """
    args = []
    if options.get("missing") == "fiml":
        args.append('missing = "ml"')
    if options.get("likelihood") == "wishart":
        args.append('likelihood = "wishart"')
    if options.get("estimator", "ml") != "ml":
        args.append(f'estimator = "{str(options["estimator"]).upper()}"')
    extra = "".join(f", {a}" for a in args)
    boot = int(options.get("bootstrap") or 0)
    ci_type = "bca.simple" if options.get("ci") == "bc" else "perc"
    level = float(options.get("ci_level", 0.95))
    lines = [
        "# Refit this run's models with lavaan and semTools. Run from this folder:  Rscript refit.R",
        "# Needs: install.packages(c(\"lavaan\", \"semTools\"))",
        "suppressPackageStartupMessages({library(lavaan); library(semTools)})",
        'd <- read.csv("cleaned.csv", check.names = FALSE, fileEncoding = "UTF-8")',
        "show <- function(fit, title) {",
        '  cat("\\n====", title, "====\\n")',
        '  print(fitMeasures(fit, c("chisq", "df", "pvalue", "cfi", "tli", "rmsea", "rmsea.ci.lower",',
        '                           "rmsea.ci.upper", "srmr", "gfi", "agfi", "aic", "bic")))',
        "  print(parameterEstimates(fit, standardized = TRUE)[, c(\"lhs\", \"op\", \"rhs\", \"est\", \"se\", \"z\",",
        "                                                      \"pvalue\", \"std.all\")], digits = 4)",
        "}",
    ]
    if "measurement" in models:
        lines += [
            f'm_meas <- paste(readLines({_r_string(models["measurement"])}, encoding = "UTF-8"), collapse = "\\n")',
            f"fit_meas <- cfa(m_meas, data = d{extra})",
            'show(fit_meas, "measurement model (CFA)")',
            'cat("\\nComposite reliability / omega (model-implied total variance, as reported):\\n")',
            "print(compRelSEM(fit_meas, obs.var = FALSE))",
            'cat("\\nOmega with the observed total variance (semTools default):\\n")',
            "print(compRelSEM(fit_meas))",
            'cat("\\nHTMT (classic, arithmetic means) and HTMT2 (geometric means):\\n")',
            "print(htmt(m_meas, data = d, htmt2 = FALSE))",
            "print(htmt(m_meas, data = d, htmt2 = TRUE))",
        ]
    if "one_factor" in models:
        lines += [
            f'm_one <- paste(readLines({_r_string(models["one_factor"])}, encoding = "UTF-8"), collapse = "\\n")',
            f"fit_one <- cfa(m_one, data = d{extra})",
            'cat("\\n==== one-factor CFA (common-method check) ====\\n")',
            'print(fitMeasures(fit_one, c("chisq", "df", "cfi", "rmsea")))',
            "print(lavTestLRT(fit_one, fit_meas))",
        ]
    if "structural" in models:
        lines += [
            f'm_sem <- paste(readLines({_r_string(models["structural"])}, encoding = "UTF-8"), collapse = "\\n")',
            f"fit_sem <- sem(m_sem, data = d{extra})",
            'show(fit_sem, "structural model")',
            'cat("\\nR-squared:\\n"); print(lavInspect(fit_sem, "r2"))',
        ]
        if boot > 0:
            lines += [
                f"set.seed({int(options.get('seed', 0))})  # R's generator: intervals agree within Monte Carlo error",
                f'fit_boot <- sem(m_sem, data = d{extra}, se = "bootstrap", bootstrap = {boot})',
                f'pe <- parameterEstimates(fit_boot, boot.ci.type = "{ci_type}", level = {level}, standardized = TRUE)',
                'cat("\\n==== indirect effects, bootstrap ({ci}) ====\\n")'.replace("{ci}", ci_type),
                'print(pe[pe$op == ":=", c("lhs", "est", "se", "ci.lower", "ci.upper", "std.all")], digits = 4)',
            ]
    return "\n".join(lines) + "\n"


def equivalent_command(options: dict) -> list[str]:
    """The ``sem-upgrade run`` command that repeats a run with these options (API runs included)."""
    cmd = ["sem-upgrade", "run"]
    if options.get("data") and options.get("questionnaire"):
        cmd += [str(options["data"]), "-q", str(options["questionnaire"])]
    flags = {"missing": "--missing", "likelihood": "--likelihood", "bootstrap": "--bootstrap", "seed": "--seed",
             "ci": "--ci", "ci_level": "--ci-level", "alpha": "--alpha", "estimator": "--estimator", "lang": "--lang",
             "bootstrap_max_failure": "--bootstrap-max-failure"}
    cmd += [f"{flag} {options[key]}" for key, flag in flags.items() if options.get(key) is not None]
    return cmd


def write_reproduce(folder: str | Path, frame: pd.DataFrame, models: dict[str, str],
                    chains: dict[str, tuple[str, ...]], options: dict, versions: dict,
                    command: list[str] | None = None) -> Path:
    """Write ``folder`` (normally ``OUTDIR/reproduce``) as described in the module docstring.

    Parameters
    ----------
    frame : DataFrame
        The rows and items the models were fitted to (NaN where a cell is missing, under FIML).
    models : dict
        ``measurement``, ``structural`` (optional), ``one_factor`` (optional): lavaan syntax.
    chains : dict
        Indirect hypotheses (id -> chain) to define in the structural syntax.
    options, versions : dict
        The run's options (see :func:`r_script`) and package versions.
    command : list of str, optional
        The command line; defaults to ``sys.argv``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "cleaned.csv", index=False, encoding="utf-8", na_rep="")
    files = {}
    for name, syntax in models.items():
        if name == "structural":
            syntax, _ = labelled_structural_syntax(syntax, chains)
        files[name] = f"{name}.lav"
        (folder / files[name]).write_text(syntax + "\n", encoding="utf-8")
    (folder / "refit.R").write_text(r_script(files, options), encoding="utf-8")
    if command is None:
        command = equivalent_command(options)
    lines = ["command: " + " ".join(command), "options: " + json.dumps(options, sort_keys=True, default=str)]
    lines += [f"{k}: {v}" for k, v in versions.items()]
    (folder / "command.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
