"""The audit report (CCSO, YD/T 2823-2015 and checklists shaped like it): the overall result, each category's
conforming / applicable judgements, percentage and pass or fail, and the non-conformity list (every requirement
judged "no", with its category, core item, text and evidence types). HTML, PDF and XLSX through
:mod:`reports.render`.

Inputs: the checklist (a :class:`cati.study.audit.AuditStudy`, or anything with the same ``categories → core_items
→ requirements`` attributes: nothing here imports the application), the judgements (requirement code → ``yes`` /
``no`` / ``na``) and :func:`scoring.audit.score_audit`'s result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from reports.i18n import check_lang, t
from reports.render import (
    Document,
    Section,
    Sheet,
    Table,
    check_formats,
    write_document,
)
from scoring.audit import percentage_label

__all__ = ["audit_document", "build_audit_report", "category_table", "nonconformity_table"]

_EVIDENCES = ("A", "B", "C")  # evidence types (audit:evidence:<letter>)
_JUDGEMENT = {"yes": "conforming", "no": "nonconforming", "na": "not_applicable"}


def _t(key: str, lang: str, **fields: Any) -> str:
    """The report's own words: ``audit:<key>`` of the reports catalogue."""
    return t(f"audit:{key}", lang, **fields)


def _name(text: Any, lang: str) -> str:
    """A bilingual text (model with ``zh_CN`` / ``en`` or a mapping with ``zh-CN`` / ``en``) in ``lang``."""
    if isinstance(text, Mapping):
        return str(text.get("en" if lang == "en" else "zh-CN") or text.get("zh-CN") or "")
    return str(getattr(text, "en" if lang == "en" else "zh_CN", text))


def _evidence(letters: Iterable[str], lang: str) -> str:
    return ", ".join(f"{x} {_t(f'evidence:{x}', lang)}" if x in _EVIDENCES else str(x) for x in letters)


def _pct(conforming: int, applicable: int, threshold: float) -> str:
    label = percentage_label(conforming, applicable, threshold)
    return label if label == "—" else f"{label}%"


def category_table(study: Any, result: Any, lang: str = "zh-CN") -> pd.DataFrame:
    """One row per category: code, name, conforming, nonconforming, not_applicable, applicable, percentage
    (unrounded, 0–100, NaN when not assessed), status."""
    frame = result.categories
    rows = []
    for cat in study.categories:
        r = frame.loc[cat.code]
        rows.append({"code": cat.code, "category": _name(cat.name, lang), "conforming": int(r.conforming),
                     "nonconforming": int(r.nonconforming), "not_applicable": int(r.not_applicable),
                     "applicable": int(r.applicable), "percentage": float(r.percentage), "status": str(r.status)})
    return pd.DataFrame(rows, columns=["code", "category", "conforming", "nonconforming", "not_applicable",
                                       "applicable", "percentage", "status"])


def _judgement_rows(study: Any, judgements: Mapping[str, str], lang: str,
                    notes: Mapping[str, str] | None = None) -> pd.DataFrame:
    notes = notes or {}
    rows = []
    for cat in study.categories:
        for item in cat.core_items:
            for req in item.requirements:
                rows.append({"code": req.code, "category": f"{cat.code} {_name(cat.name, lang)}",
                             "core_item": f"{item.code} {_name(item.name, lang)}",
                             "requirement": _name(req.text, lang), "evidence": _evidence(req.evidence, lang),
                             "judgement": judgements.get(req.code, ""), "note": notes.get(req.code, "")})
    return pd.DataFrame(rows, columns=["code", "category", "core_item", "requirement", "evidence", "judgement",
                                       "note"])


def nonconformity_table(study: Any, judgements: Mapping[str, str], lang: str = "zh-CN",
                        notes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The requirements judged ``no``, in checklist order: code, category, core item, requirement, evidence, note
    (the auditor's, empty when none)."""
    rows = _judgement_rows(study, judgements, lang, notes)
    return rows[rows["judgement"] == "no"].drop(columns="judgement").reset_index(drop=True)


def audit_document(study: Any, judgements: Mapping[str, str], result: Any, *, lang: str = "zh-CN",
                   centre: str | None = None, notes: Mapping[str, str] | None = None) -> tuple[Document, list[Sheet]]:
    """The report as a :class:`reports.render.Document` and its XLSX sheets."""
    check_lang(lang)
    title = _name(study.title, lang)
    doc = Document(title=_t("title", lang), subtitle=" · ".join(x for x in (centre, title) if x), lang=lang)
    cats = category_table(study, result, lang)
    nc = nonconformity_table(study, judgements, lang, notes)
    total_y, total_a = int(cats["conforming"].sum()), int(cats["applicable"].sum())
    verdict = _t("pass" if result.passed else "fail", lang)
    doc.kpis = [
        {"label": _t("overall", lang), "value": verdict, "sub": result.summary},
        {"label": _t("categories_passed", lang), "value": f"{result.categories_passed} / {result.categories_total}",
         "sub": ""},
        {"label": _t("conformity", lang), "value": _pct(total_y, total_a, result.threshold),
         "sub": f"{total_y} / {total_a}"},
        {"label": _t("n_nonconforming", lang), "value": str(len(nc)), "sub": ""},
    ]

    sec = Section("results", _t("sec_results", lang))
    threshold = f"{100 * result.threshold:g}%"
    rule = getattr(getattr(study, "pass_rules", None), "all_categories_must_pass", True)
    sec.p(_t("lead_all" if rule else "lead_pooled", lang, threshold=threshold), "lead")
    rows, classes = [], []
    for r in cats.itertuples():
        rows.append([f"{r.code} {r.category}", str(r.conforming), str(r.nonconforming), str(r.not_applicable),
                     str(r.applicable), _pct(r.conforming, r.applicable, result.threshold), _t(r.status, lang)])
        classes.append("above" if r.status == "pass" else "below")
    rows.append([_t("total", lang), str(total_y), str(int(cats["nonconforming"].sum())),
                 str(int(cats["not_applicable"].sum())), str(total_a), _pct(total_y, total_a, result.threshold),
                 verdict])
    classes.append("total")
    sec.table(Table([_t(k, lang) for k in ("category", "conforming", "nonconforming", "not_applicable",
                                           "applicable", "percentage", "result")],
                    rows, row_classes=classes, numeric=[False, True, True, True, True, True, False]))
    if getattr(study, "example", False):
        sec.p(_t("example_note", lang), "note")
    doc.sections.append(sec)

    sec = Section("nonconformities", _t("sec_nonconformities", lang))
    if len(nc) and nc["note"].astype(bool).any():
        sec.table(Table([_t(k, lang) for k in ("code", "category", "core_item", "requirement", "evidence", "note")],
                        [[r.code, r.category, r.core_item, r.requirement, r.evidence, r.note]
                         for r in nc.itertuples()],
                        numeric=[False] * 6, small=True, widths=["7%", "12%", "14%", "35%", "11%", "21%"]))
    elif len(nc):
        sec.table(Table([_t(k, lang) for k in ("code", "category", "core_item", "requirement", "evidence")],
                        [[r.code, r.category, r.core_item, r.requirement, r.evidence] for r in nc.itertuples()],
                        numeric=[False] * 5, small=True, widths=["8%", "15%", "18%", "45%", "14%"]))
    else:
        sec.p(_t("no_nonconformities", lang))
    doc.sections.append(sec)

    all_rows = _judgement_rows(study, judgements, lang, notes)
    na = all_rows[all_rows["judgement"] == "na"]
    if len(na):
        sec = Section("not-applicable", _t("sec_na", lang))
        sec.ul([f"{r.code} {r.requirement}" for r in na.itertuples()])
        doc.sections.append(sec)

    lab = {k: _t(k, lang) for k in ("code", "category", "core_item", "requirement", "evidence", "judgement", "note",
                                     "conforming", "nonconforming", "not_applicable", "applicable")}
    cat_sheet = cats.assign(percentage=cats["percentage"] / 100,
                            status=[_t(s, lang) for s in cats["status"]])
    cat_sheet = cat_sheet.rename(columns={**lab, "percentage": _t("percentage", lang), "status": _t("result", lang)})
    judged = all_rows.assign(judgement=[_t(_JUDGEMENT[j], lang) if j in _JUDGEMENT else j
                                        for j in all_rows["judgement"]])
    sheets = [
        Sheet(_t("sheet_categories", lang), cat_sheet, percent=(_t("percentage", lang),), note=result.summary),
        Sheet(_t("sheet_nonconformities", lang), nc.rename(columns=lab)),
        Sheet(_t("sheet_judgements", lang), judged.rename(columns=lab)),
    ]
    return doc, sheets


def build_audit_report(study: Any, judgements: Mapping[str, str], result: Any, *, lang: str = "zh-CN",
                       out_dir: str | Path = ".", formats: Iterable[str] = ("html", "pdf", "xlsx"),
                       centre: str | None = None, notes: Mapping[str, str] | None = None,
                       stem: str = "audit_report") -> dict[str, Path]:
    """Write the audit report.

    Parameters
    ----------
    study : AuditStudy
        The checklist (``categories → core_items → requirements``; ``title``, ``pass_rules``, ``example``).
    judgements : Mapping[str, str]
        Requirement code → ``yes`` / ``no`` / ``na``.
    result : scoring.audit.AuditResult
        ``score_audit(judgements, study.requirement_categories(), …)``.
    centre : str, optional
        The audited centre's name, shown under the title.
    notes : Mapping[str, str], optional
        Requirement code → the auditor's note, shown in the non-conformity list and the judgements sheet.

    Returns
    -------
    dict
        Format → path written (``<stem>.<lang>.html`` / ``.pdf`` / ``.xlsx``).
    """
    fmts = check_formats(formats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc, sheets = audit_document(study, judgements, result, lang=lang, centre=centre, notes=notes)
    paths = write_document("audit.html", doc, sheets, out, stem, lang, fmts)
    return paths

