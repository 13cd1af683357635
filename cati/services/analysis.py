"""What the analyst's pages show, read from a :class:`cati.services.releases.Scored` (live or a release).

Nothing here computes a score: every figure is scoring's (``scoring.score_study``) or the enterprise report's
(``reports.enterprise.prepare`` / ``comparison_frame``), so a page, the PDF and the XLSX of one release agree.
Each function returns plain rows (dicts) in the page's language; the views only render them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring.drivers import QUADRANTS

from .releases import Scored, derived

#: The four driver quadrants in scoring's order, and the key of each one's label.
QUADRANT_KEYS = {name: f"an_quadrant_{i}" for i, name in enumerate(QUADRANTS.values())}
SORTS = ("rank", "composite", "n", "name", "industry", "province", "tier", "composite_eb", "rank_eb", "width")
PAGE_SIZE = 200


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(v: Any) -> int | None:
    f = _num(v)
    return None if f is None else int(round(f))


def names(scored: Scored, lang: str) -> tuple[dict[str, str], dict[str, str]]:
    """(indicator code → name, item code → name) in ``lang``."""
    spec = scored.result.spec
    if lang == "en":
        return dict(spec.indicator_names_en), dict(spec.item_names_en)
    return dict(spec.indicator_names_zh), dict(spec.item_names_zh)


def overall(scored: Scored, lang: str) -> dict[str, Any]:
    """The composite and the first-level scores, each with n, its interval and its items' scores and bases."""
    res = scored.result
    ov, spec = res.overall, res.spec
    ind_names, item_names = names(scored, lang)
    rows = [{"code": "composite", "name": None, "score": _num(ov.get("composite")), "low": _num(ov.get("ci_low")),
             "high": _num(ov.get("ci_high")), "n": _int(ov.get("n_composite")), "items": []}]
    for ind in spec.indicators:
        c = ind.code
        rows.append({
            "code": c, "name": ind_names.get(c, c), "score": _num(ov.get(c)), "low": _num(ov.get(f"{c}_ci_low")),
            "high": _num(ov.get(f"{c}_ci_high")), "n": _int(ov.get(f"n_{c}")), "weight": ind.weight,
            "items": [{"code": i, "name": item_names.get(i, i), "score": _num(ov.get(i)), "n": _int(ov.get(f"n_{i}"))}
                      for i in spec.item_codes if spec.item_parent.get(i) == c]})
    tiers = res.enterprises["tier"].value_counts() if "tier" in res.enterprises else pd.Series(dtype=int)
    return {"rows": rows, "n_enterprises": _int(ov.get("n_enterprises")), "n_respondents": _int(ov.get("n_respondents")),
            "n_industries": len(res.industries), "callback_rate": _num(ov.get("callback_rate")),
            "tiers": {k: int(tiers.get(k, 0)) for k in ("above", "not_different", "below")},
            "method": res.method}


def industries(scored: Scored) -> list[dict[str, Any]]:
    """The industry ranking: composite with its interval, rank with its interval, and a tier (the industry's
    interval wholly above / below the overall composite, else not different)."""
    res = scored.result
    total = _num(res.overall.get("composite"))
    ent_tiers = res.enterprises.groupby("industry")["tier"].value_counts().unstack(fill_value=0) \
        if len(res.enterprises) else pd.DataFrame()
    out = []
    for r in res.industries.sort_values(["rank", "industry"]).to_dict("records"):
        low, high = _num(r.get("ci_low")), _num(r.get("ci_high"))
        tier = "not_different"
        if total is not None and low is not None and low > total:
            tier = "above"
        elif total is not None and high is not None and high < total:
            tier = "below"
        counts = ent_tiers.loc[r["industry"]] if r["industry"] in ent_tiers.index else {}
        out.append({"industry": r["industry"], "n_enterprises": _int(r.get("n_enterprises")),
                    "n": _int(r.get("n_respondents")), "score": _num(r.get("composite")), "low": low, "high": high,
                    "rank": _int(r.get("rank")), "rank_low": _int(r.get("rank_low")),
                    "rank_high": _int(r.get("rank_high")), "tier": tier,
                    "callback_rate": _num(r.get("callback_rate")),
                    "above": int(counts.get("above", 0)) if len(counts) else 0,
                    "below": int(counts.get("below", 0)) if len(counts) else 0})
    return out


def industry_detail(scored: Scored, industry: str, lang: str) -> dict[str, Any] | None:
    """One industry: its first-level scores with intervals and bases (None: no such industry)."""
    res = scored.result
    hit = res.industries[res.industries["industry"] == industry]
    if hit.empty:
        return None
    r = hit.iloc[0]
    ind_names, _ = names(scored, lang)
    rows = [{"code": "composite", "name": None, "score": _num(r.get("composite")), "low": _num(r.get("ci_low")),
             "high": _num(r.get("ci_high")), "n": _int(r.get("n_composite"))}]
    rows += [{"code": c, "name": ind_names.get(c, c), "score": _num(r.get(c)), "low": _num(r.get(f"{c}_ci_low")),
              "high": _num(r.get(f"{c}_ci_high")), "n": _int(r.get(f"n_{c}"))} for c in res.spec.indicator_codes]
    return {"industry": industry, "rows": rows, "rank": _int(r.get("rank")), "rank_low": _int(r.get("rank_low")),
            "rank_high": _int(r.get("rank_high")), "n_enterprises": _int(r.get("n_enterprises")),
            "n": _int(r.get("n_respondents")), "of": len(res.industries)}


@dataclass
class EnterpriseList:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    industries: list[str]
    provinces: list[str]
    has_eb: bool
    chart: list[dict[str, Any]] = field(default_factory=list)


def _enterprise_frame(scored: Scored) -> pd.DataFrame:
    def build() -> pd.DataFrame:
        ent = scored.result.enterprises.copy()
        ent["enterprise_id"] = ent["enterprise_id"].astype(str)
        if "province" not in ent.columns:
            ent["province"] = None
        ent["width"] = ent["rank_high"].astype("Float64") - ent["rank_low"].astype("Float64")
        return ent

    return derived.get((*scored.key, "enterprises"), build)


def enterprises(scored: Scored, *, industry: str = "", province: str = "", q: str = "", sort: str = "rank",
                desc: bool = False, page: int = 1) -> EnterpriseList:
    """Enterprises filtered by industry, province and a name/id search, sorted, one page of :data:`PAGE_SIZE`."""
    ent = _enterprise_frame(scored)
    industries_ = sorted(ent["industry"].dropna().astype(str).unique())
    provinces = sorted(ent["province"].dropna().astype(str).unique())
    sel = ent
    if industry:
        sel = sel[sel["industry"] == industry]
    if province:
        sel = sel[sel["province"] == province]
    if q:
        needle = q.strip().lower()
        sel = sel[sel["enterprise_name"].astype(str).str.lower().str.contains(needle, regex=False)
                  | sel["enterprise_id"].str.lower().str.contains(needle, regex=False)]
    col = {"name": "enterprise_name"}.get(sort, sort if sort in SORTS else "rank")
    if col not in sel.columns:
        col = "rank"
    sel = sel.sort_values([col, "enterprise_id"], ascending=[not desc, True], na_position="last", kind="stable")
    total = len(sel)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(1, page), pages)
    part = sel.iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    has_eb = "composite_eb" in ent.columns
    rows = [{
        "id": r["enterprise_id"], "name": r["enterprise_name"], "industry": r["industry"],
        "province": r["province"] if isinstance(r["province"], str) else None, "n": _int(r["n"]),
        "score": _num(r["composite"]), "low": _num(r["composite_ci_low"]), "high": _num(r["composite_ci_high"]),
        "tier": r["tier"], "rank": _int(r["rank"]), "rank_low": _int(r["rank_low"]),
        "rank_high": _int(r["rank_high"]), "eb": _num(r.get("composite_eb")) if has_eb else None,
        "rank_eb": _int(r.get("rank_eb")) if has_eb else None,
        "rank_in_industry": _int(r.get("rank_in_industry")),
    } for r in part.to_dict("records")]
    chart_rows = sel.sort_values("composite", kind="stable")
    chart = [{"id": r["enterprise_id"], "name": r["enterprise_name"], "score": _num(r["composite"]),
              "low": _num(r["composite_ci_low"]), "high": _num(r["composite_ci_high"]), "rank": _int(r["rank"]),
              "rank_low": _int(r["rank_low"]), "rank_high": _int(r["rank_high"]), "tier": r["tier"],
              "n": _int(r["n"])} for r in chart_rows[["enterprise_id", "enterprise_name", "composite",
                                                      "composite_ci_low", "composite_ci_high", "rank", "rank_low",
                                                      "rank_high", "tier", "n"]].to_dict("records")]
    return EnterpriseList(rows=rows, total=total, page=page, pages=pages, industries=industries_,
                          provinces=provinces, has_eb=has_eb, chart=chart)


def _prepared(scored: Scored, lang: str):
    from reports.enterprise import prepare

    def build():
        definition = {"title": ""}
        verb = scored.responses[["enterprise_id", "OPEN1"]] if "OPEN1" in scored.responses.columns else None
        return prepare(scored.result, definition, verbatims=verb, lang=lang, previous=scored.previous)

    return derived.get((*scored.key, "prepared", lang), build)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{"code": r["code"], "name": r["name"], "last": _num(r["last_wave"]), "score": _num(r["score"]),
             "low": _num(r["ci_low"]),
             "high": _num(r["ci_high"]), "n": _int(r["base"]), "industry": _num(r["industry"]),
             "all": _num(r["all_mean"]), "province": _num(r["province"]), "diff": _num(r["diff"]),
             "sig": r["sig"]} for r in frame.to_dict("records")]


def enterprise_detail(scored: Scored, eid: str, lang: str) -> dict[str, Any] | None:
    """One enterprise against 本行业, 全行业 and 本省份: the enterprise report's own comparison (its significance
    flags, strongest and weakest items), its verbatims (phone numbers masked) and its callback rate."""
    from reports.enterprise import comparison_frame

    data = _prepared(scored, lang)
    eid = str(eid)
    if eid not in data.enterprises.index:
        return None
    e = data.enterprises.loc[eid]
    lv1, lv2 = comparison_frame(data, eid, 1), comparison_frame(data, eid, 2)
    ranked = lv2.dropna(subset=["diff"]).sort_values(["diff", "score"], ascending=[False, False])
    strong = ranked[ranked["diff"] > 0].head(3)
    weak = ranked[ranked["diff"] < 0].tail(3).iloc[::-1]
    ind_row = data.industry_means.loc[e["industry"]] if e["industry"] in data.industry_means.index else {}
    return {
        "id": eid, "name": e["enterprise_name"], "industry": e["industry"],
        "province": e.get("province") if isinstance(e.get("province"), str) else None, "n": _int(e["n"]),
        "tier": e["tier"], "rank": _int(e["rank"]), "rank_low": _int(e["rank_low"]), "rank_high": _int(e["rank_high"]),
        "rank_in_industry": _int(e.get("rank_in_industry")), "rank_in_industry_low": _int(e.get("rank_in_industry_low")),
        "rank_in_industry_high": _int(e.get("rank_in_industry_high")),
        "n_in_industry": int((data.enterprises["industry"] == e["industry"]).sum()),
        "n_all": len(data.enterprises), "eb": _num(e.get("composite_eb")),
        "level1": _rows(lv1), "level2": _rows(lv2), "strong": _rows(strong), "weak": _rows(weak),
        "has_province": data.province_means is not None,
        "previous_label": scored.previous.label if scored.previous is not None else None,
        "has_previous": data.previous is not None and eid in data.previous.index,
        "verbatims": data.verbatims.get(eid, []),
        "callback_rate": _num(e.get("callback_rate")), "callback_n": _int(e.get("callback_n")),
        "industry_callback_rate": _num(ind_row.get("callback_rate")) if len(ind_row) else None,
        "all_callback_rate": _num(scored.result.overall.get("callback_rate")),
    }


def drivers(scored: Scored, lang: str, level: str = "indicator") -> dict[str, Any]:
    """The driver table of one level: relative weight, correlation, noise-corrected volatility τ, quadrant and
    each quadrant's bootstrap probability, with the cut points (the level's means) the quadrants use."""
    d = scored.result.drivers
    d = d[d["level"] == level] if "level" in d.columns else d
    name_col = "name_en" if lang == "en" else "name_zh"
    rows = []
    for r in d.to_dict("records"):
        probs = {QUADRANT_KEYS[q]: _num(r.get(f"p_{q}")) for q in QUADRANT_KEYS}
        rows.append({"code": str(r["code"]), "name": r.get(name_col) or r.get("name_zh") or str(r["code"]),
                     "weight": _num(r.get("relative_weight")), "share": _num(r.get("share")),
                     "correlation": _num(r.get("correlation")), "tau": _num(r.get("tau")),
                     "quadrant": QUADRANT_KEYS.get(r.get("quadrant"), ""), "probs": probs,
                     "p": probs.get(QUADRANT_KEYS.get(r.get("quadrant"), ""), None)})
    weights = np.array([r["weight"] for r in rows if r["weight"] is not None], dtype=float)
    taus = np.array([r["tau"] for r in rows if r["tau"] is not None], dtype=float)
    rows.sort(key=lambda r: -(r["weight"] or 0))
    return {"rows": rows, "level": level, "outcome": scored.result.method.get("outcome", ""),
            "cut_weight": float(weights.mean()) if len(weights) else None,
            "cut_tau": float(taus.mean()) if len(taus) else None,
            "r2": _num(d["r2"].iloc[0]) if "r2" in d.columns and len(d) else None}
