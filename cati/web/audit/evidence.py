"""The centre's evidence: one upload form per requirement (size limit from Settings, type by content sniffing,
a generated stored name, executables and empty files refused) and the downloads (always as attachments, with
``nosniff`` and a CSP that runs nothing). Uploads and downloads go to the audit log."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for

from cati.db import db
from cati.i18n import KeyedError
from cati.models import EvidenceFile
from cati.services import certification as svc

from ..i18n import t
from ..security import current_user
from ..uow import commit
from .common import bp, members_only, open_audit

DOWNLOAD_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"
#: Room for the form's other fields and the multipart framing around the file.
FORM_OVERHEAD = 1024 * 1024


def _too_large_reply():
    limit = current_app.config["CATI_SETTINGS"].audit_upload_max_bytes
    flash(t("aw_upload_request_too_large", limit=f"{limit / 1048576:.1f}"), "error")
    return redirect(request.referrer if (request.referrer or "").startswith(request.host_url)
                    else url_for("audit.evidence", audit_id=(request.view_args or {}).get("audit_id", 0)))


@bp.before_app_request
def _refuse_oversized_upload():
    """An upload far over the limit is refused before its body is read (this hook runs before the CSRF check,
    which would parse the whole form); a body without a length stops being read at the limit (413 below)."""
    if request.endpoint != "audit.upload":
        return None
    limit = current_app.config["CATI_SETTINGS"].audit_upload_max_bytes + FORM_OVERHEAD
    if request.content_length is not None and request.content_length > limit:
        return _too_large_reply()
    request.max_content_length = limit
    return None


@bp.errorhandler(413)
def _too_large(_err):
    return _too_large_reply()


def _folder():
    return svc.evidence_dir(current_app.config["CATI_SETTINGS"].instance_path)


@bp.get("/<int:audit_id>/evidence")
@members_only
def evidence(audit_id: int):
    audit, how = open_audit(audit_id)
    study = svc.checklist_of(audit)
    cat_code = request.args.get("cat") or study.categories[0].code
    category = next((c for c in study.categories if c.code == cat_code), None)
    if category is None:
        abort(404)
    max_mb = current_app.config["CATI_SETTINGS"].audit_upload_max_bytes / 1048576
    html = render_template("audit/evidence.html", audit=audit, how=how, study=study, category=category,
                           files=svc.evidence_of(db.session, audit), max_mb=f"{max_mb:.1f}",
                           accept=",".join(ext for _, exts in svc.ALLOWED.values() for ext in exts))
    db.session.rollback()
    return html


@bp.post("/<int:audit_id>/evidence")
@members_only
def upload(audit_id: int):
    audit, _ = open_audit(audit_id, ("admin", "centre"))
    code = request.form.get("requirement", "")
    cat = request.form.get("cat", "")
    back = redirect(url_for("audit.evidence", audit_id=audit_id, cat=cat, _anchor=f"r-{code}"))
    storage = request.files.get("file")
    if storage is None or not storage.filename:
        flash(t("aw_upload_no_file"), "error")
        return back
    limit = current_app.config["CATI_SETTINGS"].audit_upload_max_bytes
    data = storage.stream.read(limit + 1)  # one byte past the limit is enough to refuse
    commit(lambda: svc.store_evidence(db.session, audit, code, storage.filename, data, by=current_user(),
                                      folder=_folder(), max_bytes=limit), KeyedError,
           ok=lambda f: t("aw_uploaded", name=f.display_name))
    return back


@bp.get("/evidence/<int:file_id>")
@members_only
def download(file_id: int):
    f = db.session.get(EvidenceFile, file_id)
    if f is None:
        abort(404)
    open_audit(f.audit_id)
    path = _folder() / f.stored_name
    if not path.is_file():
        abort(404)
    name, kind = f.display_name, f.content_type
    commit(lambda: svc.record_download(db.session, f, current_user()))
    resp = send_file(path, mimetype=kind, as_attachment=True, download_name=name, max_age=0)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
