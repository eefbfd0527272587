# lavaan's own bootstrap draws and its percentile / bias-corrected intervals, for the interval
# functions of sem_upgrade.bootstrap (tests/test_bootstrap_intervals.py).
# Run from tests/reference:  Rscript r/bootstrap.R   (writes bootstrap.json)
# Versions used: R 4.2.2, lavaan 0.6.14 (Debian bookworm r-cran-lavaan).
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
pd <- read.csv("political_democracy.csv")
model <- "
  ind60 =~ x1 + x2 + x3
  dem60 =~ y1 + y2 + y3 + y4
  dem65 =~ y5 + y6 + y7 + y8
  dem60 ~ a*ind60
  dem65 ~ c*ind60 + b*dem60
  y1 ~~ y5
  y2 ~~ y4 + y6
  y3 ~~ y7
  y4 ~~ y8
  y6 ~~ y8
  ind := a*b
  total := c + a*b
"
set.seed(20121)
fit <- sem(model, data = pd, se = "bootstrap", bootstrap = 1000)
boot <- lavInspect(fit, "boot")
err <- attr(boot, "error.idx")
if (length(err)) boot <- boot[-err, , drop = FALSE]
defs <- t(apply(boot, 1, fit@Model@def.function))
pt <- parTable(fit)
est <- coef(fit)
draws <- list(a = boot[, "a"], b = boot[, "b"], c = boot[, "c"], ind = defs[, 1], total = defs[, 2])
estimates <- list(a = unname(est["a"]), b = unname(est["b"]), c = unname(est["c"]),
                  ind = unname(est["a"] * est["b"]), total = unname(est["c"] + est["a"] * est["b"]))
ci <- function(type, level) {
  p <- parameterEstimates(fit, boot.ci.type = type, level = level)
  p <- p[p$label %in% names(draws), ]
  setNames(lapply(seq_len(nrow(p)), function(i) c(p$ci.lower[i], p$ci.upper[i])), p$label)
}
out <- list(
  call = paste('set.seed(20121); fit <- sem(model, data = PoliticalDemocracy, se = "bootstrap", bootstrap = 1000);',
               'lavInspect(fit, "boot") and def.function of each draw;',
               'parameterEstimates(fit, boot.ci.type = "perc" / "bca.simple", level = .95 / .90)'),
  versions = list(R = paste(R.version$major, R.version$minor, sep = "."), lavaan = as.character(packageVersion("lavaan"))),
  n_draws = nrow(boot), n_failed = length(err),
  estimates = estimates, draws = lapply(draws, unname),
  perc_95 = ci("perc", 0.95), bc_95 = ci("bca.simple", 0.95),
  perc_90 = ci("perc", 0.90), bc_90 = ci("bca.simple", 0.90),
  z0 = lapply(names(draws), function(k) qnorm(mean(draws[[k]] < estimates[[k]])))
)
names(out$z0) <- names(draws)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE), "bootstrap.json")
