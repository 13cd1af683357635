"""Appointments as the supervisor and the interviewer see them: overdue and missed ones, one day's calendar by
interviewer and hour, and an interviewer's own coming appointments.

*Overdue*: pending, its time passed, still inside the study's grace (``appointment_grace_minutes``): someone should
call now. *Missed*: broken (the sweep marked it when the grace ran out) or pending past the grace and not yet swept.
Reads go through ``ix_appointments_due`` (study, status, due time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from cati.models import Appointment, AppointmentStatus, Case, Enterprise, User


@dataclass(frozen=True)
class ApptRow:
    id: int
    case_id: int
    case_ref: str
    enterprise: str
    due_at: datetime
    status: str  # pending | kept | broken | cancelled
    state: str  # upcoming | overdue | missed | kept | cancelled
    interviewer_id: int | None
    interviewer: str
    note: str
    minutes_late: int


def _state(a: Appointment, now: datetime, grace: timedelta) -> str:
    if a.status == AppointmentStatus.PENDING:
        if a.due_at > now:
            return "upcoming"
        return "overdue" if a.due_at >= now - grace else "missed"
    return "missed" if a.status == AppointmentStatus.BROKEN else a.status.value


def _rows(session: Session, stmt, now: datetime, grace: timedelta) -> list[ApptRow]:
    q = (stmt.add_columns(Case.case_ref, Enterprise.name, User.display_name)
         .join(Case, Case.id == Appointment.case_id)
         .join(Enterprise, Enterprise.id == Case.enterprise_id)
         .outerjoin(User, User.id == Appointment.interviewer_id))
    return [ApptRow(id=a.id, case_id=a.case_id, case_ref=ref, enterprise=ent, due_at=a.due_at,
                    status=a.status.value, state=_state(a, now, grace), interviewer_id=a.interviewer_id,
                    interviewer=who or "", note=a.note or "",
                    minutes_late=max(0, int((now - a.due_at).total_seconds() // 60)))
            for a, ref, ent, who in session.execute(q)]


def overdue_and_missed(session: Session, study_id: int, now: datetime, *, grace_minutes: int,
                       since: timedelta = timedelta(days=7), limit: int = 500) -> list[ApptRow]:
    """Overdue and missed appointments of the last ``since``, oldest first. A broken appointment whose case
    has a newer pending appointment is still listed (the supervisor sees it was missed)."""
    grace = timedelta(minutes=grace_minutes)
    stmt = (select(Appointment).where(
        Appointment.study_id == study_id,
        or_(and_(Appointment.status == AppointmentStatus.PENDING, Appointment.due_at <= now,
                 Appointment.due_at >= now - since),
            and_(Appointment.status == AppointmentStatus.BROKEN, Appointment.due_at >= now - since)))
        .order_by(Appointment.due_at).limit(limit))
    return _rows(session, stmt, now, grace)


def day(session: Session, study_id: int, start: datetime, end: datetime, now: datetime, *,
        grace_minutes: int) -> list[ApptRow]:
    """Every appointment due in [start, end) (any status but cancelled), by due time."""
    stmt = (select(Appointment).where(Appointment.study_id == study_id,
                                      Appointment.status.in_([AppointmentStatus.PENDING, AppointmentStatus.KEPT,
                                                              AppointmentStatus.BROKEN]),
                                      Appointment.due_at >= start, Appointment.due_at < end)
            .order_by(Appointment.due_at))
    return _rows(session, stmt, now, timedelta(minutes=grace_minutes))


def calendar(rows: list[ApptRow], hour_of) -> tuple[list[int], list[tuple[str, dict[int, list[ApptRow]]]]]:
    """One day's rows as (hours shown, [(interviewer, {hour: rows})]), interviewers by name, "anyone" ("") last.
    ``hour_of(dt)`` is the hour in the centre's clock."""
    grid: dict[str, dict[int, list[ApptRow]]] = {}
    hours: set[int] = set()
    for r in rows:
        h = hour_of(r.due_at)
        hours.add(h)
        grid.setdefault(r.interviewer, {}).setdefault(h, []).append(r)
    order = sorted(grid, key=lambda name: (name == "", name))
    return sorted(hours), [(name, grid[name]) for name in order]


def mine(session: Session, study_id: int, interviewer_id: int, now: datetime, *, grace_minutes: int,
         ahead: timedelta = timedelta(days=7), limit: int = 50) -> list[ApptRow]:
    """The interviewer's own pending appointments: those whose time has passed (overdue, or missed and not yet
    swept: the last day) and the coming ``ahead``."""
    grace = timedelta(minutes=grace_minutes)
    stmt = (select(Appointment).where(Appointment.study_id == study_id, Appointment.status == AppointmentStatus.PENDING,
                                      Appointment.interviewer_id == interviewer_id,
                                      Appointment.due_at >= now - timedelta(days=1), Appointment.due_at < now + ahead)
            .order_by(Appointment.due_at).limit(limit))
    return _rows(session, stmt, now, grace)
