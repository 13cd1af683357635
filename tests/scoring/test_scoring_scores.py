"""Design.md §3 steps 1–6 against small examples computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scoring_helpers import STUDY_FILE, frame, one_item_spec, tiny_spec

from scoring import (
    ScoringSpec,
    default_spec,
    enterprise_scores,
    industry_scores,
    overall_scores,
    recode_items,
    respondent_scores,
    score_study,
)


def test_item_recode_maps_scale_and_treats_8_9_empty_as_missing():
    df = pd.DataFrame({"A1": [5, 4, 3, 2, 1, 8, 9, None]})
    got = recode_items(df, default_spec(), ["A1"])["A1"].tolist()
    assert got[:5] == [100.0, 80.0, 60.0, 40.0, 20.0]
    assert all(math.isnan(v) for v in got[5:])


def test_reference_respondent_with_missing_items_and_d_block_not_asked():
    # A: A1=5 (100), A2=8, A3=9, A4=3 (60) -> 2 of 4 answered -> A = 80
    # B: all 4 -> 80; C: 5,4,4,4 -> (100+240)/4 = 85; D: not asked (filter) -> missing
    # E: E1=2 (40), E2 empty, E3=9 -> 1 of 3 answered (< 2) -> missing; F: all 5 -> 100
    # composite = mean(A, B, C, F) = (80+80+85+100)/4 = 86.25 (D and E do not count, never as zero)
    spec = ScoringSpec.from_yaml(STUDY_FILE)
    answers = {"A1": 5, "A2": 8, "A3": 9, "A4": 3, "B1": 4, "B2": 4, "B3": 4, "B4": 4, "C1": 5, "C2": 4,
               "C3": 4, "C4": 4, "E1": 2, "E3": 9, "F1": 5, "F2": 5, "F3": 5, "F4": 5, "Q0": 4, "D0": 2}
    r = respondent_scores(frame([answers], list(spec.item_codes) + ["Q0"]), spec).iloc[0]
    assert r["A"] == pytest.approx(80.0)
    assert r["B"] == pytest.approx(80.0)
    assert r["C"] == pytest.approx(85.0)
    assert math.isnan(r["D"]) and math.isnan(r["D1"])
    assert math.isnan(r["E"])
    assert r["F"] == pytest.approx(100.0)
    assert r["composite"] == pytest.approx(86.25)
    assert r["Q0"] == pytest.approx(80.0)


@pytest.mark.parametrize(
    ("answers", "expected_a", "expected_d"),
    [
        ({"A1": 5}, None, None),  # 1 of 4 -> missing; D: nothing
        ({"A1": 5, "A2": 3}, 80.0, None),  # 2 of 4 suffice
        ({"D1": 4}, None, None),  # 1 of 3 -> missing
        ({"D1": 4, "D2": 2}, None, 60.0),  # 2 of 3 suffice
        ({"A1": 5, "A2": 4, "A3": 3, "D1": 1, "D2": 1, "D3": 8}, 80.0, 20.0),
    ],
)
def test_min_answered_share_on_3_and_4_item_blocks(answers, expected_a, expected_d):
    spec = tiny_spec()
    r = respondent_scores(frame([answers], list(spec.item_codes)), spec).iloc[0]
    for got, want in ((r["A"], expected_a), (r["D"], expected_d)):
        if want is None:
            assert math.isnan(got)
        else:
            assert got == pytest.approx(want)


def test_min_answered_share_is_configurable():
    # 0.75: a 4-item block needs 3, a 3-item block needs ceil(2.25) = 3
    spec = tiny_spec(min_answered_share=0.75)
    assert (spec.min_answered("A"), spec.min_answered("D")) == (3, 3)
    r = respondent_scores(frame([{"A1": 5, "A2": 5, "D1": 5, "D2": 5}, {"A1": 5, "A2": 5, "A3": 1}],
                                list(spec.item_codes)), spec)
    assert math.isnan(r.loc[0, "A"]) and math.isnan(r.loc[0, "D"]) and math.isnan(r.loc[0, "composite"])
    assert r.loc[1, "A"] == pytest.approx((100 + 100 + 20) / 3)


def test_custom_item_and_indicator_weights_renormalised_over_answered():
    spec = ScoringSpec.from_study({
        "indicators": [
            {"code": "A", "weight": 0.7, "items": [{"code": "A1", "weight": 0.5}, {"code": "A2", "weight": 0.25},
                                                   {"code": "A3", "weight": 0.25}]},
            {"code": "B", "weight": 0.3, "items": [{"code": "B1", "weight": 0.6}, {"code": "B2", "weight": 0.4}]},
        ],
        "scoring": {"outcome": None, "callback_item": None},
    })
    rows = [
        # A: (0.5*100 + 0.25*60) / 0.75 = 86.667 (A3 n/a); B: 0.6*40 + 0.4*80 = 56
        # composite: 0.7*86.667 + 0.3*56 = 77.4667
        {"A1": 5, "A2": 3, "A3": 8, "B1": 2, "B2": 4},
        # B: nothing answered -> missing; composite = A alone = 80
        {"A1": 4, "A2": 4, "A3": 4, "B1": 9},
    ]
    r = respondent_scores(frame(rows, list(spec.item_codes)), spec)
    assert r.loc[0, "A"] == pytest.approx(65 / 0.75)
    assert r.loc[0, "B"] == pytest.approx(56.0)
    assert r.loc[0, "composite"] == pytest.approx(0.7 * 65 / 0.75 + 0.3 * 56)
    assert math.isnan(r.loc[1, "B"])
    assert r.loc[1, "composite"] == pytest.approx(80.0)


def test_weights_must_sum_to_one_per_level():
    with pytest.raises(ValueError, match=r"indicators\[0\]\.items: weights sum to 0\.9"):
        ScoringSpec.from_study({"indicators": [
            {"code": "A", "weight": 1, "items": [{"code": "A1", "weight": 0.5}, {"code": "A2", "weight": 0.4}]}]})
    with pytest.raises(ValueError, match=r"indicators: weights sum to 1\.5"):
        ScoringSpec.from_study({"indicators": [{"code": "A", "weight": 1, "items": ["A1"]},
                                               {"code": "B", "weight": 0.5, "items": ["B1"]}]})


# unequal n: e1 (银行) 100, 80, 60 -> 80; e2 (银行) 40; e3 (保险) 60, 80 -> 70
UNEQUAL = [
    {"enterprise_id": "e1", "industry": "银行", "A1": 5}, {"enterprise_id": "e1", "industry": "银行", "A1": 4},
    {"enterprise_id": "e1", "industry": "银行", "A1": 3}, {"enterprise_id": "e2", "industry": "银行", "A1": 2},
    {"enterprise_id": "e3", "industry": "保险", "A1": 3}, {"enterprise_id": "e3", "industry": "保险", "A1": 4},
]


def test_unequal_n_enterprise_means_and_bases():
    spec = one_item_spec()
    ent = enterprise_scores(respondent_scores(frame(UNEQUAL, ["A1"]), spec), spec).set_index("enterprise_id")
    assert ent["n"].to_dict() == {"e1": 3, "e2": 1, "e3": 2}
    assert ent["composite"].to_dict() == pytest.approx({"e1": 80.0, "e2": 40.0, "e3": 70.0})
    assert ent["n_A1"].to_dict() == {"e1": 3, "e2": 1, "e3": 2}
    assert ent.loc["e1", "sd_composite"] == pytest.approx(20.0)  # sd of 100, 80, 60


def test_industry_mean_of_enterprises_vs_respondent_weighted():
    spec = one_item_spec()
    ent = enterprise_scores(respondent_scores(frame(UNEQUAL, ["A1"]), spec), spec)
    by_ent = industry_scores(ent, spec, "enterprise_mean").set_index("industry")
    by_resp = industry_scores(ent, spec, "respondent_mean").set_index("industry")
    assert by_ent.loc["银行", "composite"] == pytest.approx((80 + 40) / 2)  # 60
    assert by_resp.loc["银行", "composite"] == pytest.approx((100 + 80 + 60 + 40) / 4)  # 70
    assert by_ent.loc["保险", "composite"] == by_resp.loc["保险", "composite"] == pytest.approx(70.0)
    assert by_ent.loc["银行", ["n_enterprises", "n_respondents", "n_A1", "n_composite"]].tolist() == [2, 4, 4, 4]
    assert overall_scores(ent, spec)["composite"] == pytest.approx((80 + 40 + 70) / 3)
    assert overall_scores(ent, spec, "respondent_mean")["composite"] == pytest.approx((100 + 80 + 60 + 40 + 60 + 80) / 6)


def test_score_study_end_to_end_on_hand_example():
    spec = one_item_spec()
    res = score_study(frame(UNEQUAL, ["A1"]), spec, n_boot=0)
    ent = res.enterprises.set_index("enterprise_id")
    assert ent["composite"].to_dict() == pytest.approx({"e1": 80.0, "e2": 40.0, "e3": 70.0})
    assert ent["rank"].to_dict() == {"e1": 1, "e3": 2, "e2": 3}
    ind = res.industries.set_index("industry")
    assert ind.loc["保险", "rank"] == 1 and ind.loc["银行", "rank"] == 2
    assert res.overall["composite"] == pytest.approx(190 / 3)
    assert res.overall["n_respondents"] == 6 and res.overall["n_enterprises"] == 3
    res_r = score_study(frame(UNEQUAL, ["A1"]), spec, n_boot=0, industry_aggregation="respondent_mean")
    assert res_r.industries.set_index("industry")["composite"].to_dict() == pytest.approx({"银行": 70.0, "保险": 70.0})
    assert res_r.industries["rank"].tolist() == [1, 1]  # a tie shares the best rank
    assert res_r.method["industry_aggregation"] == "respondent_mean"


def test_only_complete_interviews_count():
    spec = one_item_spec()
    rows = [dict(r, complete=c) for r, c in zip(UNEQUAL, ["1", "1", "0", "true", "1", "false"], strict=True)]
    res = score_study(frame(rows, ["A1"]), spec, n_boot=0)
    ent = res.enterprises.set_index("enterprise_id")
    assert ent["n"].to_dict() == {"e1": 2, "e2": 1, "e3": 1}
    assert ent.loc["e1", "composite"] == pytest.approx(90.0)
    assert res.method["n_dropped_not_complete"] == 2


def test_callback_rate_per_enterprise_and_industry():
    spec = tiny_spec()
    rows = [{"enterprise_id": "e1", "A1": 5, "A2": 5, "CB1": 1}, {"enterprise_id": "e1", "A1": 5, "A2": 5, "CB1": 2},
            {"enterprise_id": "e1", "A1": 5, "A2": 5, "CB1": 9}, {"enterprise_id": "e2", "A1": 5, "A2": 5, "CB1": 1}]
    res = score_study(frame(rows, [*spec.item_codes, "Q0"]), spec, n_boot=0)
    ent = res.enterprises.set_index("enterprise_id")
    assert ent.loc["e1", "callback_rate"] == pytest.approx(0.5) and ent.loc["e1", "callback_n"] == 2
    assert ent.loc["e2", "callback_rate"] == pytest.approx(1.0)
    assert res.industries.loc[0, "callback_rate"] == pytest.approx(0.75)  # mean of enterprises


def test_input_frame_is_not_modified():
    spec = tiny_spec()
    df = frame([{"A1": 5, "A2": 4, "D1": 8}], [*spec.item_codes, "Q0"])
    before = df.copy()
    score_study(df, spec, n_boot=10)
    pd.testing.assert_frame_equal(df, before)


def test_spec_reads_the_study_file():
    spec = ScoringSpec.from_yaml(STUDY_FILE)
    assert len(spec.item_codes) == 22 and spec.item_codes[0] == "A1" and spec.item_codes[-1] == "F4"
    assert spec.indicator_codes == ("A", "B", "C", "D", "E", "F")
    assert spec.indicator_names_zh["D"] == "问题跟进处理" and spec.indicator_names_en["F"] == "Talk quality"
    assert spec.outcome == "Q0" and spec.callback_item == "CB1"
    assert spec.bootstrap_replicates == 2000 and spec.confidence == 0.95
    assert spec.item_parent["D2"] == "D"
    # labels never carry the enterprise placeholder
    assert "{" not in "".join(spec.item_names_zh.values()) + "".join(spec.item_names_en.values())
    assert spec.item_names_zh["A1"] == "热线号码容易查找和记忆"
    assert np.isclose(sum(spec.indicator_weights.values()), 1.0, atol=1e-6)


def test_spec_errors_name_the_path(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("indicators:\n  - {code: A, weight: 1, items: [{code: A1, weight: -1}]}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"s\.yaml: indicators\[0\]\.items\[0\]\.weight"):
        ScoringSpec.from_yaml(p)
    with pytest.raises(ValueError, match="industry_aggregation"):
        ScoringSpec.from_study({"indicators": [{"code": "A", "weight": 1, "items": ["A1"]}],
                                "scoring": {"industry_aggregation": "median"}})
