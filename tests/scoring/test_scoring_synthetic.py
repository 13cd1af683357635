"""The synthetic data other packages reuse looks like the reference study (docs/domain.md §1, §3.7)."""

from __future__ import annotations

import numpy as np

from scoring import default_spec, make_synthetic_responses, score_study


def test_reference_shaped_synthetic_data():
    df = make_synthetic_responses(360, 15, 7385, seed=0)
    assert len(df) == 7385 and df["enterprise_id"].nunique() == 360 and df["industry"].nunique() == 15
    assert df.groupby("enterprise_id")["industry"].nunique().max() == 1
    sizes = df["enterprise_id"].value_counts()
    assert sizes.min() >= 20 and sizes.max() > sizes.min()  # unequal n
    not_asked = df["D1"].isna().mean()
    assert 0.3 < not_asked < 0.5 and (df.loc[df["D0"] == 1, "D1"].notna()).all()
    codes = df[["A1", "B1", "C1", "F1"]].to_numpy(dtype=float).ravel()
    assert 0.01 < np.isin(codes, [8, 9]).mean() < 0.06
    res = score_study(df, default_spec(), n_boot=0)
    assert 80 < res.overall["composite"] < 88  # reference study: 83.71
    r = res.respondents
    g = r.groupby("enterprise_id")["composite"]
    icc = (g.mean().var() - (g.var() / g.count()).mean()) / r["composite"].var()
    assert 0.05 < icc < 0.2  # docs/domain.md: ICC ≈ 0.1
    again = make_synthetic_responses(360, 15, 7385, seed=0)
    assert again.equals(df)
