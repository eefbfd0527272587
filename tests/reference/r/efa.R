# Reference values for the exploratory stage (EFA, parallel analysis, Harman's single-factor test),
# written to ../efa.json. Run from this folder:  Rscript efa.R
# Versions: R 4.2.2, psych 2.2.9, GPArotation (Debian bookworm r-cran-*).
# The project's EFA is minimum-residual extraction from the item correlations with an oblimin
# rotation (gamma = 0), i.e. psych::fa(r, nfactors, fm = "minres", rotate = "oblimin").
# Data: ../holzinger_swineford.csv (x1..x9) and ../liaoning_2012_survey.csv (nhe4 recoded 8 - x).
suppressPackageStartupMessages({library(psych); library(GPArotation); library(jsonlite)})
hs <- read.csv("../holzinger_swineford.csv")[, paste0("x", 1:9)]
lia <- read.csv("../liaoning_2012_survey.csv")
lia$nhe4 <- 8 - lia$nhe4
lia <- lia[, setdiff(names(lia), "firm_id")]
case <- function(x, k) {
  r <- cor(x)
  unrot <- fa(r, nfactors = k, fm = "minres", rotate = "none", n.obs = nrow(x))
  rot <- fa(r, nfactors = k, fm = "minres", rotate = "oblimin", n.obs = nrow(x))
  set.seed(1)
  pa <- fa.parallel(x, fa = "pc", n.iter = 200, quant = 0.95, plot = FALSE)
  sim <- pa$values[, grep("^Sim", colnames(pa$values))]
  pc1 <- principal(r, nfactors = 1, rotate = "none", n.obs = nrow(x))
  list(items = names(x), n = nrow(x), n_factors = k,
       uniquenesses = unname(unrot$uniquenesses),
       communalities = unname(unrot$communality),
       loadings_unrotated = unclass(unrot$loadings),
       loadings_oblimin = unclass(rot$loadings),
       phi_oblimin = rot$Phi,
       parallel = list(pc_values = pa$pc.values, pc_sim_mean = pa$pc.sim, ncomp = pa$ncomp,
                       n_iter = 200, quant = 0.95,
                       # the eigenvalues of each simulated normal data set (psych's "Sim" columns),
                       # and their 95% quantiles, against which ncomp is decided
                       sim_values = unname(sim), pc_sim_quantile = unname(apply(sim, 2, quantile, 0.95))),
       harman_share = pc1$Vaccounted["Proportion Var", 1])
}
out <- list(
  psych = as.character(packageVersion("psych")), gparotation = as.character(packageVersion("GPArotation")),
  call = paste("fa(cor(x), nfactors = k, fm = 'minres', rotate = 'none' | 'oblimin', n.obs = n);",
               "set.seed(1); fa.parallel(x, fa = 'pc', n.iter = 200, quant = 0.95, plot = FALSE);",
               "principal(cor(x), nfactors = 1, rotate = 'none')$Vaccounted['Proportion Var', 1]"),
  hs = case(hs, 3), liaoning = case(lia, 6))
write_json(out, "../efa.json", digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
