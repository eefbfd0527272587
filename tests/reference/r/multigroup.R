# Reference values for multi-group models and measurement invariance.
# Run from tests/reference:  Rscript r/multigroup.R   (writes multigroup.json).
# Data: lavaan's HolzingerSwineford1939 by school (Grant-White 145, Pasteur 156), as in lavaan's
# tutorial. Versions: R 4.2.2, lavaan 0.6.14, semTools 0.5.6 (Debian bookworm r-cran-*).
suppressPackageStartupMessages({library(lavaan); library(semTools); library(jsonlite)})
fm <- function(fit) { x <- as.list(fitMeasures(fit)); names(x) <- gsub(".", "_", names(x), fixed = TRUE); x }
pe <- function(fit) {
  p <- parameterEstimates(fit, standardized = TRUE)
  p[, c("lhs", "op", "rhs", "group", "est", "se", "z", "pvalue", "std.all")]
}
lrt <- function(a, b) { t <- as.data.frame(lavTestLRT(a, b)); list(chisq_diff = t[2, "Chisq diff"],
  df_diff = t[2, "Df diff"], pvalue = t[2, "Pr(>Chisq)"]) }
hs <- HolzingerSwineford1939
model <- "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"
out <- list(group_sizes = as.list(table(hs$school)), model = model,
            group_order = "lavaan's: order of first appearance in the data (Pasteur, Grant-White)")
fits <- list(
  configural = cfa(model, data = hs, group = "school"),
  metric = cfa(model, data = hs, group = "school", group.equal = "loadings"),
  scalar = cfa(model, data = hs, group = "school", group.equal = c("loadings", "intercepts")),
  strict = cfa(model, data = hs, group = "school", group.equal = c("loadings", "intercepts", "residuals")))
levels <- list()
for (k in names(fits)) {
  levels[[k]] <- list(call = sprintf('cfa(model, data = hs, group = "school", group.equal = %s)',
                                     deparse(lavInspect(fits[[k]], "options")$group.equal)),
                      fit = fm(fits[[k]]), params = pe(fits[[k]]))
}
levels$metric$lrt <- lrt(fits$configural, fits$metric)
levels$scalar$lrt <- lrt(fits$metric, fits$scalar)
levels$strict$lrt <- lrt(fits$scalar, fits$strict)
out$levels <- levels
# Score tests of the scalar model's equality constraints (which intercept to free first).
st <- lavTestScore(fits$scalar)
pt <- parTable(fits$scalar)
uni <- st$uni
uni$lhs_label <- uni$lhs; uni$rhs_label <- uni$rhs
lab <- function(l) { r <- pt[pt$plabel == l, ][1, ]; paste(r$lhs, r$op, r$rhs) }
uni$lhs_param <- sapply(uni$lhs, lab)
out$scalar_score <- list(call = "lavTestScore(scalar)", uni = as.data.frame(uni[, c("lhs_param", "X2", "df", "p.value")]),
                         total = as.list(st$test))
# Partial scalar invariance freeing the x3 and x7 intercepts (lavaan tutorial's example).
partial <- cfa(model, data = hs, group = "school", group.equal = c("loadings", "intercepts"),
               group.partial = c("x3 ~ 1", "x7 ~ 1"))
out$partial_scalar <- list(call = 'cfa(..., group.equal = c("loadings","intercepts"), group.partial = c("x3 ~ 1","x7 ~ 1"))',
                           fit = fm(partial), params = pe(partial), lrt_vs_metric = lrt(fits$metric, partial))
# Structural paths by group (metric invariance) and their equality tests.
smodel <- paste0(model, "\nspeed ~ c(b1, b2) * visual + c(c1, c2) * textual")
free <- sem(smodel, data = hs, group = "school", group.equal = "loadings")
eq_b <- sem(paste0(smodel, "\nb1 == b2"), data = hs, group = "school", group.equal = "loadings")
eq_c <- sem(paste0(smodel, "\nc1 == c2"), data = hs, group = "school", group.equal = "loadings")
wb <- lavTestWald(free, "b1 == b2"); wc <- lavTestWald(free, "c1 == c2")
out$paths_by_group <- list(call = 'sem(smodel, data = hs, group = "school", group.equal = "loadings")',
  model = smodel, fit = fm(free), params = pe(free),
  differences = list(
    `speed~visual` = c(lrt(free, eq_b), list(wald = wb$stat, wald_df = wb$df, wald_pvalue = wb$p.value)),
    `speed~textual` = c(lrt(free, eq_c), list(wald = wc$stat, wald_df = wc$df, wald_pvalue = wc$p.value))))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), "multigroup.json")
