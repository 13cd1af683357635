"""Quota targets (``/supervisor/quotas``): each enterprise's target and each quota cell's target, edited where
they are enforced (:mod:`cati.services.quota_edit`), with what the change closed or reopened."""

from __future__ import annotations

from flask import render_template, request, url_for
from sqlalchemy import select

from cati.db import db
from cati.models import Enterprise
from cati.services import quota_edit as qe
from cati.services.quotas import cell_progress

from ..security import current_user
from ..uow import commit
from .common import actor, back, bp, now_utc, screen, study_reading, the_study, tr


@screen("/quotas")
def quotas():
    q = (request.args.get("q") or "").strip()
    with study_reading() as (s, study):
        stmt = (select(Enterprise.id, Enterprise.external_id, Enterprise.name, Enterprise.completes,
                       Enterprise.in_progress, Enterprise.quota_target)
                .where(Enterprise.study_id == study.id).order_by(Enterprise.external_id))
        if q:
            stmt = stmt.where(Enterprise.name.contains(q) | Enterprise.external_id.contains(q))
        enterprises = s.execute(stmt).all()
        targets = qe.cell_targets(study)
        progress: dict[tuple[str, str, str], list[int]] = {}
        for c in cell_progress(s, study):
            per = c.scope.partition(":")[0] or "study"
            agg = progress.setdefault((c.variable, per, c.value), [0, 0, 0])
            agg[0] += 1
            agg[1] += c.completes
            agg[2] += c.in_progress
    return render_template("supervisor/quotas.html", enterprises=enterprises, targets=targets, progress=progress,
                           q=q, here=request.full_path, tab="quotas")


def _flash_change(change: qe.TargetChange) -> str:
    return tr("quota_target_set", before=change.before, after=change.after, closed=change.closed,
              reopened=change.reopened)


@bp.post("/quotas/enterprise/<int:enterprise_id>")
@actor
def set_enterprise_quota(enterprise_id: int):
    user = current_user()
    commit(lambda: qe.set_enterprise_target(db.session, the_study(db.session), enterprise_id,
                                            request.form.get("target"), now_utc(), user_id=user.id),
           qe.QuotaEditError, ok=_flash_change)
    return back(url_for("supervisor.quotas"))


@bp.post("/quotas/cell")
@actor
def set_cell_quota():
    user = current_user()
    f = request.form
    commit(lambda: qe.set_cell_target(db.session, the_study(db.session), f.get("variable", ""), f.get("per", ""),
                                      f.get("value", ""), f.get("target"), now_utc(), user_id=user.id),
           qe.QuotaEditError, ok=_flash_change)
    return back(url_for("supervisor.quotas"))
