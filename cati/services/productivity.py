"""Productivity by hour of the day (the centre's clock): dials, contacts and completes per hour, for one
interviewer or the whole team, over a period. Contacts are dials coded with a contact code of the catalogue (as
the shift counters count them); completes are interviews completed in that hour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cati.models import CallAttempt, Interview, InterviewStatus

from .agents import contact_codes
from .calling import zone


@dataclass(frozen=True)
class HourRow:
    hour: int
    dials: int
    contacts: int
    completes: int

    @property
    def contact_rate(self) -> float | None:
        return self.contacts / self.dials if self.dials else None


def hourly(session: Session, start: datetime, end: datetime, tz: str, *,
           interviewer_id: int | None = None) -> list[HourRow]:
    """Hours of the day in which anything happened in [start, end), in order."""
    z = zone(tz)
    codes = contact_codes()
    dq = select(CallAttempt.requested_at, CallAttempt.outcome).where(CallAttempt.requested_at >= start,
                                                                     CallAttempt.requested_at < end)
    cq = select(Interview.ended_at).where(Interview.status == InterviewStatus.COMPLETE, Interview.ended_at >= start,
                                          Interview.ended_at < end)
    if interviewer_id is not None:
        dq = dq.where(CallAttempt.interviewer_id == interviewer_id)
        cq = cq.where(Interview.interviewer_id == interviewer_id)
    dials: dict[int, int] = {}
    contacts: dict[int, int] = {}
    completes: dict[int, int] = {}
    for at, outcome in session.execute(dq):
        h = at.astimezone(z).hour
        dials[h] = dials.get(h, 0) + 1
        if outcome in codes:
            contacts[h] = contacts.get(h, 0) + 1
    for (at,) in session.execute(cq):
        h = at.astimezone(z).hour
        completes[h] = completes.get(h, 0) + 1
    hours = sorted(set(dials) | set(completes))
    return [HourRow(h, dials.get(h, 0), contacts.get(h, 0), completes.get(h, 0)) for h in hours]
