"""Quality control (``/supervisor/qc``): completes with their flags, the call-back verification list, and
verifying or rejecting an interview."""

from __future__ import annotations

from flask import flash, render_template, request, url_for

from cati.db import db
from cati.services import qc

from ..security import current_user
from ..uow import commit
from .common import actor, back, bp, now_utc, screen, study_reading, tr

#: Newest completes listed on the QC page (filters narrow it down).
QC_PAGE = 200


@screen("/qc")
def qc_page():
    status = request.args.get("status", "")
    flagged = request.args.get("flagged") == "1"
    try:
        share = float(request.args.get("share") or 0.1)
        if not 0 <= share <= 1:
            raise ValueError
    except ValueError:
        flash(tr("share_invalid", value=request.args.get("share")), "error")
        share = 0.1
    with study_reading() as (s, study):
        rows = qc.qc_rows(s, study, status=status or None, flagged_only=flagged, limit=QC_PAGE)
        median = qc.median_length(s, study)
        callback = qc.callback_list(s, study, share)
    return render_template("supervisor/qc.html", rows=rows, status=status, flagged=flagged, median=median,
                           callback=callback, share=share, tab="qc")


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
