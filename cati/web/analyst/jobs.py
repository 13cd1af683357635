"""Reports and exports (``/analyst/jobs``): start a background job, watch its progress, download its files.

A job builds the products through the CLI's own path (:mod:`cati.services.jobs`), for the release chosen on the
page or the live completes. Full phone numbers only for an admin who types their password again (the CLI's
``--include-phone --admin`` check); every download is audited.
"""

from __future__ import annotations

import io
import zipfile

from flask import abort, current_app, jsonify, redirect, render_template, request, send_file, url_for

from cati.db import db
from cati.i18n import KeyedError
from cati.models import AnalysisJob, Role
from cati.services import jobs as job_service
from cati.services.users import authenticate

from ..i18n import current_language
from ..security import current_user, roles_required
from ..supervisor.common import study_reading, the_study
from ..uow import commit, flash_error
from .common import bp, scored_and_releases, screen, tr, viewer

downloader = roles_required(Role.ANALYST, Role.SUPERVISOR)


def _job_json(job: AnalysisJob) -> dict:
    return {"id": job.id, "status": job.status.value, "done": job.done, "total": job.total, "error": job.error,
            "files": job.files or []}


@screen("/jobs")
def jobs():
    scored, listed = scored_and_releases()
    with study_reading() as (s, study):
        rows = [{"id": j.id, "product": j.product, "include_phone": j.include_phone, "release_id": j.release_id,
                 "formats": list(j.formats), "lang": j.lang, "status": j.status, "done": j.done, "total": j.total,
                 "error": j.error, "files": list(j.files or [])} for j in job_service.jobs(s, study)]
        release_names = {r["id"]: r["name"] for r in listed}
    return render_template("analyst/jobs.html", scored=scored, releases=listed, rows=rows,
                           release_names=release_names, products=job_service.PRODUCT_FORMATS,
                           lang_default=current_language(), tab="jobs")


@bp.post("/jobs")
@viewer
def start_job():
    user = current_user()
    form = request.form
    product = form.get("product", "")
    include_phone = form.get("include_phone") == "1" and product == "exports"
    rid = int(form["release"]) if form.get("release", "").isdigit() else None
    back = redirect(url_for("analyst.jobs", release=rid) if rid else url_for("analyst.jobs"))
    if include_phone:
        # the CLI's check: an admin account, proven by its password now
        who = authenticate(db.session, user.username, form.get("admin_password", ""))
        if who is None or who.role != Role.ADMIN:
            db.session.rollback()
            flash_error(KeyedError("an_phone_denied"))
            return back
    ids = [x for x in form.get("enterprise_ids", "").replace("，", ",").replace("\n", ",").split(",") if x.strip()]
    done = commit(lambda: job_service.create_job(
        db.session, the_study(db.session), product=product, formats=form.getlist("formats"),
        lang=form.get("lang", current_language()), release_id=rid, enterprise_ids=ids, include_phone=include_phone,
        user_id=user.id), KeyedError, ok=lambda job: tr("an_job_started", id=job.id))
    if done.ok:
        job_service.enqueue(current_app, done.value.id)
    return back


def _job_or_404(job_id: int) -> AnalysisJob:
    job = db.session.get(AnalysisJob, job_id)
    if job is None:
        abort(404)
    return job


@bp.get("/jobs/<int:job_id>.json")
@viewer
def job_status(job_id: int):
    job = _job_or_404(job_id)
    body = _job_json(job)
    db.session.rollback()
    return jsonify(body)


@bp.get("/jobs/<int:job_id>/files/<path:name>")
@downloader
def download(job_id: int, name: str):
    user = current_user()
    job = _job_or_404(job_id)
    try:
        path = job_service.job_file(current_app, job, name)
    except KeyedError:
        abort(404)
    if not path.is_file():
        abort(404)
    job_service.record_download(db.session, job, name, user.id)
    db.session.commit()
    return send_file(path, as_attachment=True, download_name=path.name)


@bp.get("/jobs/<int:job_id>/all.zip")
@downloader
def download_all(job_id: int):
    user = current_user()
    job = _job_or_404(job_id)
    if not job.files:
        abort(404)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in job.files:
            zf.write(job_service.job_file(current_app, job, name), arcname=name)
    job_service.record_download(db.session, job, "all.zip", user.id)
    db.session.commit()
    buf.seek(0)
    return send_file(buf, as_attachment=True, download_name=f"job_{job.id}_{job.product}.zip",
                     mimetype="application/zip")


