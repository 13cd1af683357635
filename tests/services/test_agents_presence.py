"""Presence and a supervisor's pause: a console that goes silent is offline and its case goes back to the queue;
a supervisor's pause reaches the console's heartbeat and outlives a new sign-in."""

from __future__ import annotations

from datetime import timedelta

from cati.db import transaction
from cati.models import AuditLog, Case, CaseStatus, Role, Study
from cati.models.agents import AgentStatus
from cati.services import agents
from cati.services.scheduling import next_case
from tests import factories as f

NOW = f.MONDAY_10AM
TIMEOUT = timedelta(seconds=45)


def _claimed(s, study, iv_id):
    st = s.get(Study, study.id)
    ent = f.enterprise(s, st)
    f.cases(s, st, ent, 2, next_call_at=NOW - timedelta(minutes=5))
    agents.begin_shift(s, iv_id, NOW)
    claim = next_case(s, st, iv_id, NOW)
    return claim.case_id


def test_a_silent_console_goes_offline_and_its_case_back_to_the_queue(session_factory, study):
    with transaction(session_factory) as s:
        iv, other = f.user(s).id, f.user(s).id
        case_id = _claimed(s, study, iv)
        agents.begin_shift(s, other, NOW)
    with transaction(session_factory) as s:
        agents.heartbeat(s, iv, NOW + timedelta(seconds=10))
        agents.heartbeat(s, other, NOW + timedelta(seconds=50))
        # 44 s after the last beat: still here.
        assert agents.sweep_absent(s, NOW + timedelta(seconds=54), TIMEOUT) == []
        gone = agents.sweep_absent(s, NOW + timedelta(seconds=56), TIMEOUT)
    assert gone == [iv]
    with session_factory() as s:
        case = s.get(Case, case_id)
        assert case.status == CaseStatus.READY and case.claimed_by_id is None
        assert agents.state_of(s, iv, NOW).status == AgentStatus.OFFLINE
        assert agents.state_of(s, other, NOW).status == AgentStatus.READY
        entry = s.query(AuditLog).filter_by(action="agent.absent").one()
        assert entry.entity_id == str(iv) and entry.after["cases_released"] == [case_id]


def test_an_interviewer_on_a_call_keeps_the_case_when_the_browser_goes(session_factory, study):
    with transaction(session_factory) as s:
        iv = f.user(s).id
        case_id = _claimed(s, study, iv)
        agents.set_state(s, iv, AgentStatus.TALKING, NOW, case_id=case_id, call_id="call-1")
        agents.heartbeat(s, iv, NOW)
    with transaction(session_factory) as s:
        assert agents.sweep_absent(s, NOW + timedelta(minutes=5), TIMEOUT) == []
        assert s.get(Case, case_id).claimed_by_id == iv


def test_a_supervisors_pause_reaches_the_heartbeat_and_outlives_a_new_sign_in(session_factory, study):
    with transaction(session_factory) as s:
        iv, sup = f.user(s).id, f.user(s, Role.SUPERVISOR).id
        agents.begin_shift(s, iv, NOW)
        assert not agents.heartbeat(s, iv, NOW).paused_by_supervisor
        agents.pause_by_supervisor(s, iv, NOW, reason="training", by=sup)
        beat = agents.heartbeat(s, iv, NOW + timedelta(seconds=5))
        assert (beat.status, beat.reason, beat.paused_by_supervisor) == ("paused", "training", True)
        # Signing in again does not clear it.
        assert agents.begin_shift(s, iv, NOW + timedelta(minutes=1)).status == AgentStatus.PAUSED
        # The interviewer's own "ready" ends it; their own pause is not a supervisor's.
        agents.set_state(s, iv, AgentStatus.READY, NOW + timedelta(minutes=2))
        agents.set_state(s, iv, AgentStatus.PAUSED, NOW + timedelta(minutes=3), reason="meal")
        assert not agents.heartbeat(s, iv, NOW + timedelta(minutes=3)).paused_by_supervisor
        assert agents.begin_shift(s, iv, NOW + timedelta(minutes=4)).status == AgentStatus.READY
