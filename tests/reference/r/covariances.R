# Reference values for the questionnaire's `covariances:` key (residual covariances of items and
# of constructs) and for omega with correlated residuals, written to ../covariances.json.
# Run from this folder:  Rscript covariances.R
# Versions: R 4.2.2, lavaan 0.6.14, semTools 0.5.6 (Debian bookworm r-cran-*).
# Data: ../liaoning_2012_survey.csv (the bundled survey), reverse-keyed nhe4 recoded 1 + 7 - x.
suppressPackageStartupMessages({library(lavaan); library(semTools); library(jsonlite)})
lia <- read.csv("../liaoning_2012_survey.csv")
lia$nhe4 <- 8 - lia$nhe4
source("../liaoning_model.R")  # lia_cfa
fm <- function(fit) { x <- as.list(fitMeasures(fit)); names(x) <- gsub(".", "_", names(x), fixed = TRUE); x }
pe <- function(fit) {
  p <- parameterEstimates(fit, standardized = TRUE)
  p[, c("lhs", "op", "rhs", "est", "se", "z", "pvalue", "std.all")]
}
# Two item residual covariances: one inside NSC (it changes NSC's omega), one across constructs.
item_covs <- "nsc1 ~~ nsc2\nkaq3 ~~ kcr3"
cfa_model <- paste(lia_cfa, item_covs, sep = "\n")
# Structural model whose two final outcomes (KCR, UPG) covary: declared here as the questionnaire
# declares it (`KCR ~~ UPG`), which is also lavaan's sem() default (auto.cov.y).
sem_model <- paste(cfa_model, "KAQ ~ NSC + NHE", "KCR ~ TST + KAQ", "UPG ~ KAQ", "KCR ~~ UPG", sep = "\n")
f_cfa <- cfa(cfa_model, data = lia)
f_sem <- sem(sem_model, data = lia)
out <- list(
  lavaan = as.character(packageVersion("lavaan")), semtools = as.character(packageVersion("semTools")),
  item_covariances = c("nsc1 ~~ nsc2", "kaq3 ~~ kcr3"),
  construct_covariances = I("KCR ~~ UPG"),
  paths = c("KAQ ~ NSC + NHE", "KCR ~ TST + KAQ", "UPG ~ KAQ"),
  call = paste("cfa(lia_cfa + item_covs, data = lia); sem(... + paths + 'KCR ~~ UPG', data = lia);",
               "compRelSEM(cfa fit, obs.var = FALSE)"),
  fit_measurement = fm(f_cfa), fit_structural = fm(f_sem),
  params_measurement = pe(f_cfa), params_structural = pe(f_sem),
  omega = as.list(compRelSEM(f_cfa, obs.var = FALSE)))
write_json(out, "../covariances.json", digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
