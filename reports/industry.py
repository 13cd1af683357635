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
    write_document,
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
    tops = t("list_sep", lang).join(t("paren", lang, text=industry_label(r.industry, lang), inner=fmt(r.composite))
                                    for r in top.itertuples())
    sec.p(t("ind_overall_lead", lang, score=fmt(comp.score), ci=interval(comp.ci_low, comp.ci_high),
            n_e=int(overall.get("n_enterprises", len(ent))), n_r=int(overall.get("n_respondents", 0)), tops=tops),
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
    sec.p(t("ind_industries_lead", lang))
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
        sec.p(t("ind_rank_width_note", lang, n=width["n"], median=f"{width['median']:.0f}"), "note")
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
    sec.p(t("ind_drivers_lead", lang, outcome=outcome))
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
        name = names.get(code) or inames.get(code) or (r.get("name_zh") if lang == "zh-CN" else r.get("name_en")) or code
        p = r.get(f"p_{r['quadrant']}")
        rows.append([t("level_1" if _level_key(r["level"]) == "indicator" else "level_2", lang), code, str(name), fmt(r.get("correlation"), 3), fmt(r.get("relative_weight"), 3),
                     fmt(r.get("tau")), quadrant_label(r["quadrant"], lang), pct(p, 0)])
    sec.table(Table(headers, rows, small=True, numeric=[False, False, False, True, True, True, False, True]))
    doc.sections.append(sec)

    # 5. callback ---------------------------------------------------------------------------------------------
    sec = Section("callback", t("sec_callback", lang))
    sec.p(t("ind_callback_lead", lang, mean=pct(cb_overall)))
    if "callback_rate" in ind.columns:
        cb = ind.sort_values("callback_rate", ascending=False)
        sec.table(Table([t("industry", lang), t("callback_rate", lang), t("n_enterprises", lang)],
                        [[industry_label(r.industry, lang), pct(r.callback_rate), str(int(r.n_enterprises))]
                         for r in cb.itertuples()]))
    doc.sections.append(sec)

    # 6. enterprises by industry ------------------------------------------------------------------------------
    sec = Section("enterprises", t("sec_enterprises", lang))
    correction = correction_label(method, lang)
    sec.p(t("ind_enterprises_note", lang, correction=correction or t("see_method", lang)), "note")
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
                row.append(t("paren", lang, text=int(r["rank_in_industry"]),
                             inner=rank_interval(r["rank_in_industry_low"], r["rank_in_industry_high"])))
            row.append(t("paren", lang, text=int(r["rank"]), inner=rank_interval(r["rank_low"], r["rank_high"])))
            row.append(pct(r.get("callback_rate")))
            rows.append(row)
            classes.append(str(r.get("tier")) if r.get("tier") in ("above", "below") else "")
        sec.h3(t("paren", lang, text=industry_label(industry, lang), inner=len(sub)))
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
    lines: list[str] = [
        t("ind_m_sample", lang, n_ind=n_ind, n_e=n_e, n_r=n_r, median=f"{n_series.median():.0f}",
          min=f"{n_series.min():.0f}", max=f"{n_series.max():.0f}"),
        rr or t("ind_m_no_rates", lang),
        t("ind_m_scoring", lang, weights=weights),
        t("ind_m_agg_enterprise" if agg == "enterprise_mean" else "ind_m_agg_respondent", lang),
    ]
    if n_boot in (0, "0"):
        lines.append(t("ind_m_no_boot", lang))
    else:
        lines.append(t("ind_m_intervals", lang, conf=f"{conf:.0%}", n_boot=n_boot, seed=seed,
                       computed=t("ind_m_ov_computed", lang) if ov_computed else ""))
    lines.append(t("ind_m_tiers", lang, correction=correction, above=int(tiers.get("above", 0)),
                   not_different=int(tiers.get("not_different", 0)), below=int(tiers.get("below", 0))))
    if finite(w_overall["median"]):
        lines.append(t("ind_m_ranks", lang, median=f"{w_overall['median']:.0f}", widest=f"{w_overall['max']:.0f}",
                       within=t("ind_m_ranks_within", lang, median=f"{w_ind['median']:.0f}")
                       if finite(w_ind["median"]) else ""))
    lines.append(t("ind_m_drivers", lang))
    release = method.get("release") if isinstance(method, dict) else None
    if release:  # a frozen release: name it first, so a reader can ask for exactly these numbers again
        lines.insert(0, t("ind_m_release", lang, name=release, date=method.get("release_date", "—"),
                          n_boot=n_boot, seed=seed, weights=weights))
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
    paths = write_document("industry.html", doc, sheets, out, stem, lang, fmts)
    if "png" in fmts:
        folder = out / "charts"
        folder.mkdir(exist_ok=True)
        for name, ch in made.items():
            (folder / f"{stem}_{name}.{lang}.png").write_bytes(ch.png)
        paths["png"] = folder
    return paths
