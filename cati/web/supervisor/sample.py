"""Sample (``/supervisor/sample``): unreleased replicates, pending appointments (move one, move all of an
interviewer's), the do-not-call list and refusal conversion."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import flash, render_template, request, url_for
from sqlalchemy import func, select

from cati.db import db
from cati.models import Case, CaseStatus
from cati.services import sample_admin as sa
from cati.services import supervision as sv
from cati.services.calling import zone

from ..i18n import message
from ..security import current_user
from ..uow import commit
from .common import (
    actor,
    back,
    bp,
    centre_tz,
    interviewer_choices,
    now_utc,
    screen,
    study_reading,
    the_study,
    tr,
    who,
)

SAMPLE_PAGE_APPOINTMENTS = 50


@screen("/sample")
def sample():
    now = now_utc()
    with study_reading() as (s, study):
        rows = sv.quota_board(s, study, now)
        reps = sa.unreleased_by_enterprise(s, study.id)
        waiting = [(r, reps[r.enterprise_id]) for r in rows if r.enterprise_id in reps]
        auto = sa.automatic_releases(s, study.id)
        # The earliest few only: each row carries its own interviewer list, and 500 rows took 1.8 s to render at
        # 200,000 cases (docs/bench/supervisor_screens.md); the Appointments screen moves any number at once.
        appts = sa.pending_appointments(s, study.id, limit=SAMPLE_PAGE_APPOINTMENTS + 1)
        appts_total = (sa.count_pending_appointments(s, study.id) if len(appts) > SAMPLE_PAGE_APPOINTMENTS
                       else len(appts))
        appts = appts[:SAMPLE_PAGE_APPOINTMENTS]
        people = interviewer_choices(s)
        soft = s.scalar(select(func.count(Case.id)).where(Case.study_id == study.id, Case.needs_converter.is_(True),
                                                          Case.status == CaseStatus.READY))
    return render_template("supervisor/sample.html", waiting=waiting, auto=auto, appts=appts,
                           appts_total=appts_total, people=people, soft=soft or 0, tab="sample")


@bp.post("/sample/release")
@actor
def release_replicate():
    user = current_user()

    def work() -> int:
        number = request.form.get("number")
        return sa.release(db.session, int(request.form["enterprise_id"]), int(number) if number else None, now_utc(),
                          user_id=user.id)

    commit(work, sa.SampleAdminError, KeyError, ValueError, ok=lambda n: tr("released_n", n=n))
    return back(url_for("supervisor.sample"))


def parse_local(value: str | None) -> datetime | None:
    """``YYYY-MM-DDTHH:MM`` in centre time → UTC (None when empty)."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise sa.SampleAdminError("datetime_invalid", value=value) from None
    return naive.replace(tzinfo=zone(centre_tz())).astimezone(UTC)


@bp.post("/appointments/<int:appt_id>/move")
@actor
def move_appointment(appt_id: int):
    user = current_user()
    commit(lambda: sa.move_appointment(db.session, appt_id, who(request.form.get("to")), user_id=user.id,
                                       due_at=parse_local(request.form.get("due_at")),
                                       note=request.form.get("note") or None),
           sa.SampleAdminError, ValueError, ok=tr("done_ok"))
    return back(url_for("supervisor.sample"))


@bp.post("/appointments/move-all")
@actor
def move_all():
    user = current_user()
    commit(lambda: sa.move_all_appointments(db.session, int(request.form["from"]), who(request.form.get("to")),
                                            user_id=user.id),
           sa.SampleAdminError, KeyError, ValueError, ok=lambda n: tr("moved_n", n=n))
    return back(url_for("supervisor.sample"))


@bp.post("/dnc")
@actor
def dnc():
    user = current_user()
    numbers = (request.form.get("numbers") or "").splitlines()
    done = commit(lambda: sa.add_do_not_call(db.session, numbers, now_utc(), user_id=user.id,
                                             reason=request.form.get("reason") or "supervisor"),
                  sa.SampleAdminError)
    if done.ok:
        added, stopped, bad = done.value
        if added:
            flash(tr("dnc_done", n=added, c=stopped), "info")
        if bad:
            flash(tr("dnc_bad", items="; ".join(f"{m} ({message(r)})" for m, r in bad)), "error")
    return back(url_for("supervisor.sample"))


@bp.post("/refusal-conversion")
@actor
def refusal_conversion():
    user = current_user()

    def work() -> dict:
        ids = [int(x) for x in request.form.getlist("interviewers")]
        return sa.assign_refusal_conversion(db.session, the_study(db.session).id, ids, user_id=user.id)

    commit(work, sa.SampleAdminError, ValueError, ok=lambda out: tr("assigned_n", n=sum(len(v) for v in out.values())))
    return back(url_for("supervisor.sample"))
