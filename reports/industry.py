"""The industry report: overall and first-level scores, industry ranking, enterprises by industry, drivers,
customer callback rate and a method section written from the actual run.

Ranks are shown with their intervals and the report leads with tiers (significantly above / not different
from / below the industry mean), because with 20 interviews per enterprise most places in a bare league table
are not distinguishable (docs/domain.md §3.7).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports import charts
from reports._common import (
    finite,
    method_value,
    overall_intervals,
    pooled_rates,
    rank_width_summary,
    rates_summary,
    tier_counts,
)
from reports.i18n import (
    check_lang,
    correction_label,
    indicator_names,
    industry_label,
    item_names,
    quadrant_label,
    quadrant_names,
    t,
    tier_label,
)
from reports.render import (
    Document,
    Section,
    Sheet,
    Table,
    check_formats,
    fmt,
    interval,
    pct,
    rank_interval,
    render_html,
    write_html,
    write_pdf,
    write_xlsx,
)

__all__ = ["build_industry_report", "industry_document"]


def _study_title(study: Mapping, lang: str) -> str:
    title = study.get("title") if isinstance(study, Mapping) else None
    if isinstance(title, Mapping):
        return str(title.get(lang) or next(iter(title.values()), ""))
    return "" if title is None else str(title)


def _level_key(level: Any) -> str:
    """Scoring labels driver levels ``indicator`` / ``item``; accept 1 / 2 as well."""
    return "indicator" if str(level) in ("indicator", "1", "first", "level1") else "item"


def _tiers_text(counts: pd.Series, lang: str) -> str:
    a, nd, b = (int(counts.get(k, 0)) for k in ("above", "not_different", "below"))
    return f"{a} / {nd} / {b}"


def industry_document(result: Any, study: Mapping, *, rates: pd.DataFrame | None = None,
                      lang: str = "zh-CN", with_charts: bool = True
                      ) -> tuple[Document, list[Sheet], dict[str, charts.Chart]]:
    """Build the industry report's content (document for HTML/PDF, sheets for XLSX, charts by name)."""
    check_lang(lang)
    spec = result.spec
    ent: pd.DataFrame = result.enterprises
    ind: pd.DataFrame = result.industries.sort_values("rank", kind="stable")
    overall: Mapping[str, Any] = result.overall
    method: Mapping[str, Any] = getattr(result, "method", {}) or {}
    drivers: pd.DataFrame = result.drivers
    codes = list(spec.indicator_codes)
    names = indicator_names(spec, lang)
    inames = item_names(spec, lang)
    zh = lang == "zh-CN"
    ov, ov_computed = overall_intervals(result)
    tiers = tier_counts(ent)
    all_charts: dict[str, charts.Chart] = {}

    def add_chart(section: Section, name: str, build: Any) -> None:
        if with_charts:
            all_charts[name] = build()
            section.chart(all_charts[name])

    doc = Document(title=t("industry_report", lang), subtitle=_study_title(study, lang), lang=lang)
    comp = ov.loc["composite"]
    doc.kpis = [
        {"label": t("overall_composite", lang), "value": fmt(comp.score),
         "sub": f"{t('ci', lang)} {interval(comp.ci_low, comp.ci_high)}"},
        {"label": t("n_enterprises", lang), "value": str(int(overall.get("n_enterprises", len(ent))))},
        {"label": t("n_respondents", lang), "value": str(int(overall.get("n_respondents", 0)))},
    ]
    cb_overall = overall.get("callback_rate")
    if not finite(cb_overall) and "callback_rate" in ent.columns:
        cb_overall = float(ent["callback_rate"].mean())
    if finite(cb_overall):
        doc.kpis.append({"label": t("callback_rate", lang), "value": pct(cb_overall), "sub": ""})
    if rates is not None and len(rates) and "RR3" in rates.columns:
        doc.kpis.append({"label": "RR3", "value": pct(pooled_rates(rates)["RR3"]), "sub": ""})

    # 1. overall ---------------------------------------------------------------------------------------------
    sec = Section("overall", t("sec_overall", lang))
    top = ind.head(3)
    tops = "、".join(f"{industry_label(r.industry, lang)}（{fmt(r.composite)}）" for r in top.itertuples()) if zh \
        else ", ".join(f"{industry_label(r.industry, lang)} ({fmt(r.composite)})" for r in top.itertuples())
    if zh:
        sec.p(f"综合得分 {fmt(comp.score)} 分（95%区间 {interval(comp.ci_low, comp.ci_high)}），基于 "
              f"{int(overall.get('n_enterprises', len(ent)))} 家企业的 {int(overall.get('n_respondents', 0))} "
              f"个成功样本。得分最高的三个行业：{tops}。", "lead")
    else:
        sec.p(f"The composite score is {fmt(comp.score)} (95% interval {interval(comp.ci_low, comp.ci_high)}), from "
              f"{int(overall.get('n_respondents', 0))} completed interviews with customers of "
              f"{int(overall.get('n_enterprises', len(ent)))} enterprises. Highest-scoring industries: {tops}.",
              "lead")
    rows = []
    for code in ["composite", *codes]:
        r = ov.loc[code]
        rows.append([t("overall_composite", lang) if code == "composite" else f"{code} {names[code]}",
                     fmt(r.score), interval(r.ci_low, r.ci_high)])
    sec.table(Table([t("indicator", lang), t("score", lang), t("ci", lang)], rows, row_classes=["total"] + [""] * 6))
    labels = [t("overall_composite", lang)] + [f"{c} {names[c]}" for c in codes]
    add_chart(sec, "overall", lambda: charts.dot_intervals(
        labels, ov.score.to_numpy(), ov.ci_low.to_numpy(), ov.ci_high.to_numpy(), title=t("chart_overall", lang),
        xlabel=t("score_axis", lang)))
    doc.sections.append(sec)

    # 2. industries -------------------------------------------------------------------------------------------
    sec = Section("industries", t("sec_industries", lang))
    width = rank_width_summary(ind, "rank_low", "rank_high")
    if zh:
        sec.p("行业得分为其企业得分的均值（每家企业权重相同），区间由在行业内对企业重抽样得到。排名区间给出 95% "
              "把握下该行业可能的名次范围；名次区间重叠的行业不能认为有真实差异。")
    else:
        sec.p("An industry's score is the mean of its enterprises' scores (each enterprise weighs the same); its "
              "interval resamples enterprises within the industry. The rank interval is the range of places the "
              "industry could hold with 95% confidence; industries whose rank intervals overlap are not shown to "
              "differ.")
    headers = [t("rank", lang), t("rank_interval", lang), t("industry", lang), t("n_enterprises", lang),
               t("n_respondents", lang), t("composite", lang), t("ci", lang), t("tier_counts", lang),
               t("callback_rate", lang)]
    rows = []
    for r in ind.itertuples():
        rows.append([str(int(r.rank)), rank_interval(r.rank_low, r.rank_high), industry_label(r.industry, lang),
                     str(int(r.n_enterprises)), str(int(r.n_respondents)), fmt(r.composite),
                     interval(r.ci_low, r.ci_high),
                     _tiers_text(tiers.loc[r.industry], lang) if r.industry in tiers.index else "—",
                     pct(getattr(r, "callback_rate", np.nan))])
    sec.table(Table(headers, rows, numeric=[True, True, False, True, True, True, True, True, True]))
    add_chart(sec, "industries", lambda: charts.dot_intervals(
        [industry_label(i, lang) for i in ind.industry], ind.composite.to_numpy(), ind.ci_low.to_numpy(),
        ind.ci_high.to_numpy(), title=t("chart_industries", lang), xlabel=t("score_axis", lang),
        ref=float(comp.score), ref_label=t("overall_line", lang)))
    if finite(width["median"]):
        sec.p((f"{width['n']} 个行业的排名区间宽度中位数为 {width['median']:.0f} 位。") if zh else
              (f"The median width of the {width['n']} industries' rank intervals is {width['median']:.0f} places."),
              "note")
    doc.sections.append(sec)

    # 3. profiles ---------------------------------------------------------------------------------------------
    sec = Section("profiles", t("sec_profiles", lang))
    heat = ind.set_index("industry")[codes]
    heat.index = [industry_label(i, lang) for i in heat.index]
    add_chart(sec, "heatmap", lambda: charts.heatmap(
        heat, title=t("chart_heatmap", lang), col_labels=[f"{c}\n{names[c]}" for c in codes],
        reference=[float(ov.loc[c].score) for c in codes], colorbar_label=t("diff_overall", lang)))
    headers = [t("industry", lang)] + [f"{c} {names[c]}" for c in codes] + [t("composite", lang)]
    rows = [[industry_label(r["industry"], lang)] + [fmt(r[c]) for c in codes] + [fmt(r["composite"])]
            for _, r in ind.iterrows()]
    rows.append([t("all_enterprises", lang)] + [fmt(ov.loc[c].score) for c in codes] + [fmt(comp.score)])
    sec.table(Table(headers, rows, small=True, row_classes=[""] * (len(rows) - 1) + ["total"]))
    doc.sections.append(sec)

    # 4. drivers ----------------------------------------------------------------------------------------------
    sec = Section("drivers", t("sec_drivers", lang))
    outcome = getattr(spec, "outcome", None) or "Q0"
    if zh:
        sec.p(f"重要性为各指标对总体满意度（{outcome}）的 Johnson 相对权重（把 R² 分摊到相互相关的指标上）；波动性为"
              "扣除抽样噪声后的企业间真实标准差 τ = √(企业均值方差 − s²/n 的均值)。虚线为高/低分界；每个点旁的百分比是"
              "自助法重抽样中该指标落在当前象限的概率——概率低说明象限归属并不稳定。")
    else:
        sec.p(f"Importance is each indicator's Johnson relative weight for overall satisfaction ({outcome}) (R² "
              "split among correlated indicators); volatility is the noise-corrected between-enterprise spread "
              "τ = √(Var(enterprise means) − mean(s²/n)). Dashed lines mark the high/low cut; the percentage beside "
              "each point is the bootstrap probability that it belongs to the quadrant shown — a low value means "
              "its quadrant is fragile.")
    qtext = {q: quadrant_label(q, lang) for q in quadrant_names()}
    for level, key in (("indicator", "chart_quadrant_1"), ("item", "chart_quadrant_2")):
        d = drivers[drivers["level"].astype(str).map(_level_key) == level]
        if d.empty:
            continue
        add_chart(sec, f"quadrant_{level}", lambda d=d, key=key: charts.quadrant(
            d.reset_index(drop=True), title=t(key, lang), xlabel=t("importance", lang), ylabel=t("volatility", lang),
            quadrant_text=qtext))
    headers = [t("level", lang), t("code", lang), t("indicator", lang), t("correlation", lang),
               t("relative_weight", lang), t("tau", lang), t("quadrant", lang), t("quadrant_prob", lang)]
    rows = []
    for _, r in drivers.iterrows():
        code = str(r["code"])
        name = names.get(code) or inames.get(code) or (r.get("name_zh") if zh else r.get("name_en")) or code
        p = r.get(f"p_{r['quadrant']}")
        rows.append([t("level_1" if _level_key(r["level"]) == "indicator" else "level_2", lang), code, str(name), fmt(r.get("correlation"), 3), fmt(r.get("relative_weight"), 3),
                     fmt(r.get("tau")), quadrant_label(r["quadrant"], lang), pct(p, 0)])
    sec.table(Table(headers, rows, small=True, numeric=[False, False, False, True, True, True, False, True]))
    doc.sections.append(sec)

    # 5. callback ---------------------------------------------------------------------------------------------
    sec = Section("callback", t("sec_callback", lang))
    if zh:
        sec.p(f"客户回访率：回答“通话结束后企业是否主动回电或回访”为“是”的受访者占有效回答（不含“不知道”）的比例。"
              f"全部企业平均 {pct(cb_overall)}。")
    else:
        sec.p(f"Customer callback rate: the share of respondents saying the enterprise called them back after the "
              f"call, among valid answers (don't know excluded). Mean over all enterprises: {pct(cb_overall)}.")
    if "callback_rate" in ind.columns:
        cb = ind.sort_values("callback_rate", ascending=False)
        sec.table(Table([t("industry", lang), t("callback_rate", lang), t("n_enterprises", lang)],
                        [[industry_label(r.industry, lang), pct(r.callback_rate), str(int(r.n_enterprises))]
                         for r in cb.itertuples()]))
    doc.sections.append(sec)

    # 6. enterprises by industry ------------------------------------------------------------------------------
    sec = Section("enterprises", t("sec_enterprises", lang))
    correction = correction_label(method, lang)
    if zh:
        sec.p(f"每个行业内按综合得分排列。“分层”比较企业与本行业均值（95%，多重比较校正：{correction or '见方法说明'}）；"
              "排名均附 95% 排名区间，区间宽说明名次差异主要来自抽样误差。", "note")
    else:
        sec.p(f"Within each industry, enterprises are listed by composite score. The tier compares each enterprise "
              f"with its industry mean (95%, multiple-comparison correction: {correction or 'see Method'}); ranks "
              f"carry 95% rank intervals — wide intervals mean most rank differences are sampling noise.", "note")
    has_ri = {"rank_in_industry", "rank_in_industry_low", "rank_in_industry_high"} <= set(ent.columns)
    headers = [t("enterprise", lang), t("n", lang), t("composite", lang), t("ci", lang), t("tier", lang)]
    if has_ri:
        headers += [t("rank_in_industry", lang)]
    headers += [t("rank_overall", lang), t("callback_rate", lang)]
    for industry in ind.industry:
        sub = ent[ent["industry"] == industry].sort_values("composite", ascending=False)
        rows, classes = [], []
        for r in sub.to_dict("records"):
            row = [str(r["enterprise_name"]), str(int(r["n"])), fmt(r["composite"]),
                   interval(r["composite_ci_low"], r["composite_ci_high"]), tier_label(r.get("tier"), lang)]
            if has_ri:
                row.append(f"{int(r['rank_in_industry'])}（{rank_interval(r['rank_in_industry_low'], r['rank_in_industry_high'])}）"
                           if zh else f"{int(r['rank_in_industry'])} ({rank_interval(r['rank_in_industry_low'], r['rank_in_industry_high'])})")
            row.append(f"{int(r['rank'])}（{rank_interval(r['rank_low'], r['rank_high'])}）" if zh
                       else f"{int(r['rank'])} ({rank_interval(r['rank_low'], r['rank_high'])})")
            row.append(pct(r.get("callback_rate")))
            rows.append(row)
            classes.append(str(r.get("tier")) if r.get("tier") in ("above", "below") else "")
        sec.h3(f"{industry_label(industry, lang)}（{len(sub)}）" if zh else f"{industry_label(industry, lang)} ({len(sub)})")
        sec.table(Table(headers, rows, small=True, row_classes=classes,
                        numeric=[False, True, True, True, False] + [True] * (len(headers) - 5)))
    doc.sections.append(sec)

    # 7. method -----------------------------------------------------------------------------------------------
    sec = Section("method", t("sec_method", lang))
    sec.ul(_method_lines(result, rates, lang, ov_computed))
    if rates is not None and len(rates) > 1:
        groups = [c for c in rates.columns if not pd.api.types.is_numeric_dtype(rates[c])]
        show = [c for c in ("n", "RR1", "RR3", "COOP1", "REF1", "CON1") if c in rates.columns]
        sec.table(Table([t("industry", lang) if g == "industry" else g for g in groups] + show,
                        [[industry_label(r[g], lang) if g == "industry" else str(r[g]) for g in groups]
                         + [str(int(r[c])) if c == "n" else pct(r[c]) for c in show] for _, r in rates.iterrows()],
                        caption=t("sec_rates_by_group", lang), small=True,
                        numeric=[False] * len(groups) + [True] * len(show)))
    doc.sections.append(sec)

    sheets = _sheets(result, ov, tiers, rates, lang)
    return doc, sheets, all_charts


def _method_lines(result: Any, rates: pd.DataFrame | None, lang: str, ov_computed: bool) -> list[str]:
    spec, overall, method, ent = result.spec, result.overall, getattr(result, "method", {}) or {}, result.enterprises
    zh = lang == "zh-CN"
    n_e, n_r = int(overall.get("n_enterprises", len(ent))), int(overall.get("n_respondents", 0))
    n_ind = len(result.industries)
    n_boot = method_value(method, "n_boot", default="?")
    conf = float(method_value(method, "confidence", default=0.95) or 0.95)
    seed = method_value(method, "seed", default="—")
    correction = correction_label(method, lang)
    agg = method_value(method, "industry_aggregation", default=getattr(spec, "industry_aggregation", "enterprise_mean"))
    n_series = ent["n"].astype(float)
    w_overall = rank_width_summary(ent, "rank_low", "rank_high")
    w_ind = rank_width_summary(ent, "rank_in_industry_low", "rank_in_industry_high")
    weights = ", ".join(f"{i.code} {i.weight:.3f}" for i in spec.indicators)
    tiers = ent["tier"].value_counts() if "tier" in ent.columns else pd.Series(dtype=int)
    rr = rates_summary(rates, lang)
    lines: list[str] = []
    if zh:
        lines.append(f"样本：{n_ind} 个行业、{n_e} 家企业、{n_r} 个成功样本；每家企业样本量中位数 {n_series.median():.0f}"
                     f"（最少 {n_series.min():.0f}，最多 {n_series.max():.0f}）。只计入完整访问。")
        lines.append(rr or "应答率：本次运行未提供拨打结果数据，未计算应答率。")
        lines.append(f"计分：5 分量表映射为 100/80/60/40/20，“不适用”和“不知道”视为缺失；一级指标为已回答二级指标的加权均值"
                     f"（答题不足一半时该指标缺失）；综合得分为一级指标加权均值，权重 {weights}。")
        lines.append("行业与总体得分：" + ("企业得分的均值（每家企业权重相同）。" if agg == "enterprise_mean"
                                          else "全部受访者的均值（按受访者加权）。"))
        if n_boot in (0, "0"):
            lines.append("区间：本次运行未做自助法重抽样（n_boot = 0），只有点估计，不给出区间、排名区间和分层。")
        else:
            lines.append(f"区间：{conf:.0%} 自助法百分位区间，{n_boot} 次重抽样（随机种子 {seed}）；企业区间对其受访者重抽样，"
                         "行业与总体区间对企业重抽样（同一企业的受访者相互相关）。"
                         + ("总体各一级指标的区间由报告按同一方法对企业重抽样计算。" if ov_computed else ""))
        lines.append(f"分层：企业与本行业均值比较，多重比较校正方法：{correction}。结果："
                     f"{int(tiers.get('above', 0))} 家显著高于、{int(tiers.get('not_different', 0))} 家无显著差异、"
                     f"{int(tiers.get('below', 0))} 家显著低于本行业均值。")
        if finite(w_overall["median"]):
            lines.append(f"排名能说明什么：总排名区间宽度中位数为 {w_overall['median']:.0f} 位（最宽 {w_overall['max']:.0f} 位）"
                         + (f"，行业内排名区间宽度中位数为 {w_ind['median']:.0f} 位" if finite(w_ind["median"]) else "")
                         + "。每家企业约 20 个样本时，相邻名次之间的差异绝大多数在抽样误差之内，因此本报告以分层为主，"
                           "排名仅附区间展示，不应据此区分名次接近的企业。")
        lines.append("驱动因素：重要性为对总体满意度的 Johnson 相对权重，波动性为扣除抽样噪声的企业间标准差 τ；"
                     "象限归属附自助法概率。")
    else:
        lines.append(f"Sample: {n_ind} industries, {n_e} enterprises, {n_r} completed interviews; median "
                     f"{n_series.median():.0f} interviews per enterprise (min {n_series.min():.0f}, max "
                     f"{n_series.max():.0f}). Only complete interviews count.")
        lines.append(rr or "Outcome rates: no call-outcome data was supplied to this run, so no response rates.")
        lines.append(f"Scoring: answers 5…1 map to 100/80/60/40/20; 'not applicable' and 'don't know' are missing; "
                     f"a first-level score is the weighted mean of the answered items (missing when fewer than half "
                     f"are answered); the composite is the weighted mean of first-level scores, weights {weights}.")
        lines.append("Industry and overall scores: " + ("mean of enterprise scores (each enterprise weighs the same)."
                                                       if agg == "enterprise_mean" else "mean over respondents."))
        if n_boot in (0, "0"):
            lines.append("Intervals: this run used no bootstrap (n_boot = 0): point estimates only, no intervals, "
                         "rank intervals or tiers.")
        else:
            lines.append(f"Intervals: {conf:.0%} bootstrap percentile intervals, {n_boot} replicates (seed {seed}); an "
                         "enterprise's interval resamples its respondents, industry and overall intervals resample "
                         "enterprises (respondents cluster within enterprises)."
                         + (" Overall first-level intervals were computed by this report the same way." if ov_computed
                            else ""))
        lines.append(f"Tiers compare each enterprise with its industry mean; multiple-comparison correction: "
                     f"{correction}. Result: {int(tiers.get('above', 0))} above, "
                     f"{int(tiers.get('not_different', 0))} not different, {int(tiers.get('below', 0))} below.")
        if finite(w_overall["median"]):
            lines.append(f"What ranks can say: the median overall rank interval spans {w_overall['median']:.0f} "
                         f"places (widest {w_overall['max']:.0f})"
                         + (f", within industry {w_ind['median']:.0f} places" if finite(w_ind["median"]) else "")
                         + ". With about 20 interviews per enterprise most differences between neighbouring places "
                           "are sampling noise, so this report leads with tiers and shows ranks only with their "
                           "intervals; do not separate enterprises whose intervals overlap.")
        lines.append("Drivers: importance is the Johnson relative weight for overall satisfaction; volatility is the "
                     "noise-corrected between-enterprise spread τ; quadrant membership carries its bootstrap "
                     "probability.")
    return lines


def _sheets(result: Any, ov: pd.DataFrame, tiers: pd.DataFrame, rates: pd.DataFrame | None,
            lang: str) -> list[Sheet]:
    spec = result.spec
    names = indicator_names(spec, lang)
    codes = list(spec.indicator_codes)
    overall = ov.reset_index()
    overall.insert(1, "name", [t("overall_composite", lang) if c == "composite" else names.get(c, c)
                               for c in overall["code"]])
    ind = result.industries.sort_values("rank", kind="stable").copy()
    if not tiers.empty:
        ind = ind.merge(tiers.add_prefix("tier_").reset_index(), on="industry", how="left")
    ent = result.enterprises.sort_values(["industry", "composite"], ascending=[True, False], kind="stable")
    first = ["enterprise_id", "enterprise_name", "industry", "n", *codes, "composite", "composite_ci_low",
             "composite_ci_high", "tier", "rank", "rank_low", "rank_high"]
    rest = [c for c in ent.columns if c not in first]
    ent = ent[[c for c in first if c in ent.columns] + rest]
    method = getattr(result, "method", {}) or {}
    mframe = pd.DataFrame({"key": list(method.keys()), "value": [str(v) for v in method.values()]})
    sheets = [
        Sheet(t("sheet_overall", lang), overall),
        Sheet(t("sheet_industries", lang), ind, percent=("callback_rate",),
              integer=("rank", "rank_low", "rank_high", "n_enterprises", "n_respondents")),
        Sheet(t("sheet_enterprises", lang), ent, percent=("callback_rate",),
              integer=("n", "rank", "rank_low", "rank_high", "rank_in_industry", "rank_in_industry_low",
                       "rank_in_industry_high")),
        Sheet(t("sheet_drivers", lang), result.drivers),
        Sheet(t("sheet_method", lang), mframe),
    ]
    if rates is not None and len(rates):
        rate_cols = [c for c in rates.columns if str(c).startswith(("RR", "COOP", "REF", "CON"))]
        sheets.insert(4, Sheet(t("sheet_rates", lang), rates.reset_index(drop=rates.index.name is None),
                               percent=tuple(rate_cols)))
    return sheets


def build_industry_report(result: Any, study: Mapping, *, rates: pd.DataFrame | None = None, lang: str = "zh-CN",
                          out_dir: str | Path = ".", formats: Iterable[str] = ("html", "pdf", "xlsx"),
                          stem: str = "industry_report") -> dict[str, Path]:
    """Write the industry report.

    Parameters
    ----------
    result : scoring.ScoreResult
        Output of ``scoring.score_study``.
    study : Mapping
        The raw study mapping (title, names come from ``result.spec``).
    rates : DataFrame, optional
        ``scoring.response_rates`` output; its first row is quoted in the method section.
    lang : {"zh-CN", "en"}
    out_dir : path
        Created if needed. Files are named ``<stem>.<lang>.<ext>``.
    formats : iterable of {"html", "pdf", "xlsx", "png"}
        ``png`` writes each chart to ``<out_dir>/charts/``.

    Returns
    -------
    dict
        Format → path written (``png`` → the charts folder).
    """
    fmts = check_formats(formats, ("html", "pdf", "xlsx", "png"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc, sheets, made = industry_document(result, study, rates=rates, lang=lang,
                                          with_charts=bool({"html", "pdf", "png"} & set(fmts)))
    paths: dict[str, Path] = {}
    html = render_html("industry.html", doc) if {"html", "pdf"} & set(fmts) else ""
    if "html" in fmts:
        paths["html"] = write_html(html, out / f"{stem}.{lang}.html")
    if "pdf" in fmts:
        paths["pdf"] = write_pdf(html, out / f"{stem}.{lang}.pdf")
    if "xlsx" in fmts:
        paths["xlsx"] = write_xlsx(sheets, out / f"{stem}.{lang}.xlsx", title=doc.title)
    if "png" in fmts:
        folder = out / "charts"
        folder.mkdir(exist_ok=True)
        for name, ch in made.items():
            (folder / f"{stem}_{name}.{lang}.png").write_bytes(ch.png)
        paths["png"] = folder
    return paths
