"""The supervisor's invitations page (``/supervisor/web/``): an open link per enterprise, personal tokens, their QR
codes (SVG to print, PNG to post in WeChat; made by segno), a CSV of every link, regenerating an unused personal
token, and per link the responses started, completes, QC flags and the duplicates refused."""

from __future__ import annotations

import io
import re
import zipfile

import segno
from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import select

from cati.db import db
from cati.models import Enterprise, Invitation, InvitationKind, Study
from cati.services import cawi as svc

from ..i18n import t
from ..security import current_user
from ..supervisor.common import template_helpers, viewer
from ..uow import commit
from .common import manage, now_utc, supervisor_only

manage.context_processor(template_helpers)


def web_studies() -> list[Study]:
    """Studies answered on the web (mode ``cawi`` or ``mixed``), oldest first."""
    rows = db.session.scalars(select(Study).where(Study.is_active.is_(True)).order_by(Study.id))
    return [s for s in rows if (s.definition or {}).get("mode") in ("cawi", "mixed")]


def _study() -> Study:
    studies = web_studies()
    code = request.values.get("study")
    for s in studies:
        if code in (None, "", s.code):
            return s
    abort(404)


def link_of(inv: Invitation) -> str:
    """The absolute link of an invitation (what its QR code encodes): on ``public_url`` when set."""
    base = current_app.config["CATI_SETTINGS"].public_url or request.url_root
    return base.rstrip("/") + url_for("cawi.landing", token=inv.token)


def _enterprise(study: Study, raw: str | None) -> Enterprise:
    ent = db.session.get(Enterprise, int(raw)) if raw and raw.isdigit() else None
    if ent is None or ent.study_id != study.id:
        abort(404)
    return ent


@manage.get("/")
@viewer
def invitations():
    if not web_studies():
        html = render_template("cawi/invitations.html", tab="web", study=None, studies=[])
        db.session.rollback()
        return html
    study = _study()
    ent_id = request.args.get("enterprise", "")
    ent = _enterprise(study, ent_id) if ent_id else None
    # Without an enterprise chosen, the open links only (a study may have tens of thousands of personal links).
    rows = svc.invitation_rows(db.session, study, ent.id if ent else None,
                               kind=None if ent else InvitationKind.OPEN)
    enterprises = db.session.scalars(select(Enterprise).where(Enterprise.study_id == study.id)
                                     .order_by(Enterprise.external_id)).all()
    with_open = {r.invitation.enterprise_id for r in rows if r.invitation.kind == "open"}
    modes = svc.mode_counts(db.session, study)
    html = render_template("cawi/invitations.html", tab="web", study=study, studies=web_studies(), rows=rows,
                           enterprises=enterprises, enterprise=ent, with_open=with_open, link_of=link_of,
                           modes=modes)
    db.session.rollback()
    return html


def _back(study: Study, enterprise_id: int | None = None):
    args = {"study": study.code}
    if enterprise_id:
        args["enterprise"] = enterprise_id
    return redirect(url_for("cawi_admin.invitations", **args))


@manage.post("/open")
@supervisor_only
def make_open():
    """The open link of one enterprise (``enterprise_id``), or of every enterprise of the study (``all``)."""
    study = _study()
    user, now = current_user(), now_utc()
    if request.form.get("all"):
        ents = db.session.scalars(select(Enterprise).where(Enterprise.study_id == study.id)).all()
    else:
        ents = [_enterprise(study, request.form.get("enterprise_id"))]
    commit(lambda: [svc.open_invitation(db.session, study, e, user_id=user.id, now=now) for e in ents],
           ok=t("cawi_links_made", n=len(ents)))
    return _back(study, None if request.form.get("all") else ents[0].id)


@manage.post("/personal")
@supervisor_only
def make_personal():
    study = _study()
    ent = _enterprise(study, request.form.get("enterprise_id"))
    raw = request.form.get("n", "").strip()
    n = int(raw) if raw.isdigit() else 0
    user, now = current_user(), now_utc()
    commit(lambda: svc.create_personal(db.session, study, ent, n, user_id=user.id, now=now,
                                       label=request.form.get("label", "").strip() or None),
           svc.CawiError, ok=lambda made: t("cawi_tokens_made", n=len(made)))
    return _back(study, ent.id)


def _invitation(inv_id: int) -> Invitation:
    inv = db.session.get(Invitation, inv_id)
    if inv is None:
        abort(404)
    return inv


@manage.post("/<int:inv_id>/regenerate")
@supervisor_only
def regenerate(inv_id: int):
    """Resend a personal token: a new link (the old one stops working), only while it is unused."""
    inv = _invitation(inv_id)
    study = db.session.get(Study, inv.study_id)
    ent_id = inv.enterprise_id
    commit(lambda: svc.regenerate(db.session, inv), svc.CawiError, ok=t("cawi_regenerated"))
    return _back(study, ent_id)


def qr_code(link: str) -> segno.QRCode:
    """The QR code of a link: error correction M (a printed code survives a smudge), as segno chooses the size."""
    return segno.make(link, error="m", micro=False)


@manage.get("/<int:inv_id>/qr.<kind>")
@viewer
def qr(inv_id: int, kind: str):
    """The link's QR code: ``svg`` (vector, to print) or ``png`` (to post in a chat)."""
    if kind not in ("svg", "png"):
        abort(404)
    inv = _invitation(inv_id)
    link = link_of(inv)
    buf = io.BytesIO()
    if kind == "svg":
        qr_code(link).save(buf, kind="svg", scale=8, border=4, xmldecl=False)
        mime = "image/svg+xml"
    else:
        qr_code(link).save(buf, kind="png", scale=10, border=4)
        mime = "image/png"
    db.session.rollback()
    buf.seek(0)
    name = f"qr-{inv.enterprise_id}-{inv.kind}-{inv.id}.{kind}"
    return send_file(buf, mimetype=mime, download_name=name, as_attachment=request.args.get("download") == "1")


@manage.get("/links.csv")
@viewer
def links_csv():
    """Every link of the study (or of one enterprise) as CSV: enterprise, kind, label, link, started, completes,
    duplicates refused (cell text neutralised against spreadsheet formulas)."""
    from scoring.cells import csv_bytes

    study = _study()
    ent_id = request.args.get("enterprise", "")
    ent = _enterprise(study, ent_id) if ent_id else None
    rows = svc.invitation_rows(db.session, study, ent.id if ent else None)
    head = [t("cawi_col_enterprise"), t("cawi_col_kind"), t("cawi_col_label"), t("cawi_col_link"),
            t("cawi_col_started"), t("cawi_col_completes"), t("cawi_col_duplicates")]
    body = [[r.enterprise, t(f"cawi_kind_{r.invitation.kind}"), r.invitation.label or "", link_of(r.invitation),
             r.started, r.completes, r.invitation.duplicates_blocked] for r in rows]
    db.session.rollback()
    if not rows:
        flash(t("cawi_no_links"), "error")
        return _back(study, ent.id if ent else None)
    return send_file(io.BytesIO(csv_bytes([head, *body])), mimetype="text/csv", as_attachment=True,
                     download_name=f"links-{study.code}.csv")


def _file_part(text: str) -> str:
    """Text safe inside a file name (enterprise names and notes are free text)."""
    return re.sub(r"[^\w.-]+", "_", text, flags=re.UNICODE).strip("_")[:60] or "_"


@manage.get("/qr.zip")
@viewer
def qr_zip():
    """Every link of one enterprise (``enterprise``, required: personal links can be many) as a ZIP: one PNG QR
    code per link, named by kind, note and id, and ``links.csv`` (the links CSV of the enterprise)."""
    from scoring.cells import csv_bytes

    study = _study()
    ent = _enterprise(study, request.args.get("enterprise", ""))
    rows = svc.invitation_rows(db.session, study, ent.id)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        table = [[t("cawi_col_kind"), t("cawi_col_label"), t("cawi_col_link"), "file"]]
        for r in rows:
            inv = r.invitation
            name = f"{inv.kind}-{_file_part(inv.label or '')}-{inv.id}.png"
            png = io.BytesIO()
            qr_code(link_of(inv)).save(png, kind="png", scale=10, border=4)
            zf.writestr(name, png.getvalue())
            table.append([t(f"cawi_kind_{inv.kind}"), inv.label or "", link_of(inv), name])
        zf.writestr("links.csv", csv_bytes(table))
    db.session.rollback()
    buf.seek(0)
    return send_file(buf, mimetype="application/zip", as_attachment=True,
                     download_name=f"qr-{_file_part(ent.external_id)}.zip")
