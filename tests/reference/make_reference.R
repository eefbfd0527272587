# Extra reference values for sem_upgrade's tests, made once with R and stored as JSON.
# Run from this folder:  Rscript make_reference.R
# Versions used: R 4.2.2, lavaan 0.6.14, semTools 0.5.6, psych 2.2.9 (Debian bookworm r-cran-*).
# Data: ../../../shared/reference/*.csv (lavaan's HolzingerSwineford1939 and PoliticalDemocracy).
suppressPackageStartupMessages({library(lavaan); library(semTools); library(psych); library(jsonlite)})
ref <- "../../../shared/reference"
hs  <- read.csv(file.path(ref, "holzinger_swineford.csv"))
pd  <- read.csv(file.path(ref, "political_democracy.csv"))
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
fm <- function(fit) { x <- as.list(fitMeasures(fit)); names(x) <- gsub(".", "_", names(x), fixed = TRUE); x }
pe <- function(fit) {
  p <- parameterEstimates(fit, standardized = TRUE)
  p[, c("lhs", "op", "rhs", "est", "se", "z", "pvalue", "std.all")]
}
mi_top <- function(fit, k = 20) {
  m <- modindices(fit, sort. = TRUE, maximum.number = k)
  m[, c("lhs", "op", "rhs", "mi", "epc", "sepc.all")]
}
out <- list()

# 1. AMOS convention: likelihood = "wishart" (N - 1)
fit_w <- cfa(hs_model, data = hs, likelihood = "wishart")
out$hs_wishart <- list(call = 'cfa(hs_model, data = hs, likelihood = "wishart")',
                       fit = fm(fit_w), params = pe(fit_w))
fit_pw <- sem(pd_model, data = pd, likelihood = "wishart")
out$pd_wishart <- list(call = 'sem(pd_model, data = pd, likelihood = "wishart")',
                       fit = fm(fit_pw), params = pe(fit_pw))

# 2. Modification indices (expected information, lavaan defaults)
fit_hs <- cfa(hs_model, data = hs)
fit_pd <- sem(pd_model, data = pd)
out$hs_modindices <- list(call = "modindices(cfa(hs_model, data = hs), sort. = TRUE, maximum.number = 20)",
                          table = mi_top(fit_hs))
out$pd_modindices <- list(call = "modindices(sem(pd_model, data = pd), sort. = TRUE, maximum.number = 20)",
                          table = mi_top(fit_pd))

# 3. Omega (model-implied total variance) per factor of the CFA
out$hs_omega <- list(call = "compRelSEM(cfa(hs_model, data = hs), obs.var = FALSE)",
                     omega = as.list(compRelSEM(fit_hs, obs.var = FALSE)))

# 4. KMO and Bartlett on the nine HS items
items <- hs[, paste0("x", 1:9)]
k <- KMO(items)
b <- cortest.bartlett(cor(items), n = nrow(items))
out$hs_kmo <- list(call = "psych::KMO(hs[, x1..x9]); psych::cortest.bartlett(cor(items), n = 301)",
                   overall = k$MSA, items = as.list(k$MSAi),
                   bartlett = list(chi2 = b$chisq, df = b$df, pvalue = b$p.value))

# 5. Standardized loadings' standard errors and the one-factor CFA (common-method check)
one <- cfa(paste("g =~", paste0("x", 1:9, collapse = " + ")), data = hs)
out$hs_one_factor <- list(call = "cfa('g =~ x1 + ... + x9', data = hs)", fit = fm(one),
                          chisq_diff = anova(one, fit_hs)[2, "Chisq diff"],
                          df_diff = anova(one, fit_hs)[2, "Df diff"])


# 6. Delta-method (default se) indirect and total effects, Political Democracy
pd_lab <- sub("dem60 ~ ind60", "dem60 ~ a*ind60", pd_model, fixed = TRUE)
pd_lab <- sub("dem65 ~ ind60 + dem60", "dem65 ~ c*ind60 + b*dem60", pd_lab, fixed = TRUE)
pd_lab <- paste(pd_lab, "ind := a*b", "total := c + a*b", sep = "\n")
fit_lab <- sem(pd_lab, data = pd)
dd <- parameterEstimates(fit_lab, standardized = TRUE)
dd <- dd[dd$op == ":=", c("lhs", "est", "se", "z", "pvalue", "ci.lower", "ci.upper", "std.all")]
out$pd_defined_delta <- list(call = "sem(model with a, b, c labels; ind := a*b; total := c + a*b, data = pd)",
                             table = dd)

# 7. The bundled Liaoning survey (218 simulated firms; copied here as liaoning_2012_survey.csv).
#    Reverse-keyed nhe4 recoded as 1 + 7 - x, as the questionnaire says.
lia <- read.csv("liaoning_2012_survey.csv")
lia$nhe4 <- 8 - lia$nhe4
source("liaoning_model.R")  # lia_cfa, lia_sem
f_cfa <- cfa(lia_cfa, data = lia)
f_sem <- sem(lia_sem, data = lia)
blocks <- list(NSC = paste0("nsc", 1:4), NHE = paste0("nhe", 1:4), TST = paste0("tst", 1:4),
               KAQ = paste0("kaq", 1:4), KCR = paste0("kcr", 1:4), UPG = paste0("upg", 1:3))
alphas <- lapply(blocks, function(it) {
  a <- psych::alpha(lia[, it], warnings = FALSE)
  list(alpha = a$total$raw_alpha, std_alpha = a$total$std.alpha,
       citc = as.list(setNames(a$item.stats$r.drop, it)),
       alpha_if_deleted = as.list(setNames(a$alpha.drop$raw_alpha, it)))
})
out$liaoning <- list(
  call = "cfa(lia_cfa, data = lia); sem(lia_sem, data = lia); psych::alpha per construct; semTools::htmt(lia_cfa, lia, htmt2 = FALSE)",
  fit_measurement = fm(f_cfa), fit_structural = fm(f_sem),
  params_structural = pe(f_sem), params_measurement = pe(f_cfa),
  r2 = as.list(lavInspect(f_sem, "r2")),
  htmt = unclass(htmt(lia_cfa, data = lia, htmt2 = FALSE)),
  omega = as.list(compRelSEM(f_cfa, obs.var = FALSE)),
  alpha = alphas,
  modindices_structural = mi_top(f_sem)
)

# 8. Modification indices under FIML (lavaan's default information for missing = "ml": observed)
hsm <- read.csv(file.path(ref, "holzinger_swineford_missing.csv"))
fit_hsm <- cfa(hs_model, data = hsm, missing = "ml")
out$hsm_fiml_modindices <- list(
  call = 'modindices(cfa(hs_model, data = hsm, missing = "ml"), sort. = TRUE, maximum.number = 20)',
  information = lavInspect(fit_hsm, "options")$information[1],
  table = mi_top(fit_hsm))

# 9. Two constructs that are only outcomes: lavaan's sem() frees their residual covariance
#    (auto.cov.y), here KCR ~~ UPG. Bundled survey, both likelihoods' defaults (normal).
lia_two <- paste(lia_cfa, "KAQ ~ NSC + NHE", "KCR ~ TST + KAQ", "UPG ~ KAQ", sep = "\n")
f_two <- sem(lia_two, data = lia)
out$liaoning_two_outcomes <- list(
  call = 'sem(paste(lia_cfa, "KAQ ~ NSC + NHE", "KCR ~ TST + KAQ", "UPG ~ KAQ", sep = "\\n"), data = lia)',
  fit = fm(f_two), params = pe(f_two))

# 10. KMO and Bartlett on the EM (saturated FIML) correlations when no row is complete: the bundled
#     survey with 25% of cells blanked at random (liaoning_25pct_missing.csv, written by
#     numpy default_rng(25): cell missing when uniform < .25), nhe4 recoded.
lm25 <- read.csv("liaoning_25pct_missing.csv")
lm25$nhe4 <- 8 - lm25$nhe4
em25 <- lavCor(lm25[, names(lm25)[-1]], missing = "ml", output = "cor")
out$liaoning_25pct_em_kmo <- list(
  call = 'psych::KMO(R); psych::cortest.bartlett(R, n = 218), R = lavCor(x, missing = "ml", output = "cor")',
  overall = KMO(em25)$MSA, items = as.list(KMO(em25)$MSAi),
  bartlett_chisq = cortest.bartlett(em25, n = nrow(lm25))$chisq, n = nrow(lm25))

write_json(out, "lavaan_extra.json", digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")

# Every other stored value is made by one script per topic in r/; each is run from the folder its
# header names (this folder, r/, or the repository root).
scripts <- list(
  "."     = c("r/bootstrap.R", "r/estimators.R", "r/models.R", "r/multigroup.R", "r/omega.R"),
  "r"     = c("covariances.R", "efa.R"),
  "../.." = c("tests/reference/r/power.R", "tests/reference/r/partable.R"))
for (dir in names(scripts)) for (f in scripts[[dir]]) {
  here <- setwd(dir)
  message("running ", f)
  source(f, local = new.env())
  setwd(here)
}
