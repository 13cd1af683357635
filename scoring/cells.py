"""Spreadsheet cells that stay text: the one helper every CSV and XLSX writer of the project sends cell text through.

Open answers come from the public (web respondents) and from interviewers' keyboards; a spreadsheet program opening
an export would run a cell such as ``=HYPERLINK("http://…")`` or ``@SUM(…)`` as a formula (CSV injection). OWASP's
advice: a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading single quote,
so the program shows it as text. Numbers are left alone, and so is text that is a plain signed number ("-2",
"+8613800138000": data, not a formula); only other text is changed.

XLSX is neutralised differently: openpyxl stores a string starting with ``=`` as a formula, so
:func:`append_row` writes every text cell as a string cell (type ``s``), its text unchanged; the other starting
characters are harmless in a string cell.

This module lives in ``scoring`` because it is the bottom package: ``scoring``, ``reports`` and ``cati`` all use it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

__all__ = ["FORMULA_STARTS", "safe_cell", "safe_frame", "csv_bytes", "write_csv_rows", "append_row"]

#: The first characters that make a spreadsheet read a cell as a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


#: A plain signed number ("+8613800138000" in E.164, "-2.5") is data, not a formula: it stays as it is, so an
#: admin's export with full phone numbers still reads back (and re-imports) as numbers.
_PLAIN_NUMBER = re.compile(r"[+-]\d+(\.\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` with text that a spreadsheet would take for a formula made text (a leading ``'``).

    >>> safe_cell("=1+2"), safe_cell("@SUM(A1)"), safe_cell("-2+3"), safe_cell("\\tx"), safe_cell("好")
    ("'=1+2", "'@SUM(A1)", "'-2+3", "'\\tx", '好')
    >>> safe_cell(-3), safe_cell(2.5), safe_cell(None), safe_cell("+8613800138000"), safe_cell("+1 (A1)")
    (-3, 2.5, None, '+8613800138000', "'+1 (A1)")
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (object and string columns) went through :func:`safe_cell`; column
    names too (a column named ``=cmd`` is a cell of the header row)."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            out[col] = s.map(safe_cell)
    out.columns = [safe_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def write_csv_rows(fh, rows: Iterable[Sequence[Any]], **kw: Any) -> None:
    """``csv.writer(fh, **kw).writerows`` with every cell through :func:`safe_cell`."""
    w = csv.writer(fh, **kw)
    for row in rows:
        w.writerow([safe_cell(v) for v in row])


def csv_bytes(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as a UTF-8 (with BOM, so Excel reads Chinese) CSV document, cells neutralised."""
    buf = io.StringIO()
    write_csv_rows(buf, rows)
    return buf.getvalue().encode("utf-8-sig")


def append_row(ws, values: Iterable[Any]) -> None:
    """``ws.append(values)`` with text cells kept as text: a string that openpyxl would store as a formula
    (starting with ``=``) is stored as a string cell, its text unchanged."""
    row = list(values)
    ws.append(row)
    formulas = [j for j, v in enumerate(row, start=1) if isinstance(v, str) and v.startswith("=")]
    if formulas:
        # Only then: ``max_row`` scans every cell of the sheet, and asking it per row made a 52,812-row call
        # history take minutes (quadratic).
        r = ws.max_row
        for j in formulas:
            ws.cell(r, j).data_type = "s"
