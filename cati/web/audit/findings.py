"""Non-conformities: raised by an auditor from a "non-conforming" judgement with a deadline for correction, listed
with the overdue ones marked, and closed by a follow-up review with a note."""

from __future__ import annotations

from flask import abort, redirect, render_template, request, url_for

from cati.db import db
from cati.i18n import KeyedError
from cati.models import NonConformity, Verdict
from cati.services import certification as svc

from ..i18n import t
from ..security import current_user
from ..uow import commit
from .common import bp, members_only, open_audit


@bp.get("/<int:audit_id>/nonconformities")
@members_only
def nonconformities(audit_id: int):
    audit, how = open_audit(audit_id)
    study = svc.checklist_of(audit)
    ncs = svc.nonconformities(db.session, audit)
    raised = {n.requirement_code for n in ncs}
    final = svc.final_verdicts(db.session, audit)
    candidates = [(code, study.requirement(code)) for code, j in final.items()
                  if j.verdict == Verdict.NO and code not in raised]
    html = render_template("audit/nonconformities.html", audit=audit, how=how, study=study, ncs=ncs,
                           candidates=candidates, overdue=svc.overdue, final=final,
                           default_deadline=svc.deadline_default())
    db.session.rollback()
    return html


@bp.post("/<int:audit_id>/nonconformities")
@members_only
def raise_nc(audit_id: int):
    audit, _ = open_audit(audit_id, ("admin", "auditor"))
    code = request.form.get("requirement", "")
    commit(lambda: svc.raise_nonconformity(db.session, audit, by=current_user(), requirement_code=code,
                                           deadline=request.form.get("deadline", ""),
                                           description=request.form.get("description")), KeyedError,
           ok=t("aw_nc_raised", code=code))
    return redirect(url_for("audit.nonconformities", audit_id=audit_id))


@bp.post("/nonconformity/<int:nc_id>/close")
@members_only
def close_nc(nc_id: int):
    nc = db.session.get(NonConformity, nc_id)
    if nc is None:
        abort(404)
    open_audit(nc.audit_id, ("admin", "auditor"))
    audit_id, code = nc.audit_id, nc.requirement_code
    commit(lambda: svc.close_nonconformity(db.session, nc, by=current_user(), note=request.form.get("note", "")),
           KeyedError, ok=t("aw_nc_closed", code=code))
    return redirect(url_for("audit.nonconformities", audit_id=audit_id))
