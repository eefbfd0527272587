# Multivariate (Mardia) and item normality of the bundled survey, for tests/test_normality.py.
# Run from tests/reference:  Rscript r/normality.R   (writes normality.json). psych 2.2.9.
suppressPackageStartupMessages({library(psych); library(jsonlite)})
li <- read.csv("liaoning_2012_survey.csv"); li$nhe4 <- 1 + 7 - li$nhe4
x <- li[, -1]
m <- mardia(x, plot = FALSE)
d <- describe(x)
out <- list(call = "psych::mardia(items, plot = FALSE); psych::describe(items) (type 3 skew and kurtosis)",
  b1p = m$b1p, b2p = m$b2p, skew = m$skew, p_skew = m$p.skew, small_skew = m$small.skew,
  p_small = m$p.small, kurtosis = m$kurtosis, p_kurt = m$p.kurt, n = m$n.obs,
  item_skew = as.list(setNames(d$skew, rownames(d))), item_kurtosis = as.list(setNames(d$kurtosis, rownames(d))))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "normality.json")
