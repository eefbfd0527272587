# Reference values for control variables, second-order constructs and latent interactions.
# Run from tests/reference:  Rscript r/models.R   (writes models.json, hs_controls.csv,
# dat2way_500.csv). Versions: R 4.2.2, lavaan 0.6.14, semTools 0.5.6 (Debian bookworm r-cran-*).
suppressPackageStartupMessages({library(lavaan); library(semTools); library(jsonlite)})
fm <- function(fit) { x <- as.list(fitMeasures(fit)); names(x) <- gsub(".", "_", names(x), fixed = TRUE); x }
pe <- function(fit) {
  p <- parameterEstimates(fit, standardized = TRUE)
  p[, c("lhs", "op", "rhs", "est", "se", "z", "pvalue", "std.all")]
}
out <- list()

# 1. Control variables (observed exogenous covariates, lavaan's sem() default fixed.x = TRUE).
#    HolzingerSwineford1939 with a numeric control (ageyr) and a three-level categorical control
#    `season` made from the month of birth (agemo 0-3 "winter", 4-7 "summer", 8-11 "autumn"),
#    dummy-coded against its first level "winter" as season_summer and season_autumn.
hs <- HolzingerSwineford1939
hs$season <- c("winter", "summer", "autumn")[findInterval(hs$agemo, c(0, 4, 8))]
hs$season_summer <- as.numeric(hs$season == "summer")
hs$season_autumn <- as.numeric(hs$season == "autumn")
write.csv(hs[, c("id", "ageyr", "season", paste0("x", 1:9))], "hs_controls.csv", row.names = FALSE)
controls_model <- "
  visual =~ x1 + x2 + x3
  textual =~ x4 + x5 + x6
  speed =~ x7 + x8 + x9
  textual ~ visual + ageyr
  speed ~ visual + textual + ageyr + season_summer + season_autumn
"
fit_c <- sem(controls_model, data = hs)
out$hs_controls <- list(call = "sem(controls_model, data = hs)  # fixed.x = TRUE (default)",
                        model = controls_model, fit = fm(fit_c), params = pe(fit_c),
                        r2 = as.list(lavInspect(fit_c, "r2")))

# 2. Second-order construct: g =~ visual + textual + speed.
hs_model2 <- "
  visual =~ x1 + x2 + x3
  textual =~ x4 + x5 + x6
  speed =~ x7 + x8 + x9
  g =~ visual + textual + speed
"
fit_g <- cfa(hs_model2, data = HolzingerSwineford1939)
out$hs_second_order <- list(call = "cfa(hs_model2, data = HolzingerSwineford1939)",
                            model = hs_model2, fit = fm(fit_g), params = pe(fit_g),
                            omega_higher = as.list(compRelSEM(fit_g, higher = "g")),
                            omega_higher_call = 'compRelSEM(fit_g, higher = "g")')

# 3. Latent interaction, product indicators with double-mean-centering.
d <- as.data.frame(dat2way[1:500, ])
write.csv(d, "dat2way_500.csv", row.names = FALSE)
dp <- indProd(d, var1 = 1:3, var2 = 4:6, match = FALSE, meanC = TRUE, residualC = FALSE, doubleMC = TRUE)
prods <- setdiff(names(dp), names(d))
pairs <- expand.grid(a = 1:3, b = 4:6)
rc <- c()
for (i in seq_along(prods)) for (j in seq_along(prods)) if (i < j) {
  if (pairs$a[i] == pairs$a[j] || pairs$b[i] == pairs$b[j]) rc <- c(rc, paste(prods[i], "~~", prods[j]))
}
int_model <- paste0(
  "f1 =~ x1 + x2 + x3\nf2 =~ x4 + x5 + x6\nf3 =~ x7 + x8 + x9\n",
  "f12 =~ ", paste(prods, collapse = " + "), "\n",
  "f3 ~ f1 + f2 + f12\n", paste(rc, collapse = "\n"), "\n")
fit_i <- sem(int_model, data = dp)
probe <- probe2WayMC(fit_i, nameX = c("f1", "f2", "f12"), nameY = "f3", modVar = "f2",
                     valProbe = c(-1, 0, 1) * sqrt(lavInspect(fit_i, "cov.lv")["f2", "f2"]))
out$dat2way_interaction <- list(
  call = paste("indProd(dat2way[1:500, ], 1:3, 4:6, match = FALSE, meanC = TRUE, residualC = FALSE,",
               "doubleMC = TRUE); sem(int_model);",
               "probe2WayMC(fit, c('f1','f2','f12'), 'f3', 'f2', valProbe = c(-1,0,1) * SD(f2))"),
  product_names = prods, model = int_model, fit = fm(fit_i), params = pe(fit_i),
  simple_slopes = as.data.frame(probe$SimpleSlope))

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), "models.json")
