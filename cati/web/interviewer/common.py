"""What the console's views share: the blueprint (with its timing hooks), the role check, finding the case,
interview and dial the interviewer holds, and replying to fetch or to a plain form alike."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from flask import Blueprint, abort, flash, g, jsonify, redirect, request, session, url_for
from sqlalchemy import select
from sqlalchemy.orm import make_transient_to_detached

from cati.db import db
from cati.models import CallAttempt, Case, CaseStatus, Enterprise, Interview, Role, Study, User
from cati.services.phones import mask_phone

from ..i18n import current_language
from ..security import roles_required, session_user_matches, wants_json

bp = Blueprint("interviewer", __name__, url_prefix="/interviewer")

interviewer_only = roles_required(Role.INTERVIEWER)


@bp.before_request
def _clock_in():
    g.console_t0 = time.perf_counter()
    if request.endpoint == "interviewer.answer" and request.method == "POST":
        _preload_answer(request.view_args.get("interview_id"))


def _preload_answer(interview_id: int | None) -> None:
    """The hot path (one request per key press): user, interview and case in one query instead of three.
    ``current_user`` then finds the user in ``g``; the same checks apply (active, session version)."""
    uid = session.get("uid")
    if uid is None or interview_id is None:
        return
    row = db.session.execute(
        select(User, Interview, Case).select_from(Interview).join(Case, Case.id == Interview.case_id)
        .join(User, User.id == uid).where(Interview.id == interview_id)).first()
    if row is None:
        return
    user, interview, case = row
    g.user = user if session_user_matches(user) else None
    g.preloaded_interview = (interview, case)


@bp.after_request
def _server_timing(resp):
    # Server-side time per request (the load script reports it beside the client-side latency).
    t0 = g.get("console_t0")
    if t0 is not None and not resp.is_streamed:
        resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.1f}"
    return resp


def now_utc() -> datetime:
    return datetime.now(UTC)


def lang() -> str:
    return current_language()


_DIGITS = re.compile(r"\+?\d[\d\- ]{6,}\d")


def mask_text(text: str | None) -> str:
    """Notes with every phone-number-like run masked (notes are free text and may quote a number)."""
    if not text:
        return ""
    return _DIGITS.sub(lambda m: mask_phone(m.group(0)), text)


def show_phone(e164: str) -> str:
    """A full number, grouped for reading aloud / dialing by hand: +86 mobile 139 0000 0001, else as stored.
    Only for the interviewer holding the case."""
    if e164.startswith("+86") and len(e164) == 14 and e164[3] == "1":
        n = e164[3:]
        return f"{n[:3]} {n[3:7]} {n[7:]}"
    if e164.startswith("+86"):
        return "0" + e164[3:]
    return e164


def held_case(user: User) -> Case | None:
    return db.session.scalars(
        select(Case).where(Case.status == CaseStatus.CLAIMED, Case.claimed_by_id == user.id)
        .order_by(Case.claimed_at.desc()).limit(1)
    ).first()


def my_case(case_id: int, user: User) -> Case:
    """The case, if this interviewer holds it; 404/403 otherwise."""
    case = db.session.get(Case, case_id)
    if case is None:
        abort(404)
    if case.status != CaseStatus.CLAIMED or case.claimed_by_id != user.id:
        abort(403)
    return case


def my_interview(interview_id: int, user: User) -> tuple[Interview, Case]:
    row = g.pop("preloaded_interview", None) or db.session.execute(
        select(Interview, Case).join(Case, Case.id == Interview.case_id).where(Interview.id == interview_id)).first()
    if row is None:
        abort(404)
    interview, case = row
    if interview.interviewer_id != user.id or case.claimed_by_id != user.id:
        abort(403)
    return interview, case


def my_attempt(call_id: str, user: User) -> CallAttempt:
    attempt = db.session.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))
    if attempt is None:
        abort(404)
    if attempt.interviewer_id != user.id:
        abort(403)
    return attempt


_study_cache: dict[int, tuple[float, Study]] = {}
_STUDY_TTL_S = 30.0


def cached_study(study_id: int) -> Study:
    """The study row, from a short per-process cache (the definition is a large JSON document read on every
    key press otherwise). Merged into the request's session without a query, so services that
    ``session.get(Study, …)`` find it there; a changed study file shows within 30 s."""
    hit = _study_cache.get(study_id)
    if hit is not None and time.monotonic() - hit[0] < _STUDY_TTL_S:
        return db.session.merge(hit[1], load=False)
    study = db.session.get(Study, study_id)
    copy = Study(**{c.key: getattr(study, c.key) for c in Study.__table__.columns})
    make_transient_to_detached(copy)
    _study_cache[study_id] = (time.monotonic(), copy)
    return study


def current_attempt(case: Case, user: User) -> CallAttempt | None:
    """The latest dial of this case by this interviewer during the current claim."""
    q = select(CallAttempt).where(CallAttempt.case_id == case.id, CallAttempt.interviewer_id == user.id)
    if case.claimed_at is not None:
        q = q.where(CallAttempt.requested_at >= case.claimed_at)
    return db.session.scalars(q.order_by(CallAttempt.requested_at.desc(), CallAttempt.id.desc()).limit(1)).first()


def context(case: Case, user: User) -> dict:
    """The fields a question's text may quote (the case's attributes, the enterprise, the interviewer)."""
    ent = db.session.get(Enterprise, case.enterprise_id)
    ctx = {k: str(v) for k, v in (case.attributes or {}).items()}
    ctx.update(enterprise_name=ent.name, interviewer_name=user.display_name)
    return ctx


def json_or_redirect(payload: dict, status: int = 200):
    """The payload as JSON (fetch), else back to the console with its error flashed (a plain form)."""
    if wants_json():
        return jsonify(payload), status
    if payload.get("error"):
        flash(payload["error"], "error")
    return redirect(url_for("interviewer.console"))


def refuse(payload: dict, status: int):
    """End the request's transaction unchanged and reply ``payload`` (an error or a reload)."""
    db.session.rollback()
    return json_or_redirect(payload, status)
