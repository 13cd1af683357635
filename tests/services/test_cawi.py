"""Web responses through the service: the same interviews/answers tables as CATI (mode cawi), time on each
question, speeder and straight-liner flags against the study's thresholds, one response per personal token."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cati.db import transaction
from cati.models import Answer, Enterprise, Interview, InterviewStatus, QuestionTime
from cati.services import cawi
from cati.services.qc import qc_rows, reject
from cati.services.studies import install_study
from cati.study.engine import AnswerError
from tests import factories as f

HAPPY = Path(__file__).resolve().parents[2] / "config" / "studies" / "happiness_index.yaml"
NOW = f.MONDAY_10AM


def answers(rating) -> dict:
    """One full set of answers: ``rating(i)`` is the answer to H<i>."""
    got = {"INTRO": None, **{f"P{i}": "1" for i in range(1, 15)}, "P8": "44", "P9": {"value": "1", "other": ""},
           "P12": {"value": "1", "other": ""}, **{f"H{i}": str(rating(i)) for i in range(1, 16)},
           "M1": {"value": ["1", "97"], "other": "弹性排班"}, "M2": {"value": ["1"], "other": ""},
           "M3": {"value": ["2"], "other": ""}, "M4": {"value": ["3"], "other": ""}, "O1": "人手不足", "O2": 99,
           "END": None}
    return got


def run(s, inv, device: str, rating, seconds: float, start):
    """Answer a whole questionnaire, ``seconds`` on each page; returns the response."""
    r = cawi.start_response(s, inv, device_key=device, language="zh-CN", now=start)
    plan = answers(rating)
    t = start
    code = r.interview.current_question
    while True:
        cawi.shown(s, r, code, t)
        t += timedelta(seconds=seconds)
        got = cawi.answer(s, r, code, plan[code], t)
        if got.complete:
            return r
        code = got.next_code


def test_responses_on_the_engine_with_times_and_flags(session_factory):
    with transaction(session_factory) as s:
        study = install_study(s, HAPPY)
        ent = f.enterprise(s, study)
        inv = cawi.open_invitation(s, study, ent, user_id=None, now=NOW)
        assert cawi.open_invitation(s, study, ent, user_id=None, now=NOW).id == inv.id  # one open link
        slow = [run(s, inv, f"device-slow-{i:04d}xx", lambda k, i=i: 1 + (k + i) % 5, 12.0, NOW) for i in range(5)]
        fast = run(s, inv, "device-fast-0000xx", lambda k: 4, 1.5, NOW)
        iv = fast.interview
        assert (iv.mode, iv.status, iv.interviewer_id) == ("cawi", InterviewStatus.COMPLETE, None)
        stored = s.scalar(select(func.count(Answer.id)).where(Answer.interview_id == iv.id))
        assert stored == 35 + 1  # the 35 questions that take an answer, and M1_other beside M1
        times = cawi.question_seconds(s, iv.id)
        assert times["H1"] == pytest.approx(1.5) and times["END"] == pytest.approx(1.5)
        assert fast.web.total_seconds == pytest.approx(1.5 * 37)
        assert [r.web.speeder for r in slow] == [False] * 5 and fast.web.speeder
        assert fast.web.straightliner and not any(r.web.straightliner for r in slow)
        assert s.get(Enterprise, ent.id).completes == 6
        assert cawi.mode_counts(s, study)["cawi"] == {"complete": 6}
        rows = {r.invitation.id: r for r in cawi.invitation_rows(s, study)}
        assert (rows[inv.id].started, rows[inv.id].completes, rows[inv.id].speeders) == (6, 6, 1)
        # the QC screen flags the same response, on its time on the questions (not the wall-clock length)
        flagged = {row.interview_id: row.flags for row in qc_rows(s, study)}
        assert flagged[iv.id] == ["speeder", "straightline"]
        assert all(flagged[r.interview.id] == [] for r in slow)
        # QC rejects the speeder: it stops counting and its case closes (a web respondent cannot be called back)
        reject(s, iv.id, NOW, user_id=None, note="9 秒答完 37 题")
        assert s.get(Enterprise, ent.id).completes == 5
        assert (fast.case.status.value, fast.case.final_disposition) == ("final", "2.90")
        # a device that finished the open link cannot start it again
        with pytest.raises(cawi.CawiError) as err:
            cawi.start_response(s, inv, device_key="device-fast-0000xx", language="zh-CN", now=NOW)
        assert err.value.key == "cawi_already_answered"


def test_a_personal_token_starts_one_response_and_bad_answers_change_nothing(session_factory):
    with transaction(session_factory) as s:
        study = install_study(s, HAPPY)
        ent = f.enterprise(s, study)
        tok = cawi.create_personal(s, study, ent, 2, user_id=None, now=NOW, label="王芳")
        r = cawi.start_response(s, tok[0], device_key="phone-a-000000000", language="en", now=NOW)
        with pytest.raises(cawi.CawiError) as err:
            cawi.start_response(s, tok[0], device_key="phone-b-000000000", language="en", now=NOW)
        assert err.value.key == "cawi_token_used"
        with pytest.raises(cawi.CawiError):
            cawi.regenerate(s, tok[0])
        old = tok[1].token
        assert cawi.regenerate(s, tok[1]).token != old and cawi.invitation(s, old) is None
        assert cawi.response_of(s, tok[0], None).interview.id == r.interview.id  # resume from the token link
        cawi.answer(s, r, "INTRO", None, NOW)
        with pytest.raises(AnswerError):
            cawi.answer(s, r, "P1", "7", NOW)
        with pytest.raises(cawi.CawiError):  # skipping ahead
            cawi.answer(s, r, "H1", "5", NOW)
        assert s.scalar(select(func.count(Answer.id)).where(Answer.interview_id == r.interview.id)) == 0
        assert s.get(Interview, r.interview.id).current_question == "P1"
        assert s.scalar(select(func.count(QuestionTime.id))) == 0  # INTRO was never shown: no time to count


def test_a_route_that_terminates_ends_the_web_response_with_its_code(session_factory, study):
    """Skip logic that ends the questionnaire (here the CSAT script's screening question) ends a web response as it
    ends an interview: final for its case, answers kept."""
    with transaction(session_factory) as s:
        st = s.merge(study)
        ent = f.enterprise(s, st)
        inv = cawi.open_invitation(s, st, ent, user_id=None, now=NOW)
        r = cawi.start_response(s, inv, device_key="device-screened-out", language="zh-CN", now=NOW)
        cawi.answer(s, r, "INTRO", None, NOW)
        cawi.answer(s, r, "CONSENT", "1", NOW)
        got = cawi.answer(s, r, "S1", "2", NOW)  # has not called the hotline: screened out
        assert got.terminated and not got.complete
        assert (r.interview.status, r.interview.disposition) == (InterviewStatus.TERMINATED, "4.70")
        assert (r.case.status.value, r.case.final_disposition) == ("final", "4.70")
        assert s.scalar(select(func.count(Answer.id)).where(Answer.interview_id == r.interview.id)) == 2
        with pytest.raises(cawi.CawiError):
            cawi.answer(s, r, "S1", "1", NOW)  # ended: no more answers
