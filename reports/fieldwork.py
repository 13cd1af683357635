"""The fieldwork report: AAPOR dispositions and rates, quota completion, interviewer productivity, calls by
hour of day (respondent-local time) and outcome.

Inputs are the bridge's frames (``cases_frame``, ``attempts_frame``), ``scoring.response_rates`` output and a
quota table; nothing here touches the database. Phone numbers never appear: only counts are reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from reports import charts
from reports._common import pooled_rates
from reports.i18n import check_lang, disposition_label, industry_label, t
from reports.render import (
    Document,
    Section,
    Sheet,
    Table,
    check_formats,
    fmt,
    pct,
    write_document,
)

__all__ = ["build_fieldwork_report", "fieldwork_document", "disposition_table", "quota_table",
           "interviewer_table", "calls_by_hour"]

_COMPLETE = {"1.1", "1.10", "complete", "completed", "i"}
_RATE_COLS = ("RR1", "RR2", "RR3", "RR4", "RR5", "RR6", "COOP1", "COOP2", "COOP3", "COOP4", "REF1", "REF2", "REF3",
              "CON1", "CON2", "CON3")


def _require(frame: pd.DataFrame, cols: Iterable[str], name: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")


def _disp_col(cases: pd.DataFrame) -> str:
    for c in ("disposition", "final_disposition", "status"):
        if c in cases.columns:
            return c
    raise ValueError("cases: needs a disposition (or status) column")


def _is_complete(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.lower().isin(_COMPLETE).fillna(False).astype(bool)


def disposition_table(cases: pd.DataFrame, lang: str = "zh-CN") -> pd.DataFrame:
    """Counts of cases by disposition code, with AAPOR group and description, most frequent first."""
    col = _disp_col(cases)
    # cases without a code (sample not yet released) are not part of the dispositions or the rates
    counts = cases[col].astype("string").str.strip().replace("", pd.NA).dropna().value_counts()
    rows = []
    for code, n in counts.items():
        sym, label = disposition_label(code, lang)
        rows.append({"disposition": str(code), "symbol": sym, "label": label, "count": int(n),
                     "share": n / max(1, int(counts.sum()))})
    out = pd.DataFrame(rows, columns=["disposition", "symbol", "label", "count", "share"])
    return out.sort_values(["disposition"], kind="stable").reset_index(drop=True)


def quota_table(quotas: pd.DataFrame | None, cases: pd.DataFrame, target: int = 20) -> pd.DataFrame:
    """Per enterprise: target, completes, in progress (if given), completion share and whether it is met.

    ``quotas`` needs ``enterprise_id``, ``target`` and ``completes``; without it completes are counted from the
    cases' dispositions against ``target``.
    """
    if quotas is not None and len(quotas):
        _require(quotas, ("enterprise_id", "target", "completes"), "quotas")
        q = quotas.copy()
    else:
        col = _disp_col(cases)
        done = cases[_is_complete(cases[col])].groupby("enterprise_id").size()
        q = cases.drop_duplicates("enterprise_id")[[c for c in ("enterprise_id", "enterprise_name", "industry")
                                                    if c in cases.columns]].copy()
        q["target"] = target
        q["completes"] = q["enterprise_id"].map(done).fillna(0).astype(int)
    if ("enterprise_name" not in q.columns or "industry" not in q.columns) and "enterprise_id" in cases.columns:
        info = cases.drop_duplicates("enterprise_id").set_index("enterprise_id")
        for c in ("enterprise_name", "industry"):
            if c not in q.columns and c in info.columns:
                q[c] = q["enterprise_id"].map(info[c])
    q["target"] = pd.to_numeric(q["target"], errors="coerce")
    q["completes"] = pd.to_numeric(q["completes"], errors="coerce").fillna(0)
    q["completion"] = np.where(q["target"] > 0, q["completes"] / q["target"], np.nan)
    q["met"] = q["completes"] >= q["target"]
    return q.reset_index(drop=True)


def _interval_hours(end: pd.Series, start: pd.Series) -> pd.Series:
    d = pd.to_datetime(end, utc=True, errors="coerce") - pd.to_datetime(start, utc=True, errors="coerce")
    return d.dt.total_seconds().clip(lower=0) / 3600.0


def interviewer_table(attempts: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """Per interviewer: calls, answered calls, talk hours, completes, calls per complete, completes per talk hour,
    mean call length (minutes, answered calls)."""
    _require(attempts, ("interviewer",), "attempts")
    a = attempts.copy()
    a["interviewer"] = a["interviewer"].astype("string").fillna("—")
    answered = a["answered_at"].notna() if "answered_at" in a.columns else pd.Series(False, index=a.index)
    talk = _interval_hours(a.get("ended_at"), a.get("answered_at")) if {"ended_at", "answered_at"} <= set(a.columns) \
        else pd.Series(np.nan, index=a.index)
    a["_answered"] = answered
    a["_talk"] = talk.where(answered)
    g = a.groupby("interviewer")
    out = pd.DataFrame({"calls": g.size(), "answered": g["_answered"].sum().astype(int),
                        "talk_hours": g["_talk"].sum(min_count=1).fillna(0.0),
                        "mean_call_min": g["_talk"].mean() * 60})
    col = _disp_col(cases)
    if "interviewer" in cases.columns:
        done = cases[_is_complete(cases[col])].groupby(cases["interviewer"].astype("string").fillna("—")).size()
    elif "outcome" in a.columns:
        done = a[_is_complete(a["outcome"])].groupby("interviewer").size()
    else:
        done = pd.Series(dtype=int)
    out["completes"] = done.reindex(out.index).fillna(0).astype(int)
    out["calls_per_complete"] = np.where(out["completes"] > 0, out["calls"] / out["completes"].replace(0, 1), np.nan)
    out["completes_per_hour"] = np.where(out["talk_hours"] > 0, out["completes"] / out["talk_hours"].where(
        out["talk_hours"] > 0, 1), np.nan)
    out = out.sort_values("completes", ascending=False).reset_index()
    return out[["interviewer", "calls", "answered", "completes", "talk_hours", "calls_per_complete",
                "completes_per_hour", "mean_call_min"]]


def _outcome_name(value: object, lang: str) -> str:
    s = "—" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    sym, label = disposition_label(s, lang)
    return f"{s} {label}" if sym else s


def calls_by_hour(attempts: pd.DataFrame, *, tz: str, lang: str = "zh-CN",
                  top: int = 6) -> pd.DataFrame:
    """Calls per local hour of day (rows 0–23 that occur) × outcome (the ``top`` most frequent, rest grouped)."""
    _require(attempts, ("placed_at",), "attempts")
    placed = pd.to_datetime(attempts["placed_at"], utc=True, errors="coerce")
    hour = placed.dt.tz_convert(tz).dt.hour
    outcome = attempts["outcome"].map(lambda v: _outcome_name(v, lang)) if "outcome" in attempts.columns else \
        pd.Series(t("calls", lang), index=attempts.index)
    keep = outcome.value_counts().head(top).index
    outcome = outcome.where(outcome.isin(keep), t("other_outcomes", lang))
    tab = pd.crosstab(hour.rename("hour"), outcome.rename("outcome"))
    tab = tab[[c for c in keep if c in tab.columns] + [c for c in tab.columns if c not in keep]]
    tab.index = tab.index.astype(int)
    return tab


def _overall_rates(cases: pd.DataFrame, rates: pd.DataFrame | None) -> pd.Series | None:
    """Study-wide rates for the headline: ``rates`` itself when it has one row, else recomputed from the cases
    with scoring's ``response_rates`` (grouped rates cannot be averaged)."""
    if rates is not None and len(rates) == 1:
        return rates.iloc[0]
    if rates is not None and len(rates) > 1:
        return pooled_rates(rates)
    from scoring import aapor_symbol, response_rates

    col = _disp_col(cases)

    def valid(v: object) -> bool:
        try:
            aapor_symbol(str(v))
            return v is not None and v == v
        except (ValueError, TypeError):
            return False

    ok = cases[cases[col].map(valid)]
    return response_rates(ok, disposition_col=col).iloc[0] if len(ok) else None


def fieldwork_document(cases: pd.DataFrame, attempts: pd.DataFrame, rates: pd.DataFrame | None,
                       quotas: pd.DataFrame | None, *, tz: str, lang: str = "zh-CN",
                       target: int = 20) -> tuple[Document, list[Sheet]]:
    check_lang(lang)
    doc = Document(title=t("fieldwork_report", lang), subtitle="", lang=lang)
    disp = disposition_table(cases, lang)
    quota = quota_table(quotas, cases, target)
    inter = interviewer_table(attempts, cases) if len(attempts) else pd.DataFrame()
    hours = calls_by_hour(attempts, tz=tz, lang=lang) if len(attempts) else pd.DataFrame()
    n_complete = int(_is_complete(cases[_disp_col(cases)]).sum())
    doc.kpis = [{"label": t("completes", lang), "value": str(n_complete), "sub": ""},
                {"label": t("calls", lang), "value": str(len(attempts)), "sub": ""},
                {"label": t("enterprises_full", lang), "value": f"{int(quota['met'].sum())} / {len(quota)}",
                 "sub": pct(quota["met"].mean() if len(quota) else np.nan)}]
    overall = _overall_rates(cases, rates)
    if overall is not None:
        doc.kpis.append({"label": "RR3", "value": pct(overall.get("RR3")), "sub": ""})
        doc.kpis.append({"label": "COOP1", "value": pct(overall.get("COOP1")), "sub": ""})

    sec = Section("dispositions", t("sec_dispositions", lang))
    sec.table(Table([t("disposition", lang), t("symbol", lang), t("disposition_label", lang), t("count", lang),
                     t("share", lang)],
                    [[r.disposition, r.symbol, r.label, str(r.count), pct(r.share)] for r in disp.itertuples()],
                    numeric=[False, False, False, True, True]))
    doc.sections.append(sec)

    sec = Section("rates", t("sec_rates", lang))
    if rates is None or not len(rates):
        sec.p(t("fw_no_rates", lang))
    else:
        groups = [c for c in rates.columns if c not in {"n", "e", "I", "P", "R", "NC", "O", "UH", "UR", "UO", "NE",
                                                         *_RATE_COLS}]
        show = ["RR1", "RR2", "RR3", "RR4", "RR5", "RR6", "COOP1", "REF1", "CON1"]
        headers = groups + ["n", "I", "P", "R", "NC", "O", "UH+UO", "NE", "e"] + show
        rows = []
        for _, r in rates.iterrows():
            row = [industry_label(r[g], lang) if g == "industry" else str(r[g]) for g in groups]
            row += [str(int(r.get(c, 0))) for c in ("n", "I", "P", "R", "NC", "O")]
            row += [str(int(r.get("UH", 0) + r.get("UR", 0) + r.get("UO", 0))), str(int(r.get("NE", 0))),
                    fmt(r.get("e"), 3)]
            row += [pct(r.get(c)) for c in show]
            rows.append(row)
        sec.table(Table(headers, rows, small=True, numeric=[False] * len(groups) + [True] * (len(headers) - len(groups))))
        sec.p(t("fw_rates_note", lang), "note")
    doc.sections.append(sec)

    sec = Section("quota", t("sec_quota", lang))
    met = int(quota["met"].sum())
    sec.p(t("fw_quota_lead", lang, n=len(quota), met=met, share=pct(met / max(1, len(quota))),
            completes=int(quota["completes"].sum()), target=int(quota["target"].sum())))
    if len(quota):
        ch = charts.histogram(quota["completes"].to_numpy(dtype=float),
                              bins=np.arange(0, max(quota["completes"].max(), quota["target"].max()) + 2) - 0.5,
                              title=t("chart_quota", lang), xlabel=t("completes", lang),
                              ylabel=t("enterprises_axis", lang), marker=float(quota["target"].median()))
        sec.chart(ch)
    if "industry" in quota.columns:
        by = quota.groupby("industry").agg(n=("enterprise_id", "size"), met=("met", "sum"),
                                           completes=("completes", "sum"), target=("target", "sum"))
        rows = [[industry_label(i, lang), str(int(r.n)), str(int(r.met)), str(int(r.completes)), str(int(r.target)),
                 pct(r.completes / r.target if r.target else np.nan)] for i, r in by.iterrows()]
        sec.table(Table([t("industry", lang), t("n_enterprises", lang), t("enterprises_full", lang),
                         t("completes", lang), t("target", lang), t("completion", lang)], rows))
    behind = quota[~quota["met"]].sort_values("completion").head(30)
    if len(behind):
        sec.h3(t("fw_behind", lang))
        sec.table(Table([t("enterprise", lang), t("industry", lang), t("completes", lang), t("target", lang),
                         t("completion", lang)],
                        [[str(r.get("enterprise_name", r["enterprise_id"])), industry_label(r.get("industry"), lang),
                          str(int(r["completes"])), str(int(r["target"])), pct(r["completion"])]
                         for _, r in behind.iterrows()], small=True,
                        numeric=[False, False, True, True, True]))
    doc.sections.append(sec)

    sec = Section("interviewers", t("sec_interviewers", lang))
    if len(inter):
        sec.table(Table([t("interviewer", lang), t("calls", lang), t("answered", lang), t("completes", lang),
                         t("talk_hours", lang), t("calls_per_complete", lang), t("completes_per_hour", lang),
                         t("mean_call_min", lang)],
                        [[str(r.interviewer), str(r.calls), str(r.answered), str(r.completes), fmt(r.talk_hours),
                          fmt(r.calls_per_complete), fmt(r.completes_per_hour), fmt(r.mean_call_min)]
                         for r in inter.itertuples()], small=True))
        sec.p(t("fw_talk_note", lang), "note")
    else:
        sec.p(t("fw_no_calls", lang))
    doc.sections.append(sec)

    sec = Section("hours", t("sec_hours", lang))
    if len(hours):
        sec.chart(charts.stacked_bars(hours, title=t("chart_hours", lang), xlabel=t("hour", lang),
                                      ylabel=t("calls_axis", lang)))
        sec.p(t("fw_hours_note", lang, tz=tz), "note")
        tab = hours.copy()
        tab[t("calls", lang)] = tab.sum(axis=1)
        sec.table(Table([t("fw_hour_col", lang)] + [str(c) for c in tab.columns],
                        [[f"{h:02d}:00"] + [str(int(v)) for v in row] for h, row in zip(tab.index, tab.to_numpy(),
                                                                                       strict=True)], small=True))
    doc.sections.append(sec)

    lab = {"disposition": t("disposition", lang), "symbol": t("symbol", lang), "label": t("disposition_label", lang),
           "count": t("count", lang), "share": t("share", lang)}
    sheets = [Sheet(t("sheet_dispositions", lang), disp.rename(columns=lab), percent=(t("share", lang),))]
    if rates is not None and len(rates):
        sheets.append(Sheet(t("sheet_rates", lang), rates, percent=tuple(c for c in _RATE_COLS if c in rates.columns)))
    sheets.append(Sheet(t("sheet_quota", lang), quota, percent=("completion",)))
    if len(inter):
        sheets.append(Sheet(t("sheet_interviewers", lang), inter))
    if len(hours):
        h = hours.copy()
        h.index.name = "hour"
        sheets.append(Sheet(t("sheet_hours", lang), h.reset_index()))
    return doc, sheets


def build_fieldwork_report(cases: pd.DataFrame, attempts: pd.DataFrame, rates: pd.DataFrame | None,
                           quotas: pd.DataFrame | None, *, tz: str, lang: str = "zh-CN", out_dir: str | Path = ".",
                           formats: Iterable[str] = ("html", "pdf", "xlsx"),
                           target: int = 20, stem: str = "fieldwork_report") -> dict[str, Path]:
    """Write the fieldwork report.

    Parameters
    ----------
    cases : DataFrame
        One row per case (``cases_frame``): ``enterprise_id``, ``disposition`` (or ``status``), optionally
        ``enterprise_name``, ``industry``, ``interviewer``.
    attempts : DataFrame
        One row per call attempt (``attempts_frame``): ``interviewer``, ``placed_at`` (UTC), ``answered_at``,
        ``ended_at``, ``outcome``.
    rates : DataFrame, optional
        ``scoring.response_rates`` output (overall or by a group column).
    quotas : DataFrame, optional
        ``enterprise_id``, ``target``, ``completes`` (optionally ``in_progress``, names); default: completes
        counted from ``cases`` against ``target``.
    tz : str
        Time zone for "hour of day" (respondent-local; the study's default calling time zone).

    Returns
    -------
    dict
        Format → path written.
    """
    fmts = check_formats(formats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc, sheets = fieldwork_document(cases, attempts, rates, quotas, lang=lang, tz=tz, target=target)
    paths = write_document("fieldwork.html", doc, sheets, out, stem, lang, fmts)
    return paths
