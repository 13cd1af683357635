"""Data exports: responses as CSV (UTF-8 with BOM, so Excel opens Chinese correctly), XLSX (data + codebook)
and SPSS ``.sav`` (variable labels, value labels, 8/9 declared user-missing), and the call history (paradata).

Phone numbers are masked (138****1234) in phone columns and inside free text unless ``include_phone=True``;
only the CLI decides when that is allowed (admin, explicit flag).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.i18n import t
from reports.privacy import mask_frame
from reports.render import Sheet, pin_sav_time, write_xlsx
from scoring.cells import safe_frame

__all__ = ["export_responses", "export_paradata", "responses_csv", "responses_xlsx", "responses_sav", "codebook",
           "sav_metadata"]

#: Columns that are not questions get a label from the reports catalogue (``col:<column>``).
_ID_COLUMNS = frozenset({"respondent_id", "case_id", "case_ref", "enterprise_id", "enterprise_name", "industry",
                         "province", "interviewer", "disposition", "status", "completed_at", "started_at",
                         "duration_s", "phone"})
_TEXT_TYPES = {"open", "text"}
_VAR_OK = re.compile(r"^[A-Za-z\u4e00-\u9fff@][\w.@#$\u4e00-\u9fff]{0,63}$")
_MAX_LABEL_BYTES = 255


def _text(value: Any, lang: str) -> str:
    if isinstance(value, Mapping):
        return str(value.get(lang) or next(iter(value.values()), ""))
    return "" if value is None else str(value)


def _label_text(text: str, study: Mapping, lang: str) -> str:
    """Question text with placeholders filled generically (the enterprise differs per row)."""
    piping = {str(k): str(v) for k, v in (study.get("piping_defaults") or {}).items()}
    piping.setdefault("enterprise_name", t("the_enterprise", lang))
    fn = study.get("firm_name")
    if fn:
        piping.setdefault("firm_name", _text(fn, lang))
    out = " ".join(str(text).split())
    for k, v in piping.items():
        out = out.replace("{" + k + "}", v)
    return re.sub(r"\{[A-Za-z_]+\}", "…", out)


def _truncate_bytes(s: str, limit: int = _MAX_LABEL_BYTES) -> str:
    b = s.encode("utf-8")
    if len(b) <= limit:
        return s
    return b[: limit - 3].decode("utf-8", errors="ignore") + "…"


def sav_metadata(study: Mapping, columns: Iterable[str], lang: str = "zh-CN") -> dict[str, dict]:
    """Labels from the study file for the given columns.

    Returns
    -------
    dict
        ``column_labels`` (name → label), ``value_labels`` (name → {code: label}), ``missing`` (name → codes
        declared user-missing: the scale's ``missing`` codes, e.g. 8 不适用 and 9 不知道), ``measure``
        (name → nominal/ordinal/scale), ``types`` (name → question type).
    """
    cols = list(columns)
    scales = study.get("scales") or {}
    questions = {str(q["code"]): q for q in study.get("questions") or [] if isinstance(q, Mapping) and "code" in q}
    labels, values, missing, measure, types = {}, {}, {}, {}, {}
    for c in cols:
        q = questions.get(c)
        if q is not None:
            labels[c] = _truncate_bytes(_label_text(_text(q.get("text"), lang), study, lang))
            types[c] = str(q.get("type", ""))
            scale = scales.get(q.get("scale")) if q.get("scale") else None
            if scale:
                vl = {float(k): _text(v, lang) for k, v in (scale.get("labels") or {}).items()}
                miss = {float(k): _text(v, lang) for k, v in (scale.get("missing") or {}).items()}
                values[c] = {**vl, **miss}
                if miss:
                    missing[c] = sorted(miss)
                measure[c] = "ordinal" if q.get("type") == "rating" else "nominal"
            elif types[c] in _TEXT_TYPES:
                measure[c] = "nominal"
        elif c in _ID_COLUMNS:
            labels[c] = t(f"col:{c}", lang)
            measure[c] = "nominal"
    return {"column_labels": labels, "value_labels": values, "missing": missing, "measure": measure, "types": types}


def codebook(study: Mapping, columns: Iterable[str], lang: str = "zh-CN") -> pd.DataFrame:
    """One row per column: name, label, value labels ("5=非常满意; …"), user-missing codes."""
    meta = sav_metadata(study, columns, lang)
    rows = []
    for c in columns:
        vl = meta["value_labels"].get(c, {})
        rows.append({"variable": c, "label": meta["column_labels"].get(c, ""),
                     "values": "; ".join(f"{int(k)}={v}" for k, v in vl.items()),
                     "missing": ", ".join(str(int(k)) for k in meta["missing"].get(c, []))})
    return pd.DataFrame(rows)


def _prepare(frame: pd.DataFrame, include_phone: bool) -> pd.DataFrame:
    text_cols = [c for c in frame.columns if str(c).upper().startswith("OPEN")]
    return mask_frame(frame, include_phone=include_phone, text_columns=text_cols)


def responses_csv(frame: pd.DataFrame, path: str | Path, *, include_phone: bool = False) -> Path:
    """CSV in UTF-8 with BOM (Excel detects the encoding and shows Chinese correctly)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    out = _prepare(frame, include_phone)
    for c in out.columns:
        if isinstance(out[c].dtype, pd.DatetimeTZDtype):
            out[c] = out[c].dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    safe_frame(out).to_csv(p, index=False, encoding="utf-8-sig")
    return p


def responses_xlsx(frame: pd.DataFrame, path: str | Path, *, study: Mapping | None = None, lang: str = "zh-CN",
                   include_phone: bool = False, sheet: str = "responses") -> Path:
    """XLSX with the data sheet and, when the study is given, a codebook sheet."""
    out = _prepare(frame, include_phone)
    sheets = [Sheet(sheet, out)]
    if study is not None:
        sheets.append(Sheet("codebook", codebook(study, out.columns, lang)))
    return write_xlsx(sheets, Path(path))


def _sav_name(name: str, used: set[str]) -> str:
    s = str(name)
    if not _VAR_OK.match(s):
        s = re.sub(r"[^\w.@#$]", "_", s)
        if not re.match(r"^[A-Za-z\u4e00-\u9fff@]", s):
            s = "v_" + s
        s = s[:64]
    base, i = s, 2
    while s.lower() in used:
        s = f"{base[:60]}_{i}"
        i += 1
    used.add(s.lower())
    return s


def responses_sav(frame: pd.DataFrame, study: Mapping, path: str | Path, *, lang: str = "zh-CN",
                  include_phone: bool = False) -> Path:
    """SPSS .sav with variable labels and value labels from the study; scale ``missing`` codes (8 不适用,
    9 不知道) are declared user-missing, so SPSS excludes them from statistics while keeping the codes."""
    import pyreadstat

    out = _prepare(frame, include_phone)
    meta = sav_metadata(study, out.columns, lang)
    data = pd.DataFrame(index=range(len(out)))
    for c in out.columns:
        s = out[c].reset_index(drop=True)
        if c in meta["value_labels"] or (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
            data[c] = pd.to_numeric(s, errors="coerce").astype("float64")
        elif pd.api.types.is_bool_dtype(s):
            data[c] = s.astype("float64")
        elif pd.api.types.is_datetime64_any_dtype(s):
            ts = pd.to_datetime(s, utc=True)
            data[c] = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        else:
            data[c] = s.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA
                            else str(v)).astype(object)
    used: set[str] = set()
    rename = {c: _sav_name(c, used) for c in data.columns}
    data = data.rename(columns=rename)
    labels = [meta["column_labels"].get(c, "") for c in out.columns]
    value_labels = {rename[c]: v for c, v in meta["value_labels"].items()}
    missing = {rename[c]: list(v) for c, v in meta["missing"].items()}
    measure = {rename[c]: m for c, m in meta["measure"].items()}
    for c in out.columns:
        if c not in meta["measure"] and pd.api.types.is_float_dtype(data[rename[c]]):
            measure[rename[c]] = "scale"
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pyreadstat.write_sav(data, str(p), column_labels=labels, variable_value_labels=value_labels,
                         missing_ranges=missing, variable_measure=measure)
    pin_sav_time(p)
    return p


def export_responses(frame: pd.DataFrame, study: Mapping, out_dir: str | Path, *,
                     formats: Iterable[str] = ("csv", "xlsx", "sav"), lang: str = "zh-CN",
                     include_phone: bool = False, stem: str = "responses") -> dict[str, Path]:
    """Write the responses in each requested format (``csv``, ``xlsx``, ``sav``); returns format → path."""
    out = Path(out_dir)
    fmts = [str(f).lower() for f in formats]
    bad = [f for f in fmts if f not in ("csv", "xlsx", "sav")]
    if bad:
        raise ValueError(f"formats: {', '.join(bad)} not supported for data exports; choose csv, xlsx, sav")
    paths: dict[str, Path] = {}
    if "csv" in fmts:
        paths["csv"] = responses_csv(frame, out / f"{stem}.csv", include_phone=include_phone)
    if "xlsx" in fmts:
        paths["xlsx"] = responses_xlsx(frame, out / f"{stem}.xlsx", study=study, lang=lang,
                                       include_phone=include_phone)
    if "sav" in fmts:
        paths["sav"] = responses_sav(frame, study, out / f"{stem}.sav", lang=lang, include_phone=include_phone)
    return paths


def export_paradata(attempts: pd.DataFrame, out_dir: str | Path, *, formats: Iterable[str] = ("csv", "xlsx"),
                    include_phone: bool = False, stem: str = "call_history") -> dict[str, Path]:
    """The call history (one row per attempt: times in UTC, hangup cause, AMD result, outcome), phones masked."""
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    fmts = [str(f).lower() for f in formats]
    bad = [f for f in fmts if f not in ("csv", "xlsx")]
    if bad:
        raise ValueError(f"formats: {', '.join(bad)} not supported for the call history; choose csv, xlsx")
    if "csv" in fmts:
        paths["csv"] = responses_csv(attempts, out / f"{stem}.csv", include_phone=include_phone)
    if "xlsx" in fmts:
        paths["xlsx"] = write_xlsx([Sheet(stem, _prepare(attempts, include_phone))], out / f"{stem}.xlsx")
    return paths
