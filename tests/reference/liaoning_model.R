# The bundled Liaoning study's models in lavaan syntax (questionnaires/liaoning_2012.yaml),
# shared by make_reference.R and benchmarks/lavaan_bootstrap_time.R.
lia_cfa <- "
NSC =~ nsc1 + nsc2 + nsc3 + nsc4
NHE =~ nhe1 + nhe2 + nhe3 + nhe4
TST =~ tst1 + tst2 + tst3 + tst4
KAQ =~ kaq1 + kaq2 + kaq3 + kaq4
KCR =~ kcr1 + kcr2 + kcr3 + kcr4
UPG =~ upg1 + upg2 + upg3
"
lia_sem <- paste(lia_cfa, "KAQ ~ NSC + NHE + TST", "KCR ~ KAQ + TST", "UPG ~ KAQ + KCR", sep = "\n")
