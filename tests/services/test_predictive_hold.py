"""The predictive hold (issue 18): a respondent the dialer abandoned (3.201) is not dialled predictively again
for the catalogue's ``predictive_hold_hours`` (72 h), while preview and progressive, which put an interviewer on
the line first, may call them back as usual."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cati.db import transaction
from cati.models import CallAttempt, Case, CaseStatus, Study
from cati.services.dispositions import catalogue
from cati.services.scheduling import (
    Claim,
    NoCase,
    mark_dialed,
    next_case,
    predictive_hold_codes,
    record_outcome,
    rules_for,
)
from tests import factories as f

NOW = f.MONDAY_10AM
ABANDONED = catalogue().code_for("abandoned")


@pytest.fixture
def one_case(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        ent = f.enterprise(s, st)
        (cid,) = f.cases(s, st, ent, 1)
        iv = f.user(s, username="iv-hold")
    return dict(study_id=study.id, case_id=cid, iv=iv.id)


def _claim(session_factory, study_id, interviewer_id, now, **kw):
    with transaction(session_factory) as s:
        st = s.get(Study, study_id)
    with transaction(session_factory) as s:
        return next_case(s, st, interviewer_id, now, **kw)


def _dial(session_factory, case_id, outcome, now, *, mode="predictive", interviewer_id=None):
    """One dial of the case coded ``outcome`` (the dialer's code for an abandon), the case then moved on."""
    with transaction(session_factory) as s:
        c = s.get(Case, case_id)
        mark = mark_dialed(s, c, now, rules_for(s.get(Study, c.study_id)))
        s.add(CallAttempt(call_id=f"call-{case_id}-{now.isoformat()}", case_id=case_id, mode=mode,
                          interviewer_id=interviewer_id, backend="simulated", requested_at=now, outcome=outcome,
                          outcome_source="dialer" if outcome == ABANDONED else "interviewer",
                          day_part=mark.day_part, tried_parts_before=mark.tried_parts_before,
                          prior_outcome=mark.prior_outcome, local_weekday=mark.local_weekday))
        s.flush()
        record_outcome(s, c, outcome, now, interviewer_id=interviewer_id)


def _release(session_factory, case_id):
    with transaction(session_factory) as s:
        c = s.get(Case, case_id)
        c.status, c.claimed_by_id, c.claimed_at, c.claim_expires_at = CaseStatus.READY, None, None, None


def _held(session_factory, one_case, when) -> bool:
    """The team dialer gets nothing at ``when`` while an interviewer dialing in preview gets the case (so the
    case is callable then: the hold, not the calling hours or a retry time, is what keeps it from the dialer)."""
    sid, cid = one_case["study_id"], one_case["case_id"]
    team = _claim(session_factory, sid, None, when, predictive=True)
    if team == Claim(cid, "callable"):
        _release(session_factory, cid)
        return False
    assert isinstance(team, NoCase)
    assert _claim(session_factory, sid, one_case["iv"], when) == Claim(cid, "callable")
    _release(session_factory, cid)
    return True


def test_the_catalogue_holds_abandoned_calls_for_72_hours():
    assert predictive_hold_codes() == [(ABANDONED, 72)]


def test_an_abandoned_case_is_not_dialled_predictively_for_72_hours(session_factory, one_case):
    sid, cid = one_case["study_id"], one_case["case_id"]
    first = _claim(session_factory, sid, None, NOW, predictive=True)
    assert first == Claim(cid, "callable")
    _dial(session_factory, cid, ABANDONED, NOW)
    with transaction(session_factory) as s:
        case = s.get(Case, cid)
        assert case.status == CaseStatus.READY and case.last_outcome == ABANDONED

    # 90 minutes on (11:30 local) the retry time has passed: the team dialer gets nothing, an interviewer dialing
    # in preview gets the case.
    assert _held(session_factory, one_case, NOW + timedelta(minutes=90))
    # Just inside the hold (Thursday 09:59 local, calling hours): still held. Just past it: dialled again.
    assert _held(session_factory, one_case, NOW + timedelta(hours=71, minutes=59))
    assert not _held(session_factory, one_case, NOW + timedelta(hours=72, minutes=1))


def test_a_later_preview_call_does_not_lift_the_hold(session_factory, one_case):
    """Held from the abandoned dial, whatever came after it: a preview no-answer the next day does not make the
    person fair game for the next predictive burst."""
    sid, cid = one_case["study_id"], one_case["case_id"]
    _dial(session_factory, cid, ABANDONED, NOW)
    next_day = NOW + timedelta(days=1)
    assert _claim(session_factory, sid, one_case["iv"], next_day) == Claim(cid, "callable")
    _dial(session_factory, cid, "3.13", next_day, mode="preview", interviewer_id=one_case["iv"])  # no answer
    with transaction(session_factory) as s:
        assert s.get(Case, cid).last_outcome == "3.13"
    assert _held(session_factory, one_case, NOW + timedelta(days=2))
    assert not _held(session_factory, one_case, NOW + timedelta(hours=72, minutes=1))


def test_other_outcomes_do_not_hold_the_case(session_factory, one_case):
    cid = one_case["case_id"]
    _dial(session_factory, cid, "3.12", NOW)  # busy: retried after 15 minutes, predictively as any case
    assert not _held(session_factory, one_case, NOW + timedelta(minutes=20))


def test_appointments_and_assigned_cases_stay_with_interviewers(session_factory, one_case):
    sid, cid = one_case["study_id"], one_case["case_id"]
    with transaction(session_factory) as s:
        s.get(Case, cid).assigned_to_id = one_case["iv"]
    assert isinstance(_claim(session_factory, sid, None, NOW, predictive=True), NoCase)
    assert _claim(session_factory, sid, one_case["iv"], NOW) == Claim(cid, "assigned")


def test_a_predictive_claim_is_for_the_team(session_factory, one_case):
    with pytest.raises(ValueError, match="team"):
        _claim(session_factory, one_case["study_id"], one_case["iv"], NOW, predictive=True)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(day=st.integers(0, 4), minute=st.integers(0, 90))
def test_held_exactly_while_the_hold_lasts(session_factory, one_case, day, minute):
    """Property: at any callable moment after an abandon (10:00–11:30 local on the next days, past the 60-minute
    retry on the day itself), the team dialer is kept off the case exactly while less than 72 hours have passed."""
    if day == 0 and minute < 60:
        minute += 60
    cid = one_case["case_id"]
    with session_factory() as s:
        abandoned_before = s.scalar(select(CallAttempt.id).where(CallAttempt.case_id == cid))
    if abandoned_before is None:
        _dial(session_factory, cid, ABANDONED, NOW)
    offset = timedelta(days=day, minutes=minute)
    assert _held(session_factory, one_case, NOW + offset) == (offset < timedelta(hours=72))
