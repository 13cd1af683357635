"""Predictive (respondent-first) dialing on a real Asterisk: 6 interviewers, 30 respondents, more people answering
than interviewers are free. Every answered person is connected to an interviewer or hears the firm's message; no
call is left up; the abandons stored in the database are the ones the PBX's own queue log recorded."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from cati.db import transaction
from cati.models import Case, CasePhone, CaseStatus, Enterprise, Industry, Study, User
from cati.models.calls import AttemptStatus, CallAttempt
from cati.services.dispositions import catalogue
from cati.services.users import create_user
from cati.telephony.base import ABANDONED, CONNECTED
from cati.telephony.dialer import BatchingEventSink, dial_predictive_and_commit
from cati.telephony.lab import range_number
from cati.telephony.team_dialer import TeamDialer

from .conftest import backend_for

QUEUE = "cati-predictive"
MEMBERS = [str(1001 + i) for i in range(6)]
TALK_S = 3.0  # an interviewer's "call" lasts this long before they hang up
EXITS = {"EXITWITHTIMEOUT", "EXITEMPTY", "ABANDON", "EXITWITHKEY"}


def _cases(factory, numbers: list[str], ent_ref: str = "PRED-1") -> dict[str, int]:
    """One enterprise with a case per number (one study holds a number once), and the 6 interviewers."""

    now = datetime.now(UTC)
    out = {}
    with transaction(factory) as s:
        study = s.scalars(select(Study).order_by(Study.id)).first()
        industry = s.scalar(select(Industry).where(Industry.name == "predictive")) or Industry(name="predictive")
        s.add(industry)
        s.flush()
        ent = Enterprise(study_id=study.id, external_id=ent_ref, name="predictive lab", industry_id=industry.id,
                         province="-", quota_target=20, completes=0)
        s.add(ent)
        s.flush()
        for k, number in enumerate(numbers):
            case = Case(study_id=study.id, enterprise_id=ent.id, case_ref=f"{ent_ref}-{k:03d}", replicate=1,
                        status=CaseStatus.READY, timezone="UTC", next_call_at=now, attempts=0, tried_day_parts=0,
                        needs_converter=False, attributes={}, imported_at=now)
            s.add(case)
            s.flush()
            s.add(CasePhone(study_id=study.id, case_id=case.id, position=1, e164=number, kind="mobile",
                            timezone="UTC", status="ok", attempts=0))
            out[number] = case.id
        for ext in MEMBERS:
            if s.scalar(select(User).where(User.extension == ext)) is None:
                create_user(s, f"pred{ext}", "predictive-lab-1", "interviewer", extension=ext)
    return out


def test_six_interviewers_thirty_respondents_every_person_connected_or_told(lab, scratch):
    directory, _url, factory = scratch
    people = [range_number("person", i) for i in range(24)]
    machines = [range_number("machine", i) for i in range(3)]
    busy = [range_number("busy", i) for i in range(3)]
    waves = [people[w * 8:(w + 1) * 8] + [machines[w], busy[w]] for w in range(3)]
    case_of = _cases(factory, people + machines + busy)

    backend = backend_for(lab, 0)
    raw_user_events: list[dict] = []

    def keep_user_events(msg):  # what the dialplan announced, as the PBX sent it
        if msg.get("Event") == "UserEvent" and msg.get("UserEvent", "").startswith("CatiAbandon"):
            raw_user_events.append(dict(msg))

    stop_listening = backend.listen_raw(keep_user_events)
    sink = BatchingEventSink(factory)
    unsubscribe = backend.subscribe(sink)
    events: dict[str, list] = {}
    lock = threading.Lock()

    def collect(event):
        with lock:
            events.setdefault(event.call_id, []).append((event, time.monotonic()))

    unsubscribe_collect = backend.subscribe(collect)
    call_of: dict[str, str] = {}
    try:
        for ext in MEMBERS:
            backend.join_team(ext, QUEUE)
        assert sorted(m["extension"] for m in backend.team_members(QUEUE)) == MEMBERS
        hung: set[str] = set()

        def hang_up_finished_calls():
            with lock:
                due = [cid for cid, evs in events.items() for e, t in evs
                       if e.kind == CONNECTED and cid not in hung and time.monotonic() - t >= TALK_S]
            for cid in due:
                backend.hangup(cid)  # the interviewer ends the interview
                hung.add(cid)

        for wave in waves:
            for number in wave:
                call_id = dial_predictive_and_commit(factory, backend, case_of[number], None, QUEUE,
                                                     abandon_prompt=lab.abandon_prompt, timeout_s=20)
                call_of[call_id] = number
                time.sleep(0.15)
            wave_end = time.monotonic() + 9
            while time.monotonic() < wave_end:
                hang_up_finished_calls()
                time.sleep(0.1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            hang_up_finished_calls()
            with factory() as s:
                open_ = s.scalar(select(CallAttempt.id).where(CallAttempt.mode == "predictive",
                                                              CallAttempt.status != AttemptStatus.ENDED).limit(1))
            if open_ is None:
                break
            time.sleep(0.2)
        time.sleep(2)
        sink.flush()
        channels_left = lab.channels(lab.pbxes[0])
    finally:
        unsubscribe_collect()
        unsubscribe()
        sink.close()
        for ext in MEMBERS:
            backend.leave_team(ext, QUEUE)
        stop_listening()
        backend.close()

    abandon_code = catalogue().code_for("abandoned")
    with factory() as s:
        attempts = {a.call_id: a for a in s.scalars(select(CallAttempt).where(CallAttempt.call_id.in_(call_of)))}
        extension_of = dict(s.execute(select(User.id, User.extension)).all())
        cases = {c.id: c for c in s.scalars(select(Case).where(Case.id.in_(case_of.values())))}
    assert len(attempts) == 30 and all(a.status == AttemptStatus.ENDED for a in attempts.values())

    kinds = {cid: [e.kind for e, _ in evs] for cid, evs in events.items()}
    person_calls = [cid for cid, number in call_of.items() if number in people]
    connected = {cid for cid in call_of if CONNECTED in kinds.get(cid, [])}
    abandoned = {cid for cid in call_of if ABANDONED in kinds.get(cid, [])}
    # Every answered person: connected or abandoned, never both, never neither.
    for cid in person_calls:
        assert (cid in connected) != (cid in abandoned), (call_of[cid], kinds.get(cid))
        assert attempts[cid].machine_detection == "HUMAN"
    # Machines and busy numbers never reach the queue.
    for cid, number in call_of.items():
        if number in machines:
            assert cid not in connected | abandoned and attempts[cid].outcome == "3.14"
        if number in busy:
            assert cid not in connected | abandoned and attempts[cid].outcome == "3.12"
    # More people answered than interviewers were free: some were abandoned, most were connected.
    assert len(abandoned) >= 1 and len(connected) >= 12, (len(connected), len(abandoned))

    # The PBX's own record (app_queue's queue_log): the same connects and the same abandons.
    log_rows = [r for r in lab.queue_log(lab.pbxes[0]) if r["call_id"] in call_of]
    pbx_connected = {r["call_id"] for r in log_rows if r["event"] == "CONNECT"}
    pbx_abandoned = {r["call_id"] for r in log_rows if r["event"] in EXITS}
    stored_abandoned = {cid for cid, a in attempts.items() if a.outcome == abandon_code}
    assert pbx_connected == connected
    assert pbx_abandoned == abandoned == stored_abandoned
    # Each abandoned person heard the message (the dialplan's event after Playback), then the call ended.
    told = {e.get("CallID") for e in raw_user_events if e.get("UserEvent") == "CatiAbandonMessage"}
    assert told == abandoned
    # Connected calls belong to the interviewer the queue chose; the case is theirs.
    for cid in connected:
        member = next(r["agent"] for r in log_rows if r["call_id"] == cid and r["event"] == "CONNECT")
        assert extension_of[attempts[cid].interviewer_id] == member
        assert attempts[cid].outcome is None  # the interviewer codes a contact
    # An abandoned case is rescheduled and loses no attempt to the dialer's failure.
    for cid in abandoned:
        a = attempts[cid]
        case = cases[a.case_id]
        assert case.status == CaseStatus.READY and case.attempts == 0
        assert case.next_call_at >= a.ended_at.replace(tzinfo=case.next_call_at.tzinfo) + timedelta(minutes=59)
    assert channels_left == [], channels_left


def test_the_team_dialer_paces_the_free_team_on_the_pbx(lab, scratch):
    """The production loop on the real PBX: the study in predictive mode, 3 team members, 6 respondents who
    answer. With no evidence yet for this part of the day the pacer dials one respondent per free member; each
    tick sees the members the queue reports free and the calls still in flight, claims with the predictive
    next_case and dials. Every respondent is reached and connected (nobody abandoned), no call is left up."""
    from cati.services.dialing import set_dialing

    _directory, _url, factory = scratch
    members = MEMBERS[:3]
    people = [range_number("person", 40 + i) for i in range(6)]
    case_of = _cases(factory, people, ent_ref="TEAM-1")
    with transaction(factory) as s:
        admin = create_user(s, "pred-admin", "predictive-lab-1", "admin")
        study = s.scalars(select(Study).order_by(Study.id)).first()
        set_dialing(s, study, admin, mode="predictive", target_pct=3, now=datetime.now(UTC))
        study_id = study.id
        # Cases another test left to call back are not this test's: only the team's six are callable now.
        s.execute(update(Case).where(Case.id.not_in(list(case_of.values())), Case.status == CaseStatus.READY)
                  .values(next_call_at=datetime.now(UTC) + timedelta(days=5)))

    backend = backend_for(lab, 0)
    sink = BatchingEventSink(factory)
    unsubscribe = backend.subscribe(sink)
    connected_at: dict[str, float] = {}
    lock = threading.Lock()

    def collect(event):
        if event.kind == CONNECTED:
            with lock:
                connected_at.setdefault(event.call_id, time.monotonic())

    unsubscribe_collect = backend.subscribe(collect)
    dialer = TeamDialer(factory, backend, study_id, QUEUE, abandon_prompt=lab.abandon_prompt, timeout_s=20)
    placed: list[str] = []
    most_at_once = 0
    try:
        for ext in members:
            backend.join_team(ext, QUEUE)
        hung: set[str] = set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            got = dialer.tick()
            placed += got.placed
            most_at_once = max(most_at_once, len(got.placed))
            assert got.decision.dials <= got.ready  # no evidence: never ahead of the free team
            with lock:
                due = [cid for cid, t in connected_at.items() if cid not in hung and time.monotonic() - t >= TALK_S]
            for cid in due:
                backend.hangup(cid)
                hung.add(cid)
            with factory() as s:
                open_ = s.scalar(select(CallAttempt.id).where(CallAttempt.mode == "predictive",
                                                              CallAttempt.status != AttemptStatus.ENDED).limit(1))
            if len(placed) == len(people) and open_ is None:
                break
            time.sleep(0.3)
        time.sleep(2)
        sink.flush()
        channels_left = lab.channels(lab.pbxes[0])
    finally:
        unsubscribe_collect()
        unsubscribe()
        sink.close()
        for ext in members:
            backend.leave_team(ext, QUEUE)
        backend.close()

    abandon_code = catalogue().code_for("abandoned")
    with factory() as s:
        attempts = s.scalars(select(CallAttempt).where(CallAttempt.call_id.in_(placed))).all()
        dialled = {a.case_id for a in attempts}
    assert len(placed) == 6 and dialled == set(case_of.values())  # each case once
    assert 1 <= most_at_once <= len(members)
    assert all(a.status == AttemptStatus.ENDED for a in attempts)
    assert set(connected_at) == set(placed)  # every person reached an interviewer
    assert not any(a.outcome == abandon_code for a in attempts)
    assert all(a.interviewer_id is not None for a in attempts)
    assert channels_left == [], channels_left
