"""Answers of simulated respondents: satisfaction data shaped like the reference study.

The rated items, D0, Q0 and CB1 come from :func:`scoring.synthetic.make_synthetic_responses` (enterprise and
industry effects, ICC ≈ 0.1, composite near 83.7, D0 ≈ 60 % yes, a few 8/9): a bank of rows per enterprise is
drawn once and each completing respondent takes the next row of their enterprise. Profile items and the open
question (a short Chinese verbatim that follows the respondent's overall satisfaction) are added here.
"""

from __future__ import annotations

import random
from typing import Any

import pandas as pd

from scoring.synthetic import make_synthetic_responses

ITEMS = ("A1 A2 A3 A4 B1 B2 B3 B4 C1 C2 C3 C4 D1 D2 D3 E1 E2 E3 F1 F2 F3 F4").split()

_PRAISE = ["没有，服务很好", "挺好的，继续保持", "暂时没有建议", "客服很专业", "希望一直保持这样的服务",
           "没什么要改进的", "整体满意"]
_MILD = ["接通速度再快一点", "语音菜单太长了", "希望转人工更方便", "客服回答可以再具体一些", "等待时间有点长",
         "希望能有夜间人工服务", "后续进度希望主动告知"]
_COMPLAINT = ["等待时间太长", "问题一直没有解决", "转接了好几次", "客服不够专业", "承诺回电但没有回电",
              "态度比较冷淡", "按键导航太复杂，找不到人工"]


class AnswerBank:
    """Per-enterprise rows of synthetic answers, handed out in order (cycling if an enterprise needs more)."""

    def __init__(self, n_enterprises: int, quota: int, seed: int):
        per = max(2 * quota, 2)
        frame = make_synthetic_responses(n_enterprises, min(15, n_enterprises), per * n_enterprises, seed=seed)
        self._rows: dict[int, list[dict[str, Any]]] = {}
        cols = [*ITEMS, "D0", "Q0", "CB1"]
        codes = frame["enterprise_id"].str[1:].astype(int) - 1
        for e, group in frame.groupby(codes, sort=True):
            self._rows[int(e)] = [
                {c: (None if pd.isna(v) else int(v)) for c, v in zip(cols, values, strict=True)}
                for values in group[cols].itertuples(index=False, name=None)
            ]
        self._next: dict[int, int] = {}
        self._rng = random.Random(seed + 17)

    def draw(self, enterprise_index: int) -> dict[str, Any]:
        """A complete, valid answer set for the default study (info screens included, as ``None``)."""
        rows = self._rows[enterprise_index % len(self._rows)]
        k = self._next.get(enterprise_index, 0)
        self._next[enterprise_index] = k + 1
        row = rows[k % len(rows)]
        rng = self._rng
        answers: dict[str, Any] = {"INTRO": None, "CONSENT": 1, "S1": 1, "S2": 1}
        for code in ITEMS[:12]:
            answers[code] = row[code]
        answers["D0"] = row["D0"]
        if row["D0"] == 1:
            for code in ("D1", "D2", "D3"):
                answers[code] = row[code]
        for code in ITEMS[15:]:
            answers[code] = row[code]
        answers["Q0"] = row["Q0"]
        answers["CB1"] = row["CB1"]
        q0 = row["Q0"] or 4
        pool = _PRAISE if q0 >= 5 else _MILD if q0 >= 4 else _COMPLAINT
        answers["OPEN1"] = rng.choice(pool)
        answers["P1"] = rng.choice((1, 2))
        answers["P2"] = rng.choices((1, 2, 3, 4, 5, 9), weights=(8, 30, 28, 18, 12, 4))[0]
        answers["P3"] = rng.choices((1, 2, 3, 9), weights=(50, 35, 10, 5))[0]
        answers["END"] = None
        return answers


def refusal_answers() -> dict[str, Any]:
    """A respondent who refuses at the consent question (the questionnaire ends with 2.112)."""
    return {"INTRO": None, "CONSENT": 2}


def screen_out_answers(rng: random.Random) -> dict[str, Any]:
    """A respondent who did not call the hotline, or not in person (ends with 4.70)."""
    if rng.random() < 0.7:
        return {"INTRO": None, "CONSENT": 1, "S1": 2}
    return {"INTRO": None, "CONSENT": 1, "S1": 1, "S2": 2}


def partial(answers: dict[str, Any], share: float) -> dict[str, Any]:
    """The first ``share`` of an answer set (a break-off mid-interview)."""
    keys = list(answers)
    n = max(4, int(len(keys) * share))
    return {k: answers[k] for k in keys[:n]}
