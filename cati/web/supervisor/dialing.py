"""Dialing (``/supervisor/dialing``): the study's dialing mode and abandoned-call target, and the live dial level
and abandon rate of predictive dialing (also on the board). Supervisors set the mode and the target up to the
ceiling; only an admin raises the ceiling (a supervisor's attempt is refused and audited)."""

from __future__ import annotations

from flask import render_template, request, url_for

from cati.db import db
from cati.i18n import KeyedError
from cati.models import Role
from cati.services import dialing as dl
from cati.study.loader import StudyError

from ..security import current_user
from ..uow import commit, flash_error
from .common import actor, back, bp, now_utc, screen, study_reading, the_study, tr


@screen("/dialing")
def dialing():
    now = now_utc()
    with study_reading() as (s, study):
        status = dl.dialing_status(s, study, now)
    return render_template("supervisor/dialing.html", status=status, modes=dl.MODES, now=now, tab="dialing")


def _percent(field: str) -> float | None:
    raw = (request.form.get(field) or "").strip().rstrip("%").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise KeyedError("dialing_pct_not_number", value=raw[:20]) from None


@bp.post("/dialing")
@actor
def set_dialing():
    user = current_user()
    study = the_study(db.session)

    def work():
        target = _percent("target")
        if target is None:
            raise KeyedError("dialing_pct_not_number", value="")
        ceiling = _percent("ceiling") if user.role == Role.ADMIN else None
        return dl.set_dialing(db.session, study, user, mode=request.form.get("mode", ""), target_pct=target,
                              ceiling_pct=ceiling, now=now_utc())

    done = commit(work, KeyedError, StudyError,
                  ok=lambda st: tr("dialing_saved", mode=tr(f"dialing_mode_{st.mode}"),
                                   target=f"{100 * st.target:g}", ceiling=f"{100 * st.ceiling:g}"))
    if isinstance(done.error, dl.CeilingRefused):
        # The refused change was rolled back; the attempt itself is kept on record.
        commit(lambda: dl.record_refusal(db.session, the_study(db.session), user, done.error), show=flash_error)
    return back(url_for("supervisor.dialing"))
