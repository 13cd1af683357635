"""The team dialer: predictive dialing for a study's team, one pacing step at a time (issue 18).

Each :meth:`TeamDialer.tick` asks the pacer (:mod:`cati.services.pacer`) how many respondents to dial now for the
team — the interviewers the PBX offers calls to and who are neither paused nor on a call, the predictive calls
still in flight, P(a person answers) in this part of the day from the study's own dials, today's and the last
hour's abandon rate against the study's target — then claims that many cases with the scheduler's predictive
variant (``next_case(..., predictive=True)``: never a case the dialer abandoned within its 72-hour hold) and dials
each with :func:`cati.telephony.dialer.dial_predictive_and_commit`. The PBX connects an answered person to a free
team member or plays the firm's message (events ``connected`` / ``abandoned``, folded by ``apply_event``).

Nothing is dialled unless the study's dialing mode (``calling_rules.dialing.mode``, set on the supervisor's Dialing
screen) is ``predictive``. :meth:`TeamDialer.run` repeats the step until told to stop (a worker thread of the
event worker or ``cati serve``); each step commits its own short transactions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from cati.models import Case, CaseStatus, Study
from cati.services.dialing import pacer_input, ready_interviewers, settings_of
from cati.services.pacer import PacerDecision, decide
from cati.services.scheduling import NoCase, next_case

from .base import TelephonyBackend, TelephonyError
from .dialer import dial_predictive_and_commit

log = logging.getLogger(__name__)


@dataclass
class TickResult:
    decision: PacerDecision
    ready: int = 0
    placed: list[str] = field(default_factory=list)   # call ids
    no_case: NoCase | None = None                      # why fewer cases than dials were claimed
    failed: int = 0                                     # dials the backend refused (their claims released)


class TeamDialer:
    """Parameters
    ----------
    factory : sessionmaker (each claim and each dial commits its own transaction).
    backend : a backend with predictive dialing (Asterisk: :class:`cati.telephony.ami.AmiBackend`); its events
        must reach :func:`cati.telephony.dialer.apply_event` (``event_sink`` / ``BatchingEventSink``).
    study_id, team_queue : whose cases, and the PBX queue of the team (``cati-predictive``).
    clock : UTC now (default: the real clock).
    """

    def __init__(self, factory: sessionmaker, backend: TelephonyBackend, study_id: int, team_queue: str, *,
                 caller_id: str | None = None, machine_detection: bool = True, timeout_s: int = 30,
                 connect_within_s: int = 2, abandon_prompt: str | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.factory, self.backend, self.study_id, self.team_queue = factory, backend, study_id, team_queue
        self.dial_options = {"caller_id": caller_id, "machine_detection": machine_detection, "timeout_s": timeout_s,
                             "connect_within_s": connect_within_s, "abandon_prompt": abandon_prompt}
        self.clock = clock or (lambda: datetime.now(UTC))

    def ready_members(self, session) -> int:
        """Team members free for a call now: as the PBX sees its queue when the backend can say (not paused, not
        on a call), else the interviewers whose console says they are ready."""
        members = getattr(self.backend, "team_members", None)
        if members is not None:
            return sum(1 for m in members(self.team_queue) if not m["paused"] and not m["in_call"])
        return ready_interviewers(session)

    def plan(self, now: datetime) -> tuple[PacerDecision, int]:
        """The pacer's decision for the team now (no dials unless the study dials predictively)."""
        with self.factory() as s:
            study = s.get(Study, self.study_id)
            mode = settings_of(study).mode
            if mode != "predictive":
                return PacerDecision(0, "none", f"the study dials in {mode} mode", 0.0), 0
            ready = self.ready_members(s)
            return decide(pacer_input(s, study, now, ready=ready)), ready

    def tick(self) -> TickResult:
        """One pacing step: decide, claim, dial. Returns what was done."""
        now = self.clock()
        decision, ready = self.plan(now)
        result = TickResult(decision, ready)
        for _ in range(decision.dials):
            with self.factory() as s, s.begin():
                got = next_case(s, s.get(Study, self.study_id), None, now, predictive=True)
            if isinstance(got, NoCase):
                result.no_case = got
                break
            try:
                result.placed.append(dial_predictive_and_commit(self.factory, self.backend, got.case_id, None,
                                                                self.team_queue, now=now, **self.dial_options))
            except (TelephonyError, ValueError) as exc:
                log.warning("team dialer: case %s not dialled: %s", got.case_id, exc)
                self._release(got.case_id)
                result.failed += 1
        return result

    def _release(self, case_id: int) -> None:
        """A claim whose dial never went out goes back to the pool (a claim the dialer holds has no holder)."""
        with self.factory() as s, s.begin():
            s.execute(update(Case).where(Case.id == case_id, Case.status == CaseStatus.CLAIMED,
                                         Case.claimed_by_id.is_(None))
                      .values(status=CaseStatus.READY, claimed_at=None, claim_expires_at=None))

    def run(self, stop: threading.Event, every_s: float = 1.0) -> None:
        """Tick until ``stop`` is set (a step that fails is logged and the next one tries again)."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a worker loop must outlive one bad step
                log.exception("team dialer step failed")
            stop.wait(every_s)
