"""Appointments (``/supervisor/appointments``): the overdue and missed ones (move them to someone who is working,
or to a new time) and one day's calendar, interviewers by the hour of the centre's clock."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import flash, render_template, request

from cati.services import appointments as ap
from cati.services.calling import zone
from cati.services.scheduling import rules_for

from .common import centre_tz, interviewer_choices, now_utc, screen, study_reading, tr


def _day(value: str | None, today: date) -> date:
    if not value:
        return today
    try:
        return date.fromisoformat(value)
    except ValueError:
        flash(tr("date_invalid", field=tr("day"), value=value), "error")
        return today


@screen("/appointments")
def appointments():
    now = now_utc()
    tz = zone(centre_tz())
    today = now.astimezone(tz).date()
    chosen = _day(request.args.get("day"), today)
    start = datetime.combine(chosen, time.min, tzinfo=tz)
    with study_reading() as (s, study):
        grace = rules_for(study).appointment_grace_minutes
        late = ap.overdue_and_missed(s, study.id, now, grace_minutes=grace)
        rows = ap.day(s, study.id, start, start + timedelta(days=1), now, grace_minutes=grace)
        people = interviewer_choices(s)
    hours, grid = ap.calendar(rows, lambda dt: dt.astimezone(tz).hour)
    return render_template("supervisor/appointments.html", late=late, grid=grid, hours=hours, day=chosen,
                           prev_day=chosen - timedelta(days=1), next_day=chosen + timedelta(days=1),
                           today=today, n_day=len(rows), people=people, here=request.full_path,
                           tab="appointments")
