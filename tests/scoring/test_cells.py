"""The one cell helper of every CSV/XLSX writer: formula-like text becomes text, numbers and other text unchanged."""

from __future__ import annotations

import csv
import io

import pandas as pd
from openpyxl import Workbook, load_workbook

from scoring.cells import FORMULA_STARTS, append_row, csv_bytes, safe_frame

EVIL = ["=1+2", "+1+1", "-1*2", "@A1", "\tx", "\rx"]


def test_csv_cells_starting_like_a_formula_get_a_quote():
    rows = list(csv.reader(io.StringIO(csv_bytes([["h", "=h"], *([v, 3] for v in EVIL), ["ok", -2]]).decode(
        "utf-8-sig"))))
    assert rows[0] == ["h", "'=h"]
    assert [r[0] for r in rows[1:-1]] == ["'" + v for v in EVIL]
    assert rows[-1] == ["ok", "-2"]  # a negative number stays a number
    assert list(csv.reader(io.StringIO(csv_bytes([["+8613800138000", "-2.5"]]).decode("utf-8-sig")))) == [
        ["+8613800138000", "-2.5"]]  # so does text that is a plain signed number (an E.164 phone)
    frame = safe_frame(pd.DataFrame({"=a": EVIL + ["好"], "n": [-1.5] * 7}))
    assert list(frame.columns) == ["'=a", "n"] and list(frame["n"]) == [-1.5] * 7
    assert all(v.startswith("'") for v in frame["'=a"][:6]) and frame["'=a"].iloc[6] == "好"
    assert all(v.startswith(FORMULA_STARTS) for v in EVIL)


def test_xlsx_cells_stay_strings_with_their_text(tmp_path):
    wb = Workbook()
    append_row(wb.active, EVIL + [-3, "=SUM(1,2)"])
    wb.save(tmp_path / "x.xlsx")
    cells = list(load_workbook(tmp_path / "x.xlsx").active[1])
    # (XML reads a carriage return back as a line feed)
    assert [(c.data_type, c.value) for c in cells] == [("s", v.replace("\r", "\n")) for v in EVIL] + [
        ("n", -3), ("s", "=SUM(1,2)")]
