"""The auditor's checklist, one pass at a time (document review, on-site review), one category per screen (a
tablet shows it in one column): judgement, note and evidence seen per requirement. The page's script
(``static/audit.js``) sends each judgement with a client-generated id and keeps it in localStorage until the
server has it, so the on-site pass survives a spell without network. In category 六 (customer value and
satisfaction) the auditor also sees the enterprise's CSAT results from the CSAT studies in this database."""

from __future__ import annotations

from flask import abort, render_template, request

from cati.db import db
from cati.i18n import KeyedError
from cati.models import AuditPass
from cati.services import certification as svc

from ..i18n import message
from ..security import current_user
from ..uow import commit
from .common import bp, members_only, open_audit

#: The category whose core items ask for customer-satisfaction evidence (六 客户价值与满意度).
CSAT_CATEGORY = "6"


@bp.get("/<int:audit_id>/check/<review>")
@members_only
def checklist(audit_id: int, review: str):
    audit, how = open_audit(audit_id, ("admin", "auditor"))
    try:
        rv = AuditPass(review)
    except ValueError:
        abort(404)
    study = svc.checklist_of(audit)
    cat_code = request.args.get("cat") or study.categories[0].code
    category = next((c for c in study.categories if c.code == cat_code), None)
    if category is None:
        abort(404)
    csat = svc.csat_evidence(db.session, audit) if category.code == CSAT_CATEGORY else None
    html = render_template("audit/checklist.html", audit=audit, how=how, study=study, category=category,
                           review=rv.value, current=svc.current_judgements(db.session, audit, rv),
                           other=svc.current_judgements(db.session, audit, AuditPass.DOCUMENT)
                           if rv == AuditPass.ONSITE else {},
                           files=svc.evidence_of(db.session, audit), csat=csat, csat_category=CSAT_CATEGORY)
    db.session.rollback()
    return html


@bp.post("/<int:audit_id>/judge")
@members_only
def judge(audit_id: int):
    """One judgement as JSON: ``client_id``, ``pass``, ``requirement``, ``verdict``, ``note``, ``evidence_seen``,
    ``judged_at`` (ISO time on the device). A resend of a stored ``client_id`` answers ``duplicate: true``."""
    audit, _ = open_audit(audit_id, ("admin", "auditor"))
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return {"ok": False, "error": message(KeyedError("aw_bad_request"))}, 400
    done = commit(lambda: svc.record_judgement(
        db.session, audit, by=current_user(), client_id=str(body.get("client_id", "")),
        review=str(body.get("pass", "")), requirement_code=str(body.get("requirement", "")),
        verdict=str(body.get("verdict", "")), note=body.get("note"), evidence_seen=body.get("evidence_seen"),
        judged_at=body.get("judged_at")), KeyedError, show=None)
    if not done.ok:
        return {"ok": False, "error": message(done.error)}, 422
    saved = done.value
    return {"ok": True, "duplicate": saved.duplicate, "current": saved.current, "id": saved.judgement.id,
            "verdict": saved.judgement.verdict.value}
