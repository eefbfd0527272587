# lavaan's own time for the bootstrap that benchmarks/bootstrap_speed.py times for sem_upgrade.
# Run by hand from the repository root (needs R with lavaan; not part of the tests or CI):
#   Rscript benchmarks/lavaan_bootstrap_time.R [R]        (R resamples, default 2000)
# Model and data: the bundled Liaoning study (nhe4 reverse-keyed), lavaan 0.6 defaults,
# se = "bootstrap" on two cores, as a user would run it.
suppressPackageStartupMessages(library(lavaan))
args <- commandArgs(trailingOnly = TRUE)
R <- if (length(args)) as.integer(args[1]) else 2000L
lia <- read.csv("sem_upgrade/data/liaoning_2012_survey.csv")
lia$nhe4 <- 8 - lia$nhe4
source("tests/reference/liaoning_model.R")  # lia_sem
model <- lia_sem
set.seed(1)
t0 <- Sys.time()
fit <- sem(model, data = lia, se = "bootstrap", bootstrap = R, parallel = "multicore", ncpus = 2)
secs <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
cat(sprintf("lavaan %s: %d bootstrap resamples (ML, 2 cores) in %.1f s\n", packageVersion("lavaan"), R, secs))
lia_m <- lia
set.seed(2)
for (v in names(lia_m)[-1]) lia_m[[v]][runif(nrow(lia_m)) < 0.05] <- NA
t0 <- Sys.time()
fit_m <- sem(model, data = lia_m, missing = "ml")
cat(sprintf("lavaan FIML fit (5%% missing): %.2f s\n", as.numeric(difftime(Sys.time(), t0, units = "secs"))))
