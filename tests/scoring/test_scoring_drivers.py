"""Driver analysis: Johnson relative weights, noise-corrected volatility τ, quadrants with probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from scoring import (
    default_spec,
    johnson_relative_weights,
    make_synthetic_responses,
    noise_corrected_tau,
    score_study,
)
from scoring.drivers import QUADRANTS, relative_weights


def test_relative_weights_sum_to_r2_of_the_regression():
    rng = np.random.default_rng(7)
    z = rng.normal(size=(2000, 4))
    x = z @ np.array([[1, 0.6, 0.3, 0], [0, 0.8, 0.4, 0.2], [0, 0, 0.9, 0.5], [0, 0, 0, 1]])  # correlated
    y = x @ [0.5, 0.3, 0.0, 0.2] + rng.normal(size=2000)
    df = pd.DataFrame(x, columns=list("abcd")).assign(y=y)
    out = johnson_relative_weights(df, list("abcd"), "y")
    ols_r2 = sm.OLS(y, sm.add_constant(x)).fit().rsquared
    assert out["relative_weight"].sum() == pytest.approx(ols_r2, rel=1e-9)
    assert out["r2"].iloc[0] == pytest.approx(ols_r2, rel=1e-9)
    assert (out["relative_weight"] > 0).all()
    assert out["correlation"].tolist() == pytest.approx(df.corr()["y"][list("abcd")].tolist())


def test_relative_weights_uncorrelated_predictors_are_squared_correlations():
    corr = np.array([[1.0, 0.0, 0.0, 0.4], [0.0, 1.0, 0.0, 0.3], [0.0, 0.0, 1.0, -0.2], [0.4, 0.3, -0.2, 1.0]])
    rw, r2 = relative_weights(corr)
    assert rw.tolist() == pytest.approx([0.16, 0.09, 0.04])
    assert float(r2) == pytest.approx(0.29)


def test_relative_weights_split_a_duplicated_predictor_equally():
    corr = np.array([[1.0, 0.9, 0.5], [0.9, 1.0, 0.5], [0.5, 0.5, 1.0]])
    rw, r2 = relative_weights(corr)
    assert rw[0] == pytest.approx(rw[1]) and rw.sum() == pytest.approx(float(r2))


def test_tau_removes_sampling_noise():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(300), 20)
    noise_only = pd.DataFrame({"g": g, "y": rng.normal(80, 15, g.size)})
    raw_sd = noise_only.groupby("g")["y"].mean().std()
    assert raw_sd == pytest.approx(15 / np.sqrt(20), rel=0.15)  # ~3.4 points of pure noise
    assert noise_corrected_tau(noise_only, "g", "y") < 1.2
    with_effect = noise_only.assign(y=noise_only["y"] + rng.normal(0, 4, 300)[g])
    assert noise_corrected_tau(with_effect, "g", "y") == pytest.approx(4.0, rel=0.2)


def test_tau_hand_example():
    # enterprise means 60 and 80 (Var = 200), within variances 200 and 200 with n = 2 -> noise 100 -> tau = 10
    df = pd.DataFrame({"g": ["a", "a", "b", "b"], "y": [50.0, 70.0, 70.0, 90.0]})
    assert noise_corrected_tau(df, "g", "y") == pytest.approx(10.0)


@pytest.fixture(scope="module")
def result():
    return score_study(make_synthetic_responses(80, 4, 1640, seed=4), default_spec(), n_boot=300, seed=1)


def test_driver_table_shape_and_quadrant_logic(result):
    d = result.drivers
    assert d["level"].value_counts().to_dict() == {"item": 22, "indicator": 6}
    assert list(d.columns[:11]) == ["level", "code", "name_zh", "name_en", "parent", "correlation",
                                   "relative_weight", "tau", "importance_high", "volatility_high", "quadrant"]
    for _level, part in d.groupby("level"):
        assert (part["importance_high"] == (part["relative_weight"] > part["relative_weight"].mean())).all()
        assert (part["volatility_high"] == (part["tau"] > part["tau"].mean())).all()
        assert part["relative_weight"].sum() == pytest.approx(part["r2"].iloc[0])
    for _, row in d.iterrows():
        assert row["quadrant"] == QUADRANTS[(row["importance_high"], row["volatility_high"])]
    probs = d[[f"p_{q}" for q in QUADRANTS.values()]]
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert (d.loc[d["level"] == "item", "parent"] == d.loc[d["level"] == "item", "code"].str[0]).all()
    assert result.method["outcome"] == "Q0"


def test_quadrant_probability_tracks_the_point_assignment(result):
    d = result.drivers
    own = np.array([row[f"p_{row['quadrant']}"] for _, row in d.iterrows()])
    assert np.mean(own >= 0.25) > 0.8  # the point quadrant is rarely an unlikely one
