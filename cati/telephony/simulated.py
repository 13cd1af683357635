"""Simulated telephony: the same event stream as the real backends, on a clock the caller controls.

Used by the fieldwork simulator, the demo and tests. Nothing happens by itself: events are due at
virtual times and are emitted by :meth:`SimulatedBackend.tick` when the clock has reached them (the
simulator moves its clock and ticks; a demo can call :meth:`start_ticking` to tick on a thread).

Outcomes come from a per-number script or, failing that, are drawn from ``mix`` (probabilities)
with a seeded random generator, so a run is reproducible.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .base import (
    ANSWERED,
    ANSWERED_HUMAN,
    ANSWERED_MACHINE,
    ENDED,
    PLACED,
    RINGING,
    CallEvent,
    TelephonyBackend,
    TelephonyError,
    hangup_cause_text,
)

SIM_OUTCOMES = ("human", "machine", "fax", "busy", "noanswer", "congestion", "rejected", "unallocated")

#: A plausible mix for Chinese mobile numbers from customer lists (tune per study from real paradata).
DEFAULT_MIX: dict[str, float] = {
    "human": 0.34, "noanswer": 0.30, "busy": 0.07, "rejected": 0.12, "machine": 0.04,
    "congestion": 0.03, "unallocated": 0.09, "fax": 0.01,
}


@dataclass(frozen=True)
class SimScript:
    """What happens when a number is dialled (seconds after the dial)."""

    outcome: str = "human"
    ring_s: float = 8.0          # ringing before answer (or before the network's no-answer)
    amd_s: float = 2.5           # machine detection time after answer
    talk_s: float | None = None  # None: the call lasts until hangup() (the interviewer ends it)

    def __post_init__(self) -> None:
        if self.outcome not in SIM_OUTCOMES:
            raise ValueError(f"SimScript: unknown outcome {self.outcome!r}; expected one of {SIM_OUTCOMES}")


@dataclass
class _Call:
    call_id: str
    number: str
    script: SimScript
    sid: str
    ended: bool = False
    answered: bool = False
    started: datetime | None = None


class SimulatedBackend(TelephonyBackend):
    """Parameters
    ----------
    clock : UTC now (the simulator's virtual clock); default real time.
    scripts : number → :class:`SimScript` or outcome name.
    mix : outcome probabilities for unscripted numbers.
    seed : random seed (ring times and drawn outcomes).
    """

    name = "simulated"

    def __init__(self, clock: Callable[[], datetime] | None = None, *,
                 scripts: Mapping[str, SimScript | str] | None = None, mix: Mapping[str, float] | None = None,
                 seed: int = 0):
        super().__init__()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.scripts = {k: v if isinstance(v, SimScript) else SimScript(v) for k, v in (scripts or {}).items()}
        mix = dict(mix or DEFAULT_MIX)
        bad = set(mix) - set(SIM_OUTCOMES)
        if bad:
            raise ValueError(f"SimulatedBackend: unknown outcomes in mix: {sorted(bad)}")
        total = sum(mix.values())
        if total <= 0:
            raise ValueError("SimulatedBackend: mix probabilities must sum to more than 0")
        self.mix = {k: v / total for k, v in mix.items()}
        self.rng = random.Random(seed)
        self.calls: dict[str, _Call] = {}
        self.recordings: dict[str, str] = {}
        self.spies: list[tuple[str, str, str]] = []
        self._heap: list[tuple[datetime, int, str, dict]] = []
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # -- scheduling ---------------------------------------------------------------------------------
    def _at(self, when: datetime, call_id: str, **ev) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), call_id, ev))

    def script_for(self, number: str) -> SimScript:
        if number in self.scripts:
            return self.scripts[number]
        r, acc = self.rng.random(), 0.0
        outcome = next(iter(self.mix))
        for name, p in self.mix.items():
            acc += p
            if r < acc:
                outcome = name
                break
        ring = {"human": self.rng.uniform(4, 20), "machine": self.rng.uniform(12, 25)}.get(outcome, 6.0)
        return SimScript(outcome, ring_s=ring, talk_s=None if outcome == "human" else 6.0)

    def place_call(self, call_id, to_e164, interviewer_extension, *, caller_id=None, record=False,
                   machine_detection=False, timeout_s=30):
        with self._lock:
            if call_id in self.calls:
                raise TelephonyError(f"call id {call_id} already in use")
            sc = self.script_for(to_e164)
            now = self.clock()
            sid = f"sim-{uuid.uuid4().hex[:12]}"
            self.calls[call_id] = _Call(call_id, to_e164, sc, sid, started=now)
            if record:
                self.recordings[call_id] = f"sim://{call_id}.wav"
            t = now + timedelta(milliseconds=200)
            self._at(t, call_id, kind=PLACED)
            o = sc.outcome
            s = timedelta(seconds=1)
            if o == "unallocated":
                self._at(t + s, call_id, kind=ENDED, hangup_cause=1, dial_status="CHANUNAVAIL")
                return
            if o == "congestion":
                self._at(t + s, call_id, kind=ENDED, hangup_cause=34, dial_status="CONGESTION")
                return
            if o == "busy":
                self._at(t + s, call_id, kind=ENDED, hangup_cause=17, dial_status="BUSY")
                return
            self._at(t + s, call_id, kind=RINGING)
            ring_end = t + s + timedelta(seconds=min(sc.ring_s, timeout_s))
            if o == "rejected":
                self._at(t + s + timedelta(seconds=min(sc.ring_s, 4.0)), call_id, kind=ENDED, hangup_cause=21,
                         dial_status="NOANSWER")
                return
            if o == "noanswer" or sc.ring_s > timeout_s:
                self._at(ring_end, call_id, kind=ENDED, hangup_cause=19, dial_status="NOANSWER")
                return
            self._at(ring_end, call_id, kind=ANSWERED)
            verdict_at = ring_end + timedelta(seconds=sc.amd_s)
            if machine_detection or o == "fax":
                status = {"human": "HUMAN", "machine": "MACHINE", "fax": "FAX"}[o]
                kind = ANSWERED_HUMAN if status == "HUMAN" else ANSWERED_MACHINE
                cause = {"HUMAN": "HUMAN-800-800", "MACHINE": "MAXWORDS-3-2", "FAX": "fax"}[status]
                self._at(verdict_at, call_id, kind=kind, amd_status=status, amd_cause=cause)
                if status != "HUMAN":  # machines are not connected to the interviewer
                    self._at(verdict_at + timedelta(seconds=1), call_id, kind=ENDED, hangup_cause=16,
                             dial_status="ANSWER")
                    return
            if sc.talk_s is not None:
                self._at(ring_end + timedelta(seconds=sc.talk_s), call_id, kind=ENDED, hangup_cause=16,
                         dial_status="ANSWER")

    def tick(self) -> list[CallEvent]:
        """Emit every event due by ``clock()``; returns them."""
        out = []
        now = self.clock()
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                when, _, call_id, ev = heapq.heappop(self._heap)
                call = self.calls.get(call_id)
                if call is None or call.ended:
                    continue
                kind = ev.pop("kind")
                if kind in (ANSWERED, ANSWERED_HUMAN, ANSWERED_MACHINE):
                    call.answered = True
                if kind == ENDED:
                    call.ended = True
                    ev.setdefault("cause_text", hangup_cause_text(ev.get("hangup_cause")))
                e = CallEvent(call_id, kind, when, backend_call_id=call.sid, **ev)
                out.append(e)
        for e in out:
            self.hub.emit(e)
        return out

    def next_due(self) -> datetime | None:
        """Virtual time of the next pending event (lets a simulator jump its clock)."""
        with self._lock:
            while self._heap:
                when, _, call_id, _ev = self._heap[0]
                call = self.calls.get(call_id)
                if call is None or call.ended:
                    heapq.heappop(self._heap)
                    continue
                return when
            return None

    def start_ticking(self, interval_s: float = 0.1) -> None:
        """Tick on a background thread (demo with a real clock)."""
        if self._ticker is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.tick()

        self._ticker = threading.Thread(target=loop, name="sim-telephony", daemon=True)
        self._ticker.start()

    # -- actions ------------------------------------------------------------------------------------
    def _call(self, call_id: str) -> _Call:
        try:
            return self.calls[call_id]
        except KeyError:
            raise TelephonyError(f"unknown call {call_id} / 未知通话") from None

    def hangup(self, call_id):
        with self._lock:
            call = self._call(call_id)
            if call.ended:
                return
            self._at(self.clock(), call_id, kind=ENDED, hangup_cause=16,
                     dial_status="ANSWER" if call.answered else "CANCEL")
        self.tick()

    def start_recording(self, call_id, path):
        self._call(call_id)
        self.recordings[call_id] = path

    def stop_recording(self, call_id):
        self._call(call_id)
        if call_id not in self.recordings:
            raise TelephonyError(f"call {call_id} is not being recorded")

    def _spy(self, call_id, ext, mode):
        call = self._call(call_id)
        if call.ended:
            raise TelephonyError(f"call {call_id} has ended / 通话已结束")
        self.spies.append((call_id, ext, mode))
        return f"spy-{len(self.spies)}"

    def listen(self, call_id, supervisor_extension):
        return self._spy(call_id, supervisor_extension, "listen")

    def whisper(self, call_id, supervisor_extension):
        return self._spy(call_id, supervisor_extension, "whisper")

    def barge(self, call_id, supervisor_extension):
        return self._spy(call_id, supervisor_extension, "barge")

    def ping(self):
        return {"client": "simulated", "now": self.clock().isoformat(), "calls": len(self.calls)}

    def close(self):
        self._stop.set()
