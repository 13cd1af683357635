"""Fixtures for report tests: a real scoring run on synthetic responses (small, low n_boot) and fieldwork frames
shaped like the database bridge's ``cases_frame`` / ``attempts_frame``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from scoring import response_rates, score_study
from scoring.spec import ScoringSpec
from scoring.synthetic import make_synthetic_responses

ROOT = Path(__file__).resolve().parents[2]
STUDY_FILE = ROOT / "config" / "studies" / "csat_contact_center.yaml"
PROVINCES = ("广东", "北京", "上海", "浙江")


@pytest.fixture(scope="session")
def study() -> dict:
    return yaml.safe_load(STUDY_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def responses() -> pd.DataFrame:
    return make_synthetic_responses(n_enterprises=12, n_industries=3, n_respondents=250, seed=11)


@pytest.fixture(scope="session")
def result(study, responses):
    """A real ScoreResult; enterprises get a province (as the database bridge supplies for cases)."""
    res = score_study(responses, ScoringSpec.from_study(study), n_boot=60, seed=3)
    ent = res.enterprises.copy()
    ent["province"] = [PROVINCES[i % len(PROVINCES)] for i in range(len(ent))]
    return dataclasses.replace(res, enterprises=ent)


@pytest.fixture(scope="session")
def previous(study):
    """A previous wave of the same enterprises (different seed)."""
    df = make_synthetic_responses(n_enterprises=12, n_industries=3, n_respondents=250, seed=12)
    return score_study(df, ScoringSpec.from_study(study), n_boot=0)


def make_fieldwork(seed: int = 5, n_enterprises: int = 6, cases_per_enterprise: int = 30):
    """Cases and attempts like the bridge's frames: dispositions from the AAPOR codes, UTC timestamps."""
    rng = np.random.default_rng(seed)
    codes = ["1.1", "1.2", "2.111", "2.112", "2.21", "3.12", "3.13", "4.31", "4.70", "4.80"]
    probs = [0.42, 0.03, 0.08, 0.07, 0.08, 0.04, 0.12, 0.06, 0.05, 0.05]
    cases, attempts = [], []
    call_id = 0
    for e in range(n_enterprises):
        for k in range(cases_per_enterprise):
            case_id = e * 1000 + k
            disp = str(rng.choice(codes, p=probs))
            interviewer = f"iv{rng.integers(1, 5)}"
            n_att = int(rng.integers(1, 5))
            cases.append({"case_id": case_id, "case_ref": f"S{case_id:05d}", "enterprise_id": f"E{e + 1:04d}",
                          "enterprise_name": f"企业{e + 1:04d}", "industry": ["银行", "通信", "保险"][e % 3],
                          "province": "广东", "disposition": disp, "attempts": n_att, "interviewer": interviewer})
            for j in range(n_att):
                call_id += 1
                placed = pd.Timestamp("2026-03-02 01:00", tz="UTC") + pd.Timedelta(
                    minutes=int(rng.integers(0, 12 * 60)) + 1440 * j)
                last = j == n_att - 1
                answered = last and disp.startswith(("1.", "2.1"))
                outcome = disp if last else str(rng.choice(["3.13", "3.12", "2.221"]))
                attempts.append({
                    "call_id": call_id, "case_id": case_id, "enterprise_id": f"E{e + 1:04d}",
                    "interviewer": interviewer, "placed_at": placed, "ringing_at": placed + pd.Timedelta(seconds=3),
                    "answered_at": placed + pd.Timedelta(seconds=12) if answered else pd.NaT,
                    "ended_at": placed + pd.Timedelta(seconds=12 + (480 if disp == "1.1" and last else 40)),
                    "hangup_cause": 16, "machine_detection": None, "outcome": outcome,
                    "phone": f"138{rng.integers(10_000_000, 99_999_999)}"})
    return pd.DataFrame(cases), pd.DataFrame(attempts)


@pytest.fixture(scope="session")
def fieldwork():
    cases, attempts = make_fieldwork()
    rates = response_rates(cases)
    return cases, attempts, rates
