# Reference values for the robust ML estimators (MLM: Satorra-Bentler; MLR: Huber-White SEs and
# the Yuan-Bentler (Mplus) scaled test), with their scaled and robust fit indices.
# Run from tests/reference:  Rscript r/estimators.R   (writes estimators.json).
# Versions: R 4.2.2, lavaan 0.6.14 (Debian bookworm r-cran-*).
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
fm <- function(fit) { x <- as.list(fitMeasures(fit)); names(x) <- gsub(".", "_", names(x), fixed = TRUE); x }
pe <- function(fit) {
  p <- parameterEstimates(fit, standardized = TRUE)
  p[, c("lhs", "op", "rhs", "est", "se", "z", "pvalue", "std.all")]
}
hs <- read.csv("holzinger_swineford.csv")
hsm <- read.csv("holzinger_swineford_missing.csv")
pd <- read.csv("political_democracy.csv")
hs_model <- "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"
pd_model <- "
  ind60 =~ x1 + x2 + x3
  dem60 =~ y1 + y2 + y3 + y4
  dem65 =~ y5 + y6 + y7 + y8
  dem60 ~ ind60
  dem65 ~ ind60 + dem60
  y1 ~~ y5
  y2 ~~ y4 + y6
  y3 ~~ y7
  y4 ~~ y8
  y6 ~~ y8
"
out <- list()
case <- function(call, fit) list(call = call, fit = fm(fit), params = pe(fit))
out$hs_mlm <- case('cfa(hs_model, data = hs, estimator = "MLM")', cfa(hs_model, data = hs, estimator = "MLM"))
out$hs_mlr <- case('cfa(hs_model, data = hs, estimator = "MLR")', cfa(hs_model, data = hs, estimator = "MLR"))
out$pd_mlm <- case('sem(pd_model, data = pd, estimator = "MLM")', sem(pd_model, data = pd, estimator = "MLM"))
out$pd_mlr <- case('sem(pd_model, data = pd, estimator = "MLR")', sem(pd_model, data = pd, estimator = "MLR"))
out$hs_missing_mlr <- case('cfa(hs_model, data = hs_missing, estimator = "MLR", missing = "ml")',
                           cfa(hs_model, data = hsm, estimator = "MLR", missing = "ml"))
# Scaled chi-square difference (Satorra & Bentler 2001): one-factor against three-factor CFA.
one <- "g =~ x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9"
f3 <- cfa(hs_model, data = hs, estimator = "MLM"); f1 <- cfa(one, data = hs, estimator = "MLM")
t <- as.data.frame(lavTestLRT(f3, f1, method = "satorra.bentler.2001"))
out$hs_mlm_diff <- list(call = 'lavTestLRT(cfa(hs_model, MLM), cfa(one_factor, MLM), method = "satorra.bentler.2001")',
                        chisq_diff = t[2, "Chisq diff"], df_diff = t[2, "Df diff"], pvalue = t[2, "Pr(>Chisq)"])
f3r <- cfa(hs_model, data = hs, estimator = "MLR"); f1r <- cfa(one, data = hs, estimator = "MLR")
t <- as.data.frame(lavTestLRT(f3r, f1r, method = "satorra.bentler.2001"))
out$hs_mlr_diff <- list(call = 'lavTestLRT(cfa(hs_model, MLR), cfa(one_factor, MLR), method = "satorra.bentler.2001")',
                        chisq_diff = t[2, "Chisq diff"], df_diff = t[2, "Df diff"], pvalue = t[2, "Pr(>Chisq)"])
# The bundled Liaoning survey (nhe4 recoded 1 + 7 - x), structural model, MLR; and lavaan's time
# for one MLR fit (median of 20) on a 2-core machine, for the speed benchmark.
li <- read.csv("liaoning_2012_survey.csv"); li$nhe4 <- 1 + 7 - li$nhe4
source("liaoning_model.R")
fit_li <- sem(lia_sem, data = li, estimator = "MLR")
secs <- median(sapply(1:20, function(i) system.time(sem(lia_sem, data = li, estimator = "MLR"))[["elapsed"]]))
out$liaoning_mlr <- c(case('sem(lia_sem, data = bundled survey, estimator = "MLR")', fit_li),
                      list(lavaan_seconds_per_fit = secs))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), "estimators.json")
