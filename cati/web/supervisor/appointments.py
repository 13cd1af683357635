"""Appointments (``/supervisor/appointments``): the overdue and missed ones (move them to someone who is working,
or to a new time) and one day's calendar, interviewers by the hour of the centre's clock."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import flash, render_template, request, url_for

from cati.db import db
from cati.services import appointments as ap
from cati.services import sample_admin as sa
from cati.services.calling import zone
from cati.services.scheduling import rules_for

from ..i18n import message
from ..security import current_user
from ..uow import commit
from .common import actor, back, bp, centre_tz, interviewer_choices, now_utc, screen, study_reading, tr, who
from .sample import parse_local


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


@bp.post("/appointments/move-selected")
@actor
def move_selected_appointments():
    """The ticked overdue / missed appointments to one interviewer (or anyone), optionally at a new time; each move
    audited by :func:`sample_admin.move_appointment`. One refused (no longer pending) does not stop the others."""
    user = current_user()
    ids = [int(x) for x in request.form.getlist("appt") if x.isdigit()]

    def work() -> tuple[int, list[str]]:
        if not ids:
            raise sa.SampleAdminError("bulk_choose_appointments")
        due = parse_local(request.form.get("due_at"))
        to = who(request.form.get("to"))
        done, refused = 0, []
        for appt_id in ids:
            sp = db.session.begin_nested()
            try:
                sa.move_appointment(db.session, appt_id, to, user_id=user.id, due_at=due)
                sp.commit()
                done += 1
            except sa.SampleAdminError as err:
                sp.rollback()
                if err.key == "not_active_interviewer":
                    raise
                refused.append(f"#{appt_id}: {message(err)}")
        return done, refused

    result = commit(work, sa.SampleAdminError)
    if result.ok:
        done, refused = result.value
        flash(tr("moved_n", n=done), "info")
        if refused:
            flash("; ".join(refused), "error")
    return back(url_for("supervisor.appointments"))
