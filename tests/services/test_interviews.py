"""Interviews: answers stored at once with revisions, complete only at the end, break-off and resume,
termination, quota slots."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cati.db import transaction
from cati.models import (
    Answer,
    AnswerRevision,
    AuditLog,
    Case,
    CaseStatus,
    Enterprise,
    Interview,
    InterviewStatus,
    Study,
)
from cati.services.interviews import (
    InterviewError,
    answers_of,
    break_off,
    complete_interview,
    questionnaire_for,
    save_answer,
    start_interview,
    terminate_interview,
)
from cati.services.scheduling import QuotaFull, next_case
from cati.study.engine import AnswerError
from tests import factories as f

NOW = f.MONDAY_10AM
FULL = {"INTRO": None, "CONSENT": 1, "S1": 1, "S2": 1, **{c: 4 for c in
        "A1 A2 A3 A4 B1 B2 B3 B4 C1 C2 C3 C4".split()}, "D0": 1, "D1": 5, "D2": 3, "D3": 4,
        **{c: 5 for c in "E1 E2 E3 F1 F2 F3 F4".split()}, "Q0": 4, "CB1": 1, "OPEN1": "等待时间太长", "P1": 2,
        "P2": 3, "P3": 1, "END": None}


@pytest.fixture
def held(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e = f.enterprise(s, st, quota=1)
        f.cases(s, st, e, 2)
        iv = f.user(s)
    with transaction(session_factory) as s:
        claim = next_case(s, st, iv.id, NOW)
    return dict(study=st, enterprise=e.id, case=claim.case_id, iv=iv.id)


def run_answers(s, interview, answers, iv):
    q = questionnaire_for(s.get(Study, interview.study_id))
    code = interview.current_question
    while code is not None:
        saved = save_answer(s, interview, code, answers[code], user_id=iv, now=NOW)
        if saved.step.termination:
            return saved.step
        code = saved.step.next_code
    return q


def test_full_interview_completes_and_fills_quota(session_factory, held):
    with transaction(session_factory) as s:
        iv = start_interview(s, s.get(Case, held["case"]), held["iv"], NOW)
        assert s.get(Enterprise, held["enterprise"]).in_progress == 1
        run_answers(s, iv, FULL, held["iv"])
        complete_interview(s, iv, NOW, user_id=held["iv"])
    with transaction(session_factory) as s:
        ent = s.get(Enterprise, held["enterprise"])
        assert (ent.completes, ent.in_progress) == (1, 0)
        case = s.get(Case, held["case"])
        assert (case.status, case.final_disposition) == (CaseStatus.FINAL, "1.1")
        stored = answers_of(s, s.scalar(select(Interview)))
        assert stored["OPEN1"] == "等待时间太长" and stored["D2"] == 3 and len(stored) == len(FULL) - 2
        # The enterprise's quota of 1 is full: its other released case is closed as 4.80.
        other = s.scalar(select(Case).where(Case.id != held["case"]))
        assert other.final_disposition == "4.80"


def test_complete_refused_before_the_end(session_factory, held):
    with transaction(session_factory) as s:
        iv = start_interview(s, s.get(Case, held["case"]), held["iv"], NOW)
        for code in ["INTRO", "CONSENT", "S1", "S2", "A1"]:
            save_answer(s, iv, code, FULL[code], user_id=held["iv"], now=NOW)
        with pytest.raises(InterviewError, match="not finished"):
            complete_interview(s, iv, NOW, user_id=held["iv"])


def test_invalid_answer_changes_nothing(session_factory, held):
    with transaction(session_factory) as s:
        iv = start_interview(s, s.get(Case, held["case"]), held["iv"], NOW)
        save_answer(s, iv, "INTRO", None, user_id=held["iv"], now=NOW)
        with pytest.raises(AnswerError) as err:
            save_answer(s, iv, "CONSENT", 7, user_id=held["iv"], now=NOW)
        assert "1" in err.value.message("zh-CN") and iv.current_question == "CONSENT"
        assert s.scalar(select(Answer.id).where(Answer.question_code == "CONSENT")) is None


def test_back_navigation_prunes_and_keeps_revisions(session_factory, held):
    with transaction(session_factory) as s:
        iv = start_interview(s, s.get(Case, held["case"]), held["iv"], NOW)
        run_until = list(FULL)[: list(FULL).index("E1")]
        for code in run_until:
            save_answer(s, iv, code, FULL[code], user_id=held["iv"], now=NOW)
        # Back to D0: the issue did not need follow-up after all. D1–D3 leave the route.
        saved = save_answer(s, iv, "D0", 2, user_id=held["iv"], now=NOW)
        assert set(saved.step.dropped) == {"D1", "D2", "D3"} and saved.step.next_code == "E1"
        answers = answers_of(s, iv)
        assert "D1" not in answers and answers["D0"] == 2
        revs = s.scalars(select(AnswerRevision.question_code).order_by(AnswerRevision.id)).all()
        assert revs == ["D0", "D1", "D2", "D3"]


def test_break_off_keeps_answers_and_resumes(session_factory, held):
    with transaction(session_factory) as s:
        iv = start_interview(s, s.get(Case, held["case"]), held["iv"], NOW)
        for code in ["INTRO", "CONSENT", "S1", "S2", "A1", "A2"]:
            save_answer(s, iv, code, FULL[code], user_id=held["iv"], now=NOW)
        break_off(s, iv, NOW, user_id=held["iv"])
        assert s.get(Enterprise, held["enterprise"]).in_progress == 0
        s.scalar(select(Case).where(Case.id != held["case"])).status = CaseStatus.STOPPED
    later = NOW.replace(hour=6)  # 14:00 local, past the break-off's retry time
    with transaction(session_factory) as s:
        claim = next_case(s, held["study"], held["iv"], later)
        assert claim.case_id == held["case"]
    with transaction(session_factory) as s:
        iv = start_interview(s, s.get(Case, held["case"]), held["iv"], later)
        assert iv.status == InterviewStatus.IN_PROGRESS and iv.current_question == "A3"
        assert answers_of(s, iv)["A2"] == 4


def test_screen_out_terminates_with_470(session_factory, held):
    with transaction(session_factory) as s:
        iv = start_interview(s, s.get(Case, held["case"]), held["iv"], NOW)
        for code, value in [("INTRO", None), ("CONSENT", 1)]:
            save_answer(s, iv, code, value, user_id=held["iv"], now=NOW)
        saved = save_answer(s, iv, "S1", 2, user_id=held["iv"], now=NOW)
        assert saved.step.termination == "4.70"
        terminate_interview(s, iv, saved.step.termination, NOW, user_id=held["iv"])
        case = s.get(Case, held["case"])
        assert case.final_disposition == "4.70" and s.get(Enterprise, held["enterprise"]).in_progress == 0


def test_no_interview_beyond_the_quota_is_started(session_factory, held):
    with transaction(session_factory) as s:
        start_interview(s, s.get(Case, held["case"]), held["iv"], NOW)
        iv2 = f.user(s)
    with transaction(session_factory) as s:
        ent = s.get(Enterprise, held["enterprise"])
        assert ent.completes + ent.in_progress == ent.quota_target == 1
        # The other case is not even offered while the only slot is in progress...
        assert not hasattr(next_case(s, held["study"], iv2.id, NOW), "case_id")
    with transaction(session_factory) as s:
        # ...and a direct start on it is refused.
        other = s.scalar(select(Case).where(Case.id != held["case"]))
        other.status, other.claimed_by_id = CaseStatus.CLAIMED, iv2.id
        s.flush()
        with pytest.raises(QuotaFull):
            start_interview(s, other, iv2.id, NOW)


def test_changing_an_answer_after_the_fact_is_audited(session_factory, held):
    with transaction(session_factory) as s:
        iv = start_interview(s, s.get(Case, held["case"]), held["iv"], NOW)
        run_answers(s, iv, FULL, held["iv"])
        complete_interview(s, iv, NOW, user_id=held["iv"])
        sup = f.user(s, "supervisor")
    with transaction(session_factory) as s:
        iv = s.scalar(select(Interview))
        save_answer(s, iv, "B2", 2, user_id=sup.id, now=NOW, reason="录音核实后更正")
    with transaction(session_factory) as s:
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "answer.change"))
        assert entry.user_id == sup.id and entry.before["code"] == 4 and entry.after["code"] == 2
        assert entry.note == "录音核实后更正"


def test_bulk_answers_follow_the_same_route(session_factory, held):
    from cati.services.interviews import save_answers

    with transaction(session_factory) as s:
        iv = start_interview(s, s.get(Case, held["case"]), held["iv"], NOW)
        answers = dict(FULL, D0=2)  # no follow-up needed: D1–D3 are not asked even though given
        step = save_answers(s, iv, answers, user_id=held["iv"], now=NOW)
        assert step.complete and step.next_code is None
        stored = answers_of(s, iv)
        assert "D1" not in stored and stored["D0"] == 2 and stored["P3"] == 1
        complete_interview(s, iv, NOW, user_id=held["iv"])
