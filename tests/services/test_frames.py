"""The ORM → DataFrame bridge on a small database built with the models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from cati.models import (
    Answer,
    CallAttempt,
    Case,
    CasePhone,
    CaseStatus,
    Interview,
    InterviewStatus,
    QCStatus,
    Role,
)
from cati.services.frames import (
    attempts_frame,
    cases_frame,
    dispositions_frame,
    responses_frame,
    study_questions,
)
from tests import factories

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
LATE = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # Tuesday 01:00 in Shanghai


@pytest.fixture
def world(session, study):
    bank = factories.enterprise(session, study, name="甲银行", industry_name="银行")
    tel = factories.enterprise(session, study, name="乙通信", industry_name="通信")
    iv1 = factories.user(session, Role.INTERVIEWER, username="iv1")
    iv2 = factories.user(session, Role.INTERVIEWER, username="iv2")

    def case(ref, ent, phone, *, status=CaseStatus.READY, final=None, attempts=0, attrs=None, last=None,
             finalized=None):
        c = Case(study_id=study.id, enterprise_id=ent.id, case_ref=ref, status=status, final_disposition=final,
                 attempts=attempts, attributes=attrs or {}, last_called_at=last, finalized_at=finalized,
                 imported_at=T0)
        c.phones.append(CasePhone(study_id=study.id, e164=phone, position=1))
        session.add(c)
        session.flush()
        return c

    c1 = case("R1", bank, "+8613900000001", status=CaseStatus.FINAL, final="1.1", attempts=2,
              attrs={"service_type": "投诉"}, last=T0, finalized=T0)
    c1.phones.append(CasePhone(study_id=study.id, e164="+8613900000011", position=2))
    c2 = case("R2", bank, "+8613900000002", attempts=1, last=LATE)  # open after a busy signal
    c3 = case("R3", tel, "+8613900000003")  # released, never dialed
    c4 = case("R4", tel, "+8613900000004", status=CaseStatus.UNRELEASED)
    c5 = case("R5", tel, "+8613900000005", status=CaseStatus.FINAL, final="2.112", attempts=1, last=T0,
              finalized=LATE)
    c6 = case("R6", tel, "+8613900000006", status=CaseStatus.FINAL, final="1.1", attempts=1, attrs={"vip": "y"},
              last=T0, finalized=T0)
    c7 = case("R7", bank, "+8613900000007", status=CaseStatus.CLAIMED, attempts=1, last=T0)
    session.flush()

    def attempt(c, iv, outcome, at, *, cause=16, answered=True):
        a = CallAttempt(call_id=str(uuid.uuid4()), case_id=c.id, phone_id=c.phones[0].id, interviewer_id=iv.id,
                        backend="simulated", mode="preview", requested_at=at, placed_at=at, ringing_at=at,
                        answered_at=at if answered else None, ended_at=at, hangup_cause=cause, outcome=outcome,
                        day_part="morning")
        session.add(a)
        session.flush()
        return a

    attempt(c1, iv2, "3.13", T0.replace(hour=1), answered=False, cause=19)
    a1 = attempt(c1, iv1, "1.1", T0)
    attempt(c2, iv2, "3.12", LATE, answered=False, cause=17)
    attempt(c5, iv1, "2.112", T0)
    a6 = attempt(c6, iv2, "1.1", T0)
    a7 = attempt(c7, iv1, None, T0)  # in progress: no outcome yet

    def interview(c, iv, att, status, answers, qc=QCStatus.UNREVIEWED):
        i = Interview(study_id=study.id, case_id=c.id, interviewer_id=iv.id, attempt_id=att.id, status=status,
                      qc_status=qc, started_at=T0, ended_at=T0 if status != InterviewStatus.IN_PROGRESS else None)
        for code, value in answers.items():
            if isinstance(value, str):
                i.answers.append(Answer(question_code=code, value_text=value, answered_at=T0))
            else:
                i.answers.append(Answer(question_code=code, value_code=value, answered_at=T0))
        session.add(i)
        session.flush()
        return i

    good = interview(c1, iv1, a1, InterviewStatus.COMPLETE, {"A1": 5, "A2": 9, "Q0": 4, "OPEN1": "等待太久"})
    rejected = interview(c6, iv2, a6, InterviewStatus.COMPLETE, {"A1": 1}, qc=QCStatus.REJECTED)
    partial = interview(c7, iv1, a7, InterviewStatus.PARTIAL, {"A1": 3, "OLDQ": 2})
    session.flush()
    return {"study": study, "ids": {"good": good.id, "rejected": rejected.id, "partial": partial.id},
            "cases": {c.case_ref: c for c in (c1, c2, c3, c4, c5, c6, c7)}, "bank": bank, "tel": tel}


def test_responses_frame_complete_only(session, world):
    study = world["study"]
    df = responses_frame(session, study.id)
    codes = [c for c, _ in study_questions(study.definition)]
    assert list(df.columns[:5]) == ["respondent_id", "enterprise_id", "enterprise_name", "industry", "province"]
    assert list(df.columns[5:5 + len(codes)]) == codes  # every question, in questionnaire order
    assert {"A1", "F4", "Q0", "CB1", "OPEN1", "D1"} <= set(codes) and "INTRO" not in codes
    assert df["respondent_id"].tolist() == [world["ids"]["good"]]  # QC-rejected and partial left out
    row = df.iloc[0]
    assert (row["enterprise_id"], row["enterprise_name"], row["industry"]) == (world["bank"].external_id, "甲银行", "银行")
    assert row["A1"] == 5.0 and row["A2"] == 9.0 and row["Q0"] == 4.0
    assert np.isnan(row["B1"]) and df["B1"].dtype == np.float64  # nobody answered it: NaN, column still there
    assert row["OPEN1"] == "等待太久"
    assert row["status"] == "complete" and row["interviewer"] == "iv1"
    assert row["attr_service_type"] == "投诉"
    assert str(df["started_at"].dtype) == "datetime64[ns, UTC]" or str(df["started_at"].dtype).endswith("UTC]")
    assert "phone" not in df.columns


def test_responses_frame_all_interviews_and_phone(session, world):
    df = responses_frame(session, world["study"].id, complete_only=False, include_phone=True)
    assert sorted(df["respondent_id"]) == sorted(world["ids"].values())
    by_id = df.set_index("respondent_id")
    assert by_id.loc[world["ids"]["partial"], "status"] == "partial"
    assert by_id.loc[world["ids"]["rejected"], "qc_status"] == "rejected"
    assert by_id.loc[world["ids"]["partial"], "OLDQ"] == 2.0  # an answer to a code not in the study is kept
    assert by_id.loc[world["ids"]["good"], "phone"] == "+8613900000001"  # first number, in full
    assert by_id.loc[world["ids"]["rejected"], "attr_vip"] == "y"
    assert pd.isna(by_id.loc[world["ids"]["good"], "attr_vip"])


def test_responses_frame_empty_study_has_all_question_columns(session, study):
    df = responses_frame(session, study.id)
    assert len(df) == 0
    assert {"respondent_id", "A1", "F4", "OPEN1"} <= set(df.columns)


def test_cases_frame(session, world):
    df = cases_frame(session, world["study"].id).set_index("case_ref")
    assert len(df) == 7
    assert df.loc["R1", "final_disposition"] == "1.1" and df.loc["R1", "disposition"] == "1.1"
    assert df.loc["R1", "interviewer"] == "iv1"  # the last attempt's, not the first's
    assert df.loc["R2", "disposition"] == "3.12" and df.loc["R2", "status"] == "ready"
    assert df.loc["R3", "disposition"] == "3.11" and df.loc["R3", "attempts"] == 0
    assert pd.isna(df.loc["R4", "disposition"]) and df.loc["R4", "status"] == "unreleased"
    assert df.loc["R5", "disposition"] == "2.112"
    assert df.loc["R1", "enterprise_name"] == "甲银行" and df.loc["R5", "industry"] == "通信"
    assert df.loc["R2", "last_called_at"] == pd.Timestamp(LATE)


def test_dispositions_frame(session, world):
    df = dispositions_frame(session, world["study"].id).set_index("case_id")
    cases = world["cases"]
    assert cases["R4"].id not in df.index  # unreleased sample is not in the rates
    assert len(df) == 6
    assert df.loc[cases["R1"].id, "disposition"] == "1.1" and bool(df.loc[cases["R1"].id, "final"])
    assert df.loc[cases["R2"].id, "disposition"] == "3.12" and not df.loc[cases["R2"].id, "final"]
    assert df.loc[cases["R3"].id, "disposition"] == "3.11" and df.loc[cases["R3"].id, "day"] == ""
    assert df.loc[cases["R2"].id, "day"] == "2026-11-24"  # 17:00 UTC is already Tuesday in Shanghai
    assert df.loc[cases["R5"].id, "day"] == "2026-11-24"  # finalized_at wins over the last call
    assert df.loc[cases["R7"].id, "disposition"] == "3.90"  # dialed, no outcome coded yet
    assert df.loc[cases["R5"].id, "interviewer"] == "iv1"


def test_attempts_frame_masks_numbers(session, world):
    df = attempts_frame(session, world["study"].id)
    assert len(df) == 6
    assert set(df["phone"]) == {"139****0001", "139****0002", "139****0005", "139****0006", "139****0007"}
    assert not df["phone"].str.contains("13900000").any()
    first = df.iloc[0]
    assert first["outcome"] == "3.13" and first["interviewer"] == "iv2" and first["hangup_cause"] == 19
    assert str(df["hangup_cause"].dtype) == "Int64"
    assert str(df["placed_at"].dtype).endswith("UTC]")
    assert df["answered_at"].isna().sum() == 2
    full = attempts_frame(session, world["study"].id, mask_phones=False)
    assert "+8613900000001" in set(full["phone"])


def test_frames_unknown_study(session):
    with pytest.raises(LookupError):
        cases_frame(session, 999_999)
