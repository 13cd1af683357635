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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .spec import ScoringSpec, default_spec

__all__ = ["ID_COLUMNS", "CleanResponses", "clean_arrays", "read_responses_csv", "validate_responses", "complete_mask"]

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
        The study's scoring spec; default :func:`scoring.spec.default_spec` (the 22 items A1…F4 of docs/domain.md §2,
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
    (complete, completed, 1.1, I), else every row.

    Examples
    --------
    >>> complete_mask(pd.DataFrame({"complete": ["1", "0", "true", "no"]})).tolist()
    [True, False, True, False]
    >>> complete_mask(pd.DataFrame({"status": ["complete", "partial", "1.1"]})).tolist()
    [True, False, True]
    """
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
        top = max(max(valid), 0) + 1
        table = np.zeros(top + 1, dtype=bool)
        table[[v for v in valid if v >= 0]] = True
        idx = np.where(present, values, top)
        np.clip(idx, 0, top, out=idx)
        idx_i = idx.astype(np.intp)
        ok = ~present | (table[idx_i] & (idx_i == values))
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


@dataclass(frozen=True)
class CleanResponses:
    """Validated responses as arrays (what :func:`validate_responses` checks, without copying the frame)."""

    ids: dict[str, np.ndarray]  # ID_COLUMNS -> object arrays of stripped strings
    codes: np.ndarray  # (N, J) answer codes of spec.item_codes: int16 with -1 = empty, or float with NaN = empty
    outcome: np.ndarray | None  # (N,) float codes of spec.outcome, or None when the column is absent
    callback: np.ndarray | None  # (N,) float codes of spec.callback_item, or None
    complete: np.ndarray  # (N,) bool
    groups: dict[str, tuple[np.ndarray, np.ndarray]]  # enterprise_id / industry -> (codes, sorted uniques)


def _check_columns(frame: pd.DataFrame, spec: ScoringSpec) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError("responses: expected a pandas DataFrame")
    cols = [str(c) for c in frame.columns]
    if len(set(cols)) != len(cols):
        dup = next(c for c in cols if cols.count(c) > 1)
        raise ValueError(f"line 1, column {dup}: the column appears twice")
    missing = [c for c in ID_COLUMNS if c not in frame.columns]
    missing += [c for c in spec.item_codes if c not in frame.columns]
    if missing:
        raise ValueError(f"line 1: required column(s) missing: {', '.join(missing)}")
    known = set(spec.item_codes) | set(spec.question_codes) | {spec.outcome, spec.callback_item}
    for i, c in enumerate(cols):
        if _ITEM_LIKE.match(c) and c not in known:
            raise ValueError(
                f"line 1, column {i + 1} ({c}): unknown item code {c!r}; the study's items are "
                f"{', '.join(spec.item_codes)}"
            )
    if len(frame) == 0:
        raise ValueError("the responses file has no data rows")


def clean_arrays(frame: pd.DataFrame, spec: ScoringSpec) -> CleanResponses:
    """Validate ``frame`` against the file contract and return its parts as arrays (the frame is not copied).

    See :func:`validate_responses` for the rules and errors.
    """
    _check_columns(frame, spec)
    ids: dict[str, np.ndarray] = {}
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for c in ID_COLUMNS:
        if c == "respondent_id":  # unique per row: stripping a million strings costs more than it is worth
            arr = frame[c].to_numpy(dtype=object, na_value=None)
            if not all(isinstance(v, str) for v in arr[:1]):
                arr = np.array([None if v is None else str(v).strip() for v in arr], dtype=object)
            empty = pd.isna(arr) | (arr == "")
            labels_arr = arr
        else:
            # strip the distinct values only (few enterprises and industries, a million rows)
            raw_codes, uniques = pd.factorize(frame[c], use_na_sentinel=True)
            stripped = np.asarray(pd.Index(uniques).astype(str).str.strip(), dtype=object)
            # values equal after stripping become one group; group codes follow the sorted labels
            remap, labels = pd.factorize(stripped, sort=True)
            labels = np.asarray(labels, dtype=object)
            codes = np.where(raw_codes >= 0, remap[np.maximum(raw_codes, 0)] if len(remap) else -1, -1)
            empty = codes < 0
            if len(labels):
                empty = empty | (labels == "")[np.maximum(codes, 0)]
                labels_arr = np.where(codes >= 0, labels[np.maximum(codes, 0)], "")
            else:
                labels_arr = np.full(len(frame), "", dtype=object)
            groups[c] = (codes.astype(np.intp), labels)
        if empty.any() and c != "enterprise_name":
            pos = int(np.flatnonzero(empty)[0])
            raise ValueError(f"{_where(frame, pos)}, column {c}: empty {c}")
        ids[c] = labels_arr

    dup = pd.Series(ids["respondent_id"], copy=False).duplicated().to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise ValueError(
            f"{_where(frame, pos)}, column respondent_id: respondent_id {ids['respondent_id'][pos]!r} appears "
            "more than once"
        )

    ent_codes = groups["enterprise_id"][0]
    ind_codes = groups["industry"][0]
    first_ind = np.full(ent_codes.max() + 1, -1)
    first_ind[ent_codes[::-1]] = ind_codes[::-1]
    clash = first_ind[ent_codes] != ind_codes
    if clash.any():
        pos = int(np.flatnonzero(clash)[0])
        ent = ids["enterprise_id"][pos]
        first_row = int(np.flatnonzero(ent_codes == ent_codes[pos])[0])
        raise ValueError(
            f"{_where(frame, pos)}, column industry: enterprise {ent!r} is in industry {ids['industry'][pos]!r} here "
            f"but in {ids['industry'][first_row]!r} at {_where(frame, first_row)}; an enterprise belongs to one "
            "industry"
        )

    valid = spec.valid_codes
    # Small integer codes are kept as int16 with -1 = empty: an eighth of the memory of floats and one table
    # lookup to recode (see scores._recode).
    small = all(0 <= v < 32000 for v in valid)
    codes_m = np.empty((len(frame), len(spec.item_codes)), dtype=np.int16 if small else np.float64, order="F")
    for j, c in enumerate(spec.item_codes):
        v = _codes(frame, c, valid)
        codes_m[:, j] = np.where(np.isnan(v), -1, v) if small else v
    outcome = _codes(frame, spec.outcome, valid) if spec.outcome and spec.outcome in frame.columns else None
    callback = None
    if spec.callback_item and spec.callback_item in frame.columns:
        cb_valid = frozenset(spec.callback_yes + spec.callback_no + spec.callback_missing)
        callback = _codes(frame, spec.callback_item, cb_valid)

    if "complete" in frame.columns and frame["complete"].dtype != bool:
        txt = frame["complete"].astype("string").str.strip().str.lower().fillna("")
        bad = ~(txt.isin(_TRUE) | txt.isin(_FALSE)).to_numpy(dtype=bool)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{_where(frame, pos)}, column complete: {frame['complete'].iloc[pos]!r} is not true/false or 1/0"
            )
    complete = complete_mask(frame)
    if not complete.any():
        col = "complete" if "complete" in frame.columns else "status"
        raise ValueError(f"column {col}: no complete interviews in the responses (nothing to score)")
    return CleanResponses(ids=ids, codes=codes_m, outcome=outcome, callback=callback, complete=complete,
                          groups=groups)


def validate_responses(frame: pd.DataFrame, spec: ScoringSpec | None = None) -> pd.DataFrame:
    """Check a wide responses frame against the file contract and return a clean copy.

    Identifier columns become stripped strings, item / outcome / callback columns float answer codes
    (NaN = empty); other columns are kept as they are. The input is not modified.

    Rules: the identifier columns and every item column of the study must exist; a column that looks like an
    item code (``A5``, ``G1``) but is not a question of the study is an error; answers must be codes of the scale
    or its missing codes (8, 9), empty = not asked; respondent ids are unique; an enterprise belongs to one
    industry; at least one complete interview (``complete`` true/1, else ``status`` complete/1.1, else all rows).

    Raises
    ------
    ValueError
        Naming ``line N`` (file line, when the frame's index is named ``line`` as :func:`read_responses_csv`
        makes it) or ``row <label>``, and the column.

    Examples
    --------
    >>> spec = ScoringSpec.from_study({"indicators": [{"code": "A", "weight": 1, "items": ["A1"]}]})
    >>> df = pd.DataFrame({"respondent_id": ["r1", "r2"], "enterprise_id": "e1", "enterprise_name": "甲",
    ...                    "industry": ["银行", "保险"], "A1": [5, 4]})
    >>> try:
    ...     validate_responses(df, spec)
    ... except ValueError as e:
    ...     print(e)
    row 1 (respondent_id r2), column industry: enterprise 'e1' is in industry '保险' here but in '银行' at row 0 (respondent_id r1); an enterprise belongs to one industry
    """
    spec = spec if spec is not None else default_spec()
    clean = clean_arrays(frame, spec)
    out = frame.copy()
    for c, arr in clean.ids.items():
        out[c] = arr
    codes = clean.codes
    if np.issubdtype(codes.dtype, np.integer):
        codes = np.where(codes < 0, np.nan, codes.astype(np.float64))
    for j, c in enumerate(spec.item_codes):
        out[c] = codes[:, j]
    if clean.outcome is not None:
        out[spec.outcome] = clean.outcome
    if clean.callback is not None:
        out[spec.callback_item] = clean.callback
    return out
