"""Index scoring of the staff happiness study (scoring/happiness.py) against hand-computed examples."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.happiness import (
    HAPPINESS_QUADRANTS,
    IndexSpec,
    breakdown,
    driver_quadrants,
    index_score,
    item_section_scores,
    mean_interval,
    multi_shares,
    score_index_study,
)
from scoring.synthetic import make_happiness_responses

STUDY = Path(__file__).resolve().parents[2] / "config" / "studies" / "happiness_index.yaml"
SPEC = IndexSpec.from_yaml(STUDY)


def responses(**columns) -> pd.DataFrame:
    """A frame with every rated item (3 = 60 unless given) for len(first column) respondents."""
    n = len(next(iter(columns.values())))
    data = {f"H{i}": [3] * n for i in range(1, 16)}
    data.update(columns)
    return pd.DataFrame(data)


def test_the_spec_reads_the_study_file():
    assert SPEC.index_item == "H1"
    assert SPEC.driver_items == tuple(f"H{i}" for i in range(4, 16))
    assert SPEC.min_cell_size == 5 and SPEC.missing_codes == {99}
    assert SPEC.multi_questions == ("M1", "M2", "M3", "M4")
    assert SPEC.labels["P2"] == {1: ("男", "Male"), 2: ("女", "Female")}


def test_the_index_is_the_mean_of_item_1_and_prefer_not_to_say_is_missing():
    # H1 = 5, 4, 4, 3 → 100, 80, 80, 60; 99 (prefer not to say) and empty are missing.
    out = index_score(responses(H1=[5, 4, 4, 3, 99, None]), SPEC)
    assert out["n"] == 4 and out["index"] == 80.0
    # s = √((20² + 0 + 0 + 20²) / 3) = 16.3299; t(0.975, 3) = 3.18245; half width = 3.18245 × 16.3299 / 2 = 25.985
    assert out["sd"] == pytest.approx(16.3299, abs=1e-4)
    assert out["ci_low"] == pytest.approx(80 - 25.985, abs=1e-3)
    assert out["ci_high"] == pytest.approx(80 + 25.985, abs=1e-3)


def test_a_section_is_the_mean_of_its_item_scores():
    # ENT = H4…H7: H4 5,4,3 → 80; H5 4,4,99 → 80 (99 missing); H6 3,3,3 → 60; H7 2,–,1 → 30. ENT = 250 / 4 = 62.5
    df = responses(H4=[5, 4, 3], H5=[4, 4, 99], H6=[3, 3, 3], H7=[2, None, 1])
    t = item_section_scores(df, SPEC).set_index("code")
    assert t.loc[["H4", "H5", "H6", "H7"], "score"].tolist() == [80.0, 80.0, 60.0, 30.0]
    assert t.loc["H5", "n"] == 2 and t.loc["H7", "n"] == 2
    assert t.loc["ENT", "score"] == 62.5 and t.loc["ENT", "score_5"] == 3.125
    assert t.loc["ENT", "name_zh"] == "企业管理因素" and t.loc["H10", "name_zh"] == "员工薪酬"
    assert t.loc["OVR", "score"] == 60.0


def test_a_breakdown_shows_n_and_an_interval_and_suppresses_a_small_cell():
    # Women (P2 = 2): H1 5,5,4,4,3 → 100,100,80,80,60, mean 84; men (P2 = 1): 3 respondents → suppressed; 99 left out.
    df = responses(P2=[2, 2, 2, 2, 2, 1, 1, 1, 99], H1=[5, 5, 4, 4, 3, 2, 3, 4, 1])
    t = breakdown(df, SPEC, "P2").set_index("code")
    assert list(t.index) == [1, 2]
    men, women = t.loc[1], t.loc[2]
    assert (men["n"], bool(men["suppressed"])) == (3, True)
    assert math.isnan(men["mean"]) and math.isnan(men["ci_low"]) and math.isnan(men["ci_high"])
    assert (women["n"], bool(women["suppressed"]), women["mean"]) == (5, False, 84.0)
    # s = √((16² + 16² + 4² + 4² + 24²) / 4) = √280 = 16.7332; t(0.975, 4) = 2.77645; half = 2.77645 × 16.7332 / √5
    half = 2.77645 * math.sqrt(280) / math.sqrt(5)
    assert women["ci_low"] == pytest.approx(84 - half, abs=1e-3)
    assert women["ci_high"] == pytest.approx(84 + half, abs=1e-3)
    assert (women["label_zh"], women["label_en"]) == ("女", "Female")
    # A smaller minimum shows the men.
    assert breakdown(df, SPEC, "P2", min_cell_size=3).set_index("code").loc[1, "mean"] == pytest.approx(60.0)


def test_breakdown_lists_empty_categories_as_suppressed():
    df = responses(P1=[1] * 6, H1=[4] * 6)
    t = breakdown(df, SPEC, "P1")
    assert t["code"].tolist() == [1, 2, 3, 4, 5]
    assert t["n"].tolist() == [6, 0, 0, 0, 0] and t["suppressed"].tolist() == [False, True, True, True, True]


def _quadrant_spec() -> IndexSpec:
    return IndexSpec.from_study({
        "indicators": [{"code": "OVR", "weight": 0.5, "items": ["H1", "H2"]},
                       {"code": "ENT", "weight": 0.5, "items": ["D1", "D2", "D3", "D4"]}],
        "scoring": {"kind": "index", "index_item": "H1", "missing_codes": [99], "outcome": None,
                    "callback_item": None},
    })


def test_the_quadrants_follow_correlation_and_volatility():
    # Two enterprises of two respondents; H1 = 100, 60 in both.
    #   D1 = 100, 60 | 60, 20: r = 400 / √(400 · 800) = 0.7071; enterprise means 80, 40: τ = √(800 − 400) = 20
    #   D2 = 100, 60 | 100, 60 (= H1): r = 1; means equal: τ = 0
    #   D3 = 100, 100 | 60, 60: r = 0; τ = √800 = 28.28
    #   D4 = 80, 60 | 60, 80: r = 0; τ = √max(0, 0 − 200) = 0
    # Cut points: mean r = 0.4268, mean τ = 12.07.
    df = pd.DataFrame({"enterprise_id": ["e1", "e1", "e2", "e2"], "H1": [5, 3, 5, 3], "H2": 3,
                       "D1": [5, 3, 3, 1], "D2": [5, 3, 5, 3], "D3": [5, 5, 3, 3], "D4": [4, 3, 3, 4]})
    t = driver_quadrants(df, _quadrant_spec()).set_index("code")
    assert t["correlation"].round(4).tolist() == [0.7071, 1.0, 0.0, 0.0]
    assert t["tau"].round(2).tolist() == [20.0, 0.0, 28.28, 0.0]
    assert t["quadrant"].to_dict() == {"D1": "重点关注领域", "D2": "幸福必备条件", "D3": "卓越企业需关注",
                                       "D4": "行业基本达标"}
    assert t[[f"p_{q}" for q in HAPPINESS_QUADRANTS.values()]].isna().all().all()  # no bootstrap asked


def test_quadrant_probabilities_come_from_the_enterprise_bootstrap():
    df = make_happiness_responses(40, 1600, seed=4)
    t = driver_quadrants(df, SPEC, n_boot=200, seed=1)
    probs = t[[f"p_{q}" for q in HAPPINESS_QUADRANTS.values()]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert set(t["quadrant"]) == set(HAPPINESS_QUADRANTS.values())  # the synthetic drivers fill every quadrant
    # The observed quadrant is the most likely one for every clear-cut item.
    best = t[[f"p_{q}" for q in HAPPINESS_QUADRANTS.values()]].idxmax(axis=1).str[2:]
    clear = probs.max(axis=1) > 0.8
    assert (best[clear] == t.loc[clear, "quadrant"]).all()


def test_multi_shares_use_respondents_who_answered_as_base():
    # 4 substantive answers (one empty, one prefer-not-to-say): option 3 chosen by 3 of 4, 97 (other) by 1.
    df = pd.DataFrame({"M1": ["3", "1,3", "3;97", "2", None, "99"]})
    t = multi_shares(df, SPEC, "M1").set_index("code")
    assert list(t.index) == [1, 2, 3, 4, 5, 6, 7, 8, 97]
    assert t.loc[3, "chosen"] == 3 and t.loc[3, "base"] == 4 and t.loc[3, "share"] == 0.75
    assert t.loc[97, "share"] == 0.25 and t.loc[4, "share"] == 0.0
    assert t.loc[3, "label_zh"] == "企业给予客服人员的薪酬或福利上升"


def test_mean_interval_of_one_value_has_no_interval():
    assert mean_interval(np.array([80.0]))[:2] == (1, 80.0)
    assert math.isnan(mean_interval(np.array([80.0]))[3])
    assert mean_interval(np.array([np.nan]))[0] == 0


def test_synthetic_responses_are_valid_answers_to_the_questionnaire():
    from cati.study.engine import Questionnaire
    from cati.study.loader import load_study

    q = Questionnaire.for_study(load_study(STUDY))
    df = make_happiness_responses(5, 40, seed=3)
    for row in df.to_dict("records"):
        answers = {"INTRO": None, "END": None}
        for code, value in row.items():
            if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
                continue
            if code in ("O1", "O2") and value == "99":
                value = 99  # prefer not to say, as the web form sends it
            answers[code] = value.item() if hasattr(value, "item") else value
        answered, step = q.advance_through(answers, "INTRO")
        assert step is not None and step.complete, row["respondent_id"]


def test_score_index_study_writes_its_files(tmp_path):
    df = make_happiness_responses(12, 240, seed=5)
    df.loc[df["enterprise_id"] == "E0001", "status"] = "partial"
    df["status"] = df["status"].fillna("complete")
    res = score_index_study(df, SPEC, n_boot=20)
    assert res.method["n_dropped_not_complete"] == (df["status"] == "partial").sum()
    assert res.overall["n_enterprises"] == 11
    assert set(res.overall) >= {"index", "ci_low", "ci_high", "OVR", "ENT", "PER", "SOC"}
    assert set(res.breakdowns["variable"]) == {f"P{i}" for i in range(1, 15)}
    small = res.breakdowns[res.breakdowns["n"] < 5]
    assert small["suppressed"].all() and small["mean"].isna().all()
    paths = res.write(tmp_path)
    assert sorted(p.name for p in paths.values()) == [
        "breakdowns.csv", "drivers.csv", "enterprise_scores.csv", "item_scores.csv", "method.json",
        "multi_shares.csv", "overall.json"]


def test_cati_score_scores_a_happiness_responses_file(tmp_path):
    import json

    from click.testing import CliRunner

    from cati.cli.score import score

    src = tmp_path / "responses.csv"
    df = make_happiness_responses(15, 450, seed=6)
    df.to_csv(src, index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(score, [str(src), "--study", str(STUDY), "--out", str(out), "--n-boot", "50"])
    assert result.exit_code == 0, result.output
    overall = json.loads((out / "overall.json").read_text(encoding="utf-8"))
    assert overall["n_respondents"] == 450 and overall["n_enterprises"] == 15
    assert f"{overall['index']:.2f}" in result.output and "指数 index" in result.output
    expected = df["H1"].map({5: 100, 4: 80, 3: 60, 2: 40, 1: 20}).mean()
    assert overall["index"] == pytest.approx(expected)
    drivers = pd.read_csv(out / "drivers.csv")
    assert len(drivers) == 12 and set(drivers["quadrant"]) <= set(HAPPINESS_QUADRANTS.values())
    # A code outside the scale is refused with the line and column, as for the CSAT study.
    df["H5"] = df["H5"].astype(object)
    df.loc[3, "H5"] = 7
    df.to_csv(src, index=False)
    bad = CliRunner().invoke(score, [str(src), "--study", str(STUDY), "--out", str(out)])
    assert bad.exit_code == 1 and "line 5, column H5: answer '7' is outside the scale" in bad.output


def test_the_benchmark_table_compares_the_enterprise_with_its_province_and_the_industry():
    from scoring.happiness import benchmark_table

    # Enterprise a (广东): H1 = 5 ×5 → 100; b (广东): 3 ×5 → 60; c (浙江): 1 ×5 → 20. Last year a had 4 ×5 → 80.
    df = responses(enterprise_id=["a"] * 5 + ["b"] * 5 + ["c"] * 5, province=["广东"] * 10 + ["浙江"] * 5,
                   H1=[5] * 5 + [3] * 5 + [1] * 5)
    last = responses(enterprise_id=["a"] * 5, province=["广东"] * 5, H1=[4] * 5)
    t = benchmark_table(df, SPEC, "a", previous=last)
    assert t.loc["index", ["last_year", "enterprise", "province", "industry"]].tolist() == [80.0, 100.0, 80.0, 60.0]
    assert t.loc["index", ["n_last_year", "n_enterprise", "n_province", "n_industry"]].tolist() == [5, 5, 10, 15]
    # OVR = mean(H1, H2, H3): a = (100 + 60 + 60) / 3; on the 1-5 scale ÷ 20.
    assert t.loc["OVR", "enterprise"] == pytest.approx(220 / 3)
    five = benchmark_table(df, SPEC, "a", five_point=True)
    assert five.loc["OVR", "enterprise"] == pytest.approx(220 / 60) and math.isnan(five.loc["OVR", "last_year"])
    # Under the minimum cell size the enterprise's own columns are hidden.
    small = benchmark_table(df.iloc[2:], SPEC, "a")
    assert small.loc["index", "n_enterprise"] == 3 and math.isnan(small.loc["index", "enterprise"])


def test_open_answers_skip_prefer_not_to_say_and_small_enterprises():
    from scoring.happiness import open_answers

    df = pd.DataFrame({"enterprise_id": ["a"] * 5 + ["b"] * 2, "O1": ["累", "99", None, "工资低", "", "x", "y"],
                       "O2": ["帮助客户", "同事友爱", "99", "", "涨工资", "z", "w"]})
    t = open_answers(df, SPEC, enterprise_id="a")
    assert t[["question", "text"]].values.tolist() == [["O1", "累"], ["O1", "工资低"], ["O2", "帮助客户"],
                                                       ["O2", "同事友爱"], ["O2", "涨工资"]]
    assert open_answers(df, SPEC, enterprise_id="b").empty  # 2 respondents < 5
    assert len(open_answers(df, SPEC)) == 9
