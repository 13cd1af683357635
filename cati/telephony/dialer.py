"""The dialer: call events → stored call attempts, plus preview and progressive dialing.

:func:`apply_event` is the one place where telephony facts reach the database. It is idempotent and
monotone, so the same code serves AMI events, Twilio callbacks that repeat or arrive out of order,
and the simulated backend:

* a timestamp keeps the earliest report (a repeated or late ``ringing`` changes nothing, and the
  result does not depend on arrival order);
* the status never moves back (``ringing`` after ``ended`` does not reopen the attempt);
* blank facts are filled by later events (an OriginateResponse arriving after the last Hangup
  still records its Reason), known facts are not overwritten;
* when the attempt has ended and nobody coded it, :func:`cati.telephony.base.auto_outcome` gives
  the AAPOR outcome the network knows (busy, no answer ≥ 15 s, machine, rejected, technical,
  non-working); the case is then moved on by the scheduler's ``record_outcome``. Contacts with a
  person are left to the interviewer.

Services only flush; the caller commits (:func:`event_sink` does, for backends' event threads).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from cati.models import Case, CasePhone, CaseStatus, PhoneStatus
from cati.models.calls import AttemptStatus, CallAttempt

from .base import (
    ABANDONED,
    ANSWER_KINDS,
    CONNECTED,
    ENDED,
    PLACED,
    RINGING,
    CallEvent,
    TelephonyBackend,
    TelephonyError,
    auto_outcome,
    mask_number,
)

log = logging.getLogger(__name__)

_ORDER = {AttemptStatus.REQUESTED: 0, AttemptStatus.PLACED: 1, AttemptStatus.RINGING: 2,
          AttemptStatus.ANSWERED: 3, AttemptStatus.ENDED: 4}
_KIND_STATUS = {PLACED: AttemptStatus.PLACED, RINGING: AttemptStatus.RINGING, ENDED: AttemptStatus.ENDED,
                **{k: AttemptStatus.ANSWERED for k in ANSWER_KINDS}}
_KIND_STAMP = {PLACED: "placed_at", RINGING: "ringing_at", ENDED: "ended_at", **{k: "answered_at" for k in ANSWER_KINDS}}

#: Attempt outcome of a dial whose interviewer leg failed (the respondent was never dialled).
SYSTEM_NOTE = "interviewer leg failed; respondent not dialled / 访员线路失败，未拨打受访者"


def _fill(obj, name: str, value) -> None:
    if value is not None and getattr(obj, name) is None:
        setattr(obj, name, value)


_BY_CALL_ID = select(CallAttempt).where(CallAttempt.call_id == bindparam("call_id"))


def apply_event(session: Session, event: CallEvent, *, settle_case: bool = True,
                now: datetime | None = None, attempt: CallAttempt | None = None,
                flush: bool = True) -> CallAttempt | None:
    """Fold one call event into its attempt (by ``call_id``); returns it, or ``None`` if unknown.

    Parameters
    ----------
    session : flushed (unless ``flush`` is false), not committed.
    event : from any backend.
    settle_case : when an automatic outcome is first set, apply it to the case through
        :func:`cati.services.scheduling.record_outcome` (retry time, final code, claim released).
    now : the time used for the case's retry rules (default: now, UTC).
    attempt : the event's attempt when the caller already holds it in this session (the simulated backend,
        which created it a moment ago); its ``call_id`` must be the event's. Backends whose events arrive on
        their own leave it out and the attempt is looked up by ``call_id``.
    flush : false leaves the attempt's changes to the session's next flush (autoflush before a query, or the
        commit), so that a caller folding several events of one call into one transaction writes the row
        once (an automatic outcome that moves the case is flushed by ``record_outcome`` anyway).
    """
    if attempt is None:
        attempt = session.scalar(_BY_CALL_ID, {"call_id": event.call_id})
        if attempt is None:
            log.warning("call event %s for unknown call %s ignored", event.kind, event.call_id)
            return None
    elif attempt.call_id != event.call_id:
        raise ValueError(f"apply_event: event for call {event.call_id} given attempt of call {attempt.call_id}")
    if event.kind in (CONNECTED, ABANDONED):
        _predictive_event(session, attempt, event, settle_case, now or datetime.now(UTC))
        if flush:
            session.flush()
        return attempt
    stamp = _KIND_STAMP[event.kind]
    current = getattr(attempt, stamp)
    if current is None or event.at < current:
        setattr(attempt, stamp, event.at)  # the earliest report wins, whatever the arrival order
    new = _KIND_STATUS[event.kind]
    if _ORDER[new] > _ORDER[attempt.status]:
        attempt.status = new
    _fill(attempt, "backend_call_id", event.backend_call_id)
    _fill(attempt, "machine_detection", event.amd_status)
    _fill(attempt, "amd_cause", (event.amd_cause or "")[:64] or None)
    _fill(attempt, "recording_uri", (event.recording or "")[:500] or None)
    if event.kind == ENDED:
        _fill(attempt, "hangup_cause", event.hangup_cause)
        _fill(attempt, "hangup_cause_text", (event.cause_text or "")[:64] or None)
        _fill(attempt, "originate_reason", event.originate_reason)
        if hasattr(attempt, "dial_status"):
            _fill(attempt, "dial_status", event.dial_status)
    if attempt.status == AttemptStatus.ENDED and attempt.outcome_source in (None, "auto"):
        _auto_code(session, attempt, event, settle_case, now or datetime.now(UTC))
    if flush:
        session.flush()
    return attempt


def _auto_code(session: Session, attempt: CallAttempt, event: CallEvent, settle: bool, now: datetime) -> None:
    facts = {
        "placed_at": attempt.placed_at, "ringing_at": attempt.ringing_at, "answered_at": attempt.answered_at,
        "ended_at": attempt.ended_at, "hangup_cause": attempt.hangup_cause,
        "originate_reason": attempt.originate_reason, "machine_detection": attempt.machine_detection,
        # Only facts stored on the row (plus the ended event's own dial status), so that the verdict
        # does not depend on which event happened to arrive last.
        "dial_status": getattr(attempt, "dial_status", None) or (event.dial_status if event.kind == ENDED else None),
        "leg": event.leg,
    }
    if event.leg == "interviewer" and attempt.answered_at is None:
        if attempt.outcome_source is None:
            attempt.outcome_source = "system"
            detail = f" ({event.cause_text})" if event.cause_text else ""
            attempt.notes = attempt.notes or (SYSTEM_NOTE + detail)[:2000]
            case = session.get(Case, attempt.case_id)
            if case is not None and case.attempts > 0:
                case.attempts -= 1  # a dial that never reached the respondent does not use up an attempt
        return
    code = auto_outcome(facts)
    if code == attempt.outcome:
        return
    if code is None:
        # A late fact (the answer) withdrew the network's verdict: a person must code this attempt.
        attempt.outcome = attempt.outcome_source = None
        return
    first = attempt.outcome is None
    attempt.outcome = code
    attempt.outcome_source = "auto"
    if first and settle:
        from cati.services.scheduling import record_outcome

        case = session.get(Case, attempt.case_id)
        from cati.services.dispositions import catalogue

        cat = catalogue()
        if code in (cat.code_for("non_working"), cat.code_for("disconnected")) and attempt.phone_id is not None:
            phone = session.get(CasePhone, attempt.phone_id)
            if phone is not None and phone.status == PhoneStatus.OK:
                phone.status = PhoneStatus.INVALID
            if any(p.status == PhoneStatus.OK for p in case.phones if p.id != attempt.phone_id):
                # Only this number is dead: the case stays open and its next number is tried next.
                case.last_outcome = code
                case.status = CaseStatus.READY
                case.claimed_by_id = case.claimed_at = case.claim_expires_at = None
                case.next_call_at = now
                return
        record_outcome(session, case, code, now, interviewer_id=attempt.interviewer_id)


def _predictive_event(session: Session, attempt: CallAttempt, event: CallEvent, settle: bool, now: datetime) -> None:
    """Predictive dialing: the person was connected to an interviewer, or the call was abandoned.

    Connected: the attempt and the case become the interviewer's (the case is claimed by them, so their
    console opens it with its intro). Abandoned: the dialer codes the attempt with the catalogue's ``abandoned``
    code (source ``dialer``: the network's facts at the end do not overrule it), the dial is not charged against
    the attempt cap, and the case is rescheduled by the catalogue's retry rule.
    """
    from cati.models import User
    from cati.services.dispositions import catalogue

    case = session.get(Case, attempt.case_id)
    if event.kind == CONNECTED:
        if attempt.outcome_source == "dialer":
            log.warning("call %s connected after it was coded abandoned; kept abandoned", attempt.call_id)
            return
        user = session.scalar(select(User).where(User.extension == event.interviewer_extension)) \
            if event.interviewer_extension else None
        if user is None:
            log.warning("call %s connected to unknown extension %s", attempt.call_id, event.interviewer_extension)
            return
        _fill(attempt, "interviewer_id", user.id)
        if case is not None and case.status in (CaseStatus.READY, CaseStatus.CLAIMED) and settle:
            from cati.models import Study
            from cati.services.scheduling import rules_for

            rules = rules_for(session.get(Study, case.study_id))
            case.status = CaseStatus.CLAIMED
            case.claimed_by_id = user.id
            case.claimed_at = now
            case.claim_expires_at = now + timedelta(minutes=rules.claim_timeout_minutes)
        return
    cat = catalogue()
    code = cat.code_for("abandoned")
    if attempt.outcome is not None and attempt.outcome_source != "auto":
        return  # already coded (a repeated event, or an interviewer's code)
    attempt.outcome = code
    attempt.outcome_source = "dialer"
    attempt.notes = attempt.notes or "predictive: no interviewer free in time; message played / 无空闲访员，已播放告知语音"
    if case is not None and not cat[code].counts_attempt and case.attempts > 0:
        case.attempts -= 1
    if settle and case is not None and case.final_disposition is None:
        from cati.services.scheduling import record_outcome

        record_outcome(session, case, code, now, interviewer_id=None)


def reconcile_attempts(session: Session, backend_name: str, live: set[str], now: datetime, *,
                       grace_s: float = 120.0) -> list[str]:
    """End attempts the telephony server no longer has (a lost event stream, a crashed worker).

    Every attempt of ``backend_name`` that is not ended, was requested more than ``grace_s`` ago (an
    Originate may still be on its way) and whose call id is not in ``live`` (see
    :meth:`cati.telephony.ami.AmiBackend.live_call_ids`) ends now with cause 41, so that no attempt stays
    "ringing" forever; its automatic outcome is then 3.16 unless it had been answered. Flush only.
    """
    from datetime import timedelta

    stale = session.scalars(
        select(CallAttempt).where(CallAttempt.backend == backend_name, CallAttempt.status != AttemptStatus.ENDED,
                                  CallAttempt.requested_at < now - timedelta(seconds=grace_s))
    ).all()
    ended = []
    for a in stale:
        if a.call_id in live:
            continue
        apply_event(session, CallEvent(a.call_id, ENDED, now, hangup_cause=41,
                                       cause_text="not found on the telephony server / 服务器上已无此通话"), now=now)
        ended.append(a.call_id)
    return ended


def code_attempt(session: Session, attempt: CallAttempt, outcome: str) -> CallAttempt:
    """The interviewer's own code for an attempt; it wins over any automatic one from then on."""
    attempt.outcome = outcome
    attempt.outcome_source = "interviewer"
    session.flush()
    return attempt


def start_attempt(session: Session, case: Case, phone: CasePhone, interviewer, backend: TelephonyBackend | str,
                  mode: str, *, now: datetime | None = None, call_id: str | None = None,
                  flush: bool = True, amd_requested: bool = False) -> CallAttempt:
    """Create the attempt row (status ``requested``) before dialing and count the dial on the case.

    Refuses numbers on the do-not-call list or known to be invalid, and final cases. With ``flush`` false the
    row is written at the session's next flush (the simulator folds the call's events in first; the attempt has
    no ``id`` until then).
    """
    if mode not in ("preview", "progressive", "predictive", "simulated"):
        raise ValueError(f"start_attempt: mode {mode!r} must be preview, progressive, predictive or simulated")
    if phone.case_id != case.id:
        raise ValueError(f"start_attempt: phone {phone.id} does not belong to case {case.id}")
    if phone.status != PhoneStatus.OK:
        raise ValueError(f"start_attempt: phone {mask_number(phone.e164)} of case {case.id} is {phone.status}; "
                         "not dialled / 该号码不可拨打")
    if case.final_disposition is not None:
        raise ValueError(f"start_attempt: case {case.id} is final ({case.final_disposition})")
    now = now or datetime.now(UTC)
    from cati.models import Study
    from cati.services.scheduling import mark_dialed, rules_for

    study = session.get(Study, case.study_id)
    mark = mark_dialed(session, case, now, rules_for(study))
    phone.attempts += 1
    name = backend if isinstance(backend, str) else backend.name
    attempt = CallAttempt(
        call_id=call_id or str(uuid.uuid4()), case_id=case.id, phone_id=phone.id,
        interviewer_id=getattr(interviewer, "id", interviewer), backend=name, mode=mode,
        status=AttemptStatus.REQUESTED, requested_at=now, day_part=mark.day_part,
        tried_parts_before=mark.tried_parts_before, prior_outcome=mark.prior_outcome,
        local_weekday=mark.local_weekday, amd_requested=amd_requested,
    )
    session.add(attempt)
    if flush:
        session.flush()
    return attempt


def dial_and_commit(factory: sessionmaker, backend: TelephonyBackend, case_id: int, phone_id: int | None,
                    interviewer_id: int, extension: str, *, mode: str = "preview", caller_id: str | None = None,
                    record: bool = False, machine_detection: bool = False, timeout_s: int = 30,
                    now: datetime | None = None) -> str:
    """Create and commit the attempt, then place the call; returns the call id.

    Committing first matters: the backend's events are stored by other sessions (event thread,
    webhook request) and must find the row.
    """
    from cati.models import User

    with factory() as s, s.begin():
        case, phone = _case_and_phone(s, case_id, phone_id)
        interviewer = s.get(User, interviewer_id)
        # Several PBXs: the attempt records the one the interviewer's phone is on (``asterisk:<pbx>``).
        name_for = getattr(backend, "name_for", None)
        attempt = start_attempt(s, case, phone, interviewer, name_for(extension) if name_for else backend, mode,
                                now=now, amd_requested=machine_detection)
        call_id, number = attempt.call_id, phone.e164
    try:
        backend.place_call(call_id, number, extension, caller_id=caller_id, record=record,
                           machine_detection=machine_detection, timeout_s=timeout_s)
    except TelephonyError as exc:
        _refused(factory, call_id, exc)
        raise
    return call_id


def dial_predictive_and_commit(factory: sessionmaker, backend: TelephonyBackend, case_id: int,
                               phone_id: int | None, team_queue: str, *, caller_id: str | None = None,
                               machine_detection: bool = True, timeout_s: int = 30, connect_within_s: int = 2,
                               abandon_prompt: str | None = None, now: datetime | None = None) -> str:
    """Predictive dialing: create and commit the attempt with no interviewer yet, then dial the respondent
    first; the PBX connects an answered person to a free member of ``team_queue`` (event ``connected``) or
    abandons the call with the firm's message (event ``abandoned``). Returns the call id."""
    with factory() as s, s.begin():
        case, phone = _case_and_phone(s, case_id, phone_id)
        attempt = start_attempt(s, case, phone, None, backend, "predictive", now=now,
                                amd_requested=machine_detection)
        call_id, number = attempt.call_id, phone.e164
    try:
        backend.place_predictive_call(call_id, number, team_queue, caller_id=caller_id,
                                      machine_detection=machine_detection, timeout_s=timeout_s,
                                      connect_within_s=connect_within_s, abandon_prompt=abandon_prompt)
    except TelephonyError as exc:
        _refused(factory, call_id, exc)
        raise
    return call_id


def _case_and_phone(session: Session, case_id: int, phone_id: int | None) -> tuple[Case, CasePhone]:
    """The case to dial and its number (the given one, else the next usable one), or ValueError saying why not."""
    case = session.get(Case, case_id)
    if case is None:
        raise ValueError(f"dial: case {case_id} not found")
    phone = session.get(CasePhone, phone_id) if phone_id else _first_phone(case)
    if phone is None:
        raise ValueError(f"dial: case {case_id} has no dialable number / 无可拨号码")
    return case, phone


def _refused(factory: sessionmaker, call_id: str, exc: Exception) -> None:
    """The backend refused the call outright: the committed attempt ends as a system failure and the case gets
    its attempt back (the respondent was never dialled)."""
    with factory() as s, s.begin():
        a = s.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))
        if a is not None and a.status != AttemptStatus.ENDED:
            a.status = AttemptStatus.ENDED
            a.ended_at = datetime.now(UTC)
            a.outcome_source = "system"
            a.notes = f"backend refused: {exc}"[:2000]
            case = s.get(Case, a.case_id)
            if case is not None and case.attempts > 0:
                case.attempts -= 1


def _first_phone(case: Case) -> CasePhone | None:
    for p in sorted(case.phones, key=lambda p: (p.attempts, p.position)):
        if p.status == PhoneStatus.OK:
            return p
    return None


def event_sink(factory: sessionmaker, *, settle_case: bool = True) -> Callable[[CallEvent], None]:
    """A subscriber for :meth:`TelephonyBackend.subscribe` that stores each event in its own transaction."""

    def sink(event: CallEvent) -> None:
        with factory() as s, s.begin():
            apply_event(s, event, settle_case=settle_case)

    return sink


class BatchingEventSink:
    """Store events on a worker thread, many per transaction when they queue up.

    At low load each event is committed alone (latency = one transaction); under a burst the worker
    takes everything queued (up to ``max_batch``) into one transaction, so SQLite's one-writer-at-a-time
    commit cost is paid once per batch instead of once per event. A failing batch is retried event by
    event so one bad event cannot lose the others.

    ``on_stored(events)`` (optional) is called after each commit (live screens, benchmarks).
    """

    def __init__(self, factory: sessionmaker, *, settle_case: bool = True, max_batch: int = 200,
                 on_stored: Callable[[list[CallEvent]], None] | None = None):
        import queue

        self.factory = factory
        self.settle_case = settle_case
        self.max_batch = max_batch
        self.on_stored = on_stored
        self._q: queue.Queue[CallEvent | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="call-event-sink", daemon=True)
        self._thread.start()

    def __call__(self, event: CallEvent) -> None:
        self._q.put(event)

    def _run(self) -> None:
        import queue

        while True:
            first = self._q.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._store(batch)
            for _ in batch:
                self._q.task_done()
            if stop:
                return

    def _store(self, batch: list[CallEvent]) -> None:
        try:
            with self.factory() as s, s.begin():
                for ev in batch:
                    apply_event(s, ev, settle_case=self.settle_case)
        except Exception:  # noqa: BLE001 - retry one by one, log the culprit
            log.exception("storing %d call events failed; retrying one by one", len(batch))
            for ev in batch:
                try:
                    with self.factory() as s, s.begin():
                        apply_event(s, ev, settle_case=self.settle_case)
                except Exception:  # noqa: BLE001
                    log.exception("call event %s/%s could not be stored", ev.call_id, ev.kind)
        if self.on_stored is not None:
            self.on_stored(batch)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far is stored."""
        import time

        deadline = time.monotonic() + timeout
        while self._q.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        self.flush()
        self._q.put(None)
        self._thread.join(5)


def run_event_worker(factory: sessionmaker, backend, stop: threading.Event, *, reconcile_every: float = 60.0,
                     report: Callable[[int], None] | None = None) -> None:
    """The event worker's loop (``cati telephony worker``): store every event of ``backend`` and, every
    ``reconcile_every`` seconds, end attempts the server no longer has. Returns when ``stop`` is set."""
    sink = BatchingEventSink(factory)
    unsubscribe = backend.subscribe(sink)
    try:
        while not stop.wait(reconcile_every):
            try:
                live = backend.live_call_ids()
            except TelephonyError as exc:
                log.warning("reconcile skipped: %s", exc)
                continue
            with factory() as s, s.begin():
                ended = reconcile_attempts(s, backend.name, live, datetime.now(UTC))
            if ended and report is not None:
                report(len(ended))
    finally:
        unsubscribe()
        sink.close()


# ----------------------------------------------------------------------------------------------------
# Progressive dialing
# ----------------------------------------------------------------------------------------------------

def _default_case_provider(study_id: int):
    """``next_case`` from the scheduler, bound to a study."""
    from cati.models import Study
    from cati.services.scheduling import Claim, next_case

    def provide(session: Session, interviewer_id: int, now: datetime) -> int | None:
        study = session.get(Study, study_id)
        got = next_case(session, study, interviewer_id, now)
        return got.case_id if isinstance(got, Claim) else None

    return provide


class ProgressiveDialer:
    """Dial the next case as soon as the interviewer is ready; one call at a time per interviewer.

    Parameters
    ----------
    factory : sessionmaker (each step commits its own transaction).
    backend : where calls go; its events must reach :func:`apply_event` (see :func:`event_sink`).
    interviewer_id, extension : who takes the calls, and their phone.
    study_id : used with the scheduler's ``next_case`` unless ``case_provider`` is given.
    case_provider : ``(session, interviewer_id, now) -> case_id | None`` (claims the case).
    clock : UTC now (the simulator passes its own).

    The interviewer's screen calls :meth:`ready` when it is free (after coding the last contact);
    :meth:`step` then claims and dials. An answered call is the interviewer's at once (interviewer-
    first origination means they are already on the line when the respondent answers).
    """

    def __init__(self, factory: sessionmaker, backend: TelephonyBackend, interviewer_id: int, extension: str, *,
                 study_id: int | None = None, case_provider=None, clock: Callable[[], datetime] | None = None,
                 machine_detection: bool = True, record: bool = False, caller_id: str | None = None,
                 timeout_s: int = 30):
        if case_provider is None and study_id is None:
            raise ValueError("ProgressiveDialer needs study_id or case_provider")
        self.factory = factory
        self.backend = backend
        self.interviewer_id = interviewer_id
        self.extension = extension
        self.case_provider = case_provider or _default_case_provider(study_id)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.opts = dict(machine_detection=machine_detection, record=record, caller_id=caller_id,
                         timeout_s=timeout_s)
        self._ready = threading.Event()
        self.current: str | None = None
        self.dialled: list[str] = []

    def ready(self) -> None:
        self._ready.set()

    def busy(self) -> bool:
        """True while the current attempt is live or awaiting the interviewer's code."""
        if self.current is None:
            return False
        with self.factory() as s:
            a = s.scalar(select(CallAttempt).where(CallAttempt.call_id == self.current))
            return a is not None and a.status != AttemptStatus.ENDED

    def step(self) -> str | None:
        """If the interviewer is ready and free: claim the next case and dial it. Returns the call id."""
        if not self._ready.is_set() or self.busy():
            return None
        now = self.clock()
        with self.factory() as s, s.begin():
            case_id = self.case_provider(s, self.interviewer_id, now)
        if case_id is None:
            return None
        self._ready.clear()
        call_id = dial_and_commit(self.factory, self.backend, case_id, None, self.interviewer_id, self.extension,
                                  mode="progressive", now=now, **self.opts)
        self.current = call_id
        self.dialled.append(call_id)
        return call_id

    def run(self, stop: threading.Event, poll_s: float = 0.05) -> None:
        """Loop until ``stop`` is set (a worker thread per logged-in progressive interviewer)."""
        while not stop.is_set():
            try:
                self.step()
            except (TelephonyError, ValueError):
                log.exception("progressive dial failed for interviewer %s", self.interviewer_id)
            stop.wait(poll_s)
