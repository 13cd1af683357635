"""The scheduler: order of next_case, calling windows, retries, caps, quotas, claims, replicates."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from cati.db import transaction
from cati.models import Appointment, CallAttempt, Case, CaseStatus, DoNotCall, Enterprise, Study
from cati.services.scheduling import (
    Claim,
    NoCase,
    NoCaseReason,
    QuotaFull,
    auto_release,
    mark_dialed,
    next_case,
    record_outcome,
    release_quota_slot,
    release_replicate,
    reserve_quota_slot,
    rules_for,
)
from tests import factories as f

NOW = f.MONDAY_10AM


@pytest.fixture
def world(session_factory, study):
    """Two enterprises with 5 released cases each, one interviewer."""
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e1 = f.enterprise(s, st, name="甲银行")
        e2 = f.enterprise(s, st, name="乙保险", industry_name="保险")
        c1 = f.cases(s, st, e1, 5)
        c2 = f.cases(s, st, e2, 5)
        iv = f.user(s, username="iv1")
        iv2 = f.user(s, username="iv2")
    return dict(study=study, e1=e1.id, e2=e2.id, c1=c1, c2=c2, iv=iv.id, iv2=iv2.id)


def claim(session_factory, study_id, interviewer_id, now=NOW, **kw):
    with transaction(session_factory) as s:
        st = s.get(Study, study_id)
    # A claim starts its own transaction (the web app and simulator hold the study row in memory).
    with transaction(session_factory) as s:
        return next_case(s, st, interviewer_id, now, **kw)


def dial_and_code(session_factory, case_id, interviewer_id, outcome, now=NOW, **kw):
    with transaction(session_factory) as s:
        c = s.get(Case, case_id)
        st = s.get(Study, c.study_id)
        mark = mark_dialed(s, c, now, rules_for(st))
        s.add(CallAttempt(call_id=f"call-{case_id}-{c.attempts}", case_id=case_id, interviewer_id=interviewer_id,
                          backend="simulated", requested_at=now, outcome=outcome, day_part=mark.day_part,
                          tried_parts_before=mark.tried_parts_before, prior_outcome=mark.prior_outcome,
                          local_weekday=mark.local_weekday))
        s.flush()
        return record_outcome(s, c, outcome, now, interviewer_id=interviewer_id, **kw)


def test_claim_is_exclusive_and_resumes_own_claim(session_factory, world):
    a = claim(session_factory, world["study"].id, world["iv"])
    b = claim(session_factory, world["study"].id, world["iv2"])
    assert isinstance(a, Claim) and isinstance(b, Claim)
    assert a.case_id != b.case_id
    again = claim(session_factory, world["study"].id, world["iv"])  # a crashed screen comes back
    assert again.case_id == a.case_id and again.source == "own_claim"


def test_enterprise_furthest_behind_quota_comes_first(session_factory, world):
    with transaction(session_factory) as s:
        s.get(Enterprise, world["e1"]).completes = 15
    got = claim(session_factory, world["study"].id, world["iv"])
    assert got.case_id in world["c2"]


def test_full_quota_is_never_offered(session_factory, world):
    with transaction(session_factory) as s:
        s.get(Enterprise, world["e1"]).completes = 20
        s.get(Enterprise, world["e2"]).completes = 19
        s.get(Enterprise, world["e2"]).in_progress = 1  # counts: the 21st interview is never started
    got = claim(session_factory, world["study"].id, world["iv"])
    # Not "all full": the last place is held by an interview in progress and comes back if it breaks off.
    assert got == NoCase(NoCaseReason.QUOTAS_RESERVED)
    with transaction(session_factory) as s:
        s.get(Enterprise, world["e2"]).completes = 20
        s.get(Enterprise, world["e2"]).in_progress = 0
    assert claim(session_factory, world["study"].id, world["iv"]) == NoCase(NoCaseReason.QUOTAS_FULL)


def test_outside_calling_hours_says_when(session_factory, world):
    lunch = NOW + timedelta(hours=2, minutes=30)  # 12:30 local: lunch break
    got = claim(session_factory, world["study"].id, world["iv"], now=lunch)
    assert isinstance(got, NoCase) and got.reason == NoCaseReason.OUTSIDE_HOURS
    assert got.next_callable_at == NOW + timedelta(hours=3, minutes=30)  # 13:30 local
    night = NOW + timedelta(hours=12)  # 22:00 local
    got = claim(session_factory, world["study"].id, world["iv"], now=night)
    assert got.reason == NoCaseReason.OUTSIDE_HOURS
    assert got.next_callable_at == NOW + timedelta(hours=23)  # Tuesday 09:00 local


def test_no_answer_waits_three_hours_and_another_part_of_day(session_factory, world):
    first = claim(session_factory, world["study"].id, world["iv"])
    assert dial_and_code(session_factory, first.case_id, world["iv"], "3.13") is None
    with transaction(session_factory) as s:
        c = s.get(Case, first.case_id)
        assert c.status == CaseStatus.READY and c.attempts == 1
        # ≥ 3 h later is 13:00, in the lunch break; 13:30 is the afternoon, a part of the day not yet tried.
        assert c.next_call_at == NOW + timedelta(hours=3, minutes=30)


def test_busy_retries_after_15_minutes(session_factory, world):
    first = claim(session_factory, world["study"].id, world["iv"])
    dial_and_code(session_factory, first.case_id, world["iv"], "3.12")
    with transaction(session_factory) as s:
        assert s.get(Case, first.case_id).next_call_at == NOW + timedelta(minutes=15)


def test_waiting_for_retry_reports_next_time(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e = f.enterprise(s, st)
        (cid,) = f.cases(s, st, e, 1)
        iv = f.user(s)
    got = claim(session_factory, study.id, iv.id)
    dial_and_code(session_factory, got.case_id, iv.id, "3.12")
    nothing = claim(session_factory, study.id, iv.id)
    assert nothing.reason == NoCaseReason.WAITING and nothing.next_callable_at == NOW + timedelta(minutes=15)
    later = claim(session_factory, study.id, iv.id, now=NOW + timedelta(minutes=16))
    assert later == Claim(cid, "callable")


def test_attempt_cap_gives_final_code(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        (cid,) = f.cases(s, st, f.enterprise(s, st), 1)
        iv = f.user(s)
    t = NOW
    codes = ["3.13", "3.12", "2.21", "3.13", "3.12", "3.13"]
    results = []
    for code in codes:
        got = claim(session_factory, study.id, iv.id, now=t)
        assert got.case_id == cid
        results.append(dial_and_code(session_factory, cid, iv.id, code, now=t))
        with transaction(session_factory) as s:
            nxt = s.get(Case, cid).next_call_at
        t = nxt or t
    assert results[:-1] == [None] * 5
    # The cap's own code (docs/domain.md: a final max-attempts code); a person was reached (2.21), so it is the
    # eligible one, an AAPOR non-contact.
    assert results[-1] == "2.29"
    with transaction(session_factory) as s:
        c = s.get(Case, cid)
        assert c.status == CaseStatus.FINAL and c.final_disposition == "2.29"


def test_a_number_that_blocks_our_calls_twice_in_a_row_stops(session_factory, study):
    # The study file: stop_after_consecutive {"3.15": 2}. Blocked, no answer, blocked: still open (not in a row);
    # blocked again: the case ends without the two dials left under the cap of 6.
    assert rules_for(study).stop_after_consecutive == {"3.15": 2}
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        (cid,) = f.cases(s, st, f.enterprise(s, st), 1)
        iv = f.user(s)
    t = NOW
    results = []
    for code in ["3.15", "3.13", "3.15", "3.15"]:
        got = claim(session_factory, study.id, iv.id, now=t)
        assert isinstance(got, Claim) and got.case_id == cid
        results.append(dial_and_code(session_factory, cid, iv.id, code, now=t))
        with transaction(session_factory) as s:
            t = s.get(Case, cid).next_call_at or t
    assert results[:3] == [None, None, None]
    assert results[3] is not None
    with transaction(session_factory) as s:
        c = s.get(Case, cid)
        assert c.status == CaseStatus.FINAL and c.attempts == 4 and c.final_disposition == results[3]


def test_only_temporary_outcomes_can_stop_a_case_by_streak():
    from cati.study.schema import CallingRules

    base = {"timezone_default": "Asia/Shanghai", "windows": {"weekday": [["09:00", "21:00"]]}, "max_attempts": 6}
    assert CallingRules.model_validate({**base, "stop_after_consecutive": {"3.15": 2}}).stop_after_consecutive
    with pytest.raises(ValueError, match="4.31 is already a final outcome"):
        CallingRules.model_validate({**base, "stop_after_consecutive": {"4.31": 2}})
    with pytest.raises(ValueError):
        CallingRules.model_validate({**base, "stop_after_consecutive": {"3.15": 0}})


def test_appointments_come_first_own_then_anyones(session_factory, world):
    st_id = world["study"].id
    mine, theirs = world["c1"][0], world["c2"][0]
    due = NOW + timedelta(minutes=5)
    with transaction(session_factory) as s:
        for cid, owner in ((theirs, None), (mine, world["iv"])):
            s.add(Appointment(study_id=st_id, case_id=cid, interviewer_id=owner, due_at=due))
            s.get(Case, cid).next_call_at = due
    a = claim(session_factory, st_id, world["iv"])
    assert (a.case_id, a.source) == (mine, "own_appointment")
    b = claim(session_factory, st_id, world["iv2"])
    assert (b.case_id, b.source) == (theirs, "appointment")


def test_future_appointment_is_not_called_early(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        (cid,) = f.cases(s, st, f.enterprise(s, st), 1)
        iv = f.user(s)
    got = claim(session_factory, study.id, iv.id)
    dial_and_code(session_factory, cid, iv.id, "2.21", appointment_at=NOW + timedelta(hours=2))
    assert claim(session_factory, study.id, iv.id).reason == NoCaseReason.WAITING
    due = claim(session_factory, study.id, iv.id, now=NOW + timedelta(hours=2) - timedelta(minutes=10))
    assert due == Claim(cid, "own_appointment", due.appointment_id) and got.case_id == cid


def test_soft_refusal_goes_to_refusal_converters_after_three_days(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        (cid,) = f.cases(s, st, f.enterprise(s, st), 1)
        iv = f.user(s)
        conv = f.user(s)
    claim(session_factory, study.id, iv.id)
    dial_and_code(session_factory, cid, iv.id, "2.113")
    later = NOW + timedelta(days=3, hours=1)
    assert isinstance(claim(session_factory, study.id, iv.id, now=later), NoCase)
    assert claim(session_factory, study.id, conv.id, now=later, converter=True).case_id == cid


def test_do_not_call_request_blocks_the_number_at_once(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        (cid,) = f.cases(s, st, f.enterprise(s, st), 1)
        iv = f.user(s)
    claim(session_factory, study.id, iv.id)
    assert dial_and_code(session_factory, cid, iv.id, "2.114") == "2.114"
    with transaction(session_factory) as s:
        assert s.scalar(select(DoNotCall.e164)) == f"+86139{cid:08d}"


def test_stale_claim_released_after_timeout(session_factory, world):
    a = claim(session_factory, world["study"].id, world["iv"])
    later = NOW + timedelta(minutes=21)
    with transaction(session_factory) as s:
        # Make every other case unavailable so the only candidate is the abandoned one.
        for cid in world["c1"] + world["c2"]:
            if cid != a.case_id:
                s.get(Case, cid).status = CaseStatus.STOPPED
    # Not "exhausted": the one case left is being dialed and may come back (no answer, crashed screen).
    waiting = claim(session_factory, world["study"].id, world["iv2"], now=NOW + timedelta(minutes=5))
    assert waiting.reason == NoCaseReason.WAITING
    assert NOW + timedelta(minutes=5) < waiting.next_callable_at <= NOW + timedelta(minutes=6)
    b = claim(session_factory, world["study"].id, world["iv2"], now=later)
    assert b.case_id == a.case_id


def test_quota_slot_reservation_is_hard(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e = f.enterprise(s, st, quota=2)
        ids = f.cases(s, st, e, 4)
    with transaction(session_factory) as s:
        reserve_quota_slot(s, e.id)
        reserve_quota_slot(s, e.id)
        with pytest.raises(QuotaFull):
            reserve_quota_slot(s, e.id)
    with transaction(session_factory) as s:
        release_quota_slot(s, e.id, completed=True, now=NOW)
        release_quota_slot(s, e.id, completed=True, now=NOW)
    with transaction(session_factory) as s:
        ent = s.get(Enterprise, e.id)
        assert (ent.completes, ent.in_progress) == (2, 0)
        # The full quota closed the remaining released cases as 4.80 (quota filled).
        codes = {s.get(Case, i).final_disposition for i in ids}
        assert codes == {"4.80"}


def test_replicates_release_by_hand_and_automatically(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e = f.enterprise(s, st)
        f.cases(s, st, e, 3, replicate=1)
        second = f.cases(s, st, e, 10, replicate=2, status=CaseStatus.UNRELEASED)
        third = f.cases(s, st, e, 10, replicate=3, status=CaseStatus.UNRELEASED)
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        # 3 open cases can't yield 20 completes: the next replicate is released.
        assert auto_release(s, st, NOW) == {e.id: 10}
        assert {s.get(Case, i).status for i in second} == {CaseStatus.READY}
        assert {s.get(Case, i).status for i in third} == {CaseStatus.UNRELEASED}
        assert release_replicate(s, e.id, 3, NOW) == 10


def test_study_time_zones_listed_by_index_probes(session_factory, study):
    from cati.services.scheduling import _distinct_timezones

    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        assert _distinct_timezones(s, st.id) == []
        e = f.enterprise(s, st)
        f.cases(s, st, e, 3, timezone="Asia/Urumqi")
        f.cases(s, st, e, 2, timezone="Asia/Shanghai")
        f.cases(s, st, e, 1, timezone="Asia/Hong_Kong")
        assert _distinct_timezones(s, st.id) == ["Asia/Hong_Kong", "Asia/Shanghai", "Asia/Urumqi"]


def test_imported_cases_in_a_new_time_zone_are_offered_at_once(session_factory, study, tmp_path):
    """The scheduler caches the study's time zones; an import must not wait for that cache to expire.

    At Monday 13:00 UTC it is 21:00 in Shanghai (window closed) and 19:00 in Urumqi (open).
    """
    import csv

    from cati.services.imports import import_sample

    late = NOW.replace(hour=13)  # 21:00 Shanghai (closed), 19:00 Urumqi (open)
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e = f.enterprise(s, st, name="甲银行")
        f.cases(s, st, e, 2, timezone="Asia/Shanghai", next_call_at=NOW - timedelta(hours=1))
        iv = f.user(s, username="iv1").id
        ext = e.external_id
    got = claim(session_factory, study.id, iv, now=late)
    assert isinstance(got, NoCase) and got.reason == NoCaseReason.OUTSIDE_HOURS  # zones now cached
    path = tmp_path / "s.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case_ref", "enterprise_id", "phone", "timezone"])
        w.writerow(["U1", ext, "13912340001", "Asia/Urumqi"])
    with transaction(session_factory) as s:
        report = import_sample(s, s.get(Study, study.id), path, release="all")
        assert report.imported == 1
        new_id = s.scalar(select(Case.id).where(Case.case_ref == "U1"))
    # The import stamps wall-clock time as the case's first call time: ask after it.
    from datetime import UTC, datetime

    when = f.weeks_later_than(late, datetime.now(UTC) + timedelta(minutes=1))
    got = claim(session_factory, study.id, iv, now=when)
    assert isinstance(got, Claim) and got.case_id == new_id


# ----------------------------------------------------------------------------- rule defects (issue 20, item 7)


def _dial_until_cap(session_factory, study_id, cid, iv, codes, t):
    """Claim and code the case once per code, each at its next call time; returns the time after the last."""
    for code in codes:
        got = claim(session_factory, study_id, iv, now=t)
        assert isinstance(got, Claim) and got.case_id == cid, got
        assert dial_and_code(session_factory, cid, iv, code, now=t) is None
        with transaction(session_factory) as s:
            t = s.get(Case, cid).next_call_at
    return t


def test_a_broken_appointment_at_the_attempt_cap_is_requeued_not_stranded(session_factory, study):
    """Five temporary outcomes, a callback booked on the 6th (last allowed) dial, nobody serves it within the
    grace: the respondent asked to be called, so the case goes back to the front of the queue (appointments may
    exceed the cap) instead of sitting READY over the cap where every claim says "sample exhausted"."""
    from cati.services.calling import next_callable_time

    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        (cid,) = f.cases(s, st, f.enterprise(s, st), 1)
        iv, iv2 = f.user(s).id, f.user(s).id
    rules = rules_for(study)
    t = _dial_until_cap(session_factory, study.id, cid, iv, ["3.13", "3.12", "3.13", "3.14", "3.13"], NOW)
    assert claim(session_factory, study.id, iv, now=t).case_id == cid
    booked = next_callable_time(t + timedelta(hours=2), "Asia/Shanghai", rules)
    assert dial_and_code(session_factory, cid, iv, "2.21", now=t, appointment_at=booked,
                         appointment_for_anyone=True) is None
    late = next_callable_time(booked + timedelta(minutes=rules.appointment_grace_minutes + 5), "Asia/Shanghai", rules)
    got = claim(session_factory, study.id, iv2, now=late)
    assert isinstance(got, Claim) and got.case_id == cid and got.source == "appointment", got
    with transaction(session_factory) as s:
        assert s.get(Case, cid).attempts == 6
        assert {a.status.value for a in s.scalars(select(Appointment).where(Appointment.case_id == cid))} == {
            "broken", "pending"}
    # The re-queued callback is kept: nobody reached again → the case closes with the max-attempts code.
    assert dial_and_code(session_factory, cid, iv2, "3.13", now=late) == "2.29"


def test_a_requeued_appointment_at_the_cap_that_breaks_again_closes_the_case(session_factory, study):
    from cati.services.scheduling import break_missed_appointments

    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        (cid,) = f.cases(s, st, f.enterprise(s, st), 1)
        iv = f.user(s).id
    rules = rules_for(study)
    t = _dial_until_cap(session_factory, study.id, cid, iv, ["3.13"] * 5, NOW)
    claim(session_factory, study.id, iv, now=t)
    booked = t + timedelta(hours=1)
    dial_and_code(session_factory, cid, iv, "2.21", now=t, appointment_at=booked)
    grace = timedelta(minutes=rules.appointment_grace_minutes + 1)
    with transaction(session_factory) as s:
        assert break_missed_appointments(s, study.id, booked + grace, rules) == 1
        c = s.get(Case, cid)
        assert c.status == CaseStatus.READY
        again = s.scalars(select(Appointment).where(Appointment.case_id == cid,
                                                    Appointment.status == "pending")).one()
        assert again.interviewer_id is None and again.due_at >= booked + grace
        second_due = again.due_at
    with transaction(session_factory) as s:
        assert break_missed_appointments(s, study.id, second_due + grace, rules) == 1
        c = s.get(Case, cid)
        # Broken twice: closed with the max-attempts code (a person was reached: eligible, never available).
        assert (c.status, c.final_disposition) == (CaseStatus.FINAL, "2.29")


def test_attempt_cap_without_any_contact_gives_the_max_attempts_code(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        (cid,) = f.cases(s, st, f.enterprise(s, st), 1)
        iv = f.user(s).id
    t = _dial_until_cap(session_factory, study.id, cid, iv, ["3.13", "3.12", "3.14", "3.13", "3.16"], NOW)
    claim(session_factory, study.id, iv, now=t)
    assert dial_and_code(session_factory, cid, iv, "3.13", now=t) == "3.91"


def test_a_soft_refusal_on_the_last_allowed_attempt_closes_as_a_refusal(session_factory, study):
    """Decided: the cap bounds how often one person is called; a soft refusal on the 6th call is a refusal
    (2.112), not a ticket to a 7th call three days later (only appointments the respondent asked for exceed it)."""
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        (cid,) = f.cases(s, st, f.enterprise(s, st), 1)
        iv, conv = f.user(s).id, f.user(s).id
    t = _dial_until_cap(session_factory, study.id, cid, iv, ["3.13"] * 5, NOW)
    claim(session_factory, study.id, iv, now=t)
    assert dial_and_code(session_factory, cid, iv, "2.113", now=t) == "2.112"
    later = t + timedelta(days=3, hours=1)
    assert isinstance(claim(session_factory, study.id, conv, now=later, converter=True), NoCase)


def test_a_do_not_call_entry_made_while_the_case_is_claimed_is_not_undone(session_factory, study):
    from cati.services.scheduling import add_to_do_not_call

    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        (cid,) = f.cases(s, st, f.enterprise(s, st), 1)
        iv, sup = f.user(s).id, f.user(s, role="supervisor").id
    assert claim(session_factory, study.id, iv).case_id == cid
    with transaction(session_factory) as s:
        number = s.get(Case, cid).phones[0].e164
        assert add_to_do_not_call(s, [number], reason="谢绝来电", source="supervisor", user_id=sup, now=NOW) == 1
    # The holder, dialing before the entry reached the screen, codes no answer.
    assert dial_and_code(session_factory, cid, iv, "3.13") is None
    with transaction(session_factory) as s:
        c = s.get(Case, cid)
        assert c.status == CaseStatus.STOPPED and c.last_outcome == "3.13" and c.claimed_by_id is None
    got = claim(session_factory, study.id, iv, now=NOW + timedelta(hours=4))
    assert isinstance(got, NoCase)


def test_a_converter_only_case_is_not_handed_to_others_through_its_appointment(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        (cid,) = f.cases(s, st, f.enterprise(s, st), 1)
        iv, conv, conv2 = f.user(s).id, f.user(s).id, f.user(s).id
    claim(session_factory, study.id, iv)
    dial_and_code(session_factory, cid, iv, "2.113")
    later = NOW + timedelta(days=3, hours=1)
    assert claim(session_factory, study.id, conv, now=later, converter=True).case_id == cid
    booked = later + timedelta(hours=4)  # Thursday 15:00 local
    dial_and_code(session_factory, cid, conv, "2.21", now=later, appointment_at=booked)
    slipped = booked + timedelta(minutes=6)  # the owner let it slip: others may keep it, but only converters
    got = claim(session_factory, study.id, iv, now=slipped)
    assert isinstance(got, NoCase), got
    got = claim(session_factory, study.id, conv2, now=slipped, converter=True)
    assert isinstance(got, Claim) and got.case_id == cid and got.source == "appointment"


def test_max_attempts_codes_count_in_the_rates_and_reports_as_the_catalogue_says():
    from cati.services.dispositions import catalogue
    from reports.i18n import disposition_label
    from scoring.rates import aapor_symbol

    cap_codes = {code: d for code, d in catalogue().items() if d.max_attempts}
    assert set(cap_codes) == {"2.29", "3.91"}
    for code, d in cap_codes.items():
        assert d.final and not d.contacted
        assert aapor_symbol(code) == d.symbol.value  # NC and UO: the eligible one counts in D, the other in U
        assert disposition_label(code, "en") == (d.symbol.value, d.text("en"))
        assert disposition_label(code, "zh-CN")[1] == d.text("zh-CN")
    # The cap sets them; interviewers never code them by hand.
    from cati.services.agents import outcome_choices

    offered = {c for state in ("human", "machine", "no_answer") for started in (False, True)
               for c in outcome_choices(state, interview_started=started)}
    assert not offered & set(cap_codes)


# ------------------------------------------------------------- best time to call never idles (issue 20, item 3)


def test_the_browser_case_a_new_interviewer_gets_a_case_after_a_lunchtime_of_no_answers(session_factory, study):
    """The browser session of issue 20: a fresh study of many enterprises on the default rules (best_time_ratio
    0.75), about 30 dials coded around lunchtime (a Saturday, 12:05–12:30 local, inside the weekend window), all
    ringing out. The afternoon now looks poor next to the evening, so fresh cases are deferred to 17:30; still a
    new interviewer asking at 12:45 gets a case: an idle paid interviewer costs more than a weak dial."""
    from cati.services.contact_model import reset_contact_models
    from cati.services.scheduling import best_time_deferral

    reset_contact_models()
    assert rules_for(study).best_time_ratio == 0.75
    saturday_1205 = NOW + timedelta(days=5, hours=2, minutes=5)
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        for k in range(60):
            f.cases(s, st, f.enterprise(s, st, name=f"企业{k:02d}"), 20, next_call_at=saturday_1205 - timedelta(hours=1))
        dialers = [f.user(s).id for _ in range(3)]
        newcomer = f.user(s).id
    t = saturday_1205
    for i in range(30):
        got = claim(session_factory, study.id, dialers[i % 3], now=t)
        assert isinstance(got, Claim), got
        assert dial_and_code(session_factory, got.case_id, dialers[i % 3], "3.13", now=t) is None
        t += timedelta(seconds=50)
    ask = saturday_1205 + timedelta(minutes=40)
    with transaction(session_factory) as s:
        deferral = best_time_deferral(s, s.get(Study, study.id), ask)
    # The preference is really at work: every fresh case is deferred to the evening …
    assert deferral.cases == 60 * 20 - 30
    assert deferral.until.astimezone(f.SHANGHAI).strftime("%a %H:%M") == "Sat 17:30"
    # … and yet the new interviewer is not told to wait.
    got = claim(session_factory, study.id, newcomer, now=ask)
    assert isinstance(got, Claim) and got.source == "callable", got


def test_enterprise_ids_in_the_millions_are_ordered_without_overflow(session_factory, study):
    """The tie-break of equally needy enterprises multiplies the enterprise id by up to a million: at 10,000
    enterprises PostgreSQL's 32-bit INTEGER overflowed ("integer out of range" on every claim)."""
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        big = Enterprise(id=5_000_000, study_id=st.id, external_id="E-BIG", name="大企业",
                         industry_id=f.industry(s).id, province="广东", quota_target=20, completes=0)
        s.add(big)
        s.flush()
        f.cases(s, st, big, 2)
        iv = f.user(s).id
    with transaction(session_factory) as s:
        got = next_case(s, s.get(Study, study.id), iv, f.MONDAY_10AM)
    assert isinstance(got, Claim)
    with session_factory() as s:
        assert s.get(Case, got.case_id).enterprise_id == 5_000_000


def test_no_interviewer_waits_while_a_case_is_callable_beyond_the_dials_per_place_cap(session_factory, study):
    """One open quota place, three interviewers already dialing its cases (claims_per_open_slot = 3): a fourth
    ready interviewer still gets a callable case rather than "wait" (the cap spreads the team; it must not idle
    it). The quota itself stays hard: a start beyond it is refused when the interview begins."""
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        ent = f.enterprise(s, st, quota=20, completes=19)
        f.cases(s, st, ent, 6)
        ivs = [f.user(s).id for _ in range(4)]
    claims = []
    for iv in ivs:
        with transaction(session_factory) as s:
            claims.append(next_case(s, s.get(Study, study.id), iv, f.MONDAY_10AM))
    assert all(isinstance(c, Claim) for c in claims), claims
    assert len({c.case_id for c in claims}) == 4


def test_next_claim_releases_the_next_replicate_when_nothing_is_callable(session_factory, study):
    """Production auto-release (issue 20): an enterprise whose released cases are all being dialed gets its next
    replicate released on the next claim (calling_rules.sample_release, default ``need``), and the interviewer
    gets a case instead of "sample exhausted"; the release is audited as automatic and shown on the board."""
    from cati.models import AuditLog, Replicate
    from cati.services.sample_admin import automatic_releases

    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e = f.enterprise(s, st, quota=2)
        first = f.cases(s, st, e, 3, replicate=1)
        second = f.cases(s, st, e, 5, replicate=2, status=CaseStatus.UNRELEASED)
        ivs = [f.user(s, username=f"rel{k}").id for k in range(4)]
    got = []
    for k, iv in enumerate(ivs):
        with transaction(session_factory) as s:
            got.append(next_case(s, s.get(Study, study.id), iv, NOW + timedelta(seconds=10 * k),
                                 rng=random.Random(k)))
    # Three cases (3 open ≥ 2 still needed, 3 callable ≥ 2 per interviewer at work): nothing released for the
    # first three claims; the fourth interviewer finds nothing callable, and replicate 2 is released for them.
    assert all(isinstance(c, Claim) for c in got)
    assert {c.case_id for c in got[:3]} == set(first)
    assert got[3].case_id in second
    with transaction(session_factory) as s:
        rep = s.scalar(select(Replicate).where(Replicate.enterprise_id == e.id, Replicate.number == 2))
        assert rep.automatic and rep.released_at is not None
        assert {s.get(Case, i).status for i in second} - {CaseStatus.CLAIMED} == {CaseStatus.READY}
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "replicate.release"))
        assert entry.user_id is None
        assert entry.after["automatic"] is True and entry.after["reason"] == "team_short_of_work"
        board = automatic_releases(s, study.id)
        assert [(a.enterprise_id, a.number, a.cases, a.reason) for a in board] == [
            (e.id, 2, 5, "team_short_of_work")]


def test_release_rule_keeps_sample_back_while_released_cases_suffice(session_factory, study):
    """``need`` releases nothing while the released cases can do the work, unlike the earlier ``projected`` rule
    (which opened most of the sample on the first day); ``manual`` never releases."""
    from cati.services.scheduling import need_shortfalls, projected_shortfalls

    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e = f.enterprise(s, st, quota=20)
        f.cases(s, st, e, 40, replicate=1)
        f.cases(s, st, e, 40, replicate=2, status=CaseStatus.UNRELEASED)
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        assert need_shortfalls(s, st) == {}
        assert e.id in projected_shortfalls(s, st)  # 40 × 0.08 = 3.2 projected completes
        assert auto_release(s, st, NOW) == {}


def test_sample_release_rule_is_validated(tmp_path):
    import yaml

    from cati.services.calling import CallRules
    from cati.services.studies import default_study_file
    from cati.study.loader import StudyError, validate_study_mapping

    data = yaml.safe_load(default_study_file().read_text(encoding="utf-8"))
    assert CallRules.from_definition(data).sample_release.mode == "need"
    data["calling_rules"]["sample_release"] = {"mode": "manual", "callable_per_interviewer": 3}
    validate_study_mapping(data, source="test")
    rules = CallRules.from_definition(data)
    assert (rules.sample_release.mode, rules.sample_release.callable_per_interviewer) == ("manual", 3.0)
    for bad in ({"mode": "always"}, {"callable_per_interviewer": -1}, {"min_open_per_needed": "x"},
                {"every": 5}):
        data["calling_rules"]["sample_release"] = bad
        with pytest.raises(StudyError):
            validate_study_mapping(data, source="test")
