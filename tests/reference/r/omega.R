# Omega with the observed total variance (semTools' default, obs.var = TRUE) beside the
# model-implied one the reports lead with (obs.var = FALSE).
# Run from tests/reference:  Rscript r/omega.R   (writes omega.json).
# Versions: R 4.2.2, lavaan 0.6.14, semTools 0.5.6 (Debian bookworm r-cran-*).
suppressPackageStartupMessages({library(lavaan); library(semTools); library(jsonlite)})
hs <- read.csv("holzinger_swineford.csv")
hs_model <- "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"
fit_hs <- cfa(hs_model, data = hs)
li <- read.csv("liaoning_2012_survey.csv")
li$nhe4 <- 1 + 7 - li$nhe4
source("liaoning_model.R")  # defines lia_cfa
fit_li <- cfa(lia_cfa, data = li)
out <- list(
  hs = list(call = "compRelSEM(cfa(hs_model, data = hs)) and compRelSEM(..., obs.var = FALSE)",
            omega_obs = as.list(compRelSEM(fit_hs)), omega_model = as.list(compRelSEM(fit_hs, obs.var = FALSE))),
  liaoning = list(call = "compRelSEM(cfa(lia_cfa, data = bundled survey, nhe4 recoded)), obs.var TRUE and FALSE",
                  omega_obs = as.list(compRelSEM(fit_li)), omega_model = as.list(compRelSEM(fit_li, obs.var = FALSE))))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "omega.json")
