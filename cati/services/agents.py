"""Interviewer states for the shift (ready, paused with a reason, dialing, talking, wrap-up) and the shift's
counters (dials, contacts, completes, completes per hour). Every function takes a session and only flushes.

The counters are not stored: they are counted from the call attempts and interviews of the interviewer since
``AgentState.shift_started_at``, so they can never drift from the facts supervisors and reports see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from cati.i18n import KeyedError
from cati.models import CallAttempt, Interview, InterviewStatus, User
from cati.models.agents import AgentEvent, AgentState, AgentStatus
from cati.services import audit
from cati.services.dispositions import catalogue

PAUSE_REASONS = ("break", "meal", "training", "meeting", "technical", "other")
DIAL_MODES = ("preview", "progressive")
#: A sign-in more than this long after the last shift started begins a new shift (counters from zero).
SHIFT_GAP = timedelta(hours=12)


class AgentError(KeyedError):
    """A refused state change: a catalogue ``key`` and ``params``; ``str()`` is the English text."""


def state_of(session: Session, user_id: int, now: datetime) -> AgentState:
    """The interviewer's state row (created offline on first use)."""
    row = session.get(AgentState, user_id)
    if row is None:
        row = AgentState(user_id=user_id, status=AgentStatus.OFFLINE, since_at=now, shift_started_at=now,
                         updated_at=now)
        session.add(row)
        session.flush()
    return row


def set_state(session: Session, user_id: int, status: AgentStatus | str, now: datetime, *,
              reason: str | None = None, case_id: int | None = None, call_id: str | None = None) -> AgentState:
    """Move the interviewer to ``status`` (a pause needs one of :data:`PAUSE_REASONS`); logs the change.

    Setting the same status again keeps its ``since_at`` (a page reload must not reset "ready for 12 min").
    """
    status = AgentStatus(status)
    if status == AgentStatus.PAUSED:
        if reason not in PAUSE_REASONS:
            raise AgentError("pause_reason_unknown", reason=reason, reasons=", ".join(PAUSE_REASONS))
    else:
        reason = None
    row = state_of(session, user_id, now)
    changed = row.status != status or row.pause_reason != reason
    if changed:
        row.status, row.pause_reason, row.since_at = status, reason, now
        row.paused_by_id = None  # a supervisor's pause is marked by pause_by_supervisor, after this
        session.add(AgentEvent(user_id=user_id, status=status, reason=reason, at=now))
    row.case_id = case_id
    row.call_id = call_id
    row.updated_at = now
    session.flush()
    return row


def begin_shift(session: Session, user_id: int, now: datetime) -> AgentState:
    """At sign-in: counters restart when the last shift began more than :data:`SHIFT_GAP` ago or the
    interviewer signed out more than an hour ago (a quick sign-out and back in keeps the shift)."""
    row = state_of(session, user_id, now)
    signed_out_long = row.status == AgentStatus.OFFLINE and now - row.since_at > timedelta(hours=1)
    if now - row.shift_started_at > SHIFT_GAP or signed_out_long:
        row.shift_started_at = now
    row.last_seen_at = now
    if row.status == AgentStatus.PAUSED and row.paused_by_id is not None:
        return row  # a supervisor's pause outlives a new sign-in: the supervisor or the interviewer ends it
    return set_state(session, user_id, AgentStatus.READY, now)


def end_shift(session: Session, user_id: int, now: datetime, *, how: str = "logout") -> AgentState:
    from . import logins

    logins.closed(session, user_id, now, how)
    return set_state(session, user_id, AgentStatus.OFFLINE, now)


def pause_by_supervisor(session: Session, user_id: int, now: datetime, *, reason: str, by: int) -> AgentState:
    """A supervisor pauses an interviewer (keeping the case and call they hold); audited."""
    st = state_of(session, user_id, now)
    before = st.status.value
    st = set_state(session, user_id, AgentStatus.PAUSED, now, reason=reason, case_id=st.case_id, call_id=st.call_id)
    st.paused_by_id = by
    session.flush()
    audit.record(session, user_id=by, action="agent.pause", entity="interviewer", entity_id=user_id,
                 before={"status": before}, after={"status": "paused", "reason": reason})
    return st


def sign_out_by_supervisor(session: Session, user_id: int, now: datetime, *, by: int) -> AgentState:
    """A supervisor signs an interviewer out (their session ends on its next request); audited."""
    before = state_of(session, user_id, now).status.value
    st = end_shift(session, user_id, now, how="supervisor")
    audit.record(session, user_id=by, action="agent.sign_out", entity="interviewer", entity_id=user_id,
                 before={"status": before}, after={"status": "offline"})
    return st


@dataclass(frozen=True)
class Presence:
    """What the open console learns from its heartbeat."""

    status: str
    reason: str | None
    paused_by_supervisor: bool
    signed_out: bool


def heartbeat(session: Session, user_id: int, now: datetime) -> Presence:
    """The open console is alive: note it (at most every few seconds a write), and tell it its state — a
    supervisor's pause or sign-out reaches the console this way within one heartbeat."""
    row = state_of(session, user_id, now)
    if row.last_seen_at is None or now - row.last_seen_at >= timedelta(seconds=2):
        row.last_seen_at = now
        session.flush()
    return Presence(row.status.value, row.pause_reason, row.paused_by_id is not None,
                    row.status == AgentStatus.OFFLINE)


#: Live call states: a console that went quiet while its interviewer is on the phone keeps its case (the call
#: goes on without the browser; the interviewer codes it when the console is back).
_ON_A_CALL = (AgentStatus.DIALING, AgentStatus.TALKING)


def sweep_absent(session: Session, now: datetime, timeout: timedelta) -> list[int]:
    """Interviewers whose console has been silent for ``timeout`` go offline, and the case each holds goes back to
    the queue at once (audited as ``agent.absent``). Interviewers on a call keep their case. Returns their ids.

    A state row without any heartbeat yet (``last_seen_at`` None) is left alone: it predates presence.
    """
    from cati.models import Case, CaseStatus

    stale = session.scalars(select(AgentState).where(
        AgentState.status != AgentStatus.OFFLINE, AgentState.last_seen_at.is_not(None),
        AgentState.last_seen_at < now - timeout)).all()
    gone = []
    for row in stale:
        if row.status in _ON_A_CALL and row.call_id:
            continue
        before = row.status.value
        released = []
        for case in session.scalars(select(Case).where(Case.claimed_by_id == row.user_id,
                                                       Case.status == CaseStatus.CLAIMED)):
            case.status = CaseStatus.READY
            case.claimed_by_id = case.claimed_at = case.claim_expires_at = None
            released.append(case.id)
        end_shift(session, row.user_id, now, how="absent")
        audit.record(session, user_id=None, action="agent.absent", entity="interviewer", entity_id=row.user_id,
                     before={"status": before, "last_seen_at": row.last_seen_at.isoformat()},
                     after={"status": "offline", "cases_released": released})
        gone.append(row.user_id)
    session.flush()
    return gone


def set_dial_mode(session: Session, user_id: int, mode: str, now: datetime) -> AgentState:
    if mode not in DIAL_MODES:
        raise AgentError("dial_mode_unknown", mode=mode, modes=", ".join(DIAL_MODES))
    row = state_of(session, user_id, now)
    row.dial_mode = mode
    session.flush()
    return row


@dataclass(frozen=True)
class ShiftCounters:
    """The interviewer's own figures since the shift started."""

    dials: int
    contacts: int
    completes: int
    hours: float

    @property
    def completes_per_hour(self) -> float | None:
        """Completes per hour signed in; None (shown "—") in the first 6 minutes: a rate over minutes means
        nothing, and "0.0" right after a first complete reads as wrong."""
        return self.completes / self.hours if self.hours >= 0.1 else None


def contact_codes() -> frozenset[str]:
    return frozenset(code for code, d in catalogue().items() if d.contacted)


def shift_counters(session: Session, user_id: int, now: datetime) -> ShiftCounters:
    """Dials (attempts placed), contacts (attempts answered by a person or coded with a contact code),
    completes (interviews completed) since the shift started."""
    row = state_of(session, user_id, now)
    since = row.shift_started_at
    codes = sorted(contact_codes())
    # A contact: coded with a contact code, or answered by a person and not coded yet (a call in progress).
    person = and_(CallAttempt.answered_at.is_not(None), CallAttempt.outcome.is_(None),
                  func.coalesce(CallAttempt.machine_detection, "").not_in(["MACHINE", "FAX"]))
    dials, contacts = session.execute(
        select(func.count(CallAttempt.id),
               func.count(CallAttempt.id).filter(or_(CallAttempt.outcome.in_(codes), person)))
        .where(CallAttempt.interviewer_id == user_id, CallAttempt.requested_at >= since)
    ).one()
    completes = session.scalar(
        select(func.count(Interview.id)).where(Interview.interviewer_id == user_id,
                                               Interview.status == InterviewStatus.COMPLETE,
                                               Interview.ended_at >= since)
    )
    hours = max((now - since).total_seconds() / 3600.0, 0.0)
    return ShiftCounters(int(dials or 0), int(contacts or 0), int(completes or 0), hours)


@dataclass(frozen=True)
class AgentRow:
    user_id: int
    username: str
    display_name: str
    status: str
    pause_reason: str | None
    since_at: datetime
    case_id: int | None
    counters: ShiftCounters


def board(session: Session, now: datetime) -> list[AgentRow]:
    """Every interviewer who has a state, with counters (the supervisors' interviewer board)."""
    rows = session.execute(
        select(AgentState, User.username, User.display_name).join(User, User.id == AgentState.user_id)
        .order_by(User.username)
    ).all()
    return [AgentRow(st.user_id, username, name, st.status.value, st.pause_reason, st.since_at, st.case_id,
                     shift_counters(session, st.user_id, now)) for st, username, name in rows]


# ------------------------------------------------------------------------------------------ outcome choices

def refusal_codes() -> frozenset[str]:
    """Refusal codes (catalogue ``refusal: true``): the interviewer records a reason with them."""
    return catalogue().codes_where(refusal=True)


REFUSAL_REASONS = ("busy", "not_interested", "privacy", "distrust", "too_long", "hostile", "other")


def outcome_choices(call_state: str, *, interview_started: bool) -> list[str]:
    """The disposition codes that make sense for how the call went, in the order shown to the interviewer.

    Parameters
    ----------
    call_state : ``"human"`` (a person answered), ``"machine"`` (answering machine / fax) or ``"no_answer"``
        (never answered: busy, ringing out, dead line).
    interview_started : the questionnaire was begun (then 2.12 break-off is offered, and the contact codes that
        would contradict a begun interview — household refusal, out of sample… — remain for screening results).

    Returns
    -------
    list of str
        After an answered call only contact codes (never a no-answer code); after a machine only machine codes;
        without an answer only non-contact codes. Completes and quota closures are never offered.

    >>> outcome_choices("no_answer", interview_started=False)[:2]
    ['3.13', '3.12']
    >>> "3.13" in outcome_choices("human", interview_started=False)
    False
    """
    if call_state not in ("human", "machine", "no_answer"):
        raise AgentError("call_state_unknown", state=call_state)
    # What each code is offered after is catalogue data (``offered``): once the respondent is being interviewed,
    # "call me later" is a break-off with an appointment and a household-level refusal no longer fits.
    state = ("interviewing" if interview_started else "answered") if call_state == "human" else call_state
    return catalogue().offered_after(state)
