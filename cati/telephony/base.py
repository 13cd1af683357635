"""The one telephony interface: normalised call events, the backend protocol and pure mappings.

Every backend (Asterisk over AMI, Twilio, simulated) turns what its network tells it into
:class:`CallEvent` objects keyed by *our* call id (a uuid string the dialer chose before dialing).
The dialer (:mod:`cati.telephony.dialer`) folds those events into a stored call attempt and asks
:func:`auto_outcome` for an AAPOR attempt outcome where the network, not the interviewer, knows it.

Event kinds
-----------
``placed``            the backend accepted the call (AMI: Originate queued; Twilio: ``initiated``)
``ringing``           the respondent's phone is alerting
``answered``          the respondent's line answered; machine detection pending or not requested
``answered_human``    answered and machine detection said HUMAN (or NOTSURE: a person must check)
``answered_machine``  answered and machine detection said MACHINE (or fax)
``ended``             the call is over; carries hangup cause / originate reason / dial status.
                      A backend may send ``ended`` more than once when late facts arrive (AMI sends
                      OriginateResponse before *or* after the last Hangup); consumers fill blanks.

``answered`` is a refinement of the five kinds in the issue: with machine detection on, the moment
of answer and the moment of the verdict are seconds apart, and both times matter.
"""

from __future__ import annotations

import abc
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

PLACED = "placed"
RINGING = "ringing"
ANSWERED = "answered"
ANSWERED_HUMAN = "answered_human"
ANSWERED_MACHINE = "answered_machine"
ENDED = "ended"
#: Predictive (respondent-first) dialing: the answered person was connected to an interviewer
#: (``interviewer_extension``), or nobody was free in time and the call was abandoned (the person heard the
#: firm's message).
CONNECTED = "connected"
ABANDONED = "abandoned"
EVENT_KINDS = (PLACED, RINGING, ANSWERED, ANSWERED_HUMAN, ANSWERED_MACHINE, CONNECTED, ABANDONED, ENDED)
ANSWER_KINDS = (ANSWERED, ANSWERED_HUMAN, ANSWERED_MACHINE)

#: A ringing call counts as a genuine "no answer" (AAPOR 3.13) only after this many seconds.
MIN_NO_ANSWER_RING_S = 15.0


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CallEvent:
    """One normalised call event.

    Attributes
    ----------
    call_id : our uuid string (AMI ChannelId / Linkedid, Twilio conference name).
    kind : one of :data:`EVENT_KINDS`.
    at : UTC time the backend observed it.
    backend_call_id : the backend's own id (AMI Uniqueid of the respondent leg, Twilio CallSid).
    hangup_cause : Q.850 cause of the respondent leg (ended only), ``None`` when unknown.
    cause_text : human readable cause (Asterisk ``Cause-txt`` or Twilio status).
    amd_status : HUMAN | MACHINE | NOTSURE | FAX | None.
    amd_cause : backend detail, e.g. ``MAXWORDS-3-2``.
    originate_reason : AMI OriginateResponse Reason (0, 1, 3, 4, 5, 8) when known.
    dial_status : Dial() result for the respondent (ANSWER, BUSY, NOANSWER, CONGESTION, CHANUNAVAIL,
        CANCEL) or the Twilio final status mapped to these words.
    leg : ``"respondent"`` normally; ``"interviewer"`` when the interviewer's own leg failed and the
        respondent was never dialed (no outcome should be charged to the case then).
    recording : where the backend is recording the call (AMI ``MIXMONITOR_FILENAME``), when it is.
    interviewer_extension : predictive dialing, ``connected`` only: the phone the person was connected to.
    raw : the backend message(s) it came from (for audit and debugging).
    """

    call_id: str
    kind: str
    at: datetime
    backend_call_id: str | None = None
    hangup_cause: int | None = None
    cause_text: str | None = None
    amd_status: str | None = None
    amd_cause: str | None = None
    originate_reason: int | None = None
    dial_status: str | None = None
    leg: str = "respondent"
    recording: str | None = None
    interviewer_extension: str | None = None
    raw: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"CallEvent.kind: unknown kind {self.kind!r}; expected one of {EVENT_KINDS}")
        if self.at.tzinfo is None:
            raise ValueError("CallEvent.at must be timezone-aware UTC")

    def with_(self, **changes: Any) -> CallEvent:
        return replace(self, **changes)


EventCallback = Callable[[CallEvent], None]


class EventHub:
    """Fan-out of call events to subscribers, plus a queue for ``events()`` iteration.

    A raising subscriber is logged and skipped: one bad consumer must never stop the stream
    (that is exactly panoramisk's fault, which kills its connection on a raising callback).
    """

    def __init__(self, *, threaded: bool = False) -> None:
        self._subs: list[EventCallback] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue[CallEvent] = queue.Queue(maxsize=self.BACKLOG)
        # threaded: subscribers run on a dispatcher thread, so a slow subscriber (a database write
        # waiting for SQLite's write lock) never blocks the client library's reader thread / loop.
        self._out: queue.Queue[CallEvent | None] | None = None
        if threaded:
            self._out = queue.Queue()
            threading.Thread(target=self._dispatch_loop, name="telephony-events", daemon=True).start()

    def _dispatch_loop(self) -> None:
        assert self._out is not None
        while True:
            ev = self._out.get()
            if ev is None:
                return
            self._deliver(ev)
            self._out.task_done()

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every emitted event has been delivered (threaded hubs; tests and shutdown)."""
        if self._out is None:
            return
        deadline = time.monotonic() + timeout
        while self._out.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        if self._out is not None:
            self._out.put(None)

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        with self._lock:
            self._subs.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subs:
                    self._subs.remove(callback)

        return unsubscribe

    #: ``events()`` keeps at most this many undelivered events (oldest dropped): a process that only
    #: subscribes must not accumulate a day of events in memory.
    BACKLOG = 10_000

    def emit(self, event: CallEvent) -> None:
        while True:
            try:
                self._queue.put_nowait(event)
                break
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
        if self._out is not None:
            self._out.put(event)
            return
        self._deliver(event)

    def _deliver(self, event: CallEvent) -> None:
        with self._lock:
            subs = list(self._subs)
        for cb in subs:
            try:
                cb(event)
            except Exception:  # noqa: BLE001 - a subscriber bug must not stop the stream
                log.exception("telephony event subscriber %r raised on %s/%s", cb, event.call_id, event.kind)

    def events(self, timeout: float | None = None) -> Iterator[CallEvent]:
        """Yield queued events; stop after ``timeout`` seconds without one (``None``: drain and stop)."""
        while True:
            try:
                if timeout is None:
                    yield self._queue.get_nowait()
                else:
                    yield self._queue.get(timeout=timeout)
            except queue.Empty:
                return


class TelephonyError(RuntimeError):
    """A backend refused or failed an action (message is safe to show: no secrets, masked numbers)."""


class MonitorBusy(TelephonyError):
    """Another supervisor already listens, whispers or barges on this call: one monitoring session per call."""

    def __init__(self, call_id: str, supervisor_extension: str, mode: str) -> None:
        super().__init__(f"call {call_id} is already monitored ({mode}) from extension {supervisor_extension}")
        self.call_id, self.supervisor_extension, self.mode = call_id, supervisor_extension, mode


class TelephonyBackend(abc.ABC):
    """What the dialer and the supervisor screens need from any telephony backend."""

    name: str = "abstract"

    def __init__(self, *, threaded_events: bool = False) -> None:
        self.hub = EventHub(threaded=threaded_events)
        self._monitor_sessions: dict[str, dict] = {}  # supervisor extension → session (backends without a PBX)

    # -- calls --------------------------------------------------------------------------------------
    @abc.abstractmethod
    def place_call(
        self,
        call_id: str,
        to_e164: str,
        interviewer_extension: str,
        *,
        caller_id: str | None = None,
        record: bool = False,
        machine_detection: bool = False,
        timeout_s: int = 30,
    ) -> None:
        """Start a call that connects ``interviewer_extension`` with ``to_e164``.

        Returns once the backend accepted (or refused) the request; the outcome arrives as events.
        Raises :class:`TelephonyError` when the backend refuses outright.
        """

    # -- predictive (respondent-first) dialing ----------------------------------------------------------
    def place_predictive_call(self, call_id: str, to_e164: str, team_queue: str, *, caller_id: str | None = None,
                              machine_detection: bool = True, timeout_s: int = 30, connect_within_s: int = 2,
                              abandon_prompt: str | None = None) -> None:
        """Dial ``to_e164`` with no interviewer leg; an answered person (after machine detection) goes to a free
        member of ``team_queue`` within ``connect_within_s`` seconds (event ``connected``), else hears
        ``abandon_prompt`` and the call ends (event ``abandoned``). Backends without it raise."""
        raise TelephonyError(f"{self.name}: predictive dialing is not available on this backend")

    def join_team(self, extension: str, team_queue: str, *, paused: bool = False, name: str | None = None) -> None:
        """The interviewer on ``extension`` takes predictive calls of ``team_queue`` (ready)."""
        raise TelephonyError(f"{self.name}: predictive dialing is not available on this backend")

    def pause_in_team(self, extension: str, team_queue: str, paused: bool, *, reason: str = "") -> None:
        """Stop (wrap-up, break) or resume offering predictive calls to ``extension``."""
        raise TelephonyError(f"{self.name}: predictive dialing is not available on this backend")

    def leave_team(self, extension: str, team_queue: str) -> None:
        """The interviewer signed out: no more predictive calls."""
        raise TelephonyError(f"{self.name}: predictive dialing is not available on this backend")

    @abc.abstractmethod
    def hangup(self, call_id: str) -> None: ...

    @abc.abstractmethod
    def start_recording(self, call_id: str, path: str) -> None: ...

    @abc.abstractmethod
    def stop_recording(self, call_id: str) -> None: ...

    @abc.abstractmethod
    def listen(self, call_id: str, supervisor_extension: str) -> str:
        """Supervisor hears both sides, unheard. Returns the supervisor leg's id."""

    @abc.abstractmethod
    def whisper(self, call_id: str, supervisor_extension: str) -> str:
        """Supervisor hears both sides and speaks to the interviewer only."""

    @abc.abstractmethod
    def barge(self, call_id: str, supervisor_extension: str) -> str:
        """Supervisor joins the conversation (both hear)."""

    # -- events -------------------------------------------------------------------------------------
    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        return self.hub.subscribe(callback)

    def events(self, timeout: float | None = None) -> Iterator[CallEvent]:
        return self.hub.events(timeout)

    # -- health -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def ping(self) -> dict:
        """Check the backend is reachable and our credentials work. Returns facts to print."""

    # -- monitoring sessions: one per supervisor ------------------------------------------------------
    MONITOR_MODES = ("listen", "whisper", "barge")

    def monitor(self, call_id: str, supervisor_extension: str, mode: str) -> str:
        """Start ``mode`` on the call for this supervisor, ending the supervisor's previous session first
        (a supervisor has one ear: a new mode replaces the old one). Returns the spy leg's id."""
        if mode not in self.MONITOR_MODES:
            raise ValueError(f"monitor: mode {mode!r} is not one of {self.MONITOR_MODES}")
        self.check_monitor_free(call_id, supervisor_extension)
        self.stop_monitor(supervisor_extension)
        leg = getattr(self, mode)(call_id, supervisor_extension)
        self._monitor_sessions[supervisor_extension] = {"supervisor_extension": supervisor_extension,
                                                   "call_id": call_id, "mode": mode, "leg": leg}
        return leg

    def check_monitor_free(self, call_id: str, supervisor_extension: str) -> None:
        """One session per call: listen, whisper and barge exclude each other on a call, whoever started them
        (raises :class:`MonitorBusy`); the same supervisor switching mode is fine (their old session ends first)."""
        for m in self.monitors():
            if m.get("call_id") == call_id and m.get("supervisor_extension") != supervisor_extension:
                raise MonitorBusy(call_id, m["supervisor_extension"], m.get("mode") or "listen")

    def stop_monitor(self, supervisor_extension: str) -> int:
        """End the supervisor's monitoring session, if any; returns how many spy legs were ended."""
        session = self._monitor_sessions.pop(supervisor_extension, None)
        if session is None:
            return 0
        self.end_spy(session["leg"])
        return 1

    def monitors(self) -> list[dict]:
        """Who monitors which call: dicts with supervisor_extension, call_id, mode, leg."""
        return list(self._monitor_sessions.values())

    def end_spy(self, leg: str) -> None:  # noqa: B027 - optional hook
        """Hang up one spy leg (backends with real legs override this)."""

    def live_legs(self, call_id: str) -> list[str]:
        """The call's channels still up on the telephony server (names). Backends that cannot see the
        server's channels (Twilio, simulated) report none."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""


# ---------------------------------------------------------------------------------------------------
# Pure mappings
# ---------------------------------------------------------------------------------------------------

#: OriginateResponse Reason (Asterisk ``enum ast_control_frame_type`` subset) -> meaning.
ORIGINATE_REASONS: dict[int, str] = {
    0: "not placed / failed (see hangup cause)",
    1: "hung up / rejected",
    3: "no answer (ringing timeout)",
    4: "answered",
    5: "busy",
    8: "congestion",
}

#: Q.850 causes we meet (text as Asterisk's ``Cause-txt``).
Q850_CAUSES: dict[int, str] = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    22: "Number changed",
    27: "Destination out of order",
    28: "Invalid number format",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    127: "Interworking, unspecified",
}


def originate_reason_text(reason: int | None) -> str | None:
    """Meaning of an OriginateResponse ``Reason``; ``None`` for ``None``."""
    if reason is None:
        return None
    return ORIGINATE_REASONS.get(int(reason), f"reason {reason}")


def hangup_cause_text(cause: int | None) -> str | None:
    """Q.850 text for ``cause`` (``None`` stays ``None``)."""
    if cause is None:
        return None
    return Q850_CAUSES.get(int(cause), f"cause {cause}")


def amd_kind(amd_status: str | None) -> str:
    """Event kind for an ``AMDSTATUS`` value.

    HUMAN and NOTSURE go to the interviewer (a person must judge a NOTSURE); MACHINE and FAX are
    machines. ``None``/empty means no verdict yet: plain ``answered``.
    """
    if not amd_status:
        return ANSWERED
    s = amd_status.strip().upper()
    if s in ("MACHINE", "FAX", "MACHINE_START", "MACHINE_END_BEEP", "MACHINE_END_SILENCE", "MACHINE_END_OTHER"):
        return ANSWERED_MACHINE
    if s in ("HUMAN", "NOTSURE", "UNKNOWN"):
        return ANSWERED_HUMAN
    if s == "HANGUP":
        return ANSWERED  # hung up during detection: answered, no verdict (the call is ending)
    raise ValueError(f"unknown AMDSTATUS {amd_status!r}")


def normalise_amd_status(value: str | None) -> str | None:
    """Map AMDSTATUS / Twilio ``AnsweredBy`` to HUMAN | MACHINE | NOTSURE | FAX | None."""
    if not value:
        return None
    s = value.strip().lower()
    if s == "human":
        return "HUMAN"
    if s.startswith("machine"):
        return "MACHINE"
    if s == "fax":
        return "FAX"
    if s in ("notsure", "unknown"):
        return "NOTSURE"
    if s == "hangup":
        return "HANGUP"
    raise ValueError(f"unknown machine detection result {value!r}")


def _code(role: str) -> str:
    """The catalogue's code for what the network said (``roles:`` in config/dispositions.yaml)."""
    from cati.services.dispositions import catalogue

    return catalogue().code_for(role)


_BUSY_CAUSES = {17}
_NO_ANSWER_CAUSES = {18, 19}
_REJECT_CAUSES = {21}
_TECH_CAUSES = {34, 38, 41, 42}
_NONWORKING_CAUSES = {1, 28}  # unallocated (空号) / invalid format: AAPOR 4.31 non-working number
_DEAD_CAUSES = {22}  # number changed: AAPOR 4.32 disconnected


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def auto_outcome(attempt: Any) -> str | None:
    """AAPOR attempt outcome the network tells us, or ``None`` when a person must code it.

    Parameters
    ----------
    attempt : mapping or object with (any of) ``answered_at``, ``ringing_at``, ``placed_at``,
        ``ended_at`` (datetimes), ``hangup_cause`` (int), ``originate_reason`` (int),
        ``machine_detection`` / ``amd_status`` (HUMAN|MACHINE|NOTSURE|FAX), ``dial_status`` and
        ``leg`` (``"interviewer"`` when the respondent was never dialed).

    Returns
    -------
    str or None
        ``"3.12"`` busy (cause 17, Reason 5, dial status BUSY);
        ``"3.13"`` no answer after at least 15 s of ringing (cause 18/19, Reason 3, NOANSWER);
        ``"3.14"`` answering machine; ``"4.20"`` fax; ``"3.20"`` answered and hung up during machine
        detection (AMDSTATUS HANGUP, nobody connected);
        ``"3.15"`` call rejected / blocked (cause 21); ``"4.31"`` unallocated or invalid (non-working), ``"4.32"`` changed (disconnected)
        number (1, 22, 28); ``"3.16"`` congestion or technical failure (34, 38, 41, 42, Reason 8,
        CONGESTION/CHANUNAVAIL, or a failure nobody explains);
        ``None`` when a person answered (the interviewer codes contacts), when the call is not
        over, when it rang for less than 15 s without a network verdict, or when only the
        interviewer's own leg failed.

    Notes
    -----
    The hangup cause is consulted before the OriginateResponse Reason: Asterisk reports Reason 0
    for many failures (Hangup(17) before answer gives Reason 0, not 5), so the cause on the
    respondent leg is the better witness. Worked examples: busy → cause 17 → ``3.12``;
    ``Hangup(21)`` → Reason 0, cause 21 → ``3.15``; ringing 30 s, Reason 3, cause 19 → ``3.13``.
    """
    amd = _get(attempt, "machine_detection") or _get(attempt, "amd_status")
    amd = normalise_amd_status(amd) if amd else None
    if amd == "FAX":
        return _code("fax")
    answered = _get(attempt, "answered_at") is not None
    if answered:
        if amd == "MACHINE":
            return _code("machine")
        if amd == "HANGUP" and _get(attempt, "ended_at") is not None:
            # Answered, then hung up while machine detection listened, before the interviewer was
            # connected: somebody or something picked up, eligibility unknown (AAPOR 3.20).
            return _code("hung_up_in_detection")
        return None
    if _get(attempt, "ended_at") is None:
        return None
    if _get(attempt, "leg") == "interviewer":
        return None
    cause = _get(attempt, "hangup_cause")
    cause = int(cause) if cause is not None else None
    reason = _get(attempt, "originate_reason")
    reason = int(reason) if reason is not None else None
    dial = (_get(attempt, "dial_status") or "").upper() or None

    if cause in _NONWORKING_CAUSES:
        return _code("non_working")
    if cause in _DEAD_CAUSES:
        return _code("disconnected")
    if cause in _REJECT_CAUSES:
        return _code("blocked")
    if cause in _BUSY_CAUSES or reason == 5 or dial == "BUSY":
        return _code("busy")
    if cause in _TECH_CAUSES or reason == 8 or dial in ("CONGESTION", "CHANUNAVAIL"):
        return _code("technical")
    if cause in _NO_ANSWER_CAUSES or reason == 3 or dial == "NOANSWER":
        start = _get(attempt, "ringing_at") or _get(attempt, "placed_at")
        end = _get(attempt, "ended_at")
        if start is not None and (end - start).total_seconds() >= MIN_NO_ANSWER_RING_S:
            return _code("no_answer")
        return None
    if reason == 4 or dial == "ANSWER":
        return None  # answered per network but we missed the answer event: let a person code it
    if cause in (None, 0, 16, 31) and reason is None:
        # Cleared before answer with nothing more specific (our own cancel, a dial we hung up): a
        # no-answer only if it rang long enough, otherwise nothing to conclude.
        start = _get(attempt, "ringing_at")
        if start is not None and (_get(attempt, "ended_at") - start).total_seconds() >= MIN_NO_ANSWER_RING_S:
            return _code("no_answer")
        return None
    # Reason 0/1 with no useful cause (not placed, bad target), or an unusual cause (3, 20, 27, 127…).
    return _code("technical")


#: Dial status → Q.850 cause used when the respondent leg reported none (see :func:`cause_from_dial_status`).
DIAL_STATUS_CAUSES = {"BUSY": 17, "NOANSWER": 19, "CONGESTION": 34, "CHANUNAVAIL": 41, "ANSWER": 16}


def cause_from_dial_status(cause: int | None, dial_status: str | None) -> int | None:
    """Keep a real cause; otherwise derive one from Dial()'s status so the stored attempt carries it.

    CHANUNAVAIL (the trunk could not create the call) becomes 41 *temporary failure*; CANCEL stays
    ``None`` (we hung up: the network said nothing).
    """
    if cause:
        return cause
    return DIAL_STATUS_CAUSES.get((dial_status or "").upper(), cause)


def mask_number(number: str | None) -> str:
    """138****1234 style mask for logs (keeps the first 3 and last 4 digits)."""
    if not number:
        return ""
    digits = number.lstrip("+")
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
