"""The responses file contract: a wide CSV, one row per interview.

Columns: ``respondent_id, enterprise_id, enterprise_name, industry``, then one column per item code (``A1`` … ``F4``,
``Q0``) holding the answer code (1–5; 8 not applicable, 9 don't know; empty = not asked); optionally ``CB1``
(callback: 1 yes, 2 no, 9 don't know), other questionnaire codes (``D0``, ``P1`` …) and free columns, and an optional
``complete`` (true/1 = complete interview) or ``status`` (``complete``/``1.1``) column. Only complete interviews
count.

Errors name the file line (header = line 1) and the column. Frames that did not come from a file (the database
bridge) are named by row label instead.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .spec import ScoringSpec, default_spec

__all__ = ["ID_COLUMNS", "read_responses_csv", "validate_responses", "complete_mask"]

ID_COLUMNS = ("respondent_id", "enterprise_id", "enterprise_name", "industry")
_ITEM_LIKE = re.compile(r"^[A-Za-z]{1,2}\d{1,3}$")
_TRUE = {"1", "true", "t", "yes", "y", "1.0"}
_FALSE = {"0", "false", "f", "no", "n", "0.0", ""}
_COMPLETE_STATUS = {"complete", "completed", "1.1", "i"}


def _where(frame: pd.DataFrame, pos: int) -> str:
    label = frame.index[pos]
    if frame.index.name == "line":
        return f"line {label}"
    rid = frame["respondent_id"].iloc[pos] if "respondent_id" in frame.columns else None
    return f"row {label}" + (f" (respondent_id {rid})" if rid is not None else "")


def _decode(raw: bytes, path: Path) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ValueError(f"{path}: not UTF-8 or GB18030 text")


def read_responses_csv(path: str | Path, spec: ScoringSpec | None = None) -> pd.DataFrame:
    """Read and validate a responses CSV (UTF-8 with or without BOM, or GBK/GB18030).

    Parameters
    ----------
    path : str or Path
        The wide responses file.
    spec : ScoringSpec, optional
        The study's scoring spec; default :func:`scoring.spec.default_spec` (the 22 items A1…F4 of design.md §2,
        outcome Q0, callback CB1).

    Returns
    -------
    DataFrame
        Identifier columns as strings, answer columns as float codes (NaN = empty), all other columns as text.
        The index is named ``line`` and holds the file line number of each row, so later errors can name it.
        Non-complete rows are kept (``score_study`` drops and counts them).

    Raises
    ------
    ValueError
        For a missing/unknown column, an answer outside the scale, an enterprise in two industries, a duplicate
        respondent id or a file without complete interviews, naming the line and column.

    Examples
    --------
    >>> import tempfile, os
    >>> spec = ScoringSpec.from_study({"indicators": [{"code": "A", "weight": 1, "items": ["A1", "A2"]}]})
    >>> text = "respondent_id,enterprise_id,enterprise_name,industry,A1,A2\\nr1,e1,甲,银行,5,9\\nr2,e1,甲,银行,7,4\\n"
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "r.csv"); _ = open(p, "w", encoding="utf-8").write(text)
    ...     try:
    ...         read_responses_csv(p, spec)
    ...     except ValueError as e:
    ...         print(e)
    r.csv: line 3, column A1: answer '7' is outside the scale (allowed: 1, 2, 3, 4, 5, 8, 9, or empty = not asked)
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{p}: responses file not found") from None
    text = _decode(raw, p)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{p}: not a readable CSV file: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="line")
    try:
        return validate_responses(frame, spec if spec is not None else default_spec())
    except ValueError as exc:
        raise ValueError(f"{p.name}: {exc}") from None


def complete_mask(frame: pd.DataFrame) -> np.ndarray:
    """Boolean mask of complete interviews: ``complete`` true/1 if that column exists, else ``status`` in
    (complete, completed, 1.1, I), else every row."""
    if "complete" in frame.columns:
        col = frame["complete"]
        if col.dtype == bool:
            return col.to_numpy()
        return col.astype(str).str.strip().str.lower().isin(_TRUE).to_numpy()
    if "status" in frame.columns:
        return frame["status"].astype(str).str.strip().str.lower().isin(_COMPLETE_STATUS).to_numpy()
    return np.ones(len(frame), dtype=bool)


def _codes(frame: pd.DataFrame, col: str, valid: frozenset[int] | None) -> np.ndarray:
    """Column of answer codes as float (NaN = empty), checking that every value is a whole number in ``valid``."""
    s = frame[col]
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        values = s.to_numpy(dtype=float, na_value=np.nan)
        bad_text = np.zeros(len(s), dtype=bool)
    else:
        txt = s.astype("string").str.strip().fillna("")
        values = pd.to_numeric(txt.where(txt != "", None), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad_text = ((txt != "") & np.isnan(values)).to_numpy(dtype=bool)
    if bad_text.any():
        pos = int(np.flatnonzero(bad_text)[0])
        raise ValueError(f"{_where(frame, pos)}, column {col}: {s.iloc[pos]!r} is not an answer code")
    present = ~np.isnan(values)
    if valid is not None:
        ok = np.isin(values, np.fromiter(valid, dtype=float)) | ~present
    else:
        ok = (values == np.round(values)) | ~present
    if not ok.all():
        pos = int(np.flatnonzero(~ok)[0])
        allowed = ", ".join(str(v) for v in sorted(valid)) if valid else "whole numbers"
        raise ValueError(
            f"{_where(frame, pos)}, column {col}: answer {s.iloc[pos]!r} is outside the scale (allowed: {allowed}, "
            "or empty = not asked)"
        )
    return values


def validate_responses(frame: pd.DataFrame, spec: ScoringSpec | None = None) -> pd.DataFrame:
    """Check a wide responses frame against the file contract and return a clean copy.

    Identifier columns become strings, item / outcome / callback columns float answer codes (NaN = empty).
    The input is not modified. See :func:`read_responses_csv` for the rules; the errors name ``line N`` when the
    frame's index is named ``line`` (as read from a file), otherwise ``row <label>``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError("responses: expected a pandas DataFrame")
    cols = [str(c) for c in frame.columns]
    if len(set(cols)) != len(cols):
        dup = next(c for c in cols if cols.count(c) > 1)
        raise ValueError(f"line 1, column {dup}: the column appears twice")
    missing = [c for c in ID_COLUMNS if c not in frame.columns]
    if spec is not None:
        missing += [c for c in spec.item_codes if c not in frame.columns]
    if missing:
        raise ValueError(f"line 1: required column(s) missing: {', '.join(missing)}")
    if spec is not None:
        known = set(spec.item_codes) | set(spec.question_codes) | {spec.outcome, spec.callback_item}
        for i, c in enumerate(cols):
            if _ITEM_LIKE.match(c) and c not in known:
                raise ValueError(
                    f"line 1, column {i + 1} ({c}): unknown item code {c!r}; the study's items are "
                    f"{', '.join(spec.item_codes)}"
                )
    if len(frame) == 0:
        raise ValueError("the responses file has no data rows")

    out = frame.copy()
    for c in ID_COLUMNS:
        s = out[c].astype("string").str.strip()
        empty = (s.isna() | (s == "")).to_numpy(dtype=bool)
        if empty.any() and c != "enterprise_name":
            pos = int(np.flatnonzero(empty)[0])
            raise ValueError(f"{_where(frame, pos)}, column {c}: empty {c}")
        out[c] = s.fillna("").astype(object)

    dup = out["respondent_id"].duplicated().to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise ValueError(
            f"{_where(frame, pos)}, column respondent_id: respondent_id {out['respondent_id'].iloc[pos]!r} appears "
            "more than once"
        )

    n_ind = out.groupby("enterprise_id", sort=False)["industry"].transform("nunique").to_numpy()
    if (n_ind > 1).any():
        pos_all = np.flatnonzero(n_ind > 1)
        ent = out["enterprise_id"].iloc[pos_all[0]]
        rows = np.flatnonzero((out["enterprise_id"] == ent).to_numpy())
        first_ind = out["industry"].iloc[rows[0]]
        conflict = next(r for r in rows if out["industry"].iloc[r] != first_ind)
        raise ValueError(
            f"{_where(frame, int(conflict))}, column industry: enterprise {ent!r} is in industry "
            f"{out['industry'].iloc[conflict]!r} here but in {first_ind!r} at {_where(frame, int(rows[0]))}; "
            "an enterprise belongs to one industry"
        )

    if spec is not None:
        valid = spec.valid_codes
        for c in spec.item_codes:
            out[c] = _codes(frame, c, valid)
        if spec.outcome and spec.outcome in frame.columns:
            out[spec.outcome] = _codes(frame, spec.outcome, valid)
        if spec.callback_item and spec.callback_item in frame.columns:
            cb_valid = frozenset(spec.callback_yes + spec.callback_no + spec.callback_missing)
            out[spec.callback_item] = _codes(frame, spec.callback_item, cb_valid)

    if "complete" in frame.columns and frame["complete"].dtype != bool:
        txt = frame["complete"].astype("string").str.strip().str.lower().fillna("")
        bad = ~(txt.isin(_TRUE) | txt.isin(_FALSE)).to_numpy(dtype=bool)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{_where(frame, pos)}, column complete: {frame['complete'].iloc[pos]!r} is not true/false or 1/0"
            )
    if not complete_mask(out).any():
        col = "complete" if "complete" in frame.columns else "status"
        raise ValueError(f"column {col}: no complete interviews in the responses (nothing to score)")
    return out
