"""The list of audits a user may see, and the admin's form to open an audit and assign its people."""

from __future__ import annotations

from flask import abort, redirect, render_template, request, url_for
from sqlalchemy import select

from cati.db import db
from cati.i18n import KeyedError
from cati.models import Role, User
from cati.services import certification as svc
from cati.study.audit import AuditStudyError, load_audit_study

from ..security import current_user
from ..uow import commit
from .common import bp, members_only


@bp.get("/")
@members_only
def audits():
    user = current_user()
    rows = svc.visible_audits(db.session, user)
    people = {}
    if user.role == Role.ADMIN:
        people = {r.value: db.session.scalars(select(User).where(User.role == r, User.is_active.is_(True))
                                        .order_by(User.username)).all() for r in (Role.AUDITOR, Role.CENTRE)}
    html = render_template("audit/list.html", audits=rows, people=people, is_admin=user.role == Role.ADMIN)
    db.session.rollback()
    return html


@bp.post("/new")
@members_only
def create():
    user = current_user()
    if user.role != Role.ADMIN:
        abort(403)
    from cati.cli.audit import DEFAULT_AUDIT_STUDY

    def ids(name: str) -> list[int]:
        return [int(x) for x in request.form.getlist(name) if x.isdigit()]

    def work():
        try:
            study = load_audit_study(DEFAULT_AUDIT_STUDY)
        except AuditStudyError:
            raise KeyedError("aw_checklist_broken") from None
        return svc.create_audit(db.session, study=study, centre_name=request.form.get("centre_name", ""),
                                external_id=request.form.get("external_id"), auditor_ids=ids("auditors"),
                                centre_user_ids=ids("centre_users"), by=user)

    done = commit(work, KeyedError)
    if done.ok:
        return redirect(url_for("audit.overview", audit_id=done.value.id))
    return redirect(url_for("audit.audits"))


@bp.get("/<int:audit_id>/")
@members_only
def overview(audit_id: int):
    from .common import open_audit

    audit, how = open_audit(audit_id)
    out = svc.outcome(db.session, audit)
    ncs = svc.nonconformities(db.session, audit)
    html = render_template("audit/overview.html", audit=audit, how=how, outcome=out,
                           open_ncs=sum(1 for n in ncs if n.closed_at is None), n_ncs=len(ncs),
                           n_files=sum(len(v) for v in svc.evidence_of(db.session, audit).values()))
    db.session.rollback()
    return html


@bp.post("/<int:audit_id>/status")
@members_only
def status(audit_id: int):
    from .common import open_audit

    audit, _ = open_audit(audit_id, ("admin", "auditor"))
    commit(lambda: svc.set_status(db.session, audit, request.form.get("status", ""), current_user()), KeyedError)
    return redirect(url_for("audit.overview", audit_id=audit_id))
