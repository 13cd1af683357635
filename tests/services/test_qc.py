"""Quality control: flags worked by hand, verify/reject with the quota consequences, call-back list."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cati.db import transaction
from cati.models import (
    Appointment,
    AuditLog,
    Case,
    CaseStatus,
    Enterprise,
    Interview,
    QCStatus,
    Study,
)
from cati.services import qc
from cati.services.interviews import complete_interview, save_answers, start_interview
from cati.services.scheduling import next_case
from tests import factories as f

NOW = f.MONDAY_10AM
RATINGS = "A1 A2 A3 A4 B1 B2 B3 B4 C1 C2 C3 C4".split()
LATER = "E1 E2 E3 F1 F2 F3 F4".split()


def answers(base: int = 4, *, mixed: bool = True, dk: int = 0) -> dict:
    """A full interview; ``mixed`` varies the ratings (not straight-lined); ``dk`` rating items answered 9."""
    vals = {c: (base if not mixed else [4, 5, 3, 4][i % 4]) for i, c in enumerate(RATINGS + LATER)}
    for c in (RATINGS + LATER)[:dk]:
        vals[c] = 9
    return {"INTRO": None, "CONSENT": 1, "S1": 1, "S2": 1, **{c: vals[c] for c in RATINGS}, "D0": 2,
            **{c: vals[c] for c in LATER}, "Q0": 4, "CB1": 1, "OPEN1": "无", "P1": 2, "P2": 3, "P3": 1,
            "END": None}


def complete_one(factory, study, interviewer_id, start, minutes, ans) -> int:
    """Claim → start → answer → complete through the real services; returns the interview id."""
    with transaction(factory) as s:
        claim = next_case(s, s.get(Study, study.id), interviewer_id, start)
        case = s.get(Case, claim.case_id)
        iv = start_interview(s, case, interviewer_id, start)
        save_answers(s, iv, ans, user_id=interviewer_id, now=start)
        complete_interview(s, iv, start + timedelta(minutes=minutes), user_id=interviewer_id)
        return iv.id


@pytest.fixture
def world(session_factory, study):
    with transaction(session_factory) as s:
        st_ = s.get(Study, study.id)
        ent = f.enterprise(s, st_, quota=1)
        f.cases(s, st_, ent, 4)
        iv = f.user(s)
        iv2 = f.user(s)
        sup = f.user(s, "supervisor")
    return dict(study=st_, ent=ent.id, iv=iv.id, iv2=iv2.id, sup=sup.id)


def test_rejecting_a_complete_reopens_the_quota_slot_and_the_case(session_factory, world):
    iid = complete_one(session_factory, world["study"], world["iv"], NOW, 9, answers())
    with transaction(session_factory) as s:
        assert s.get(Enterprise, world["ent"]).completes == 1
        closed = s.scalars(select(Case.id).where(Case.final_disposition == "4.80")).all()
        assert len(closed) == 3  # quota of 1 filled: the other three released cases were closed
        case_id = s.get(Interview, iid).case_id
    with transaction(session_factory) as s:
        out = qc.reject(s, iid, NOW + timedelta(hours=1), user_id=world["sup"], note="回访核实：受访者未接受访问")
        assert out == {"reopened_quota_cases": 3, "completes": 0}
    with transaction(session_factory) as s:
        ent = s.get(Enterprise, world["ent"])
        assert (ent.completes, ent.in_progress) == (0, 0)
        assert s.get(Interview, iid).qc_status == QCStatus.REJECTED
        for cid in closed:
            c = s.get(Case, cid)
            assert (c.status, c.final_disposition) == (CaseStatus.READY, None)
        case = s.get(Case, case_id)
        assert (case.status, case.final_disposition) == (CaseStatus.READY, None)
        appt = s.scalar(select(Appointment).where(Appointment.case_id == case_id))
        assert appt.interviewer_id is None and appt.status.value == "pending"
        actions = s.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
        assert actions == ["qc.reject", "disposition.change", "quota.reopen"]
    # The rejected case comes back first once its verification call is due (24 h later), to another interviewer.
    with transaction(session_factory) as s:
        claim = next_case(s, world["study"], world["iv2"], NOW + timedelta(hours=25))
        assert claim.case_id == case_id and claim.source == "appointment"


def test_reject_needs_a_reason_and_happens_once(session_factory, world):
    iid = complete_one(session_factory, world["study"], world["iv"], NOW, 9, answers())
    with transaction(session_factory) as s:
        with pytest.raises(qc.QCError) as err:
            qc.reject(s, iid, NOW, user_id=world["sup"], note=" ")
        assert "原因" in err.value.message("zh-CN")
        qc.reject(s, iid, NOW, user_id=world["sup"], note="伪造")
        with pytest.raises(qc.QCError):
            qc.reject(s, iid, NOW, user_id=world["sup"], note="again")
        with pytest.raises(qc.QCError, match="cannot be verified"):
            qc.verify(s, iid, user_id=world["sup"])
        assert s.get(Enterprise, world["ent"]).completes == 0  # counted down once only


def test_verify_is_audited(session_factory, world):
    iid = complete_one(session_factory, world["study"], world["iv"], NOW, 9, answers())
    with transaction(session_factory) as s:
        qc.verify(s, iid, user_id=world["sup"], note="录音正常")
    with transaction(session_factory) as s:
        assert s.get(Interview, iid).qc_status == QCStatus.VERIFIED
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "qc.verify"))
        assert entry.user_id == world["sup"] and entry.before == {"qc_status": "unreviewed"}
        assert s.get(Enterprise, world["ent"]).completes == 1


def test_flags_worked_by_hand(session_factory, study):
    """Five interviews of 10 minutes and one of 4 minutes: median 10, the 4-minute one is under half → speeder.
    One has every rating 4 (straight-lined), one 7 of its 20 rating items "don't know" (35 % ≥ 30 %), one began at
    22:30 local (outside 09:00–21:00)."""
    with transaction(session_factory) as s:
        st_ = s.get(Study, study.id)
        ent = f.enterprise(s, st_, quota=20)
        f.cases(s, st_, ent, 8)
        iv = f.user(s)
    ids = {}
    ids["normal"] = complete_one(session_factory, st_, iv.id, NOW, 10, answers())
    ids["normal2"] = complete_one(session_factory, st_, iv.id, NOW + timedelta(minutes=20), 10, answers())
    ids["straight"] = complete_one(session_factory, st_, iv.id, NOW + timedelta(minutes=40), 10,
                                   answers(4, mixed=False))
    ids["dk"] = complete_one(session_factory, st_, iv.id, NOW + timedelta(minutes=60), 10, answers(dk=7))
    ids["speeder"] = complete_one(session_factory, st_, iv.id, NOW + timedelta(minutes=80), 4, answers())
    # 22:30 in Shanghai: the scheduler would not hand it out then, so the interview row is dated afterwards.
    late = complete_one(session_factory, st_, iv.id, NOW + timedelta(minutes=100), 10, answers())
    with transaction(session_factory) as s:
        row = s.get(Interview, late)
        row.started_at = NOW.replace(hour=14, minute=30)
        row.ended_at = row.started_at + timedelta(minutes=10)
    ids["late"] = late
    with transaction(session_factory) as s:
        rows = {r.interview_id: r for r in qc.qc_rows(s, st_)}
    flags = {k: rows[v].flags for k, v in ids.items()}
    assert flags == {"normal": [], "normal2": [], "straight": ["straightline"], "dk": ["dont_know"],
                     "speeder": ["speeder"], "late": ["out_of_hours"]}
    assert rows[ids["speeder"]].length_s == 240.0
    assert rows[ids["normal"]].phone_masked.count("*") == 4  # numbers masked on the QC list
    with transaction(session_factory) as s:
        flagged = qc.qc_rows(s, st_, flagged_only=True)
    assert {r.interview_id for r in flagged} == {ids[k] for k in ("straight", "dk", "speeder", "late")}


def test_no_speeder_flags_without_enough_completes(session_factory, world):
    iid = complete_one(session_factory, world["study"], world["iv"], NOW, 1, answers())
    with transaction(session_factory) as s:
        assert qc.qc_rows(s, world["study"])[0].flags == [] and qc.qc_rows(s, world["study"])[0].interview_id == iid


@given(n=st.integers(0, 60), a=st.floats(0, 1), b=st.floats(0, 1))
@settings(max_examples=200, deadline=None)
def test_callback_pick_is_stable_sized_and_nested(n, a, b):
    ids = list(range(1000, 1000 + n))
    lo, hi = sorted((a, b))
    small, big = qc.callback_pick(ids, lo), qc.callback_pick(ids, hi)
    assert len(small) == math.ceil(lo * n - 1e-9) and len(big) == math.ceil(hi * n - 1e-9)
    assert set(small) <= set(big) <= set(ids)
    assert qc.callback_pick(list(reversed(ids)), lo) == small


def test_callback_list_takes_a_share_of_each_interviewer(session_factory, study):
    with transaction(session_factory) as s:
        st_ = s.get(Study, study.id)
        ent = f.enterprise(s, st_, quota=20)
        f.cases(s, st_, ent, 8)
        a, b = f.user(s), f.user(s)
    for i in range(5):
        complete_one(session_factory, st_, a.id, NOW + timedelta(minutes=15 * i), 9, answers())
    for i in range(2):
        complete_one(session_factory, st_, b.id, NOW + timedelta(minutes=15 * i), 9, answers())
    with transaction(session_factory) as s:
        rows = qc.callback_list(s, st_, share=0.25)
    per = {}
    for r in rows:
        per[r.interviewer_id] = per.get(r.interviewer_id, 0) + 1
    assert per == {a.id: 2, b.id: 1}  # ceil(0.25 × 5) = 2, ceil(0.25 × 2) = 1
    with pytest.raises(ValueError, match="between 0 and 1"):
        qc.callback_pick([1, 2], 1.5)


def _with_qc_setting(session_factory, study_id, rejected: dict) -> None:
    with transaction(session_factory) as s:
        st_ = s.get(Study, study_id)
        st_.definition = {**st_.definition, "qc": {"rejected": rejected}}
        st_.version += 1


def test_a_rejected_case_goes_to_a_verification_call_by_another_interviewer_after_a_day(session_factory, world):
    """Issue 20 item 8: a suspect complete rejected by QC was redialled a minute later by the interviewer whose
    interview was rejected. The default study verifies it: another interviewer calls 24 h later."""
    iid = complete_one(session_factory, world["study"], world["iv"], NOW, 9, answers())
    rejected_at = NOW + timedelta(hours=1)
    with transaction(session_factory) as s:
        case_id = s.get(Interview, iid).case_id
        qc.reject(s, iid, rejected_at, user_id=world["sup"], note="录音与答案不符")
    minute_later = rejected_at + timedelta(minutes=1)
    for who in (world["iv"], world["iv2"]):
        with transaction(session_factory) as s:
            got = next_case(s, s.get(Study, world["study"].id), who, minute_later)
            assert getattr(got, "case_id", None) != case_id  # not before the delay, by nobody
            s.rollback()  # leave the claim untaken
    day_later = rejected_at + timedelta(hours=24)
    with transaction(session_factory) as s:
        case = s.get(Case, case_id)
        appt = s.scalars(select(Appointment).where(Appointment.case_id == case_id)).one()
        assert appt.interviewer_id is None and appt.due_at == day_later
        assert case.excluded_interviewer_id == world["iv"] and case.next_call_at == day_later
    # The interviewer of the rejected interview never gets it, through the appointment or the queue …
    for when in (day_later, day_later + timedelta(hours=3)):
        with transaction(session_factory) as s:
            got = next_case(s, s.get(Study, world["study"].id), world["iv"], when)
            assert getattr(got, "case_id", None) != case_id
            s.rollback()
    # … another interviewer gets it first, as the verification call it is.
    with transaction(session_factory) as s:
        got = next_case(s, s.get(Study, world["study"].id), world["iv2"], day_later)
        assert got.case_id == case_id and got.source == "appointment"


def test_a_study_can_close_a_rejected_case_instead(session_factory, world):
    _with_qc_setting(session_factory, world["study"].id, {"action": "close"})
    iid = complete_one(session_factory, world["study"], world["iv"], NOW, 9, answers())
    with transaction(session_factory) as s:
        case_id = s.get(Interview, iid).case_id
        qc.reject(s, iid, NOW + timedelta(hours=1), user_id=world["sup"], note="伪造")
    with transaction(session_factory) as s:
        case = s.get(Case, case_id)
        assert (case.status, case.final_disposition) == (CaseStatus.FINAL, "2.90")
        assert s.scalar(select(Appointment.id).where(Appointment.case_id == case_id)) is None
        change = s.scalars(select(AuditLog).where(AuditLog.action == "disposition.change")).one()
        assert change.after == {"final_disposition": "2.90", "status": "final"}
