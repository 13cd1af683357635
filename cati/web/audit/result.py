"""The result per category (conforming / applicable, %, pass or fail) and overall, through
:func:`scoring.audit.score_audit`; the report (HTML, PDF) through :func:`reports.audit.build_audit_report`,
with the non-conformity list."""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import abort, render_template, send_file

from cati.db import db
from cati.services import certification as svc

from ..i18n import current_language
from .common import bp, members_only, open_audit


@bp.get("/<int:audit_id>/result")
@members_only
def result(audit_id: int):
    audit, how = open_audit(audit_id)
    out = svc.outcome(db.session, audit)
    from scoring.audit import percentage_label

    html = render_template("audit/result.html", audit=audit, how=how, outcome=out, pct=percentage_label)
    db.session.rollback()
    return html


@bp.get("/<int:audit_id>/report.<fmt>")
@members_only
def report(audit_id: int, fmt: str):
    if fmt not in ("html", "pdf"):
        abort(404)
    audit, _ = open_audit(audit_id)
    out = svc.outcome(db.session, audit)
    centre = audit.centre_name
    db.session.rollback()
    from reports.audit import build_audit_report

    with tempfile.TemporaryDirectory() as tmp:
        paths = build_audit_report(out.study, out.verdicts, out.result, lang=current_language(), out_dir=tmp,
                                   formats=(fmt,), centre=centre, notes=out.notes, stem=f"audit_{audit_id}")
        data = Path(paths[fmt]).read_bytes()
    import io

    resp = send_file(io.BytesIO(data), mimetype="text/html" if fmt == "html" else "application/pdf",
                     as_attachment=True, download_name=f"audit_{audit_id}.{fmt}", max_age=0)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
    return resp
