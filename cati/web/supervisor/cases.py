"""The case browser (``/supervisor/cases``): the study's cases filtered by enterprise, status, outcome,
interviewer, phone digits (numbers stay masked in the list) and appointment state, a page at a time, and bulk
actions (release, stop, reassign, do-not-call) on the ticked rows, each audited by the action itself."""

from __future__ import annotations

from flask import flash, render_template, request, url_for
from sqlalchemy import select

from cati.db import db
from cati.models import CaseStatus, Enterprise
from cati.services import case_browser as cb
from cati.services.scheduling import rules_for

from ..i18n import message
from ..security import current_user
from ..uow import commit
from .common import actor, back, bp, interviewer_choices, now_utc, screen, study_reading, the_study, tr, who


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def filter_args() -> cb.CaseFilter:
    a = request.args
    status = a.get("status") or None
    appt = a.get("appointment") or None
    return cb.CaseFilter(
        enterprise_id=_int(a.get("enterprise")),
        status=status if status in {s.value for s in CaseStatus} else None,
        outcome=(a.get("outcome") or "").strip() or None,
        interviewer_id=_int(a.get("interviewer")),
        phone=(a.get("phone") or "").strip() or None,
        appointment=appt if appt in cb.APPOINTMENT_FILTERS else None,
    )


@screen("/cases")
def cases():
    f = filter_args()
    now = now_utc()
    with study_reading() as (s, study):
        page = cb.browse(s, study.id, f, now, grace_minutes=rules_for(study).appointment_grace_minutes,
                         after=_int(request.args.get("after")), before=_int(request.args.get("before")))
        enterprises = s.execute(select(Enterprise.id, Enterprise.external_id, Enterprise.name)
                                .where(Enterprise.study_id == study.id).order_by(Enterprise.external_id)).all()
        people = interviewer_choices(s)
    for key in page.problems:
        flash(tr(key), "error")
    args = {k: v for k, v in request.args.items() if k not in ("after", "before") and v}
    return render_template("supervisor/cases.html", page=page, f=f, args=args, enterprises=enterprises,
                           people=people, statuses=[s.value for s in CaseStatus],
                           appointment_filters=cb.APPOINTMENT_FILTERS, actions=cb.BULK_ACTIONS,
                           here=request.full_path, tab="cases")


@bp.post("/cases/bulk")
@actor
def cases_bulk():
    user = current_user()
    action = request.form.get("action", "")
    ids = [i for i in (_int(x) for x in request.form.getlist("case")) if i is not None]
    note = (request.form.get("note") or "").strip() or None

    def work() -> cb.BulkResult:
        the_study(db.session)
        return cb.bulk(db.session, ids, action, now_utc(), user_id=user.id,
                       to_interviewer_id=who(request.form.get("to")), note=note)

    done = commit(work, cb.sa.SampleAdminError, ValueError)
    if done.ok:
        result: cb.BulkResult = done.value
        if action == "dnc":
            flash(tr("bulk_dnc_done", n=result.done, numbers=result.dnc_numbers), "info")
        else:
            flash(tr("bulk_done", action=tr("bulk_" + action), n=result.done), "info")
        if result.refused:
            flash(tr("bulk_refused", n=len(result.refused),
                     items="; ".join(f"{ref}: {message(err)}" for ref, err in result.refused[:20])), "error")
    return back(url_for("supervisor.cases"))
