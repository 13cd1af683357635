"""Quality control (``/supervisor/qc``): completes with their flags, the call-back verification list, and
verifying or rejecting an interview."""

from __future__ import annotations

from flask import flash, render_template, request, url_for

from cati.db import db
from cati.services import qc

from ..security import current_user
from ..uow import commit
from .common import actor, back, bp, now_utc, screen, study_reading, tr

#: Completes read for the QC page (newest first; filters narrow them down), and rows shown per page.
QC_READ = 2000
QC_PAGE = 50


@screen("/qc")
def qc_page():
    status = request.args.get("status", "")
    # Flagged interviews by default (the list is for reviewing flags); "flagged=0" lists every complete.
    flagged = request.args.get("flagged", "1" if "status" not in request.args else "0") == "1"
    try:
        page = max(int(request.args.get("page") or 1), 1)
    except ValueError:
        page = 1
    try:
        share = float(request.args.get("share") or 0.1)
        if not 0 <= share <= 1:
            raise ValueError
    except ValueError:
        flash(tr("share_invalid", value=request.args.get("share")), "error")
        share = 0.1
    with study_reading() as (s, study):
        found = qc.qc_rows(s, study, status=status or None, flagged_only=flagged, limit=QC_READ)
        median = qc.median_length(s, study)
        callback = qc.callback_list(s, study, share)
    pages = max((len(found) + QC_PAGE - 1) // QC_PAGE, 1)
    page = min(page, pages)
    rows = found[(page - 1) * QC_PAGE:page * QC_PAGE]
    return render_template("supervisor/qc.html", rows=rows, total=len(found), page=page, pages=pages, status=status,
                           flagged=flagged, median=median, callback=callback, share=share, tab="qc")


@bp.post("/qc/<int:interview_id>/<any(verify, reject):decision>")
@actor
def qc_decide(interview_id: int, decision: str):
    user = current_user()
    note = (request.form.get("note") or "").strip()
    if decision == "verify":
        commit(lambda: qc.verify(db.session, interview_id, user_id=user.id, note=note or None), qc.QCError,
               ok=tr("verified_msg"))
    else:
        commit(lambda: qc.reject(db.session, interview_id, now_utc(), user_id=user.id, note=note), qc.QCError,
               ok=lambda out: tr("rejected_msg", n=out["reopened_quota_cases"]))
    return back(url_for("supervisor.qc_page"))
