# lavaan's own time for the replications that benchmarks/power_speed.py times for sem_upgrade:
# one sem() fit per simulated survey, as simsem or a hand-written loop does it.
# Run by hand from the repository root (needs R with lavaan; not part of the tests or CI):
#   Rscript benchmarks/lavaan_power_time.R DIR        (DIR holds rep_*.csv, written by power_speed.py)
# Model: the bundled Liaoning study (tests/reference/liaoning_model.R), lavaan 0.6 defaults (ML).
suppressPackageStartupMessages(library(lavaan))
args <- commandArgs(trailingOnly = TRUE)
files <- sort(list.files(args[1], pattern = "^rep_.*\\.csv$", full.names = TRUE))
source("tests/reference/liaoning_model.R")  # lia_sem
data <- lapply(files, read.csv)
t0 <- Sys.time()
for (d in data) {
  fit <- sem(lia_sem, data = d)
  pe <- parameterEstimates(fit)  # estimates, SEs and p-values: what a power study reads
}
secs <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
cat(sprintf("lavaan %s: %d replications (ML, one core) in %.2f s, %.4f s each\n",
            packageVersion("lavaan"), length(files), secs, secs / length(files)))
