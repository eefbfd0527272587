# Reference values for analytic RMSEA power (MacCallum, Browne & Sugawara 1996).
# Run from the repository root:  Rscript tests/reference/r/power.R
# Writes tests/reference/power.json, read by tests/test_power.py.
suppressPackageStartupMessages(library(semTools))
library(jsonlite)

cases <- list()
# df = 220 is the bundled Liaoning model (23 items, 56 free parameters); the others span small and
# large models. n runs over the grid of the power command's example (100:400:50) and a few more.
for (df in c(2, 8, 24, 55, 220)) {
  for (n in c(50, 100, 150, 200, 218, 250, 300, 350, 400, 1000)) {
    cases[[length(cases) + 1]] <- list(
      df = df, n = n, alpha = 0.05,
      power_close = findRMSEApower(rmsea0 = .05, rmseaA = .08, df = df, n = n, alpha = .05),
      power_not_close = findRMSEApower(rmsea0 = .05, rmseaA = .01, df = df, n = n, alpha = .05),
      call_close = sprintf("findRMSEApower(rmsea0 = .05, rmseaA = .08, df = %d, n = %d, alpha = .05)", df, n),
      call_not_close = sprintf("findRMSEApower(rmsea0 = .05, rmseaA = .01, df = %d, n = %d, alpha = .05)", df, n))
  }
}
sizes <- list()
for (df in c(2, 8, 24, 55, 220)) {
  for (pw in c(.80, .90)) {
    sizes[[length(sizes) + 1]] <- list(
      df = df, power = pw, alpha = 0.05,
      n_close = findRMSEAsamplesize(rmsea0 = .05, rmseaA = .08, df = df, power = pw, alpha = .05),
      n_not_close = findRMSEAsamplesize(rmsea0 = .05, rmseaA = .01, df = df, power = pw, alpha = .05),
      call_close = sprintf("findRMSEAsamplesize(rmsea0 = .05, rmseaA = .08, df = %d, power = %.2f, alpha = .05)", df, pw),
      call_not_close = sprintf("findRMSEAsamplesize(rmsea0 = .05, rmseaA = .01, df = %d, power = %.2f, alpha = .05)", df, pw))
  }
}
out <- list(
  provenance = list(R = R.version.string, semTools = as.character(packageVersion("semTools")),
                    script = "tests/reference/r/power.R"),
  rmsea_power = cases, rmsea_sample_size = sizes)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/reference/power.json")
