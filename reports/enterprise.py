"""One report per enterprise: its 6 and 22 indicator scores against 本企业去年 / 本省份 / 本行业 / 全行业, where
it is significantly above or below its industry, strongest and weakest items, priority improvement areas from
the driver analysis, verbatim answers to the open question and profile charts.

All benchmarks are computed once in the parent process (:func:`prepare`), then enterprises are rendered in
parallel worker processes that receive the prepared tables once (pool initializer), not per report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports import charts
from reports._common import finite, method_value
from reports.fonts import configure_matplotlib
from reports.i18n import (
    check_lang,
    correction_label,
    indicator_names,
    industry_label,
    item_names,
    quadrant_label,
    t,
    tier_label,
)
from reports.privacy import mask_text
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

__all__ = ["build_enterprise_reports", "prepare", "EnterpriseData", "enterprise_document", "report_stem"]

_TEXT_COLUMNS = ("OPEN1", "text", "verbatim", "answer")
_TIER_SIG = {"above": "above", "below": "below", "not_different": "none"}


@dataclass
class EnterpriseData:
    """Everything needed to render any enterprise's report, prepared once."""

    lang: str
    title: str
    codes: list[str]
    items: list[str]
    names: dict[str, str]
    inames: dict[str, str]
    parent: dict[str, str]
    enterprises: pd.DataFrame                     # indexed by enterprise_id
    industry_means: pd.DataFrame                  # indexed by industry; codes, composite, items
    overall_means: pd.Series                      # codes, composite, items
    province_means: pd.DataFrame | None           # indexed by province
    item_ci: pd.DataFrame | None                  # indexed by enterprise_id; <item>_ci_low/_high
    previous: pd.DataFrame | None                 # indexed by enterprise_id
    drivers: pd.DataFrame
    verbatims: dict[str, list[str]] = field(default_factory=dict)
    confidence: float = 0.95
    correction: str = ""
    floor_1: float = 0.0                          # common axis start of the indicator / item charts
    floor_2: float = 0.0


def _study_title(study: Mapping, lang: str) -> str:
    title = study.get("title") if isinstance(study, Mapping) else None
    if isinstance(title, Mapping):
        return str(title.get(lang) or next(iter(title.values()), ""))
    return "" if title is None else str(title)


def _province_of(result: Any) -> pd.Series | None:
    ent = result.enterprises
    if "province" in ent.columns:
        s = ent.set_index("enterprise_id")["province"]
    else:
        resp = getattr(result, "respondents", None)
        if resp is None or "province" not in getattr(resp, "columns", ()):
            return None
        s = resp.dropna(subset=["province"]).groupby("enterprise_id")["province"].agg(
            lambda x: x.value_counts().index[0])
    s = s.dropna().astype(str)
    s = s[s.str.strip() != ""]
    return s if len(s) else None


def _item_intervals(result: Any, items: Sequence[str], confidence: float) -> pd.DataFrame | None:
    """Normal-approximation intervals for enterprise item means from the respondent scores (descriptive)."""
    resp = getattr(result, "respondents", None)
    if resp is None or not set(items) <= set(getattr(resp, "columns", ())):
        return None
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    g = resp.groupby("enterprise_id")[list(items)]
    mean, sd, n = g.mean(), g.std(ddof=1), g.count()
    half = z * sd / np.sqrt(n.where(n > 1))
    lo, hi = (mean - half).add_suffix("_ci_low"), (mean + half).add_suffix("_ci_high")
    return pd.concat([lo, hi, n.add_prefix("nbase_")], axis=1)


def _verbatims(frame: pd.DataFrame | None) -> dict[str, list[str]]:
    if frame is None or len(frame) == 0:
        return {}
    if "enterprise_id" not in frame.columns:
        raise ValueError("verbatims: needs an enterprise_id column")
    col = next((c for c in _TEXT_COLUMNS if c in frame.columns), None)
    if col is None:
        raise ValueError(f"verbatims: needs one text column named one of {', '.join(_TEXT_COLUMNS)}")
    out: dict[str, list[str]] = {}
    for eid, text in zip(frame["enterprise_id"].astype(str), frame[col], strict=True):
        if isinstance(text, str) and text.strip():
            out.setdefault(eid, []).append(mask_text(text.strip()))
    return out


def prepare(result: Any, study: Mapping, *, previous: Any = None, verbatims: pd.DataFrame | None = None,
            lang: str = "zh-CN") -> EnterpriseData:
    """Compute the benchmarks every enterprise report compares against (once, vectorised)."""
    check_lang(lang)
    spec = result.spec
    codes, items = list(spec.indicator_codes), list(spec.item_codes)
    method = getattr(result, "method", {}) or {}
    confidence = float(method_value(method, "confidence", default=0.95) or 0.95)
    ent = result.enterprises.copy()
    ent["enterprise_id"] = ent["enterprise_id"].astype(str)
    prov = _province_of(result)
    if prov is not None:
        ent["province"] = ent["enterprise_id"].map(prov)
    cols = [c for c in [*codes, "composite", *items, "callback_rate"] if c in ent.columns]
    ind = result.industries.set_index("industry")
    industry_means = ent.groupby("industry")[cols].mean()
    # scoring's own industry scores win where it has them (respondent-weighted aggregation, if chosen)
    for c in cols:
        if c in ind.columns:
            industry_means[c] = ind[c].reindex(industry_means.index).astype(float)
    overall_means = ent[cols].mean()
    for c in [*codes, "composite"]:
        if finite(result.overall.get(c)):
            overall_means[c] = float(result.overall[c])
    province_means = None
    if "province" in ent.columns and ent["province"].notna().any():
        province_means = ent.dropna(subset=["province"]).groupby("province")[cols].mean()
    prev = None
    if previous is not None:
        prev = previous.enterprises.copy()
        prev["enterprise_id"] = prev["enterprise_id"].astype(str)
        prev = prev.set_index("enterprise_id")
    lv1_cols = [c for c in [*codes, "composite"] if c in ent.columns]
    lv2_cols = [c for c in items if c in ent.columns]
    floor_1 = charts.value_floor(np.concatenate([ent[lv1_cols].to_numpy(float).ravel(),
                                                 industry_means[lv1_cols].to_numpy(float).ravel()]))
    floor_2 = charts.value_floor(np.concatenate([ent[lv2_cols].to_numpy(float).ravel(),
                                                 industry_means[lv2_cols].to_numpy(float).ravel()]))
    if prev is not None:
        floor_1 = min(floor_1, charts.value_floor(prev[[c for c in lv1_cols if c in prev.columns]].to_numpy(float)))
    return EnterpriseData(
        floor_1=floor_1, floor_2=floor_2,
        lang=lang, title=_study_title(study, lang), codes=codes, items=items,
        names=indicator_names(spec, lang), inames=item_names(spec, lang), parent=dict(spec.item_parent),
        enterprises=ent.set_index("enterprise_id", drop=False), industry_means=industry_means,
        overall_means=overall_means, province_means=province_means,
        item_ci=_item_intervals(result, items, confidence), previous=prev, drivers=result.drivers.copy(),
        verbatims=_verbatims(verbatims), confidence=confidence,
        correction=str(correction_label(method, lang) or ""),
    )


def _sig(value: float, low: Any, high: Any, bench: float) -> str:
    if not (finite(low) and finite(high) and finite(bench)):
        return "none"
    if float(low) > bench:
        return "above"
    if float(high) < bench:
        return "below"
    return "none"


def _sig_text(sig: str, lang: str, short: bool = False) -> str:
    if short and sig not in ("above", "below"):
        return "—"
    return t({"above": "sig_above", "below": "sig_below"}.get(sig, "sig_none"), lang)


def _diff(a: Any, b: Any) -> str:
    if not (finite(a) and finite(b)):
        return "—"
    d = float(a) - float(b)
    return f"{d:+.2f}"


def comparison_frame(data: EnterpriseData, eid: str, level: int) -> pd.DataFrame:
    """Scores of enterprise ``eid`` with its benchmarks, one row per indicator (level 1, plus composite) or item.

    Columns: code, name, last_wave, score, ci_low, ci_high, base, province, industry, all_mean, diff, sig
    (sig in above / below / none: the enterprise's 95 % interval lies wholly above / below the industry mean;
    for the composite, scoring's tier — its multiple-comparison-corrected test — so the two never disagree).
    """
    e = data.enterprises.loc[eid]
    ind = data.industry_means.loc[e["industry"]]
    prov = None
    if data.province_means is not None and isinstance(e.get("province"), str) and \
            e["province"] in data.province_means.index:
        prov = data.province_means.loc[e["province"]]
    prev = data.previous.loc[eid] if data.previous is not None and eid in data.previous.index else None
    rows = []
    codes = [*data.codes, "composite"] if level == 1 else data.items
    for code in codes:
        score = float(e.get(code, np.nan))
        if level == 1:
            lo_k, hi_k = ("composite_ci_low", "composite_ci_high") if code == "composite" else \
                (f"{code}_ci_low", f"{code}_ci_high")
            lo, hi = e.get(lo_k, np.nan), e.get(hi_k, np.nan)
            base = e.get("n") if code == "composite" else e.get(f"n_{code}", e.get("n"))
            name = t("overall_composite", data.lang) if code == "composite" else data.names.get(code, code)
        else:
            ci = data.item_ci.loc[eid] if data.item_ci is not None and eid in data.item_ci.index else None
            lo = ci[f"{code}_ci_low"] if ci is not None else np.nan
            hi = ci[f"{code}_ci_high"] if ci is not None else np.nan
            base = e.get(f"n_{code}", ci[f"nbase_{code}"] if ci is not None else np.nan)
            name = data.inames.get(code, code)
        bench = float(ind.get(code, np.nan))
        rows.append({
            "code": code, "name": name,
            "last_wave": float(prev.get(code, np.nan)) if prev is not None else np.nan,
            "score": score, "ci_low": float(lo) if finite(lo) else np.nan, "ci_high": float(hi) if finite(hi) else np.nan,
            "base": float(base) if finite(base) else np.nan,
            "province": float(prov.get(code, np.nan)) if prov is not None else np.nan,
            "industry": bench, "all_mean": float(data.overall_means.get(code, np.nan)),
            "diff": score - bench if finite(score) and finite(bench) else np.nan,
            "sig": _sig(score, lo, hi, bench),
        })
        if code == "composite" and e.get("tier") in _TIER_SIG:
            rows[-1]["sig"] = _TIER_SIG[e["tier"]]  # scoring's corrected test, so the row agrees with the tier
    return pd.DataFrame(rows)


def _priorities(data: EnterpriseData, items: pd.DataFrame, level1: pd.DataFrame) -> pd.DataFrame:
    """High-importance indicators (scoring's importance_high) on which the enterprise is below its industry,
    ordered by relative weight × gap (the expected gain in overall satisfaction from closing the gap)."""
    d = data.drivers.copy()
    d["code"] = d["code"].astype(str)
    gaps = pd.concat([level1.set_index("code")["diff"], items.set_index("code")["diff"]])
    d["diff"] = d["code"].map(gaps)
    high = d["importance_high"].fillna(False).astype(bool)
    d = d[high & (d["diff"] < 0)].copy()
    d["priority"] = d["relative_weight"].astype(float) * (-d["diff"])
    return d.sort_values("priority", ascending=False)


def enterprise_document(data: EnterpriseData, eid: str, *, with_charts: bool = True
                        ) -> tuple[Document, list[Sheet]]:
    """Content of one enterprise report (HTML/PDF document and XLSX sheets)."""
    lang = data.lang
    e = data.enterprises.loc[eid]
    lv1 = comparison_frame(data, eid, 1)
    lv2 = comparison_frame(data, eid, 2)
    has_prev = lv1["last_wave"].notna().any()
    has_prov = lv1["province"].notna().any()
    doc = Document(title=str(e["enterprise_name"]), subtitle=f"{t('enterprise_report', lang)} · {data.title}",
                   lang=lang)
    province = e.get("province") if has_prov else None
    badge = [t("label_value", lang, label=t("industry", lang), value=industry_label(e["industry"], lang))]
    if isinstance(province, str):
        badge.append(t("label_value", lang, label=t("province", lang), value=province))
    badge.append(t("badge_n", lang, label=t("n", lang), n=int(e["n"])))
    if isinstance(e.get("tier"), str):
        badge.append(tier_label(e["tier"], lang))
    doc.meta["badge"] = " · ".join(badge)
    comp = lv1.set_index("code").loc["composite"]
    doc.kpis = [{"label": t("composite", lang), "value": fmt(comp.score),
                 "sub": f"{t('ci', lang)} {interval(comp.ci_low, comp.ci_high)}"},
                {"label": t("this_industry", lang), "value": fmt(comp.industry),
                 "sub": f"{t('vs_industry', lang)} {_diff(comp.score, comp.industry)}"}]
    if "rank_in_industry" in e.index and finite(e.get("rank_in_industry")):
        doc.kpis.append({"label": t("rank_in_industry", lang), "value": str(int(e["rank_in_industry"])),
                         "sub": f"{t('rank_interval', lang)} "
                                f"{rank_interval(e.get('rank_in_industry_low'), e.get('rank_in_industry_high'))}"})
    doc.kpis.append({"label": t("rank_overall", lang), "value": str(int(e["rank"])),
                     "sub": f"{t('rank_interval', lang)} {rank_interval(e['rank_low'], e['rank_high'])}"})
    if finite(e.get("callback_rate")):
        doc.kpis.append({"label": t("callback_rate", lang), "value": pct(e["callback_rate"]),
                         "sub": f"{t('this_industry', lang)} {pct(data.industry_means.loc[e['industry']].get('callback_rate', np.nan)) if 'callback_rate' in data.industry_means.columns else '—'}"})

    def headers() -> list[str]:
        h = [t("indicator", lang)]
        if has_prev:
            h.append(t("last_wave", lang))
        h += [t("this_enterprise", lang), t("ci", lang), t("n_base", lang)]
        if has_prov:
            h.append(t("this_province", lang))
        h += [t("this_industry", lang), t("all_enterprises", lang), t("vs_industry", lang), t("significance", lang)]
        return h

    def numeric() -> list[bool]:
        return [False] + [True] * (len(headers()) - 2) + [False]  # label and significance text wrap

    def widths() -> list[str]:
        n_mid = len(headers()) - 3  # label, interval and significance get their own widths
        mid = f"{(100 - 22 - 11 - 8) / n_mid:.2f}%"
        return ["22%"] + [mid] * (1 + int(has_prev)) + ["11%"] + [mid] * (n_mid - 1 - int(has_prev)) + ["8%"]

    def rows(frame: pd.DataFrame, with_code: bool) -> tuple[list[list[str]], list[str]]:
        out, classes = [], []
        for r in frame.itertuples():
            row = [f"{r.code} {r.name}" if with_code and r.code != "composite" else str(r.name)]
            if has_prev:
                row.append(fmt(r.last_wave))
            row += [fmt(r.score), interval(r.ci_low, r.ci_high), fmt(r.base, 0)]
            if has_prov:
                row.append(fmt(r.province))
            row += [fmt(r.industry), fmt(r.all_mean), _diff(r.score, r.industry), _sig_text(r.sig, lang, short=True)]
            out.append(row)
            classes.append("total" if r.code == "composite" else r.sig if r.sig != "none" else "")
        return out, classes

    sec = Section("scores", t("sec_scores", lang))
    tier = e.get("tier")
    sec.p(t("ent_scores_lead", lang, score=fmt(comp.score), ci=interval(comp.ci_low, comp.ci_high),
            industry=fmt(comp.industry), all=fmt(comp.all_mean), tier=tier_label(tier, lang) or "—",
            correction=data.correction or "—"), "lead")
    r1, c1 = rows(lv1, True)
    sec.table(Table(headers(), r1, row_classes=c1, numeric=numeric(), widths=widths()))
    if with_charts:
        series: dict[str, list[float]] = {}
        if has_prev:
            series[t("last_wave", lang)] = lv1["last_wave"].tolist()
        series = {t("this_enterprise", lang): lv1["score"].tolist(), **series}
        if has_prov:
            series[t("this_province", lang)] = lv1["province"].tolist()
        series[t("this_industry", lang)] = lv1["industry"].tolist()
        series[t("all_enterprises", lang)] = lv1["all_mean"].tolist()
        cats = [f"{c} {data.names.get(c, c)}" if c != "composite" else t("overall_composite", lang)
                for c in lv1["code"]]
        tpl = charts.bar_template(cats, list(series), title=t("chart_profile", lang), xlabel=t("score_axis", lang),
                                  lo=data.floor_1)
        doc.meta.setdefault("charts", []).append(tpl.render(list(series.values())))
        sec.chart(doc.meta["charts"][-1])
    sec.p(t("ent_significance_note", lang), "note")
    doc.sections.append(sec)

    sec = Section("items", t("sec_items", lang))
    r2, c2 = rows(lv2, True)
    sec.table(Table(headers(), r2, row_classes=c2, small=True, numeric=numeric(), widths=widths()))
    if with_charts:
        series2 = {t("this_enterprise", lang): lv2["score"].tolist(),
                   t("this_industry", lang): lv2["industry"].tolist()}
        tpl = charts.bar_template([f"{c} {n}" for c, n in zip(lv2["code"], lv2["name"], strict=True)],
                                  list(series2), title=t("chart_items", lang), xlabel=t("score_axis", lang),
                                  lo=data.floor_2, annotate_first=False)
        doc.meta.setdefault("charts", []).append(tpl.render(list(series2.values())))
        sec.chart(doc.meta["charts"][-1])
    doc.sections.append(sec)

    sec = Section("strengths", t("sec_strengths", lang))
    ranked = lv2.dropna(subset=["diff"]).sort_values(["diff", "score"], ascending=[False, False])
    strong = ranked[ranked["diff"] > 0].head(3)
    weak = ranked[ranked["diff"] < 0].tail(3).iloc[::-1]

    def item_line(r: Any) -> str:
        return t("ent_item_line", lang, code=r.code, name=r.name, score=fmt(r.score), industry=fmt(r.industry),
                 diff=_diff(r.score, r.industry))

    sec.h3(t("strongest", lang)).ul([item_line(r) for r in strong.itertuples()] or [t("none_above", lang)])
    sec.h3(t("weakest", lang)).ul([item_line(r) for r in weak.itertuples()] or [t("none_below", lang)])
    doc.sections.append(sec)

    sec = Section("priorities", t("sec_priorities", lang))
    pri = _priorities(data, lv2, lv1)
    sec.p(t("ent_priorities_lead", lang))
    if pri.empty:
        sec.p(t("no_priorities", lang))
    else:
        prow = []
        for r in pri.head(6).itertuples():
            code = str(r.code)
            name = data.names.get(code) or data.inames.get(code) or code
            p = getattr(r, f"p_{r.quadrant}", np.nan) if isinstance(r.quadrant, str) else np.nan
            prow.append([f"{code} {name}", fmt(r.diff), fmt(r.relative_weight, 3),
                         t("paren", lang, text=quadrant_label(r.quadrant, lang), inner=pct(p, 0))])
        sec.table(Table([t("indicator", lang), t("vs_industry", lang), t("relative_weight", lang),
                         t("quadrant", lang)], prow, numeric=[False, True, True, False]))
    doc.sections.append(sec)

    sec = Section("verbatims", t("sec_verbatims", lang))
    texts = data.verbatims.get(eid, [])
    if texts:
        for text in texts:
            sec.blocks.append({"kind": "quote", "text": text})
    else:
        sec.p(t("no_verbatims", lang))
    doc.sections.append(sec)

    def sheet_frame(frame: pd.DataFrame) -> pd.DataFrame:
        f = frame.copy()
        f["sig"] = [_sig_text(s, lang) for s in f["sig"]]
        keep = ["code", "name"] + (["last_wave"] if has_prev else []) + ["score", "ci_low", "ci_high", "base"] + \
            (["province"] if has_prov else []) + ["industry", "all_mean", "diff", "sig"]
        labels = {"code": t("code", lang), "name": t("indicator", lang), "last_wave": t("last_wave", lang),
                  "score": t("this_enterprise", lang), "ci_low": t("ci_low", lang), "ci_high": t("ci_high", lang),
                  "base": t("n_base", lang), "province": t("this_province", lang),
                  "industry": t("this_industry", lang), "all_mean": t("all_enterprises", lang),
                  "diff": t("vs_industry", lang), "sig": t("significance", lang)}
        return f[keep].rename(columns=labels)

    sheets = [Sheet(t("sheet_scores", lang), sheet_frame(lv1), integer=(t("n_base", lang),)),
              Sheet(t("sheet_items", lang), sheet_frame(lv2), integer=(t("n_base", lang),)),
              Sheet(t("sheet_verbatims", lang), pd.DataFrame({t("sec_verbatims", lang): texts}))]
    return doc, sheets


_SAFE = re.compile(r"[^0-9A-Za-z_\-\u4e00-\u9fff]+")


def report_stem(eid: str) -> str:
    """File stem of an enterprise's report: ``enterprise_<id>`` with unsafe characters replaced."""
    return "enterprise_" + (_SAFE.sub("_", str(eid)).strip("_") or "unknown")


_WORKER: dict[str, Any] = {}


def _init_worker(data: EnterpriseData, out_dir: Path, formats: tuple[str, ...]) -> None:
    _WORKER.update(data=data, out_dir=out_dir, formats=formats)
    configure_matplotlib()


def _render_one(data: EnterpriseData, eid: str, out_dir: Path, formats: tuple[str, ...]) -> list[Path]:
    doc, sheets = enterprise_document(data, eid, with_charts=bool({"html", "pdf"} & set(formats)))
    stem = report_stem(eid)
    paths = []
    html = render_html("enterprise.html", doc) if {"html", "pdf"} & set(formats) else ""
    if "html" in formats:
        paths.append(write_html(html, out_dir / f"{stem}.{data.lang}.html"))
    if "pdf" in formats:
        paths.append(write_pdf(html, out_dir / f"{stem}.{data.lang}.pdf"))
    if "xlsx" in formats:
        paths.append(write_xlsx(sheets, out_dir / f"{stem}.{data.lang}.xlsx", title=doc.title))
    return paths


def _render_chunk(eids: list[str]) -> list[Path]:
    out: list[Path] = []
    for eid in eids:
        out += _render_one(_WORKER["data"], eid, _WORKER["out_dir"], _WORKER["formats"])
    return out


def build_enterprise_reports(result: Any, study: Mapping, *, enterprise_ids: Iterable[Any] | None = None,
                             previous: Any = None, verbatims: pd.DataFrame | None = None, lang: str = "zh-CN",
                             out_dir: str | Path = ".", formats: Iterable[str] = ("html", "pdf", "xlsx"),
                             workers: int = 1, progress: Callable[[int], None] | None = None) -> list[Path]:
    """Write one report per enterprise.

    Parameters
    ----------
    result : scoring.ScoreResult
    study : Mapping
        Raw study mapping (for the title).
    enterprise_ids : iterable, optional
        Which enterprises (default all in ``result.enterprises``). Unknown ids raise ``ValueError``.
    previous : scoring.ScoreResult, optional
        The previous wave; matched on ``enterprise_id`` for the 本企业去年 column.
    verbatims : DataFrame, optional
        ``enterprise_id`` and the open answer (``OPEN1``); phone numbers in the text are masked.
    lang, out_dir, formats
        As for the industry report; files are ``enterprise_<id>.<lang>.<ext>``.
    workers : int
        Parallel worker processes (1 = in this process).
    progress : callable, optional
        Called with the number of enterprises finished since the last call (drives a tqdm bar).

    Returns
    -------
    list of Path
        Files written, in enterprise order.
    """
    fmts = check_formats(formats)
    data = prepare(result, study, previous=previous, verbatims=verbatims, lang=lang)
    all_ids = list(data.enterprises.index)
    if enterprise_ids is None:
        ids = all_ids
    else:
        ids = [str(i) for i in enterprise_ids]
        unknown = [i for i in ids if i not in data.enterprises.index]
        if unknown:
            raise ValueError(f"enterprise_ids: unknown enterprise id(s) {', '.join(unknown[:10])}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    configure_matplotlib()
    workers = max(1, int(workers))
    if workers == 1 or len(ids) < 2:
        paths: list[Path] = []
        for eid in ids:
            paths += _render_one(data, eid, out, fmts)
            if progress:
                progress(1)
        return paths
    chunk = max(1, min(8, math.ceil(len(ids) / (workers * 4))))
    chunks = [ids[i:i + chunk] for i in range(0, len(ids), chunk)]
    results: dict[int, list[Path]] = {}
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(data, out, fmts)) as pool:
        futures = {pool.submit(_render_chunk, c): i for i, c in enumerate(chunks)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            if progress:
                progress(len(chunks[futures[fut]]))
    return [p for i in range(len(chunks)) for p in results[i]]
