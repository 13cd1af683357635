"""Releases (``/analyst/releases``): the study's frozen releases, and freezing the live scores as a new one."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from cati.db import db
from cati.i18n import KeyedError
from cati.models import Role
from cati.services import releases as rel_service

from ..security import current_user, roles_required
from ..supervisor.common import study_reading, the_study
from ..uow import commit, flash_error
from .common import bp, screen, tr


@screen("/releases")
def releases():
    with study_reading() as (s, study):
        from scoring import ScoringSpec

        rows = [{"id": r.id, "name": r.name, "created_at": r.created_at, "n_completes": r.n_completes,
                 "n_enterprises": r.n_enterprises, "overall": dict(r.overall or {}), "n_boot": r.n_boot,
                 "seed": r.seed, "weights": dict(r.weights or {}), "previous": r.previous_label}
                for r in rel_service.releases(s, study)]
        others = rel_service.every_release(s)
        default_boot = ScoringSpec.from_study(dict(study.definition or {})).bootstrap_replicates
    return render_template("analyst/releases.html", rows=rows, others=others, default_boot=default_boot,
                           seed=rel_service.LIVE_SEED, max_boot=rel_service.MAX_REPLICATES, scored=None,
                           releases=[], tab="releases")


@bp.post("/releases")
@roles_required(Role.ANALYST, Role.SUPERVISOR)
def create_release():
    user = current_user()
    form = request.form
    try:
        n_boot = int(form.get("n_boot", ""))
        seed = int(form.get("seed", ""))
    except ValueError:
        flash_error(KeyedError("an_release_numbers"))
        return redirect(url_for("analyst.releases"))
    db.session.commit()  # end the request's transaction: scoring (seconds) reads without SQLite's write lock
    try:
        with study_reading() as (s, study):
            previous = None
            upload = request.files.get("previous_file")
            if upload is not None and upload.filename:
                previous = rel_service.previous_from_csv(upload.read(), upload.filename, study)
            elif form.get("previous_release", "").isdigit():
                previous = rel_service.previous_from_release(s, study, int(form["previous_release"]))
            frozen = rel_service.score_release(s, study, name=form.get("name", ""), n_boot=n_boot, seed=seed,
                                               previous=previous)
    except KeyedError as err:
        flash_error(err)
        return redirect(url_for("analyst.releases"))
    done = commit(lambda: rel_service.store_release(db.session, the_study(db.session), frozen, user_id=user.id),
                  KeyedError, ok=lambda rel: tr("an_release_created", name=rel.name))
    if done.ok:
        return redirect(url_for("analyst.overall", release=done.value.id))
    return redirect(url_for("analyst.releases"))
