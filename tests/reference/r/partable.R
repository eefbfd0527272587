# Equality constraints through shared labels: lavaan's parameter table and estimates, for
# tests/test_engine.py. Run from the repository root:
#   Rscript tests/reference/r/partable.R   (writes tests/reference/partable.json)
suppressMessages({library(lavaan); library(jsonlite)})
hs <- read.csv("tests/reference/holzinger_swineford.csv")
model <- "visual =~ x1 + a*x2 + a*x3\ntextual =~ x4 + b*x5 + b*x6\nspeed =~ x7 + x8 + x9"
fit <- cfa(model, data = hs)
pe <- parameterEstimates(fit, standardized = TRUE)
pt <- parTable(fit)
out <- list(
  call = "cfa(model, data = holzinger_swineford.csv); parameterEstimates(fit, standardized = TRUE); parTable(fit)",
  lavaan = as.character(packageVersion("lavaan")),
  model = model,
  fit = as.list(fitMeasures(fit, c("npar", "chisq", "df"))),
  params = pe[pe$op %in% c("=~", "~~"), c("lhs", "op", "rhs", "label", "est", "se", "std.all")],
  partable = pt[pt$op != "==", c("id", "lhs", "op", "rhs", "group", "free", "label", "plabel")]
)
write_json(out, "tests/reference/partable.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
