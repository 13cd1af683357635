"""The responses file contract: round trip, encodings, and every bad-input error naming line and column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scoring_helpers import STUDY_FILE

from scoring import ScoringSpec, make_synthetic_responses, read_responses_csv, score_study
from scoring.study import ENTERPRISE_CONTRACT, INDUSTRY_CONTRACT, OVERALL_CONTRACT


@pytest.fixture(scope="module")
def spec():
    return ScoringSpec.from_yaml(STUDY_FILE)


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic_responses(24, 3, 500, seed=5)


def _write(tmp_path, df, name="r.csv", encoding="utf-8"):
    p = tmp_path / name
    df.to_csv(p, index=False, encoding=encoding)
    return p


def test_round_trip_file_equals_frame_and_writes_the_contract(tmp_path, spec, synthetic):
    path = _write(tmp_path, synthetic)
    from_file = score_study(read_responses_csv(path, spec), spec, n_boot=50, seed=3)
    from_frame = score_study(synthetic, spec, n_boot=50, seed=3)
    pd.testing.assert_frame_equal(from_file.enterprises, from_frame.enterprises)
    pd.testing.assert_frame_equal(from_file.industries, from_frame.industries)

    paths = from_file.write(tmp_path / "out")
    ent = pd.read_csv(paths["enterprise_scores"])
    assert list(ent.columns[: len(ENTERPRISE_CONTRACT)]) == ENTERPRISE_CONTRACT
    ind = pd.read_csv(paths["industry_scores"])
    assert list(ind.columns[: len(INDUSTRY_CONTRACT)]) == INDUSTRY_CONTRACT
    overall = json.loads(paths["overall"].read_text(encoding="utf-8"))
    assert list(overall)[: len(OVERALL_CONTRACT)] == OVERALL_CONTRACT
    drivers = pd.read_csv(paths["drivers"])
    assert {"level", "code", "quadrant", "p_重点关注领域"} <= set(drivers.columns)
    # unrounded in files: the file holds the full float
    assert np.allclose(ent["composite"], from_file.enterprises["composite"], rtol=0, atol=1e-12)
    assert set(ent["tier"]) <= {"above", "not_different", "below"}


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_bom_and_gbk_files(tmp_path, spec, synthetic, encoding):
    df = read_responses_csv(_write(tmp_path, synthetic, encoding=encoding), spec)
    assert df.columns[0] == "respondent_id"
    assert df["industry"].iloc[0] == synthetic["industry"].iloc[0]


def _bad(tmp_path, spec, synthetic, mutate):
    df = synthetic.astype({c: object for c in synthetic.columns}).copy()
    df = mutate(df)
    with pytest.raises(ValueError) as info:
        read_responses_csv(_write(tmp_path, df), spec)
    return str(info.value)


def test_unknown_item_code_column(tmp_path, spec, synthetic):
    msg = _bad(tmp_path, spec, synthetic, lambda d: d.assign(A5=1))
    assert "line 1" in msg and "A5" in msg and "unknown item code" in msg


def test_answer_outside_the_scale_names_line_and_column(tmp_path, spec, synthetic):
    def mutate(d):
        d.loc[6, "C3"] = 7
        return d
    msg = _bad(tmp_path, spec, synthetic, mutate)
    assert "line 8, column C3" in msg and "outside the scale" in msg  # row 6 = line 8 (header is line 1)


def test_text_answer(tmp_path, spec, synthetic):
    def mutate(d):
        d.loc[0, "B2"] = "good"
        return d
    assert "line 2, column B2: 'good' is not an answer code" in _bad(tmp_path, spec, synthetic, mutate)


def test_enterprise_in_two_industries(tmp_path, spec, synthetic):
    def mutate(d):
        ent = d.loc[10, "enterprise_id"]
        rows = d.index[d["enterprise_id"] == ent]
        d.loc[rows[1], "industry"] = "另一个行业"
        return d
    msg = _bad(tmp_path, spec, synthetic, mutate)
    assert "column industry" in msg and "belongs to one industry" in msg and "line " in msg


def test_no_complete_rows(tmp_path, spec, synthetic):
    msg = _bad(tmp_path, spec, synthetic, lambda d: d.assign(complete=0))
    assert "column complete: no complete interviews" in msg


def test_bad_complete_flag_duplicate_id_missing_column(tmp_path, spec, synthetic):
    def flag(d):
        d = d.assign(complete="1")
        d.loc[3, "complete"] = "maybe"
        return d
    assert "line 5, column complete" in _bad(tmp_path, spec, synthetic, flag)

    def dup(d):
        d.loc[4, "respondent_id"] = d.loc[2, "respondent_id"]
        return d
    assert "line 6, column respondent_id" in _bad(tmp_path, spec, synthetic, dup)
    assert "required column(s) missing: F4" in _bad(tmp_path, spec, synthetic, lambda d: d.drop(columns="F4"))

    def empty_ent(d):
        d.loc[1, "enterprise_id"] = ""
        return d
    assert "line 3, column enterprise_id: empty" in _bad(tmp_path, spec, synthetic, empty_ent)


def test_complete_and_status_columns_filter_rows(tmp_path, spec, synthetic):
    df = synthetic.copy()
    df["complete"] = np.where(np.arange(len(df)) % 5 == 0, "0", "1")
    res = score_study(read_responses_csv(_write(tmp_path, df), spec), spec, n_boot=0)
    assert res.method["n_dropped_not_complete"] == (np.arange(len(df)) % 5 == 0).sum()
    assert res.overall["n_respondents"] == len(df) - res.method["n_dropped_not_complete"]
    st = synthetic.copy()
    st["status"] = np.where(np.arange(len(st)) < 10, "2.12", "1.1")
    res2 = score_study(st, spec, n_boot=0)
    assert res2.method["n_dropped_not_complete"] == 10


def test_frame_errors_name_row_and_respondent(spec, synthetic):
    df = synthetic.copy()
    df["A1"] = df["A1"].astype("Int64")
    df.loc[3, "A1"] = 6
    with pytest.raises(ValueError, match=r"row 3 \(respondent_id R0000004\), column A1: answer"):
        score_study(df, spec, n_boot=0)
