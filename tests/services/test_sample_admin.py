"""Supervisor actions on the sample: each one changes what the scheduler hands out, and each is audited."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from cati.db import transaction
from cati.models import (
    Appointment,
    AuditLog,
    Case,
    CaseStatus,
    DoNotCall,
    Enterprise,
    EnterpriseStatus,
    Study,
    User,
)
from cati.services import sample_admin as sa
from cati.services.scheduling import NoCase, next_case, record_outcome
from tests import factories as f

NOW = f.MONDAY_10AM


@pytest.fixture
def world(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e1 = f.enterprise(s, st, name="甲银行")
        c1 = f.cases(s, st, e1, 2)
        f.cases(s, st, e1, 3, status=CaseStatus.UNRELEASED, replicate=2)
        iv1, iv2, iv3 = f.user(s), f.user(s), f.user(s)
        sup = f.user(s, "supervisor")
    return dict(study=st, e1=e1.id, c1=c1, iv1=iv1.id, iv2=iv2.id, iv3=iv3.id, sup=sup.id)


def actions(s):
    """The supervisors' audited actions (next_case's automatic replicate releases, by nobody, aside)."""
    return s.scalars(select(AuditLog.action).where(AuditLog.user_id.is_not(None)).order_by(AuditLog.id)).all()


def test_release_replicate_makes_cases_callable_and_is_audited(session_factory, world):
    with transaction(session_factory) as s:
        assert sa.unreleased_replicates(s, world["e1"]) == [(2, 3)]
        assert sa.unreleased_by_enterprise(s, world["study"].id) == {world["e1"]: [(2, 3)]}
        assert sa.release(s, world["e1"], None, NOW, user_id=world["sup"]) == 3
    with transaction(session_factory) as s:
        n_ready = len(s.scalars(select(Case.id).where(Case.status == CaseStatus.READY)).all())
        assert n_ready == 5 and sa.unreleased_replicates(s, world["e1"]) == []
        entry = s.scalar(select(AuditLog))
        assert (entry.action, entry.user_id, entry.after["cases"]) == ("replicate.release", world["sup"], 3)
        with pytest.raises(sa.SampleAdminError) as err:
            sa.release(s, world["e1"], None, NOW, user_id=world["sup"])
        assert "没有可释放" in err.value.message("zh-CN")


def test_stopped_enterprise_is_not_called_until_resumed(session_factory, world):
    with transaction(session_factory) as s:
        sa.set_enterprise_status(s, world["e1"], True, user_id=world["sup"], note="客户要求暂停")
    with transaction(session_factory) as s:
        assert isinstance(next_case(s, world["study"], world["iv1"], NOW), NoCase)
    with transaction(session_factory) as s:
        sa.set_enterprise_status(s, world["e1"], False, user_id=world["sup"])
        assert s.get(Enterprise, world["e1"]).status == EnterpriseStatus.ACTIVE
    with transaction(session_factory) as s:
        assert next_case(s, world["study"], world["iv1"], NOW).case_id in world["c1"]
        assert actions(s) == ["enterprise.stop", "enterprise.resume"]


def test_stop_and_resume_a_case(session_factory, world):
    a, b = world["c1"]
    with transaction(session_factory) as s:
        sa.stop_case(s, a, user_id=world["sup"])
    with transaction(session_factory) as s:
        assert next_case(s, world["study"], world["iv1"], NOW).case_id == b  # a is out of calling
    with transaction(session_factory) as s:
        with pytest.raises(sa.SampleAdminError, match="being dialed"):
            sa.stop_case(s, b, user_id=world["sup"])
        case = sa.resume_case(s, a, NOW, user_id=world["sup"])
        assert case.status == CaseStatus.READY
    with transaction(session_factory) as s:
        assert next_case(s, world["study"], world["iv2"], NOW).case_id == a
        assert actions(s) == ["case.stop", "case.resume"]


def test_moved_appointment_goes_to_the_new_interviewer(session_factory, world):
    a, b = world["c1"]
    due = NOW + timedelta(hours=1)  # 11:00 local, inside the morning window
    with transaction(session_factory) as s:
        s.execute(Case.__table__.update().where(Case.id == a).values(next_call_at=due))
        appt = Appointment(study_id=world["study"].id, case_id=a, interviewer_id=world["iv1"], due_at=due)
        s.add(appt)
        s.flush()
        appt_id = appt.id
        s.execute(Case.__table__.update().where(Case.id == b).values(status="stopped"))
    with transaction(session_factory) as s:
        sa.move_appointment(s, appt_id, world["iv2"], user_id=world["sup"], note="王芳请假")
        entry = s.scalar(select(AuditLog))
        assert entry.before["interviewer_id"] == world["iv1"] and entry.after["interviewer_id"] == world["iv2"]
        rows = sa.pending_appointments(s, world["study"].id)
        assert [(r["id"], r["interviewer_id"]) for r in rows] == [(appt_id, world["iv2"])]
    with transaction(session_factory) as s:
        claim = next_case(s, world["study"], world["iv2"], due)
        assert (claim.case_id, claim.source) == (a, "own_appointment")
    with transaction(session_factory) as s:
        with pytest.raises(sa.SampleAdminError, match="not an active interviewer"):
            sa.move_appointment(s, appt_id, world["sup"], user_id=world["sup"])


def test_move_all_appointments_of_an_interviewer(session_factory, world):
    with transaction(session_factory) as s:
        for cid in world["c1"]:
            s.add(Appointment(study_id=world["study"].id, case_id=cid, interviewer_id=world["iv1"], due_at=NOW))
    with transaction(session_factory) as s:
        assert sa.move_all_appointments(s, world["iv1"], None, user_id=world["sup"]) == 2
        owners = s.scalars(select(Appointment.interviewer_id)).all()
        assert owners == [None, None] and actions(s) == ["appointment.move"] * 2


def test_reassigned_case_is_reserved_for_its_interviewer(session_factory, world):
    a, b = world["c1"]
    with transaction(session_factory) as s:
        # Every case reserved (the sample left unreleased would otherwise be released automatically for iv1).
        sa.release(s, world["e1"], None, NOW, user_id=world["sup"])
        ids = s.scalars(select(Case.id).where(Case.enterprise_id == world["e1"])).all()
        for case_id in ids:
            sa.reassign_case(s, case_id, world["iv3"], user_id=world["sup"])
    with transaction(session_factory) as s:
        assert isinstance(next_case(s, world["study"], world["iv1"], NOW), NoCase)
    with transaction(session_factory) as s:
        assert next_case(s, world["study"], world["iv3"], NOW).case_id in (a, b)


def test_do_not_call_as_typed_stops_the_case_and_audits_masked(session_factory, world):
    a, _b = world["c1"]
    with transaction(session_factory) as s:
        number = s.get(Case, a).phones[0].e164  # +86139000000NN
        typed = f"{number[3:6]} {number[6:10]}-{number[10:]}"
        added, stopped, bad = sa.add_do_not_call(s, [typed, "12", ""], NOW, user_id=world["sup"], reason="投诉")
        assert (added, stopped) == (1, 1) and len(bad) == 1 and bad[0][0] == "12"  # too short to be a number: shown as typed
    with transaction(session_factory) as s:
        assert s.get(Case, a).status == CaseStatus.STOPPED
        assert s.scalar(select(DoNotCall.e164)) == number
        entry = s.scalar(select(AuditLog))
        assert entry.action == "dnc.add" and number[3:] not in json.dumps(entry.after)
        assert entry.after["numbers"] == [f"{number[3:6]}****{number[-4:]}"]
        with pytest.raises(sa.SampleAdminError, match="do-not-call"):
            sa.resume_case(s, a, NOW, user_id=world["sup"])


def test_soft_refusals_handed_to_chosen_converters_in_turn(session_factory, world):
    with transaction(session_factory) as s:
        sa.release(s, world["e1"], None, NOW, user_id=world["sup"])
    refused = []
    for iv in (world["iv1"], world["iv2"], world["iv3"]):
        with transaction(session_factory) as s:
            claim = next_case(s, world["study"], iv, NOW)
            record_outcome(s, s.get(Case, claim.case_id), "2.113", NOW, interviewer_id=iv)
            refused.append(claim.case_id)
    with transaction(session_factory) as s:
        out = sa.assign_refusal_conversion(s, world["study"].id, [world["iv2"], world["iv3"]], user_id=world["sup"])
        assert out == {world["iv2"]: sorted(refused)[0::2], world["iv3"]: sorted(refused)[1::2]}
        assert s.get(User, world["iv2"]).refusal_converter and not s.get(User, world["iv1"]).refusal_converter
    later = NOW + timedelta(days=3, hours=1)
    with transaction(session_factory) as s:
        # Not a converter: gets other sample, never a refusal.
        got = next_case(s, world["study"], world["iv1"], later)
        assert got.case_id not in refused
    # The converter iv3 works through what he is given: of the refusals, only the one reserved for him.
    received = []
    for _ in range(6):
        with transaction(session_factory) as s:
            got = next_case(s, world["study"], world["iv3"], later, converter=True)
            if isinstance(got, NoCase):
                break
            received.append(got.case_id)
            record_outcome(s, s.get(Case, got.case_id), "3.13", later, interviewer_id=world["iv3"])
    assert [c for c in received if c in refused] == [sorted(refused)[1]]
    with pytest.raises(sa.SampleAdminError):
        with transaction(session_factory) as s:
            sa.assign_refusal_conversion(s, world["study"].id, [], user_id=world["sup"])


def test_an_assigned_case_is_the_assignees_next_case(session_factory, world):
    # "指定访员" routes the case: the assignee gets it next, ahead of the general queue.
    ids = None
    with transaction(session_factory) as s:
        sa.release(s, world["e1"], None, NOW, user_id=world["sup"])
        ids = s.scalars(select(Case.id).where(Case.enterprise_id == world["e1"]).order_by(Case.id)).all()
        last = ids[-1]
        sa.reassign_case(s, last, world["iv2"], user_id=world["sup"], note="熟客")
    with transaction(session_factory) as s:
        claim = next_case(s, world["study"], world["iv2"], NOW)
    assert (claim.case_id, claim.source) == (last, "assigned")
