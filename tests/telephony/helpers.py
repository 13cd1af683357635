from __future__ import annotations

import threading
import time

from cati.telephony.base import CallEvent


class Collector:
    """Subscribes to a backend and lets tests wait for a call's events."""

    def __init__(self):
        self.events: list[CallEvent] = []
        self.cond = threading.Condition()

    def __call__(self, ev: CallEvent) -> None:
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def of(self, call_id):
        with self.cond:
            return [e for e in self.events if e.call_id == call_id]

    def wait(self, call_id, kind="ended", timeout=10.0) -> CallEvent:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if e.call_id == call_id and e.kind == kind:
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [e.kind for e in self.events if e.call_id == call_id]
                    raise AssertionError(f"no {kind} for {call_id} within {timeout}s; got {kinds}")
                self.cond.wait(left)


def fold(events):
    """First value wins (what the stored attempt does); see cati.telephony.dialer for the real one."""
    a = {}
    for e in events:
        stamp = {"placed": "placed_at", "ringing": "ringing_at", "ended": "ended_at"}.get(e.kind, "answered_at")
        a.setdefault(stamp, e.at)
        for k in ("hangup_cause", "originate_reason", "dial_status", "amd_status", "amd_cause", "leg"):
            v = getattr(e, k)
            if v is not None and a.get(k) is None:
                a[k] = v
    a["machine_detection"] = a.get("amd_status")
    return a
