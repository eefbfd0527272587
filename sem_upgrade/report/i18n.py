"""The words of the reports in English and Chinese (terms as Chinese theses print them).

One table of terms; every report looks its words up here, so a table title, a header, a
note and a verdict read the same in HTML, Markdown, Excel, CSV and Word.
"""

from __future__ import annotations

from ..errors import SemUpgradeError

__all__ = ["LANGS", "check_lang", "words"]

LANGS = ("en", "zh")

_TERMS: dict[str, tuple[str, str]] = {
    # table titles
    "t_sample": ("Sample and data screening", "样本与数据筛查"),
    "t_items": ("Item statistics and reliability", "题项统计与信度分析"),
    "t_convergent": ("Convergent validity", "聚合效度"),
    "t_discriminant": ("Discriminant validity", "区分效度"),
    "t_fit": ("Model fit", "模型拟合指数"),
    "t_paths": ("Structural paths", "结构路径系数"),
    "t_hypotheses": ("Hypothesis tests", "假设检验结果"),
    "t_mediation": ("Mediation: indirect, direct and total effects", "中介效应检验：间接、直接与总效应"),
    "t_efa": ("Exploratory factor analysis: pattern loadings", "探索性因子分析：因子载荷"),
    "t_mi": ("Modification indices (largest)", "修正指数（最大者）"),
    "t_rejected": ("Rejected rows", "剔除的样本行"),
    "t_diagram": ("Path diagram", "路径图"),
    "t_narrative": ("Results", "研究结果"),
    "t_warnings": ("Warnings", "警告"),
    "t_loadings_plot": ("Standardized loadings", "标准化载荷图"),
    "t_residual_plot": ("Residual correlations", "残差相关"),
    "table": ("Table", "表"),
    "note": ("Note.", "注："),
    # headers
    "measure": ("Measure", "项目"), "value": ("Value", "数值"), "construct": ("Construct", "构念"),
    "item": ("Item", "题项"), "wording": ("Wording", "题项内容"), "mean": ("M", "均值"), "sd": ("SD", "标准差"),
    "citc": ("CITC", "CITC"), "alpha_if_deleted": ("α if item deleted", "删除该题项后的α"),
    "alpha": ("Cronbach's α", "Cronbach's α"), "k": ("Items", "题项数"),
    "b": ("B", "非标准化系数B"), "se": ("SE", "标准误SE"), "cr_z": ("C.R.", "C.R."), "p": ("p", "p"),
    "beta": ("β", "β"), "std_loading": ("Standardized loading", "标准化载荷"),
    "cr": ("CR", "组合信度CR"), "ave": ("AVE", "平均方差抽取量AVE"), "sqrt_ave": ("√AVE", "√AVE"),
    "omega": ("ω", "ω"), "index": ("Index", "指标"), "criterion": ("Criterion", "判断标准"),
    "measurement_model": ("Measurement model", "测量模型"), "structural_model": ("Structural model", "结构模型"),
    "path": ("Path", "路径"), "r2": ("R²", "R²"), "hypothesis": ("Hypothesis", "假设"), "id": ("H", "假设"),
    "evidence": ("Evidence", "检验依据"), "verdict": ("Result", "检验结果"), "effect": ("Effect", "效应"),
    "type": ("Type", "类型"), "boot_se": ("Boot SE", "Bootstrap标准误"),
    "ci_perc": ("{level} CI (percentile)", "{level}置信区间（百分位）"),
    "ci_bc": ("{level} CI (bias-corrected)", "{level}置信区间（偏差校正）"),
    "parameter": ("Parameter", "参数"), "mi": ("MI", "修正指数MI"), "epc": ("EPC", "EPC"),
    "sepc": ("Std. EPC", "标准化EPC"), "factor": ("F{k}", "因子{k}"), "line": ("Line", "行号"),
    "column": ("Column", "列"), "raw": ("Value", "原始值"), "reason": ("Reason", "原因"),
    # effect types and verdicts
    "indirect": ("Indirect", "间接效应"), "direct": ("Direct", "直接效应"), "total": ("Total", "总效应"),
    "supported": ("Supported", "假设成立"), "not_supported": ("Not supported", "假设不成立"),
    "not_tested": ("Not tested", "未检验"), "opposite sign": ("opposite sign", "符号相反"),
    "interval includes 0": ("interval includes 0", "置信区间包含0"), "not significant": ("not significant", "不显著"),
    "no_direct": ("no direct path in the model", "模型中无直接路径"),
    "yes": ("yes", "是"), "no": ("no", "否"), "none": ("none", "无"),
    # models beyond first-order paths: groups, invariance, moderation, ordinal items, controls
    "t_invariance": ("Measurement invariance across {group}", "跨{group}的测量不变性检验"),
    "t_latent_means": ("Latent mean differences (reference group: {ref})", "潜均值差异（参照组：{ref}）"),
    "t_path_groups": ("Structural paths by group", "结构路径的分组比较"),
    "t_hyp_groups": ("Hypotheses by group", "分组假设检验结果"),
    "t_slopes": ("Simple slopes", "简单斜率分析"),
    "t_conditional": ("Conditional indirect effects", "条件间接效应"),
    "t_thresholds": ("Item thresholds (WLSMV)", "题项阈值（WLSMV）"),
    "t_controls": ("Control variables", "控制变量"),
    "level": ("Model", "模型"), "group": ("Group", "组别"), "n": ("N", "样本量"),
    "delta_chisq": ("Δχ²", "Δχ²"), "delta_df": ("Δdf", "Δdf"), "delta_p": ("p (Δχ²)", "p（Δχ²）"),
    "delta_cfi": ("ΔCFI", "ΔCFI"), "delta_rmsea": ("ΔRMSEA", "ΔRMSEA"), "freed": ("Freed", "释放的参数"),
    "configural": ("Configural", "形态等值"), "metric": ("Metric (loadings)", "弱等值（因子载荷）"),
    "scalar": ("Scalar (+ intercepts)", "强等值（+截距）"), "strict": ("Strict (+ residuals)", "严格等值（+残差）"),
    "partial_metric": ("Partial metric", "部分弱等值"), "partial_scalar": ("Partial scalar", "部分强等值"),
    "holds": ("holds", "成立"), "fails": ("fails", "不成立"),
    "equal_test": ("Equal across groups: Δχ²(df), p", "组间等同检验：Δχ²(df)，p"), "wald": ("Wald χ²(df), p", "Wald χ²(df)，p"),
    "differs": ("differs", "存在差异"), "same": ("no difference", "无显著差异"),
    "moderator_at": ("{mod} at", "{mod}取值"), "slope": ("Simple slope", "简单斜率"),
    "threshold": ("Threshold", "阈值"), "index_modmed": ("Index of moderated mediation", "被调节的中介指数"),
    "control": ("Control", "控制变量"),
    "n_invariance": ("Δ: change from the level above. Verdicts: ΔCFI ≥ −.010 with ΔRMSEA ≤ .015 (Chen, 2007); "
                     "ΔCFI ≥ −.01 (Cheung & Rensvold, 2002); the χ² difference test is shown beside them.",
                     "Δ为相对上一层级模型的变化。判断标准：ΔCFI ≥ −.010且ΔRMSEA ≤ .015（Chen, 2007）；"
                     "ΔCFI ≥ −.01（Cheung & Rensvold, 2002）；卡方差异检验列于其旁。"),
    "n_slopes": ("Slopes of {focal} on {outcome} at the moderator's mean and ±1 SD (probe2WayMC).",
                 "调节变量取均值及±1个标准差时{focal}对{outcome}的简单斜率（probe2WayMC）。"),
    "n_thresholds": ("Thresholds of the latent responses (standard normal scale); an item with an unused "
                     "category has fewer thresholds.", "潜在反应变量的阈值（标准正态尺度）；某类别无人作答的题项阈值较少。"),
    # sample table
    "rows_read": ("Rows read", "读取样本数"), "rows_rejected": ("Rows rejected", "剔除样本数"),
    "rows_valid": ("Valid rows", "有效样本数"), "rows_complete": ("Complete rows", "完整样本数"),
    "rows_used": ("Rows analysed (N)", "分析样本数（N）"), "missing_policy": ("Missing data", "缺失值处理"),
    "listwise": ("listwise deletion", "成列删除"), "fiml": ("full-information ML (FIML)", "全信息极大似然（FIML）"),
    "missing_cells": ("Missing item cells", "缺失单元格数"),
    "straight": ("Straight-liners (flagged, kept)", "直线作答者（标记，保留）"),
    "reverse": ("Reverse-keyed items recoded", "已反向计分的题项"),
    "rejected_for": ("Rejected: {reason}", "剔除原因：{reason}"),
    "kmo": ("KMO", "KMO值"), "bartlett": ("Bartlett's test χ²({df})", "Bartlett球形检验 χ²({df})"),
    "bartlett_p": ("Bartlett's test p", "Bartlett球形检验 p"),
    "harman": ("Harman's single factor: share of variance", "Harman单因素检验：首因子方差解释率"),
    "one_factor": ("One-factor CFA: Δχ²({df})", "单因子CFA：Δχ²({df})"),
    # fit index names (as AMOS and APA papers print them)
    "chisq": ("χ²", "χ²"), "df": ("df", "df"), "cmin_df": ("χ²/df", "χ²/df"), "pvalue": ("p", "p"),
    "chisq_scaled": ("Scaled χ²", "校正χ²"), "chisq_scaling_factor": ("Scaling factor", "校正因子"),
    "pvalue_scaled": ("p (scaled)", "p（校正）"), "cfi_robust": ("Robust CFI", "稳健CFI"),
    "tli_robust": ("Robust TLI", "稳健TLI"), "cfi_scaled": ("Scaled CFI", "校正CFI"),
    "tli_scaled": ("Scaled TLI", "校正TLI"), "rmsea_scaled": ("Scaled RMSEA", "校正RMSEA"), "rmsea_robust": ("Robust RMSEA [90% CI]", "稳健RMSEA [90% CI]"),
    "n_robust": ("Estimator {est}: verdicts use the scaled χ² and the robust CFI, TLI and RMSEA "
                 "({test}; Brosseau-Liard & Savalei, 2014); the normal-theory figures are shown for reference.",
                 "估计方法{est}：判断依据为校正χ²与稳健CFI、TLI、RMSEA（{test}；Brosseau-Liard & Savalei, 2014），"
                 "常规ML指标仅供参考。"),
    "cfi": ("CFI", "CFI"), "tli": ("TLI", "TLI"), "nfi": ("NFI", "NFI"), "ifi": ("IFI", "IFI"),
    "rfi": ("RFI", "RFI"), "gfi": ("GFI", "GFI"), "agfi": ("AGFI", "AGFI"), "pnfi": ("PNFI", "PNFI"),
    "pcfi": ("PCFI", "PCFI"), "rmsea": ("RMSEA [90% CI]", "RMSEA [90% CI]"), "rmsea_pvalue": ("PCLOSE", "PCLOSE"),
    "srmr": ("SRMR", "SRMR"), "rmr": ("RMR", "RMR"), "aic": ("AIC", "AIC"), "bic": ("BIC", "BIC"),
    # notes
    "n_fit": ("Thresholds: {rules}.", "判断标准：{rules}。"),
    "n_stars": ("* p < .05. ** p < .01. *** p < .001.", "* p < .05，** p < .01，*** p < .001。"),
    "n_items": ("CITC = corrected item-total correlation. Thresholds: Cronbach's α ≥ {alpha} ({alpha_src}); "
                "CITC ≥ {citc} ({citc_src}).",
                "CITC为校正的项总计相关系数。判断标准：Cronbach's α ≥ {alpha}（{alpha_src}）；CITC ≥ {citc}（{citc_src}）。"),
    "n_convergent": ("B = unstandardized loading; C.R. = critical ratio (B/SE); the first loading of each construct "
                     "is fixed to 1 (no SE). CR = composite reliability; AVE = average variance extracted. "
                     "Thresholds: CR ≥ {cr}, AVE ≥ {ave} ({src}).",
                     "B为非标准化载荷；C.R.为临界比（B/SE）；每个构念的第一个载荷固定为1（无标准误）。CR为组合信度，"
                     "AVE为平均方差抽取量。判断标准：CR ≥ {cr}，AVE ≥ {ave}（{src}）。"),
    "n_discriminant": ("Diagonal (bold): √AVE; below the diagonal: correlations between constructs; above the "
                       "diagonal: HTMT (Henseler et al. 2015, arithmetic means). Discriminant validity holds when √AVE "
                       "exceeds every correlation in its row and column (Fornell & Larcker 1981) and HTMT < {htmt} "
                       "({src}).",
                       "对角线（粗体）为AVE的平方根；对角线以下为构念间相关系数；对角线以上为HTMT（Henseler等，2015，算术平均）。"
                       "当√AVE大于所在行列的全部相关系数（Fornell & Larcker, 1981）且HTMT < {htmt}（{src}）时，区分效度成立。"),
    "n_paths": ("B = unstandardized coefficient; β = standardized coefficient; C.R. = B/SE. R²: {r2}.",
                "B为非标准化系数；β为标准化系数；C.R. = B/SE。R²：{r2}。"),
    "n_hyp": ("Path hypotheses are judged by the z-test at α = {alpha} and the expected sign; indirect ones by "
              "the {level} {kind} bootstrap interval.",
              "路径假设依据z检验（α = {alpha}）及预期符号判断；间接效应假设依据{level}{kind}Bootstrap置信区间判断。"),
    "n_boot": ("Bootstrap: {ok} of {req} resamples fitted, {failed} failed, {inad} inadmissible (kept); seed {seed}; "
               "hypotheses judged by the {kind} interval.",
               "Bootstrap：共抽样{req}次，成功拟合{ok}次，失败{failed}次，不可接受解{inad}次（保留）；随机种子{seed}；"
               "假设依据{kind}区间判断。"),
    "n_unstable": ("UNSTABLE bootstrap: {failed} of {req} resamples failed (more than {share}); its intervals are "
                   "shown but judge no hypothesis.",
                   "Bootstrap不稳定：{req}次抽样中{failed}次失败（超过{share}）；区间仅供参考，不用于判断假设。"),
    "n_untested_ci": ("Intervals marked † judge no hypothesis: {reason}.", "标有†的区间不用于判断假设：{reason}。"),
    "full": ("full mediation", "完全中介"), "partial complementary": ("partial mediation (complementary)", "部分中介（互补）"),
    "partial competitive": ("partial mediation (competitive)", "部分中介（竞争）"), "no mediation": ("no mediation", "无中介"),
    "n_noboot": ("No bootstrap: indirect effects by the delta method (Sobel).", "未进行Bootstrap：间接效应采用delta法（Sobel检验）。"),
    "percentile": ("percentile", "百分位"), "bc": ("bias-corrected", "偏差校正"),
    "n_mi": ("↔ covariance; → regression or loading. EPC = expected parameter change.",
             "↔ 协方差；→ 回归或载荷。EPC为期望参数改变量。"),
    "n_efa": ("{statement}", "{statement}"),
    "n_no_cjk": ("No CJK font is installed, so the plots name constructs by their short names instead of their "
                 "Chinese labels (install one, e.g. apt-get install fonts-wqy-microhei).",
                 "系统未安装中文字体，图中以构念代码代替中文名称（可安装 fonts-wqy-microhei）。"),
    "simulated": ("The bundled survey is simulated: 218 firms drawn from the questionnaire's stated population model, "
                  "not the thesis' data.", "内置数据为模拟数据：由问卷设定的总体模型生成的218家企业，并非原论文数据。"),
    "header_line": ("Survey {data}, questionnaire {q}; rows read {read}, rejected {rej}, analysed {used} "
                    "(missing data: {missing}; likelihood: {lik}).",
                    "数据文件 {data}，问卷 {q}；读取 {read} 行，剔除 {rej} 行，分析 {used} 行（缺失值：{missing}；似然：{lik}）。"),
    "diagram_note": ("Standardized coefficients; * p < .05, ** p < .01, *** p < .001; dashed: hypothesis not "
                     "supported; grey: neither hypothesised nor significant.",
                     "标准化系数；* p < .05，** p < .01，*** p < .001；虚线：假设不成立；灰色：既非假设路径亦不显著。"),
    "conv_chisq": ("χ²", "χ²"), "conv_rmsea": ("RMSEA", "RMSEA"), "conv_standardized": ("standardized", "标准化"),
    "conv_htmt": ("HTMT", "HTMT"),
    "version": ("sem_upgrade {v}; conventions: {c}.", "sem_upgrade {v}；计算约定：{c}。"),
}


def check_lang(lang: str) -> str:
    """``lang`` when it is a known report language; a clear error otherwise."""
    if lang not in LANGS:
        raise SemUpgradeError(f"--lang: unknown language '{lang}' (choose from {', '.join(LANGS)})")
    return lang


def words(lang: str):
    """A look-up ``w(key, **fields)`` for ``lang``; an unknown key is shown as itself."""
    i = LANGS.index(check_lang(lang))

    def w(key: str, **fields) -> str:
        pair = _TERMS.get(key)
        text = pair[i] if pair else key
        return text.format(**fields) if fields else text
    return w
