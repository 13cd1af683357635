"""The staff happiness index reports (客服人幸福指数): the industry report and one report per enterprise, HTML, PDF
and XLSX through :mod:`reports.render`, zh-CN and en (the ``happy:*`` keys of the reports catalogue).

Inputs are :func:`scoring.happiness.score_index_study`'s result and the wide responses it scored (the enterprise
report recomputes its own tables from its rows with the same pure functions). What the reports show:

* the index (mean of item 1 on 20–100) with n and its 95 % interval, the section and item scores;
* breakdowns of the index by every basic-information question, each group with n and its 95 % interval;
* the driver quadrants with the bootstrap probability of each quadrant;
* the shares of the multiple-choice answers;
* in an enterprise report, 本企业去年 (only when a previous wave has the enterprise, said so otherwise) / 本企业 /
  本省份 / 全行业 columns, and the enterprise's open answers.

**Privacy.** Every cell computed from fewer respondents than the study's ``min_cell_size`` (5) is suppressed in
every format: the score and interval are "—" and the count reads "n<5" (never the value, never the exact count).
An enterprise below the minimum gets no scores at all, and its open answers are shown only when it has at least
the minimum number of respondents. Open answers are escaped by the template (Jinja autoescape), their phone
numbers masked, and spreadsheet cells are written as text by :func:`scoring.cells.append_row`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from reports.i18n import check_lang, t
from reports.privacy import mask_text
from reports.render import Document, Section, Sheet, Table, check_formats, fmt, interval, pct, write_document
from scoring.happiness import (
    HAPPINESS_QUADRANTS,
    IndexResult,
    IndexSpec,
    breakdown,
    index_score,
    item_section_scores,
    multi_shares,
    open_answers,
    respondent_item_scores,
)

__all__ = ["build_happiness_industry_report", "build_happiness_enterprise_reports", "happiness_industry_document",
           "happiness_enterprise_document", "group_scores", "report_stem"]

_QUADRANTS = tuple(HAPPINESS_QUADRANTS.values())
_QUADRANT_EN = {"重点关注领域": "Key focus area", "幸福必备条件": "Prerequisite of happiness",
                "卓越企业需关注": "For leading enterprises", "行业基本达标": "Industry baseline"}


def _h(key: str, lang: str, **fields: Any) -> str:
    return t(f"happy:{key}", lang, **fields)


def _zh(lang: str) -> bool:
    return lang == "zh-CN"


def _title(study: Mapping, lang: str) -> str:
    title = study.get("title") if isinstance(study, Mapping) else None
    if isinstance(title, Mapping):
        return str(title.get(lang) or title.get("zh-CN") or next(iter(title.values()), ""))
    return "" if title is None else str(title)


def _quadrant(name: str, lang: str) -> str:
    return name if _zh(lang) else _QUADRANT_EN.get(name, name)


def _small(spec: IndexSpec, lang: str) -> str:
    return _h("small", lang, n=spec.min_cell_size)


def _question(spec: IndexSpec, code: str, lang: str) -> str:
    zh, en = spec.question_texts.get(code, (code, code))
    return zh if _zh(lang) else en


def _label(spec: IndexSpec, code: str, value: Any, lang: str) -> str:
    try:
        key = int(float(value))
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    zh, en = spec.labels.get(code, {}).get(key, (str(key), str(key)))
    return zh if _zh(lang) else en


# ------------------------------------------------------------------------------------------------- the numbers


def group_scores(part: pd.DataFrame | None, spec: IndexSpec, *, min_cell_size: int | None = None) -> pd.DataFrame:
    """Index, section and item scores of a group of respondents (one enterprise, one province, everyone), with n;
    every score from fewer than ``min_cell_size`` respondents is NaN and flagged ``suppressed``.

    Returns
    -------
    DataFrame
        Indexed by ``index`` then section and item codes (the report's order): ``level`` (index / section /
        item), ``n``, ``score``, ``ci_low``, ``ci_high``, ``suppressed``. ``part`` None → every row NaN, n 0.
    """
    cut = spec.min_cell_size if min_cell_size is None else int(min_cell_size)
    order: list[tuple[str, str]] = [("index", "index")]
    for ind in spec.scoring.indicators:
        order.append((ind.code, "section"))
        order += [(c, "item") for c in ind.items]
    rows: dict[str, dict[str, Any]] = {}
    if part is None or len(part) == 0:
        for code, level in order:
            rows[code] = {"level": level, "n": 0, "score": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                          "suppressed": True}
        return pd.DataFrame.from_dict(rows, orient="index")
    idx = index_score(part, spec)
    tab = item_section_scores(part, spec).set_index("code")
    for code, level in order:
        if level == "index":
            n, score, lo, hi = idx["n"], idx["index"], idx["ci_low"], idx["ci_high"]
        else:
            r = tab.loc[code]
            n, score, lo, hi = int(r["n"]), float(r["score"]), float(r["ci_low"]), float(r["ci_high"])
        small = int(n) < cut
        rows[code] = {"level": level, "n": int(n), "score": math.nan if small else score,
                      "ci_low": math.nan if small else lo, "ci_high": math.nan if small else hi,
                      "suppressed": bool(small)}
    return pd.DataFrame.from_dict(rows, orient="index")


def _names(spec: IndexSpec, lang: str) -> dict[str, str]:
    names = {"index": _h("index", lang)}
    for ind in spec.scoring.indicators:
        names[ind.code] = ind.name_zh if _zh(lang) else ind.name_en
    for code in spec.scoring.item_codes:
        text = _question(spec, code, lang)
        head = re.split(r"[：:]", text, maxsplit=1)[0].strip()
        names[code] = head if head and len(head) < len(text) else text
    return names


def _n_text(n: Any, suppressed: bool, spec: IndexSpec, lang: str) -> str:
    return _small(spec, lang) if suppressed else str(int(n))


def _n_cell(n: Any, suppressed: bool, spec: IndexSpec, lang: str) -> Any:
    """The count as a spreadsheet cell: the number, or the text "n<5" for a suppressed cell."""
    return _small(spec, lang) if suppressed else int(n)


# ---------------------------------------------------------------------------------------- shared section makers


def _breakdown_section(data: pd.DataFrame, spec: IndexSpec, lang: str, lead: str) -> tuple[Section, pd.DataFrame]:
    sec = Section("breakdowns", _h("sec_breakdowns", lang))
    sec.p(lead, "lead")
    sheet_rows = []
    scored = respondent_item_scores(data, spec)
    for var in spec.breakdown_questions:
        if var not in data.columns:
            continue
        b = breakdown(data, spec, var, item_scores=scored)
        rows = []
        for r in b.itertuples():
            label = r.label_zh if _zh(lang) else r.label_en
            rows.append([label, _n_text(r.n, r.suppressed, spec, lang), fmt(r.mean), interval(r.ci_low, r.ci_high)])
            sheet_rows.append({_h("variable", lang): f"{var} {_question(spec, var, lang)}", _h("group", lang): label,
                               "n": _n_cell(r.n, r.suppressed, spec, lang), _h("index", lang): r.mean,
                               t("ci_low", lang): r.ci_low, t("ci_high", lang): r.ci_high})
        sec.h3(f"{var} {_question(spec, var, lang)}")
        if rows:
            sec.table(Table([_h("group", lang), "n", _h("index", lang), t("ci", lang)], rows,
                            numeric=[False, True, True, True]))
        else:
            sec.p(_h("no_answers", lang))
    cols = [_h("variable", lang), _h("group", lang), "n", _h("index", lang), t("ci_low", lang), t("ci_high", lang)]
    frame = pd.DataFrame(sheet_rows, columns=cols)
    frame[_h("index", lang)] = frame[_h("index", lang)].astype(float)
    for c in (t("ci_low", lang), t("ci_high", lang)):
        frame[c] = frame[c].astype(float)
    return sec, frame


def _multi_section(data: pd.DataFrame, spec: IndexSpec, lang: str, suppress: bool) -> tuple[Section, pd.DataFrame]:
    sec = Section("multi", _h("sec_multi", lang))
    sheet_rows = []
    for q in spec.multi_questions:
        if q not in data.columns:
            continue
        m = multi_shares(data, spec, q)
        base = int(m["base"].iloc[0]) if len(m) else 0
        small = suppress and base < spec.min_cell_size
        sec.h3(f"{q} {_question(spec, q, lang)}")
        if small or not len(m):
            sec.p(_h("multi_small", lang, n=spec.min_cell_size) if small else _h("no_answers", lang))
            continue
        rows = []
        for r in m.sort_values("share", ascending=False).itertuples():
            label = r.label_zh if _zh(lang) else r.label_en
            rows.append([label, str(r.chosen), pct(r.share)])
            sheet_rows.append({_h("question", lang): f"{q} {_question(spec, q, lang)}", _h("option", lang): label,
                               _h("chosen", lang): int(r.chosen), _h("base", lang): base, _h("share", lang): r.share})
        sec.table(Table([_h("option", lang), _h("chosen", lang), _h("share", lang)], rows,
                        caption=_h("base_note", lang, n=base), numeric=[False, True, True]))
    frame = pd.DataFrame(sheet_rows, columns=[_h("question", lang), _h("option", lang), _h("chosen", lang),
                                              _h("base", lang), _h("share", lang)])
    frame[_h("share", lang)] = frame[_h("share", lang)].astype(float)
    return sec, frame


def _driver_rows(result: IndexResult, lang: str, extra: Mapping[str, tuple[Any, Any]] | None = None
                 ) -> tuple[list[list[str]], pd.DataFrame]:
    rows, sheet = [], []
    d = result.drivers
    for r in d.to_dict("records") if len(d) else []:
        name = r["name_zh"] if _zh(lang) else r["name_en"]
        probs = [pct(r.get(f"p_{q}"), 0) for q in _QUADRANTS]
        row = [f"{r['code']} {name}", fmt(r["correlation"], 3), fmt(r["tau"], 2), _quadrant(r["quadrant"], lang),
               *probs]
        srow = {t("code", lang): r["code"], t("indicator", lang): name, _h("correlation", lang): r["correlation"],
                _h("volatility", lang): r["tau"], t("quadrant", lang): _quadrant(r["quadrant"], lang)}
        for q in _QUADRANTS:
            srow[f"P({_quadrant(q, lang)})"] = r.get(f"p_{q}")
        if extra is not None:
            own, ind = extra.get(r["code"], (math.nan, math.nan))
            row += [fmt(own), fmt(ind)]
            srow[t("this_enterprise", lang)] = own
            srow[_h("all_industry", lang)] = ind
        rows.append(row)
        sheet.append(srow)
    return rows, pd.DataFrame(sheet)


def _driver_section(result: IndexResult, lang: str, extra: Mapping[str, tuple[Any, Any]] | None = None
                    ) -> tuple[Section, pd.DataFrame]:
    sec = Section("drivers", _h("sec_drivers", lang))
    sec.p(_h("drivers_lead", lang), "lead")
    rows, frame = _driver_rows(result, lang, extra)
    if not rows:
        sec.p(_h("no_drivers", lang))
        return sec, frame
    headers = [t("indicator", lang), _h("correlation", lang), _h("volatility", lang), t("quadrant", lang),
               *[f"P({_quadrant(q, lang)})" for q in _QUADRANTS]]
    if extra is not None:
        headers += [t("this_enterprise", lang), _h("all_industry", lang)]
    sec.table(Table(headers, rows, small=True, numeric=[False, True, True, False] + [True] * (len(headers) - 4)))
    return sec, frame


def _method_section(spec: IndexSpec, lang: str, n_boot: Any) -> Section:
    sec = Section("method", t("sec_method", lang))
    sec.ul([_h("method_index", lang), _h("method_section", lang),
            _h("method_interval", lang, pct=f"{100 * spec.confidence:g}%"),
            _h("method_suppress", lang, n=spec.min_cell_size),
            _h("method_drivers", lang, n_boot=n_boot if n_boot is not None else "—")])
    return sec


# -------------------------------------------------------------------------------------------- industry report


def happiness_industry_document(result: IndexResult, responses: pd.DataFrame, study: Mapping, *,
                                lang: str = "zh-CN") -> tuple[Document, list[Sheet]]:
    """The industry report: index, sections and items, enterprises, breakdowns, drivers, multiple choice."""
    check_lang(lang)
    spec = result.spec
    data = _complete(responses)
    names = _names(spec, lang)
    o = result.overall
    doc = Document(title=_title(study, lang) or _h("industry_report", lang), subtitle=_h("industry_report", lang),
                   lang=lang)
    doc.kpis = [{"label": _h("index", lang), "value": fmt(o.get("index")),
                 "sub": f"{t('ci', lang)} {interval(o.get('ci_low'), o.get('ci_high'))}"},
                {"label": _h("respondents", lang), "value": str(int(o.get("n_respondents") or 0)), "sub": ""},
                {"label": _h("enterprises", lang), "value": str(int(o.get("n_enterprises") or 0)), "sub": ""}]
    for ind in spec.scoring.indicators:
        doc.kpis.append({"label": names[ind.code], "value": fmt(o.get(ind.code)), "sub": ""})

    scores = group_scores(data, spec)
    sec = Section("scores", _h("sec_scores", lang))
    sec.p(_h("index_lead", lang), "lead")
    rows, classes = [], []
    for code, r in scores.iterrows():
        rows.append([names[code] if r.level != "item" else f"{code} {names[code]}",
                     _n_text(r.n, r.suppressed, spec, lang), fmt(r.score), interval(r.ci_low, r.ci_high)])
        classes.append("total" if r.level != "item" else "")
    sec.table(Table([t("indicator", lang), "n", _h("score", lang), t("ci", lang)], rows, row_classes=classes,
                    numeric=[False, True, True, True]))
    doc.sections.append(sec)

    sec = Section("enterprises", _h("sec_enterprises", lang))
    ent = result.enterprises
    sec_codes = list(spec.scoring.indicator_codes)
    erows = []
    if len(ent):
        ent = ent.sort_values(["suppressed", "index"], ascending=[True, False])
        for r in ent.to_dict("records"):
            small = bool(r["suppressed"])
            erows.append([str(r.get("enterprise_name", r["enterprise_id"])), str(r.get("industry", "")),
                          _n_text(r["n"], small, spec, lang), fmt(r["index"]), interval(r["ci_low"], r["ci_high"]),
                          *[fmt(r.get(c)) for c in sec_codes]])
        sec.table(Table([_h("enterprise", lang), t("industry", lang), "n", _h("index", lang), t("ci", lang),
                         *[names[c] for c in sec_codes]], erows, small=True,
                        numeric=[False, False] + [True] * (3 + len(sec_codes))))
    doc.sections.append(sec)

    bsec, bframe = _breakdown_section(data, spec, lang, _h("breakdown_lead", lang, n=spec.min_cell_size))
    doc.sections.append(bsec)
    dsec, dframe = _driver_section(result, lang)
    doc.sections.append(dsec)
    msec, mframe = _multi_section(data, spec, lang, suppress=True)
    doc.sections.append(msec)
    doc.sections.append(_method_section(spec, lang, result.method.get("n_boot")))

    score_sheet = pd.DataFrame([{t("code", lang): code, t("indicator", lang): names[code],
                                 "n": _n_cell(r.n, r.suppressed, spec, lang), _h("score", lang): r.score,
                                 t("ci_low", lang): r.ci_low, t("ci_high", lang): r.ci_high}
                                for code, r in scores.iterrows()])
    ent_sheet = pd.DataFrame([{
        t("code", lang): r["enterprise_id"], _h("enterprise", lang): r.get("enterprise_name"),
        t("industry", lang): r.get("industry"), "n": _n_cell(r["n"], r["suppressed"], spec, lang),
        _h("index", lang): r["index"], t("ci_low", lang): r["ci_low"], t("ci_high", lang): r["ci_high"],
        **{names[c]: r.get(c) for c in sec_codes}} for r in ent.to_dict("records")]) if len(ent) else pd.DataFrame()
    sheets = [Sheet(_h("sheet_scores", lang), score_sheet), Sheet(_h("sheet_enterprises", lang), ent_sheet),
              Sheet(_h("sheet_breakdowns", lang), bframe, note=_h("method_suppress", lang, n=spec.min_cell_size)),
              Sheet(_h("sheet_drivers", lang), dframe), Sheet(_h("sheet_multi", lang), mframe,
                                                              percent=(_h("share", lang),))]
    return doc, sheets


def build_happiness_industry_report(result: IndexResult, responses: pd.DataFrame, study: Mapping, *,
                                    lang: str = "zh-CN", out_dir: str | Path = ".",
                                    formats: Iterable[str] = ("html", "pdf", "xlsx"),
                                    stem: str = "happiness_industry_report") -> dict[str, Path]:
    """Write the industry report (``<stem>.<lang>.html/.pdf/.xlsx``); returns format → path."""
    fmts = check_formats(formats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc, sheets = happiness_industry_document(result, responses, study, lang=lang)
    return write_document("audit.html", doc, sheets, out, stem, lang, fmts)


# ------------------------------------------------------------------------------------------ enterprise reports


def _complete(responses: pd.DataFrame) -> pd.DataFrame:
    from scoring.happiness import _complete_rows

    return _complete_rows(responses)


def _province_rows(data: pd.DataFrame, own: pd.DataFrame) -> tuple[pd.DataFrame | None, str | None]:
    if "province" not in data.columns:
        return None, None
    prov = own["province"].dropna().astype(str)
    prov = prov[prov.str.strip() != ""]
    if prov.empty:
        return None, None
    name = prov.value_counts().index[0]
    return data[data["province"].astype(str) == name], name


def happiness_enterprise_document(result: IndexResult, responses: pd.DataFrame, study: Mapping, enterprise_id: Any,
                                  *, previous: pd.DataFrame | None = None, lang: str = "zh-CN",
                                  cache: dict | None = None) -> tuple[Document, list[Sheet]]:
    """One enterprise's report: aggregates only, every cell under the minimum cell size suppressed.

    ``cache`` (a dict kept across the enterprises of one run) holds the whole industry's and each province's
    scores, so they are computed once, not once per report; ``responses`` must then be the same frame."""
    check_lang(lang)
    spec = result.spec
    cut = spec.min_cell_size
    cache = {} if cache is None else cache
    data = _complete(responses)
    eid = str(enterprise_id)
    own = data[data["enterprise_id"].astype(str) == eid]
    if own.empty:
        raise ValueError(f"enterprise {eid!r} has no complete responses")
    names = _names(spec, lang)
    ename = str(own["enterprise_name"].iloc[0]) if "enterprise_name" in own.columns else eid
    industry = str(own["industry"].iloc[0]) if "industry" in own.columns else ""
    prov_rows, province = _province_rows(data, own)
    last = None
    if previous is not None and len(previous):
        prev = _complete(previous)
        last = prev[prev["enterprise_id"].astype(str) == eid]
        last = last if len(last) else None
    columns: dict[str, pd.DataFrame] = {}
    if last is not None:
        columns["last_year"] = group_scores(last, spec)
    columns["enterprise"] = group_scores(own, spec)
    if prov_rows is not None:
        if ("province", province) not in cache:
            cache[("province", province)] = group_scores(prov_rows, spec)
        columns["province"] = cache[("province", province)]
    if "industry" not in cache:
        cache["industry"] = group_scores(data, spec)
    columns["industry"] = cache["industry"]
    heads = {"last_year": _h("col_last_year", lang), "enterprise": _h("col_enterprise", lang),
             "province": _h("col_province", lang), "industry": _h("col_industry", lang)}
    mine = columns["enterprise"].loc["index"]
    small = bool(mine.suppressed)

    doc = Document(title=ename, subtitle=f"{_h('enterprise_report', lang)} · {_title(study, lang)}", lang=lang)
    badge = [f"{t('industry', lang)}: {industry}"] if industry else []
    if province:
        badge.append(f"{t('province', lang)}: {province}")
    badge.append(f"n = {_n_text(len(own), len(own) < cut, spec, lang)}")
    doc.meta["badge"] = " · ".join(badge)
    ind_row = columns["industry"].loc["index"]
    doc.kpis = [{"label": _h("index", lang), "value": fmt(mine.score),
                 "sub": f"{t('ci', lang)} {interval(mine.ci_low, mine.ci_high)}"},
                {"label": _h("col_industry", lang), "value": fmt(ind_row.score), "sub": ""},
                {"label": _h("respondents", lang), "value": _n_text(len(own), len(own) < cut, spec, lang),
                 "sub": ""}]

    sec = Section("scores", _h("sec_benchmarks", lang))
    sec.p(_h("privacy_lead", lang, n=cut), "note")
    if small:
        sec.p(_h("enterprise_small", lang, n=cut), "note")
    if last is None:
        sec.p(_h("no_last_year", lang), "note")
    keys = list(columns)
    rows, classes = [], []
    for code, r in columns["enterprise"].iterrows():
        label = names[code] if r.level != "item" else f"{code} {names[code]}"
        row = [label]
        for k in keys:
            c = columns[k].loc[code]
            row.append(fmt(c.score))
            if k == "enterprise":
                row += [_n_text(c.n, c.suppressed, spec, lang), interval(c.ci_low, c.ci_high)]
        rows.append(row)
        classes.append("total" if r.level != "item" else "")
    headers = [t("indicator", lang)]
    for k in keys:
        headers.append(heads[k])
        if k == "enterprise":
            headers += ["n", t("ci", lang)]
    sec.table(Table(headers, rows, row_classes=classes, numeric=[False] + [True] * (len(headers) - 1)))
    doc.sections.append(sec)

    if small:
        empty = own.iloc[0:0]
        bsec, bframe = _breakdown_section(empty, spec, lang, _h("enterprise_small", lang, n=cut))
    else:
        bsec, bframe = _breakdown_section(own, spec, lang, _h("breakdown_lead", lang, n=cut))
    doc.sections.append(bsec)

    own_scores, all_scores = columns["enterprise"]["score"], columns["industry"]["score"]
    extra = {c: (own_scores.get(c, math.nan), all_scores.get(c, math.nan)) for c in spec.driver_items}
    dsec, dframe = _driver_section(result, lang, extra)
    doc.sections.append(dsec)
    msec, mframe = _multi_section(own, spec, lang, suppress=True)
    doc.sections.append(msec)

    sec = Section("open", _h("sec_open", lang))
    opened = open_answers(data, spec, enterprise_id=eid, min_cell_size=cut)
    open_rows = []
    if len(own) < cut:
        sec.p(_h("open_small", lang, n=cut))
    elif not len(opened):
        sec.p(_h("no_answers", lang))
    else:
        for q, part in opened.groupby("question", sort=False):
            sec.h3(f"{q} {_question(spec, q, lang)}")
            for text in part["text"]:
                masked = mask_text(str(text))
                sec.blocks.append({"kind": "quote", "text": masked})
                open_rows.append({_h("question", lang): f"{q} {_question(spec, q, lang)}", _h("answer", lang): masked})
    doc.sections.append(sec)
    doc.sections.append(_method_section(spec, lang, result.method.get("n_boot")))

    score_rows = []
    for code in columns["enterprise"].index:
        row: dict[str, Any] = {t("code", lang): code, t("indicator", lang): names[code]}
        for k in keys:
            c = columns[k].loc[code]
            row[heads[k]] = c.score
            if k == "enterprise":
                row["n"] = _n_cell(c.n, c.suppressed, spec, lang)
                row[t("ci_low", lang)] = c.ci_low
                row[t("ci_high", lang)] = c.ci_high
        score_rows.append(row)
    score_frame = pd.DataFrame(score_rows)
    for col in score_frame.columns:
        if col not in (t("code", lang), t("indicator", lang), "n"):
            score_frame[col] = score_frame[col].astype(float)
    note = _h("method_suppress", lang, n=cut) + ("" if last is not None else " " + _h("no_last_year", lang))
    sheets = [Sheet(_h("sheet_scores", lang), score_frame, note=note),
              Sheet(_h("sheet_breakdowns", lang), bframe, note=_h("method_suppress", lang, n=cut)),
              Sheet(_h("sheet_drivers", lang), dframe),
              Sheet(_h("sheet_multi", lang), mframe, percent=(_h("share", lang),)),
              Sheet(_h("sheet_open", lang), pd.DataFrame(open_rows, columns=[_h("question", lang),
                                                                             _h("answer", lang)]))]
    return doc, sheets


_SAFE = re.compile(r"[^0-9A-Za-z_\-\u4e00-\u9fff]+")


def report_stem(eid: Any) -> str:
    """``enterprise_<id>`` with unsafe characters replaced (as the CSAT enterprise reports)."""
    return "enterprise_" + (_SAFE.sub("_", str(eid)).strip("_") or "unknown")


def build_happiness_enterprise_reports(result: IndexResult, responses: pd.DataFrame, study: Mapping, *,
                                       enterprise_ids: Sequence[Any] | None = None,
                                       previous: pd.DataFrame | None = None, lang: str = "zh-CN",
                                       out_dir: str | Path = ".", formats: Iterable[str] = ("html", "pdf", "xlsx"),
                                       progress: Callable[[int], None] | None = None,
                                       workers: int = 1) -> list[Path]:
    """One report per enterprise (``enterprise_<id>.<lang>.<ext>``), in ``workers`` processes (forked: they
    share the scored frames, each computes the industry's and a province's columns once).

    Parameters
    ----------
    previous : DataFrame, optional
        The previous wave's responses (same file contract): its rows of the enterprise give 本企业去年.
    enterprise_ids : sequence, optional
        Default every enterprise with a complete response; an unknown id raises ``ValueError``.
    """
    fmts = check_formats(formats)
    data = _complete(responses)
    known = list(dict.fromkeys(data["enterprise_id"].astype(str)))
    ids = known if enterprise_ids is None else [str(i) for i in enterprise_ids]
    unknown = [i for i in ids if i not in set(known)]
    if unknown:
        raise ValueError(f"enterprise_ids: unknown enterprise id(s) {', '.join(unknown[:10])}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    args = (result, data, study, previous, lang, out, fmts)
    workers = max(1, int(workers))
    if workers == 1 or len(ids) < 2 * workers:
        paths: list[Path] = []
        _WORKER.update(args=args, cache={})
        for eid in ids:
            paths += _render([eid])
            if progress:
                progress(1)
        return paths
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_all_start_methods, get_context

    ctx = get_context("fork") if "fork" in get_all_start_methods() else None
    chunk = max(1, min(10, math.ceil(len(ids) / (workers * 4))))
    chunks = [ids[i:i + chunk] for i in range(0, len(ids), chunk)]
    done: dict[int, list[Path]] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init, initargs=(args,)) as pool:
        futures = {pool.submit(_render, c): i for i, c in enumerate(chunks)}
        for fut in as_completed(futures):
            done[futures[fut]] = fut.result()
            if progress:
                progress(len(chunks[futures[fut]]))
    return [p for i in range(len(chunks)) for p in done[i]]


_WORKER: dict[str, Any] = {}


def _init(args: tuple) -> None:
    _WORKER.update(args=args, cache={})


def _render(eids: list[str]) -> list[Path]:
    result, data, study, previous, lang, out, fmts = _WORKER["args"]
    paths: list[Path] = []
    for eid in eids:
        doc, sheets = happiness_enterprise_document(result, data, study, eid, previous=previous, lang=lang,
                                                    cache=_WORKER["cache"])
        paths += list(write_document("audit.html", doc, sheets, out, report_stem(eid), lang, fmts).values())
    return paths
