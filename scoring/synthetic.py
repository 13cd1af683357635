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


# ------------------------------------------------------------------------------------------ the happiness index

#: Answer codes of the basic-information questions of config/studies/happiness_index.yaml (P1 … P14) and the
#: probabilities they are drawn with (roughly the 2023/2024 decks' distributions).
_HAPPY_BASIC = {
    "P1": ([1, 2, 3, 4, 5], [0.22, 0.28, 0.24, 0.14, 0.12]),
    "P2": ([1, 2], [0.27, 0.73]),
    "P3": ([1, 2, 3], [0.45, 0.12, 0.43]),
    "P4": ([1, 2, 3, 4, 5, 6], [0.02, 0.10, 0.05, 0.53, 0.29, 0.01]),
    "P5": (list(range(1, 11)), [0.05, 0.12, 0.20, 0.22, 0.20, 0.10, 0.05, 0.03, 0.02, 0.01]),
    "P6": ([1, 2, 3, 4, 5, 6], [0.55, 0.18, 0.08, 0.06, 0.10, 0.03]),
    "P7": ([1, 2, 3, 4, 5, 6, 7], [0.30, 0.18, 0.14, 0.12, 0.12, 0.08, 0.06]),
    "P10": ([1, 2, 3, 4, 5, 6], [0.05, 0.10, 0.35, 0.20, 0.20, 0.10]),
    "P11": ([1, 2, 3, 4, 5], [0.25, 0.35, 0.25, 0.08, 0.07]),
    "P12": ([1, 2, 3, 4, 97], [0.45, 0.20, 0.30, 0.04, 0.01]),
    "P13": ([1, 2, 3, 4, 5, 6], [0.50, 0.15, 0.15, 0.10, 0.07, 0.03]),
    "P14": ([1, 2, 3, 4, 9], [0.60, 0.15, 0.12, 0.05, 0.08]),
}
_PROVINCES = [11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53,
              61, 62, 63, 64, 65]
_HAPPY_INDUSTRIES = {1: "保险业", 2: "银行业", 3: "证券基金业", 4: "互联网金融业", 5: "通信业", 6: "公共服务业", 7: "电商业",
                     8: "物流快递业", 9: "汽车业", 10: "制造业", 11: "地产业", 12: "旅游酒店业", 13: "服务外包业",
                     14: "科研和技术服务业"}
#: Driver items H4 … H15: (mean shift, weight of the respondent's general mood, spread between enterprises). The
#: weights and spreads put the items in all four quadrants of the driver model.
_HAPPY_DRIVERS = {
    "H4": (0.45, 0.35, 0.10), "H5": (0.25, 0.40, 0.35), "H6": (0.35, 0.30, 0.12), "H7": (0.15, 0.85, 0.12),
    "H8": (0.10, 0.45, 0.30), "H9": (0.60, 0.35, 0.10), "H10": (-0.30, 0.90, 0.40), "H11": (0.10, 0.85, 0.13),
    "H12": (-0.45, 0.30, 0.40), "H13": (0.45, 0.45, 0.12), "H14": (0.05, 0.80, 0.38), "H15": (0.15, 0.95, 0.35),
}
_MULTI = {"M1": (8, 3), "M2": (8, None), "M3": (11, 3), "M4": (7, None)}  # options (without 97), max choices
_TROUBLES = ["客户不理解、情绪激动", "工资低、压力大", "夜班多，作息不规律", "考核指标太多", "晋升空间小", "系统不好用"]
_JOYS = ["帮助到客户，得到客户的感谢", "同事友爱互相帮助", "按时发工资、涨工资", "按时下班，和家人在一起", "领导认可", "客户的一句表扬"]


def make_happiness_responses(n_enterprises: int = 20, n_respondents: int = 400, seed: int = 0) -> pd.DataFrame:
    """Synthetic responses to ``config/studies/happiness_index.yaml`` in the file contract, for tests and demos.

    Model: respondent mood :math:`w_r \\sim N(0, 0.8^2)`, enterprise climate :math:`v_e \\sim N(0, 0.35^2)`;
    H1 (the index item) and H2/H3 follow :math:`0.2 + w_r + v_e + \\varepsilon`; driver item :math:`j` follows
    :math:`\\mu_j + a_j w_r + c_j z_{ej} + \\varepsilon` with an item-specific enterprise effect
    :math:`z_{ej} \\sim N(0, 1)` that also moves H1 by :math:`a_j c_j z_{ej} / 3`; all cut into 1–5 at the CSAT
    thresholds (the index lands near the decks' 70–80). About 2 % of driver answers and of incomes are 99
    (prefer not to say). Multiple-choice cells are text like ``"2,3"``; choosing 97 (other) fills ``<code>_other``.

    Returns
    -------
    DataFrame
        ``respondent_id, enterprise_id, enterprise_name, industry, P1 … P14, P9_other, P12_other, H1 … H15,
        M1 … M4, M1_other … M4_other, O1, O2``.

    Examples
    --------
    >>> df = make_happiness_responses(10, 200, seed=1)
    >>> len(df), df["enterprise_id"].nunique(), int(df["H1"].between(1, 5).sum())
    (200, 10, 200)
    """
    if n_enterprises < 1 or n_respondents < n_enterprises:
        raise ValueError("make_happiness_responses: need n_respondents >= n_enterprises >= 1")
    rng = np.random.default_rng(seed)
    base = n_respondents // n_enterprises
    sizes = np.full(n_enterprises, base)
    sizes += np.bincount(rng.integers(0, n_enterprises, n_respondents - base * n_enterprises),
                         minlength=n_enterprises)
    ent = np.repeat(np.arange(n_enterprises), sizes)
    n = len(ent)
    ent_ind = rng.integers(1, len(_HAPPY_INDUSTRIES) + 1, n_enterprises)
    ent_prov = rng.choice(_PROVINCES, n_enterprises)
    ent_size = rng.integers(1, 7, n_enterprises)
    data: dict[str, object] = {
        "respondent_id": [f"H{i + 1:07d}" for i in range(n)],
        "enterprise_id": np.array([f"E{e + 1:04d}" for e in range(n_enterprises)], dtype=object)[ent],
        "enterprise_name": np.array([f"{_HAPPY_INDUSTRIES[int(ent_ind[e])]}企业{e + 1:04d}"
                                     for e in range(n_enterprises)], dtype=object)[ent],
        "industry": np.array([_HAPPY_INDUSTRIES[int(i)] for i in ent_ind], dtype=object)[ent],
    }
    for code, (values, probs) in _HAPPY_BASIC.items():
        data[code] = rng.choice(values, n, p=np.array(probs) / sum(probs))
    data["P5"] = np.where(rng.random(n) < 0.02, 99, data["P5"])
    data["P8"] = ent_prov[ent]
    data["P9"] = ent_ind[ent]
    data["P10"] = ent_size[ent]
    data["P9_other"] = pd.array([pd.NA] * n, dtype="string")
    data["P12_other"] = pd.array(np.where(data["P12"] == 97, "人力资源公司派驻", None), dtype="string")

    w = rng.normal(0, 0.8, n)
    v = rng.normal(0, 0.35, n_enterprises)[ent]
    drivers = {}
    shift = np.zeros(n)
    for code, (mu, a, c) in _HAPPY_DRIVERS.items():
        z = rng.normal(0, 1, n_enterprises)[ent]
        shift += a * c * z / 3
        drivers[code] = mu + a * w + c * z + rng.normal(0, 0.7, n)

    def cut(latent: np.ndarray) -> np.ndarray:
        return (np.searchsorted(_CUTS, latent) + 1).astype(np.int64)

    core = 0.2 + w + v + shift
    data["H1"] = cut(core + rng.normal(0, 0.5, n))
    data["H2"] = cut(core - 0.3 + rng.normal(0, 0.7, n))
    data["H3"] = cut(core + rng.normal(0, 0.8, n))
    for code, latent in drivers.items():
        data[code] = np.where(rng.random(n) < 0.02, 99, cut(latent))
    for code, (k, most) in _MULTI.items():
        # m options per respondent without replacement, weighted: the m largest Gumbel-perturbed log weights.
        options = np.array([*range(1, k + 1), 97])
        weights = np.array([1.0 / (i + 1) for i in range(k)] + [0.05])
        keys = np.log(weights) - np.log(-np.log(rng.random((n, k + 1))))
        order = np.argsort(-keys, axis=1)
        m = rng.integers(1, (most or 4) + 1, n)
        picked = np.zeros((n, k + 1), dtype=bool)
        np.put_along_axis(picked, order, np.arange(k + 1)[None, :] < m[:, None], axis=1)
        cells = [",".join(map(str, options[row])) for row in picked]
        data[code] = cells
        data[f"{code}_other"] = pd.array(np.where(picked[:, -1], "弹性排班", None), dtype="string")
    data["O1"] = np.where(rng.random(n) < 0.05, "99", rng.choice(_TROUBLES, n)).astype(object)
    data["O2"] = rng.choice(_JOYS, n).astype(object)
    cols = ["respondent_id", "enterprise_id", "enterprise_name", "industry", *[f"P{i}" for i in range(1, 15)],
            "P9_other", "P12_other", *[f"H{i}" for i in range(1, 16)],
            *[c for m in _MULTI for c in (m, f"{m}_other")], "O1", "O2"]
    return pd.DataFrame(data)[cols]
