"""Small specs and frames for hand-computed examples."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scoring import ScoringSpec

ROOT = Path(__file__).resolve().parents[2]
STUDY_FILE = ROOT / "config" / "studies" / "csat_contact_center.yaml"
IDS = ["respondent_id", "enterprise_id", "enterprise_name", "industry"]


def tiny_spec(**scoring) -> ScoringSpec:
    """Indicator A: 4 items, indicator D: 3 items, equal weights; outcome Q0, callback CB1."""
    return ScoringSpec.from_study({
        "indicators": [
            {"code": "A", "weight": 0.5, "name": {"zh-CN": "便利", "en": "Access"}, "items": ["A1", "A2", "A3", "A4"]},
            {"code": "D", "weight": 0.5, "name": {"zh-CN": "跟进", "en": "Follow-up"}, "items": ["D1", "D2", "D3"]},
        ],
        "questions": [{"code": c} for c in ("D0", "Q0", "CB1")],
        "scoring": {"outcome": "Q0", "callback_item": "CB1", **scoring},
    })


def one_item_spec(**scoring) -> ScoringSpec:
    return ScoringSpec.from_study({
        "indicators": [{"code": "A", "weight": 1, "items": ["A1"]}],
        "scoring": {"outcome": None, "callback_item": None, **scoring},
    })


def frame(rows: list[dict], items: list[str]) -> pd.DataFrame:
    """Rows with ids and answers; missing answer keys are empty (not asked)."""
    out = []
    for i, r in enumerate(rows):
        row = {"respondent_id": r.get("respondent_id", f"r{i + 1}"), "enterprise_id": r.get("enterprise_id", "e1"),
               "enterprise_name": r.get("enterprise_name", "企业" + r.get("enterprise_id", "e1")),
               "industry": r.get("industry", "银行")}
        for c in items:
            row[c] = r.get(c)
        for c, v in r.items():
            if c not in row:
                row[c] = v
        out.append(row)
    df = pd.DataFrame(out)
    for c in items:
        df[c] = pd.to_numeric(df[c]).astype("Float64")
    return df
