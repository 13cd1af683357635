"""Pacing against the fieldwork end date: projections in calling time with an honest interval, the verdict
against the deadline, and no flood of "short" flags at the start of fieldwork."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from cati.db import transaction
from cati.models import Interview, InterviewStatus, Study
from cati.services import supervision as sv
from cati.services.calling import CallRules, in_window, local
from cati.services.pacing import (
    advance_calling_hours,
    calling_hours_between,
    rate_interval,
    rewind_calling_hours,
    study_pace,
)
from tests import factories as f

RULES = CallRules()
TZ = "Asia/Shanghai"
NOW = f.MONDAY_10AM


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
       st.floats(min_value=0.01, max_value=300))
def test_a_projection_never_lands_outside_calling_hours(start, hours):
    start = start.replace(tzinfo=UTC)
    eta = advance_calling_hours(start, hours, TZ, RULES)
    # it lands inside a window, or exactly at a window's end (the last minute of calling)
    assert in_window(eta, TZ, RULES) or in_window(eta - timedelta(seconds=1), TZ, RULES)
    assert calling_hours_between(start, eta, TZ, RULES) == pytest.approx(hours, abs=1e-6)


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
       st.floats(min_value=0.01, max_value=50))
def test_rewind_is_the_inverse_of_advance(end, hours):
    end = end.replace(tzinfo=UTC)
    start = rewind_calling_hours(end, hours, TZ, RULES)
    assert calling_hours_between(start, end, TZ, RULES) == pytest.approx(hours, abs=1e-6)


def test_the_interval_narrows_with_evidence():
    lo3, mid3, hi3 = rate_interval(3, 3.0)
    lo300, mid300, hi300 = rate_interval(300, 300.0)
    assert mid3 == mid300 == 1.0
    assert (hi3 - lo3) > 5 * (hi300 - lo300)
    assert lo3 < 1 < hi3 and lo300 < 1 < hi300


def _with_end_date(session, study_id, end: date):
    st_row = session.get(Study, study_id)
    st_row.definition = {**st_row.definition, "fieldwork": {"end_date": end.isoformat()}}
    session.flush()
    return st_row


def _completes(session, study, ent, n, *, ended_at):
    iv = f.user(session)
    for cid in f.cases(session, study, ent, n):
        session.add(Interview(study_id=study.id, case_id=cid, interviewer_id=iv.id, status=InterviewStatus.COMPLETE,
                              started_at=ended_at - timedelta(minutes=12), ended_at=ended_at, disposition="1.1"))
    session.flush()


@pytest.mark.parametrize("end_in_days, rate_completes, expected", [
    (10, 30, "on_track"),   # 30 completes in the last 6 calling hours, 40 to go: well before 10 days
    (1, 12, "late"),        # 12 in 6 h, 40 to go: 20 calling hours at the estimate, not by tomorrow night
])
def test_study_pace_against_the_end_date(session_factory, study, end_in_days, rate_completes, expected):
    with transaction(session_factory) as s:
        st_row = _with_end_date(s, study.id, (local(NOW, TZ) + timedelta(days=end_in_days)).date())
        for _ in range(2):
            f.enterprise(s, st_row, quota=20)
        ent = f.enterprise(s, st_row, quota=20)
        _completes(s, st_row, ent, rate_completes, ended_at=NOW - timedelta(minutes=30))
        s.execute(update(type(ent)).where(type(ent).id == ent.id).values(completes=0))
        pace = study_pace(s, st_row, NOW)
    assert pace.remaining == 60 and pace.recent_completes == rate_completes
    assert pace.status == expected
    assert pace.deadline is not None and in_window(pace.deadline - timedelta(seconds=1), TZ, RULES)
    assert pace.required_rate == pytest.approx(60 / pace.calling_hours_left, rel=1e-3)
    for moment in (pace.projection.eta, pace.projection.early):
        assert in_window(moment, TZ, RULES) or in_window(moment - timedelta(seconds=1), TZ, RULES)


def test_a_close_call_is_flagged_at_risk_early(session_factory, study):
    """The estimate makes the date but the interval's late end does not: a warning, before it is too late."""
    with transaction(session_factory) as s:
        ent = f.enterprise(s, s.get(Study, study.id), quota=40)
        st_row = s.get(Study, study.id)
        _completes(s, st_row, ent, 6, ended_at=NOW - timedelta(minutes=20))
        s.execute(update(type(ent)).where(type(ent).id == ent.id).values(completes=0))
        rate = 6 / 6.0
        eta = advance_calling_hours(NOW, 40 / rate, TZ, RULES)
        end = local(eta, TZ).date() + timedelta(days=1)   # the estimate makes it with a day to spare
        st_row = _with_end_date(s, study.id, end)
        pace = study_pace(s, st_row, NOW)
    assert pace.projection.eta < pace.deadline < pace.projection.late
    assert pace.status == "at_risk"


def test_without_completes_or_end_date_the_board_says_so(session_factory, study):
    with transaction(session_factory) as s:
        f.enterprise(s, s.get(Study, study.id), quota=20)
        pace = study_pace(s, s.get(Study, study.id), NOW)
    assert (pace.status, pace.projection.eta, pace.remaining) == ("no_end_date", None, 20)


def test_no_row_is_flagged_short_at_the_start_of_fieldwork(session_factory, study):
    """A fresh study: every enterprise has released sample and nothing finalised. The prior yield says the
    released cases alone may not fill the quota — the automatic release handles that — but no enterprise has
    evidence of a real shortfall, so none is flagged (today every row was)."""
    with transaction(session_factory) as s:
        st_row = s.get(Study, study.id)
        for _ in range(12):
            ent = f.enterprise(s, st_row, quota=20)
            f.cases(s, st_row, ent, 60)
        rows = sv.quota_board(s, st_row, NOW)
    assert all(r.shortfall > 0 for r in rows)      # the released sample alone is projected short (auto release acts)
    assert not any(r.short for r in rows)
