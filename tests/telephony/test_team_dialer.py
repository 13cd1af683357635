"""The team dialer's decisions (issue 18): it dials only in predictive mode, as many respondents as the pacer says
for the team the PBX reports free, claims them with next_case(predictive=True) (never a case abandoned within
72 hours), and gives back the claims of dials the backend refused.

The PBX here is a recorder of what the loop asks for (``place_predictive_call`` / ``team_members``): these tests
check the loop's decisions. Placing the calls on Asterisk is the lab's (tests/telephony/lab/)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from cati.db import transaction
from cati.models import CallAttempt, Case, CaseStatus, Role, Study
from cati.models.calls import AttemptStatus
from cati.services.dialing import set_dialing
from cati.services.dispositions import catalogue
from cati.telephony.simulated import SimulatedBackend
from cati.telephony.team_dialer import TeamDialer
from tests import factories as f

NOW = f.MONDAY_10AM
QUEUE = "cati-predictive"


class RecordingPbx(SimulatedBackend):
    """Records the predictive calls asked of it; its queue has the members the test gives."""

    def __init__(self, members):
        super().__init__()
        self.members = members
        self.calls: list[tuple[str, str, str]] = []

    def team_members(self, team_queue):
        assert team_queue == QUEUE
        return self.members

    def place_predictive_call(self, call_id, to_e164, team_queue, **kw):
        self.calls.append((call_id, to_e164, team_queue))


def member(ext, *, paused=False, in_call=False):
    return {"extension": ext, "paused": paused, "in_call": in_call, "calls_taken": 0, "status": "1"}


@pytest.fixture
def team_world(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        ent = f.enterprise(s, st)
        ids = f.cases(s, st, ent, 6)
        admin = f.user(s, Role.ADMIN, username="root")
    return {"study_id": study.id, "case_ids": ids, "admin": admin.id}


def _mode(session_factory, w, mode):
    from cati.models import User

    with transaction(session_factory) as s:
        set_dialing(s, s.get(Study, w["study_id"]), s.get(User, w["admin"]), mode=mode, target_pct=3, now=NOW)


def _dialer(session_factory, w, backend):
    return TeamDialer(session_factory, backend, w["study_id"], QUEUE, clock=lambda: NOW)


def test_nothing_is_dialled_unless_the_study_dials_predictively(session_factory, team_world):
    pbx = RecordingPbx([member("8001"), member("8002")])
    got = _dialer(session_factory, team_world, pbx).tick()
    assert got.decision.dials == 0 and "preview" in got.decision.reason
    assert pbx.calls == []
    with session_factory() as s:
        assert s.scalar(select(CallAttempt.id)) is None


def test_one_call_per_free_member_while_evidence_is_thin_and_none_while_they_ring(session_factory, team_world):
    _mode(session_factory, team_world, "predictive")
    pbx = RecordingPbx([member("8001"), member("8002"), member("8003"), member("8004", paused=True),
                        member("8005", in_call=True)])
    dialer = _dialer(session_factory, team_world, pbx)
    got = dialer.tick()
    # A new study has no evidence for this part of the day: the pacer behaves as progressive.
    assert (got.ready, got.decision.mode, got.decision.dials) == (3, "progressive", 3)
    assert len(got.placed) == 3 and [c[2] for c in pbx.calls] == [QUEUE] * 3
    with session_factory() as s:
        attempts = s.scalars(select(CallAttempt)).all()
        assert {a.mode for a in attempts} == {"predictive"} and {a.interviewer_id for a in attempts} == {None}
        cases = {a.case_id for a in attempts}
        assert len(cases) == 3
        assert all(s.get(Case, c).status == CaseStatus.CLAIMED for c in cases)
    # Three calls ringing for three free members: nothing more until they end or connect.
    again = dialer.tick()
    assert again.decision.dials == 0 and again.placed == [] and len(pbx.calls) == 3


def test_a_case_abandoned_within_72_hours_is_skipped(session_factory, team_world):
    _mode(session_factory, team_world, "predictive")
    code = catalogue().code_for("abandoned")
    held = team_world["case_ids"][:5]
    with transaction(session_factory) as s:
        for i, cid in enumerate(held):
            s.add(CallAttempt(call_id=f"old-{i}", case_id=cid, backend="simulated", mode="predictive",
                              requested_at=NOW - timedelta(hours=24), status=AttemptStatus.ENDED, outcome=code,
                              outcome_source="dialer"))
    pbx = RecordingPbx([member("8001"), member("8002"), member("8003")])
    got = _dialer(session_factory, team_world, pbx).tick()
    assert got.decision.dials == 3 and len(got.placed) == 1 and got.no_case is not None
    with session_factory() as s:
        dialled = s.scalar(select(CallAttempt.case_id).where(CallAttempt.call_id == got.placed[0]))
    assert dialled == team_world["case_ids"][5]


def test_dials_the_backend_refuses_give_their_cases_back(session_factory, team_world):
    _mode(session_factory, team_world, "predictive")
    pbx = SimulatedBackend()  # no predictive dialing: every dial is refused
    with transaction(session_factory) as s:
        from cati.models.agents import AgentState, AgentStatus

        for i in range(2):
            u = f.user(s, username=f"iv{i}")
            s.add(AgentState(user_id=u.id, status=AgentStatus.READY))
    try:
        got = _dialer(session_factory, team_world, pbx).tick()
    finally:
        pbx.close()
    assert got.ready == 2 and got.failed == 2 and got.placed == []
    with session_factory() as s:
        assert {c.status for c in s.scalars(select(Case))} == {CaseStatus.READY}
        attempts = s.scalars(select(CallAttempt)).all()
        assert len(attempts) == 2 and {a.outcome_source for a in attempts} == {"system"}
        assert all(c.attempts == 0 for c in s.scalars(select(Case)))  # refused dials cost no attempt
