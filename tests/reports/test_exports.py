"""Data exports: SPSS labels and user-missing codes round-trip; CSV has a BOM; phone numbers masked by default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from reports.exports import export_paradata, export_responses
from reports.privacy import mask_phone, mask_text


@pytest.fixture()
def frame(responses):
    df = responses.head(30).copy()
    df.loc[df.index[0], "A1"] = 8
    df.loc[df.index[1], "A2"] = 9
    df["OPEN1"] = "请回电13812341234"
    df["phone"] = "13987654321"
    return df


def test_sav_variable_and_value_labels_round_trip(frame, study, tmp_path):
    paths = export_responses(frame, study, tmp_path, formats=("sav",))
    data, meta = pyreadstat.read_sav(str(paths["sav"]), user_missing=True)
    labels = meta.column_names_to_labels
    assert labels["A1"] == "该企业的热线号码容易查找和记忆，您对此是否满意？"
    assert labels["B1"] == "客服态度热情友好"
    assert labels["enterprise_name"] == "企业名称"
    assert meta.variable_value_labels["A1"] == {5: "非常满意", 4: "满意", 3: "一般", 2: "不满意", 1: "非常不满意",
                                                8: "不适用", 9: "不知道/不记得"}
    assert meta.variable_value_labels["CB1"][1] == "是"
    assert {(m["lo"], m["hi"]) for m in meta.missing_ranges["A1"]} == {(8, 8), (9, 9)}
    np.testing.assert_array_equal(data["A1"].to_numpy(), frame["A1"].astype("float64").to_numpy())
    assert list(data["enterprise_name"]) == list(frame["enterprise_name"])
    # declared user-missing: read without user_missing, 8 and 9 become system-missing
    plain, _ = pyreadstat.read_sav(str(paths["sav"]))
    assert np.isnan(plain["A1"].iloc[0]) and np.isnan(plain["A2"].iloc[1])
    assert plain["phone"].iloc[0] == "139****4321" and "13812341234" not in plain["OPEN1"].iloc[0]


def test_sav_english_labels(frame, study, tmp_path):
    paths = export_responses(frame, study, tmp_path, formats=("sav",), lang="en")
    _, meta = pyreadstat.read_sav(str(paths["sav"]))
    assert meta.column_names_to_labels["B1"] == "The agent was friendly and warm"
    assert meta.variable_value_labels["A1"][8] == "Not applicable"


def test_csv_has_bom_and_masks_phones(frame, study, tmp_path):
    paths = export_responses(frame, study, tmp_path, formats=("csv", "xlsx"))
    raw = paths["csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(paths["csv"], encoding="utf-8-sig", dtype=str)
    assert list(back["enterprise_name"]) == list(frame["enterprise_name"])
    assert set(back["phone"]) == {"139****4321"} and "13812341234" not in raw.decode("utf-8-sig")
    wb = load_workbook(paths["xlsx"])
    assert wb.sheetnames == ["responses", "codebook"]
    codebook = {r[0]: r for r in wb["codebook"].iter_rows(min_row=2, values_only=True)}
    assert codebook["A1"][3] == "8, 9"


def test_include_phone_keeps_numbers(frame, study, tmp_path):
    paths = export_responses(frame, study, tmp_path, formats=("csv",), include_phone=True)
    assert "13987654321" in paths["csv"].read_text(encoding="utf-8-sig")


def test_paradata_masks_phones(fieldwork, tmp_path):
    _, attempts, _ = fieldwork
    paths = export_paradata(attempts, tmp_path)
    text = paths["csv"].read_text(encoding="utf-8-sig")
    assert not any(p in text for p in attempts.phone)
    back = pd.read_csv(paths["csv"], encoding="utf-8-sig")
    assert len(back) == len(attempts) and back["phone"].str.fullmatch(r"138\*{4}\d{4}").all()
    assert back["placed_at"].iloc[0].endswith("Z")  # UTC stated
    ws = load_workbook(paths["xlsx"]).active
    assert ws.max_row == len(attempts) + 1


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True))
def test_mask_phone_keeps_prefix_and_suffix(number):
    assert mask_phone(number) == f"{number[:3]}****{number[-4:]}"


@given(st.text(alphabet="您好请回电话，。 ", max_size=20), st.from_regex(r"1[3-9]\d{9}", fullmatch=True),
       st.text(alphabet="谢谢abc ", max_size=10))
def test_numbers_inside_text_are_masked(before, number, after):
    out = mask_text(before + number + after)
    assert number not in out and f"{number[:3]}****{number[-4:]}" in out
