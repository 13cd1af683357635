"""Intervals, rank intervals, tiers and empirical-Bayes scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scoring_helpers import frame, one_item_spec

from scoring import default_spec, make_synthetic_responses, score_study
from scoring.uncertainty import (
    cluster_counts,
    empirical_bayes,
    grouped_cluster_means,
    rank_interval,
    respondent_bootstrap,
    tier_test,
)


@pytest.fixture(scope="module")
def reference_like():
    df = make_synthetic_responses(60, 5, 1230, seed=11)
    return df, score_study(df, default_spec(), n_boot=400, seed=2)


def test_respondent_bootstrap_matches_the_analytic_standard_error():
    rng = np.random.default_rng(0)
    x = rng.normal(70, 15, 400)
    reps = respondent_bootstrap(x[:, None], np.zeros(400, dtype=np.intp), 1, 4000, np.random.default_rng(1))
    se = x.std(ddof=0) / np.sqrt(400)
    assert reps[:, 0, 0].std() == pytest.approx(se, rel=0.06)
    assert reps[:, 0, 0].mean() == pytest.approx(x.mean(), abs=0.1)


def test_cluster_counts_resample_within_strata_only():
    strata = np.array([0, 0, 1, 1, 1, 2])
    w = cluster_counts(strata, 300, np.random.default_rng(4))
    assert (w[:, :2].sum(axis=1) == 2).all() and (w[:, 2:5].sum(axis=1) == 3).all() and (w[:, 5] == 1).all()
    vals = np.array([[10.0], [20.0], [30.0], [30.0], [60.0], [5.0]])
    reps = grouped_cluster_means(w, vals, strata, 3)
    assert set(np.round(reps[:, 0, 0], 6)) <= {10.0, 15.0, 20.0}
    assert (reps[:, 2, 0] == 5.0).all()


def test_intervals_contain_estimates_and_are_about_plus_minus_5_for_n_20(reference_like):
    _, res = reference_like
    ent = res.enterprises
    assert (ent["composite_ci_low"] <= ent["composite"]).all() and (ent["composite"] <= ent["composite_ci_high"]).all()
    half = (ent["composite_ci_high"] - ent["composite_ci_low"]) / 2
    assert 2.5 < half.median() < 7.5  # docs/domain.md §3.7: about ±5 points with n = 20
    assert (ent["rank_low"] <= ent["rank"]).mean() > 0.95 and (ent["rank"] <= ent["rank_high"]).mean() > 0.95
    assert (ent["rank_low"] >= 1).all() and (ent["rank_high"] <= len(ent)).all()
    ind = res.industries
    assert (ind["ci_low"] < ind["composite"]).all() and (ind["composite"] < ind["ci_high"]).all()
    assert res.overall["ci_low"] < res.overall["composite"] < res.overall["ci_high"]
    for c in "ABCDEF":
        assert (ent[f"{c}_ci_low"] <= ent[c] + 1e-9).all()


def test_industry_interval_from_enterprises_is_wider_than_pooling_respondents(reference_like):
    df, res = reference_like
    # a naive respondent bootstrap of the industry ignores clustering (ICC ~ 0.1) and is too narrow
    r = res.respondents
    naive = r.groupby("industry")["composite"].agg(lambda s: 2 * 1.96 * s.std() / np.sqrt(s.count()))
    width = (res.industries.set_index("industry")["ci_high"] - res.industries.set_index("industry")["ci_low"])
    assert (width > naive.reindex(width.index)).mean() >= 0.8


def test_seed_reproducible_and_row_order_irrelevant(reference_like):
    df, res = reference_like
    shuffled = df.sample(frac=1.0, random_state=9).reset_index(drop=True)
    again = score_study(shuffled, default_spec(), n_boot=400, seed=2)
    pd.testing.assert_frame_equal(res.enterprises, again.enterprises)
    pd.testing.assert_frame_equal(res.industries, again.industries)
    other = score_study(df, default_spec(), n_boot=400, seed=3)
    assert not np.allclose(other.enterprises["composite_ci_low"], res.enterprises["composite_ci_low"])


def test_single_enterprise_industry_falls_back_to_its_respondent_bootstrap():
    rows = [{"enterprise_id": "e1", "industry": "银行", "A1": a} for a in (5, 4, 3, 5, 2)]
    rows += [{"enterprise_id": f"e{k}", "industry": "保险", "A1": a} for k in (2, 3) for a in (4, 4, 5)]
    res = score_study(frame(rows, ["A1"]), one_item_spec(), n_boot=300, seed=1)
    ind = res.industries.set_index("industry")
    ent = res.enterprises.set_index("enterprise_id")
    assert ind.loc["银行", "ci_high"] - ind.loc["银行", "ci_low"] > 10  # not a zero-width interval
    assert ind.loc["银行", "ci_low"] == pytest.approx(ent.loc["e1", "composite_ci_low"])
    assert res.method["n_single_enterprise_industries"] == 1


def test_tier_test_worked_example():
    # three enterprises of one industry, means 90/80/70, sd 10, n 20: v = s²/n = 5
    f = pd.DataFrame({"m": [90.0, 80.0, 70.0], "sd": 10.0, "n": 20})
    out = tier_test(f, value="m", sd="sd", n="n", correction="none")
    # enterprise 1 against the other two: diff = 90 - 75 = 15, var = 5 + (5+5)/2² = 7.5
    # Welch df = 7.5² / (5²/19 + (5²/19 + 5²/19)/2⁴)
    df1 = 7.5**2 / (25 / 19 + (50 / 19) / 16)
    assert out.loc[0, "diff"] == pytest.approx(15.0) and out.loc[0, "se"] == pytest.approx(np.sqrt(7.5))
    assert out.loc[0, "df"] == pytest.approx(df1)
    assert out.loc[0, "p"] == pytest.approx(2 * stats.t.sf(15 / np.sqrt(7.5), df1))
    assert out.loc[1, "diff"] == pytest.approx(0.0) and out.loc[1, "p"] == pytest.approx(1.0)
    assert out["tier"].tolist() == ["above", "not_different", "below"]


def test_tier_correction_makes_marginal_differences_not_significant():
    # 30 units; one is 2.3 SE above the rest: significant alone (p ~ 0.03), not after Holm / BH over 30 tests
    f = pd.DataFrame({"m": [80.0] * 29 + [80.0 + 2.3 * np.sqrt(5.0 + 5.0 / 29)], "sd": 10.0, "n": 20})
    raw = tier_test(f, value="m", sd="sd", n="n", correction="none")
    assert raw["tier"].iloc[-1] == "above" and raw["p"].iloc[-1] < 0.05
    assert tier_test(f, value="m", sd="sd", n="n")["tier"].iloc[-1] == "not_different"
    assert tier_test(f, value="m", sd="sd", n="n", correction="holm")["tier"].iloc[-1] == "not_different"


def test_tiers_in_score_study_name_the_correction(reference_like):
    _, res = reference_like
    assert "Benjamini" in res.method["multiple_comparison_correction"]
    ent = res.enterprises
    above = ent[ent["tier"] == "above"]
    assert (above["tier_industry_p_adj"] < 0.05).all()
    assert set(ent["tier_overall"]) <= {"above", "not_different", "below"}


def test_empirical_bayes_worked_example():
    # two groups, pooled within sd 10, n 25 -> noise 4; group means 70 (units 60, 80) and 90 (units 85, 95)
    f = pd.DataFrame({"m": [60.0, 80.0, 85.0, 95.0], "sd": 10.0, "n": 25, "g": ["a", "a", "b", "b"]})
    out = empirical_bayes(f, value="m", sd="sd", n="n", group="g")
    # between = (100 + 100 + 25 + 25) / (4 - 2) = 125, tau² = 125 - 4 = 121, B = 121/125
    b = 121 / 125
    assert out["tau2"].iloc[0] == pytest.approx(121.0)
    assert out["eb"].tolist() == pytest.approx([70 - 10 * b, 70 + 10 * b, 90 - 5 * b, 90 + 5 * b])


def test_rank_interval_bounds():
    lo, hi = rank_interval(np.array([[1, 3]] * 50 + [[2, 2]] * 50), 0.95)
    assert lo.tolist() == [1, 2] and hi.tolist() == [2, 3]


def test_point_estimates_only_when_n_boot_is_zero():
    df = make_synthetic_responses(10, 2, 200, seed=1)
    res = score_study(df, default_spec(), n_boot=0)
    assert res.enterprises["composite_ci_low"].isna().all() and res.enterprises["rank_low"].isna().all()
    assert res.enterprises["rank"].notna().all() and res.method["n_boot"] == 0
