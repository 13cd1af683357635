"""Synthetic responses shaped like the reference study (docs/domain.md §1): for benchmarks, demos and report tests.

Model (latent, per respondent r of enterprise e in industry i, item j of indicator k):

    y*_rj = μ_k + u_i + v_e + b_ek + w_r + ε_rj,   u ~ N(0, 0.15²), v ~ N(0, 0.30²), b ~ N(0, 0.15²), w ~ N(0, 0.9²),
    ε ~ N(0, 0.75²)

cut into the 5-point scale at fixed thresholds; μ_k is set so indicator scores land near the reference scores
(A 77, B 85, C 81, D 84, E 82, F 93). The respondent composite then has an intra-enterprise correlation of ≈ 0.1.
D1–D3 are asked only if D0 = 1 (≈ 60 %; otherwise empty); ≈ 3 % of answers are 8 (n/a) or 9 (don't know).
Q0 follows the respondent's mean latent; CB1 (callback) is 1/2/9.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["INDUSTRIES", "make_synthetic_responses"]

INDUSTRIES = ("通信", "银行", "公共服务", "互联网", "互联网金融", "零售", "互联网旅游", "基金", "汽车", "保险", "制造业",
              "物流快递", "地产", "证券", "其他")
_BLOCKS = {"A": (4, 0.3), "B": (4, 0.85), "C": (4, 0.55), "D": (3, 0.7), "E": (3, 0.6), "F": (4, 1.6)}
_CUTS = np.array([-1.9, -1.2, -0.35, 0.75])  # latent thresholds between 1|2, 2|3, 3|4, 4|5


def make_synthetic_responses(n_enterprises: int = 360, n_industries: int = 15, n_respondents: int = 7385,
                             seed: int = 0) -> pd.DataFrame:
    """Wide responses in the file contract (codes, ``pd.NA`` = not asked) with realistic structure.

    Parameters
    ----------
    n_enterprises, n_industries, n_respondents : int
        Enterprises are spread over the industries as evenly as possible; each enterprise gets
        ``n_respondents // n_enterprises`` respondents and the remainder is spread at random (unequal n).
    seed : int

    Returns
    -------
    DataFrame
        ``respondent_id, enterprise_id, enterprise_name, industry, A1 … F4, D0, Q0, CB1`` (answer columns Int8).

    Examples
    --------
    >>> df = make_synthetic_responses(20, 4, 410, seed=2)
    >>> len(df), df["enterprise_id"].nunique(), df["industry"].nunique()
    (410, 20, 4)
    >>> bool(df.loc[df["D0"] != 1, ["D1", "D2", "D3"]].isna().all().all())
    True
    """
    if n_enterprises < 1 or n_industries < 1 or n_respondents < n_enterprises:
        raise ValueError("make_synthetic_responses: need n_respondents >= n_enterprises >= 1 and n_industries >= 1")
    rng = np.random.default_rng(seed)
    n_industries = min(n_industries, n_enterprises)
    ind_names = [INDUSTRIES[i] if i < len(INDUSTRIES) else f"行业{i + 1}" for i in range(n_industries)]
    ent_ind = np.arange(n_enterprises) % n_industries
    base = n_respondents // n_enterprises
    sizes = np.full(n_enterprises, base)
    sizes += np.bincount(rng.integers(0, n_enterprises, n_respondents - base * n_enterprises),
                         minlength=n_enterprises)
    ent_of = np.repeat(np.arange(n_enterprises), sizes)
    n = len(ent_of)

    u = rng.normal(0, 0.15, n_industries)
    v = rng.normal(0, 0.30, n_enterprises)
    w = rng.normal(0, 0.9, n).astype(np.float32)
    common = (u[ent_ind][ent_of] + v[ent_of]).astype(np.float32) + w

    data: dict[str, object] = {
        "respondent_id": pd.array([f"R{i + 1:07d}" for i in range(n)], dtype=object),
        "enterprise_id": np.array([f"E{e + 1:04d}" for e in range(n_enterprises)], dtype=object)[ent_of],
        "enterprise_name": np.array([f"{ind_names[ent_ind[e]]}企业{e + 1:04d}" for e in range(n_enterprises)],
                                    dtype=object)[ent_of],
        "industry": np.array(ind_names, dtype=object)[ent_ind][ent_of],
    }
    d0 = np.where(rng.random(n) < 0.6, 1, 2).astype(np.int8)
    latent_sum = np.zeros(n, dtype=np.float32)
    for code, (n_items, mu) in _BLOCKS.items():
        b = rng.normal(0, 0.15, n_enterprises).astype(np.float32)
        block = common + np.float32(mu) + b[ent_of]
        latent_sum += block
        for j in range(n_items):
            y = block + rng.normal(0, 0.75, n).astype(np.float32)
            codes = (np.searchsorted(_CUTS, y) + 1).astype(np.int8)
            r = rng.random(n)
            codes[r < 0.03] = 8
            codes[r < 0.012] = 9
            col = pd.array(codes, dtype="Int8")
            if code == "D":
                col[d0 != 1] = pd.NA
            data[f"{code}{j + 1}"] = col
        if code == "C":
            data["D0"] = pd.array(d0, dtype="Int8")
    q0 = latent_sum / len(_BLOCKS) + rng.normal(0, 0.5, n).astype(np.float32)
    data["Q0"] = pd.array((np.searchsorted(_CUTS, q0) + 1).astype(np.int8), dtype="Int8")
    cb = np.where(rng.random(n) < 0.45 + 0.1 * np.tanh(v[ent_of]), 1, 2).astype(np.int8)
    cb[rng.random(n) < 0.05] = 9
    data["CB1"] = pd.array(cb, dtype="Int8")
    cols = ["respondent_id", "enterprise_id", "enterprise_name", "industry",
            *[f"{c}{j + 1}" for c, (k, _) in _BLOCKS.items() for j in range(k)], "D0", "Q0", "CB1"]
    return pd.DataFrame(data)[cols]
