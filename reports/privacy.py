"""Phone-number masking for everything reports and exports write (docs/domain.md §6: 138****1234).

Phone numbers are masked in phone columns *and* inside free text, because respondents sometimes dictate a
number into the open question ("请打我手机13812341234").
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

__all__ = ["mask_phone", "mask_text", "phone_columns", "mask_frame"]

_PHONE_COL = re.compile(r"(phone|mobile|tel|msisdn|number|手机|电话)", re.IGNORECASE)
_NOT_PHONE_COL = re.compile(r"(n_|count|attempt|case_ref|_id$|^id$)", re.IGNORECASE)
# a run of 7+ digits, optionally with +, spaces or dashes inside (mobile 1xxxxxxxxxx, landline 0xx-xxxxxxxx, +86 …)
_IN_TEXT = re.compile(r"(?<![\d*])(\+?\d[\d\- ]{5,}\d)(?![\d*])")


def mask_phone(value: Any) -> Any:
    """Keep the first 3 and last 4 digits, star the middle: ``13812341234`` → ``138****1234``.

    Short numbers (fewer than 8 digits) keep only the last 2. Missing values stay missing; an already masked
    value is returned unchanged.

    Examples
    --------
    >>> mask_phone("13812341234")
    '138****1234'
    >>> mask_phone("+86 138-1234-1234")
    '+86****1234'
    >>> mask_phone("138****1234")
    '138****1234'
    """
    if value is None:
        return None
    try:
        if pd.isna(value):
            return value
    except (TypeError, ValueError):
        pass
    s = str(value).strip()
    if "*" in s:
        return s
    digits = re.sub(r"\D", "", s)
    if not digits:
        return s
    if len(digits) < 8:
        return "*" * max(0, len(digits) - 2) + digits[-2:]
    head = "+" + digits[:2] if s.startswith("+") else digits[:3]
    return f"{head}****{digits[-4:]}"


def mask_text(text: Any) -> Any:
    """Mask every phone-like digit run (≥ 7 digits) inside free text."""
    if not isinstance(text, str):
        return text

    def repl(m: re.Match[str]) -> str:
        raw = m.group(1)
        return mask_phone(raw) if len(re.sub(r"\D", "", raw)) >= 7 else raw

    return _IN_TEXT.sub(repl, text)


def phone_columns(frame: pd.DataFrame) -> list[str]:
    """Columns whose name says they hold phone numbers (``phone``, ``phone_2``, ``mobile``, ``电话`` …)."""
    return [c for c in frame.columns if _PHONE_COL.search(str(c)) and not _NOT_PHONE_COL.search(str(c))]


def mask_frame(frame: pd.DataFrame, *, include_phone: bool = False, text_columns: list[str] | None = None,
               drop: bool = False) -> pd.DataFrame:
    """A copy with phone columns masked (or dropped with ``drop=True``) and numbers in text columns masked.

    With ``include_phone=True`` (admin only, enforced by the CLI) the frame is returned unchanged.
    """
    if include_phone:
        return frame.copy()
    out = frame.copy()
    cols = phone_columns(out)
    if drop:
        out = out.drop(columns=cols)
    else:
        for c in cols:
            out[c] = out[c].map(mask_phone).astype(object)
    for c in text_columns or []:
        if c in out.columns:
            out[c] = out[c].map(mask_text)
    return out
