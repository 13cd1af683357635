"""The do-not-call list (``/supervisor/dnc``): the entries newest first (numbers masked, found by the digits
typed), removing one with a reason (audited), and the export as CSV or XLSX (full numbers, supervisors only,
audited). Adding numbers is the form of :mod:`.sample` (``POST /supervisor/dnc``)."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pandas as pd
from flask import Response, abort, flash, render_template, request, send_file, url_for

from cati.db import db
from cati.services import dnc as dnc_service

from ..i18n import message
from ..security import current_user
from ..uow import commit
from .common import actor, back, bp, local_text, now_utc, release_request_tx, screen, study_reading, tr


@screen("/dnc")
def dnc_list():
    q = (request.args.get("q") or "").strip() or None
    before = request.args.get("before", type=int)
    with study_reading() as (s, study):
        try:
            rows, total, more = dnc_service.page(s, q, before=before, study_id=study.id)
        except dnc_service.DncError as err:
            flash(message(err), "error")
            rows, total, more = [], 0, None
    return render_template("supervisor/dnc.html", rows=rows, total=total, more=more, q=q or "",
                           here=request.full_path, tab="dnc")


@bp.post("/dnc/<int:entry_id>/remove")
@actor
def dnc_remove(entry_id: int):
    user = current_user()
    commit(lambda: dnc_service.remove(db.session, entry_id, request.form.get("reason", ""), now_utc(),
                                      user_id=user.id),
           dnc_service.DncError, ok=lambda n: tr("dnc_removed", n=n))
    return back(url_for("supervisor.dnc_list"))


@bp.get("/dnc.<any(csv, xlsx):fmt>")
@actor
def dnc_export(fmt: str):
    """The whole list (or the rows matching ``q``) with full numbers: supervisors only, and audited."""
    user = current_user()
    q = (request.args.get("q") or "").strip() or None
    try:
        rows = dnc_service.all_rows(db.session, q)
    except dnc_service.DncError as err:
        db.session.rollback()
        flash(message(err), "error")
        return back(url_for("supervisor.dnc_list"))
    commit(lambda: dnc_service.record_export(db.session, len(rows), fmt, q, user_id=user.id))
    release_request_tx()
    head = [tr("phone"), tr("reason"), tr("dnc_source"), tr("by"), tr("added_at")]
    data = [[r.e164, r.reason, r.source, r.added_by, local_text(r.added_at, "%Y-%m-%d %H:%M")] for r in rows]
    stamp = local_text(now_utc(), "%Y%m%d-%H%M")
    if fmt == "csv":
        buf = io.StringIO()
        buf.write("\ufeff")  # Excel opens UTF-8 Chinese correctly with the BOM
        w = csv.writer(buf)
        w.writerow(head)
        w.writerows(data)
        return Response(buf.getvalue(), mimetype="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename=do-not-call-{stamp}.csv"})
    from reports.render import Sheet, write_xlsx

    frame = pd.DataFrame(data, columns=head, dtype=object)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_xlsx([Sheet(tr("dnc"), frame)], Path(tmp) / "dnc.xlsx", title=tr("dnc"))
        body = io.BytesIO(path.read_bytes())
    if body.getbuffer().nbytes == 0:
        abort(500)
    return send_file(body, as_attachment=True, download_name=f"do-not-call-{stamp}.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
