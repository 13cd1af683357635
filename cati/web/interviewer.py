"""The interviewer console (``/interviewer``): next case, dialing with live call state (SSE), the interview one
question at a time (or a grid), outcome coding with appointments, pause/ready and the shift's counters.

Every request ends its database transaction before it waits on anything (SQLite holds one write lock per
transaction): the dialer and the SSE stream use their own short sessions.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select
from sqlalchemy.orm import make_transient_to_detached

from cati.db import db
from cati.models import (
    Appointment,
    AppointmentStatus,
    CallAttempt,
    Case,
    CaseStatus,
    Enterprise,
    Interview,
    InterviewStatus,
    Role,
    Study,
    User,
)
from cati.models.agents import AgentStatus
from cati.models.calls import AttemptStatus
from cati.services import agents
from cati.services.calling import in_window, local, next_callable_time, zone
from cati.services.dispositions import catalogue
from cati.services.interviews import (
    InterviewError,
    answers_of,
    break_off,
    complete_interview,
    open_interview,
    questionnaire_for,
    save_answer,
    start_interview,
    terminate_interview,
)
from cati.services.phones import mask_phone
from cati.services.scheduling import (
    Claim,
    QuotaFull,
    next_case,
    record_outcome,
    renew_claim,
    rules_for,
    serve_appointment,
)
from cati.services.studies import get_study
from cati.study.engine import AnswerError

from .i18n import current_language, t
from .security import current_user, roles_required, wants_json

bp = Blueprint("interviewer", __name__, url_prefix="/interviewer", template_folder="templates")

interviewer_only = roles_required(Role.INTERVIEWER)


@bp.before_request
def _clock_in():
    g.console_t0 = time.perf_counter()
    if request.endpoint == "interviewer.answer" and request.method == "POST":
        _preload_answer(request.view_args.get("interview_id"))


def _preload_answer(interview_id: int | None) -> None:
    """The hot path (one request per key press): user, interview and case in one query instead of three.
    ``current_user`` then finds the user in ``g``; the same checks apply (active, session version)."""
    from .security import session_user_matches

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


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------------ telephony

_backend_lock = threading.Lock()


def get_backend():
    """This process's telephony backend (``CATI_TELEPHONY``; simulated by default), its events stored by
    :func:`cati.telephony.dialer.event_sink` in their own transactions."""
    app = current_app._get_current_object()
    backend = app.extensions.get("cati.console.telephony")
    if backend is not None:
        return backend
    with _backend_lock:
        backend = app.extensions.get("cati.console.telephony")
        if backend is None:
            backend = _make_backend()
            app.extensions["cati.console.telephony"] = backend
    return backend


def use_backend(app, backend, *, store_events: bool = True) -> None:
    """Give the app a telephony backend (tests, demo). With ``store_events`` its events are stored by the
    dialer's event sink in this process (the simulated backend's events exist only here)."""
    from cati.telephony.dialer import event_sink

    if store_events:
        with app.app_context():
            backend.subscribe(event_sink(db.sessionmaker))
    if hasattr(backend, "start_ticking"):
        backend.start_ticking(0.05)  # the simulated backend runs on the real clock in the console
    app.extensions["cati.console.telephony"] = backend


def _make_backend():
    """``CATI_TELEPHONY``: simulated (default) stores its events here; Asterisk gets an action-only AMI
    connection per web worker (the ``cati telephony worker`` process stores the events once); Twilio's
    events arrive as webhooks."""
    import os

    from cati.telephony import backend_from_env

    kind = (os.environ.get("CATI_TELEPHONY") or "simulated").strip().lower()
    if kind == "asterisk":
        backend = backend_from_env(events=False)
    else:
        backend = backend_from_env()
    use_backend(current_app._get_current_object(), backend, store_events=kind == "simulated")
    return backend


# ------------------------------------------------------------------------------------------------- helpers

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


def _held_case(user: User) -> Case | None:
    return db.session.scalars(
        select(Case).where(Case.status == CaseStatus.CLAIMED, Case.claimed_by_id == user.id)
        .order_by(Case.claimed_at.desc()).limit(1)
    ).first()


def _my_case(case_id: int, user: User) -> Case:
    """The case, if this interviewer holds it; 404/403 otherwise."""
    case = db.session.get(Case, case_id)
    if case is None:
        abort(404)
    if case.status != CaseStatus.CLAIMED or case.claimed_by_id != user.id:
        abort(403)
    return case


def _my_interview(interview_id: int, user: User) -> tuple[Interview, Case]:
    row = g.pop("preloaded_interview", None) or db.session.execute(select(Interview, Case).join(Case, Case.id == Interview.case_id)
                             .where(Interview.id == interview_id)).first()
    if row is None:
        abort(404)
    interview, case = row
    if interview.interviewer_id != user.id or case.claimed_by_id != user.id:
        abort(403)
    return interview, case


_study_cache: dict[int, tuple[float, Study]] = {}
_STUDY_TTL_S = 30.0


def _study(study_id: int) -> Study:
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


def _current_attempt(case: Case, user: User) -> CallAttempt | None:
    """The latest dial of this case by this interviewer during the current claim."""
    q = select(CallAttempt).where(CallAttempt.case_id == case.id, CallAttempt.interviewer_id == user.id)
    if case.claimed_at is not None:
        q = q.where(CallAttempt.requested_at >= case.claimed_at)
    return db.session.scalars(q.order_by(CallAttempt.requested_at.desc(), CallAttempt.id.desc()).limit(1)).first()


def call_state(attempt: CallAttempt | None) -> str:
    """``none`` | ``requested`` | ``placed`` | ``ringing`` | ``detecting`` | ``answered`` | ``machine`` | ``ended``.

    ``detecting``: answered while answering-machine detection still listens; the interview may not start
    before the verdict (a machine would be interviewed, or a person greeted by silence).
    """
    if attempt is None:
        return "none"
    if attempt.status == AttemptStatus.ENDED:
        return "ended"
    if attempt.status == AttemptStatus.ANSWERED:
        verdict = (attempt.machine_detection or "").upper()
        if verdict in ("MACHINE", "FAX"):
            return "machine"
        if attempt.amd_requested and not verdict:
            return "detecting"
        return "answered"
    return attempt.status.value


def _contact_kind(attempt: CallAttempt | None) -> str:
    """How the call went, for the outcome choices: human | machine | no_answer."""
    if attempt is None or attempt.answered_at is None:
        return "no_answer"
    if (attempt.machine_detection or "").upper() in ("MACHINE", "FAX"):
        return "machine"
    return "human"


def _context(case: Case, user: User, study: Study) -> dict:
    ent = db.session.get(Enterprise, case.enterprise_id)
    ctx = {k: str(v) for k, v in (case.attributes or {}).items()}
    ctx.update(enterprise_name=ent.name, interviewer_name=user.display_name)
    return ctx


def _lang() -> str:
    return current_language()


def _json_or_redirect(payload: dict, status: int = 200):
    if wants_json():
        return jsonify(payload), status
    if payload.get("error"):
        flash(payload["error"], "error")
    return redirect(url_for("interviewer.console"))


# ---------------------------------------------------------------------------------------------- console page

@bp.get("")
@interviewer_only
def console():
    user = current_user()
    now = _now()
    lang = _lang()
    study = get_study(db.session)
    rules = rules_for(study)
    state = agents.state_of(db.session, user.id, now)
    case = _held_case(user)
    view: dict = {"mode": "idle", "study": study, "user": user, "now": now}
    if case is not None:
        renew_claim(db.session, case.id, user.id, now, rules)
        view.update(_case_view(case, user, study, now, lang))
    elif state.call_id:
        # The last dial ended on the network's word (busy, no answer, dead number…): say so once.
        a = db.session.scalar(select(CallAttempt).where(CallAttempt.call_id == state.call_id))
        if a is not None and a.outcome_source == "auto" and a.outcome in catalogue():
            session["last_call"] = t("auto_outcome", label=f"{a.outcome} {catalogue()[a.outcome].text(lang)}")
        if a is None or a.status == AttemptStatus.ENDED:
            state.call_id = None
    desired = _agent_status_for(view, state.status)
    if desired != state.status:
        state = agents.set_state(db.session, user.id, desired, now, reason=state.pause_reason,
                                 case_id=case.id if case else None, call_id=view.get("call_id"))
    counters = agents.shift_counters(db.session, user.id, now)
    db.session.commit()
    since_text = local(state.since_at, rules.timezone_default).strftime("%H:%M")
    return render_template("interviewer/console.html", state=state, counters=counters, view=view,
                           since_text=since_text, show_phone=show_phone,
                           grid=session.get("grid", False), pause_reasons=agents.PAUSE_REASONS,
                           last=session.pop("last_call", None))


def _agent_status_for(view: dict, current: AgentStatus) -> AgentStatus:
    mode = view["mode"]
    if mode == "idle":
        return current if current in (AgentStatus.PAUSED, AgentStatus.READY) else AgentStatus.READY
    if mode == "interview":
        return AgentStatus.TALKING
    if mode == "call":
        cs = view["call_state"]
        if cs in ("answered", "machine"):
            return AgentStatus.TALKING
        if cs == "ended":
            return AgentStatus.WRAPUP
        return AgentStatus.DIALING
    return AgentStatus.READY if current != AgentStatus.PAUSED else current


def _case_view(case: Case, user: User, study: Study, now: datetime, lang: str) -> dict:
    q = questionnaire_for(study)
    ent = db.session.get(Enterprise, case.enterprise_id)
    attempts = db.session.scalars(select(CallAttempt).where(CallAttempt.case_id == case.id)
                                  .order_by(CallAttempt.requested_at)).all()
    users = {u.id: u.display_name for u in db.session.scalars(
        select(User).where(User.id.in_({a.interviewer_id for a in attempts if a.interviewer_id})))}
    cat = catalogue()
    phones = {p.id: p for p in case.phones}
    history = [{
        "at": local(a.requested_at, case.timezone).strftime("%Y-%m-%d %H:%M"),
        "number": mask_phone(phones[a.phone_id].e164) if a.phone_id in phones else "",
        "outcome": f"{a.outcome} {cat[a.outcome].text(lang)}" if a.outcome in cat else (a.outcome or ""),
        "notes": mask_text(a.notes),
        "interviewer": users.get(a.interviewer_id, ""),
    } for a in attempts]
    appointment = db.session.scalars(
        select(Appointment).where(Appointment.case_id == case.id)
        .where(Appointment.status.in_([AppointmentStatus.PENDING, AppointmentStatus.KEPT]))
        .order_by(Appointment.due_at.desc()).limit(1)).first()
    ctx = _context(case, user, study)
    intro_code = q.first()
    intro = q.render(intro_code, lang, ctx)["text"]
    attempt = _current_attempt(case, user)
    interview = open_interview(db.session, case.id)
    dialable = [p for p in case.phones if p.status.value == "ok"]
    industry = ""
    if ent.industry is not None:
        industry = (ent.industry.name_en or ent.industry.name) if lang == "en" else ent.industry.name
    lt = local(now, case.timezone)
    view = {
        "case": case, "enterprise": ent, "industry": industry,
        "phones": dialable, "history": history, "intro": intro,
        "local_now": f"{lt:%Y-%m-%d %H:%M} {t('wd_' + str(lt.weekday()))}",
        "appointment": appointment and {
            "due": local(appointment.due_at, case.timezone).strftime("%Y-%m-%d %H:%M"),
            "note": mask_text(appointment.note)},
        "attempt": attempt, "call_state": call_state(attempt), "call_id": attempt.call_id if attempt else None,
        "interview": interview,
    }
    if interview is not None and interview.status == InterviewStatus.PARTIAL:
        answers = answers_of(db.session, interview, q)
        from cati.services.interviews import resume_point

        pos, _total = q.progress(answers, resume_point(q, answers))
        view["resume"] = {"n": len(answers), "pos": pos}
    if interview is not None and interview.status == InterviewStatus.IN_PROGRESS:
        view["mode"] = "interview"
        view["step"] = _step_view(interview, case, user, study, lang)
        view["outcomes"] = _outcome_options(agents.outcome_choices("human", interview_started=True), lang)
    elif attempt is not None:
        view["mode"] = "call"
        if attempt.status == AttemptStatus.ENDED or attempt.answered_at is not None:
            kind = _contact_kind(attempt)
            view["outcomes"] = _outcome_options(agents.outcome_choices(kind, interview_started=False), lang)
    else:
        view["mode"] = "preview"
    if "outcomes" in view:
        view["appt"] = _appointment_choices(case, study, now, lang)
        view["refusal_reasons"] = agents.REFUSAL_REASONS
        view["refusal_codes"] = sorted(agents.REFUSAL_CODES)
    return view


def _outcome_options(codes: list[str], lang: str) -> list[dict]:
    cat = catalogue()
    return [{"code": c, "label": cat[c].text(lang), "needs_note": cat[c].needs_note} for c in codes]


# ------------------------------------------------------------------------------------------ interview steps

def _step_view(interview: Interview, case: Case, user: User, study: Study, lang: str, *,
               show_termination: bool = True, error: str | None = None, answers: dict | None = None) -> dict:
    """What the question area shows now: the current question (or grid), progress, termination panel."""
    q = questionnaire_for(study)
    if answers is None:
        answers = answers_of(db.session, interview, q)
    code = interview.current_question or q.first()
    ctx = _context(case, user, study)
    stopped = q.terminated(answers)
    view = {"interview_id": interview.id, "code": code, "error": error, "termination": None}
    if show_termination and stopped is not None and stopped[0] == code:
        view["termination"] = {"code": stopped[1], "label": catalogue().get_code(stopped[1]).text(lang)}
    pos, total = q.progress(answers, code)
    view["progress"] = {"pos": pos, "total": total, "pct": int(100 * (pos - 1) / max(total, 1))}
    rendered = q.render(code, lang, ctx)
    view["question"] = rendered
    view["section"] = _section_names(study, lang).get(rendered["section"] or "")
    view["current"] = answers.get(code)
    view["is_end"] = rendered["type"] == "info" and q.next_code(answers, code) is None
    view["grid"] = None
    if session.get("grid") and rendered["type"] == "rating":
        start = code
        while True:
            prev = q.previous_code(answers, start)
            if prev is None:
                break
            pq = q.render(prev, lang, ctx)
            if pq["type"] != "rating" or pq["section"] != rendered["section"]:
                break
            start = prev
        codes = q.grid_codes(answers, start)
        if len(codes) > 1:
            view["grid"] = [{"code": c, "text": q.render(c, lang, ctx)["text"], "value": answers.get(c),
                             "current": c == code} for c in codes]
    return view


def _section_names(study: Study, lang: str) -> dict[str, str]:
    """Indicator names by section code (A → 呼叫便利程度), shown above the rating items."""
    names = {}
    for ind in (study.definition.get("indicators") or []):
        name = ind.get("name") or {}
        names[ind.get("code")] = name.get(lang) or name.get("zh-CN") or ""
    return names


def _render_step(interview, case, user, study, lang, **kw) -> str:
    return render_template("interviewer/_question.html", step=_step_view(interview, case, user, study, lang, **kw))


@bp.post("/case/<int:case_id>/start")
@interviewer_only
def start(case_id: int):
    user = current_user()
    case = _my_case(case_id, user)
    attempt = _current_attempt(case, user)
    now = _now()
    if attempt is not None and call_state(attempt) == "detecting":
        db.session.rollback()
        if not wants_json():
            flash(t("amd_pending"), "error")
        return _json_or_redirect({"ok": False, "error": t("amd_pending")}, 409)
    try:
        start_interview(db.session, case, user.id, now, attempt_id=attempt.id if attempt else None,
                        language=_lang())
    except QuotaFull:
        db.session.rollback()
        return _json_or_redirect({"ok": False, "error": t("quota_full")}, 409)
    except InterviewError:
        db.session.rollback()
        abort(403)
    agents.set_state(db.session, user.id, AgentStatus.TALKING, now, case_id=case.id,
                     call_id=attempt.call_id if attempt else None)
    db.session.commit()
    return _json_or_redirect({"ok": True})


@bp.post("/interview/<int:interview_id>/answer")
@interviewer_only
def answer(interview_id: int):
    """Store one answer at once; reply with the next question's HTML (fetch) or redirect (plain form)."""
    user = current_user()
    lang = _lang()
    interview, case = _my_interview(interview_id, user)
    if interview.status != InterviewStatus.IN_PROGRESS:
        db.session.rollback()
        return _json_or_redirect({"ok": False, "error": t("interview_ended"), "reload": True}, 409)
    study = _study(interview.study_id)
    q = questionnaire_for(study)
    code = request.form.get("code") or ""
    if code not in q.codes:
        abort(400)
    current = interview.current_question or q.first()
    qtype = q.study.question(code).type
    raw = None if qtype == "info" else request.form.get("value", "")
    if qtype == "multi":
        raw = request.form.getlist("value")
    now = _now()
    try:
        saved = save_answer(db.session, interview, code, raw, user_id=user.id, now=now)
    except AnswerError as exc:
        db.session.rollback()
        interview, case = _my_interview(interview_id, user)
        html = _render_step(interview, case, user, study, lang, error=exc.message(lang))
        if wants_json():
            return jsonify(ok=False, error=exc.message(lang), html=html), 422
        flash(exc.message(lang), "error")
        return redirect(url_for("interviewer.console"))
    step = saved.step
    if not _answerable(q, step.answers, code, current):
        # Skipping ahead, or a stale page (another tab moved on): nothing is stored, the page reloads.
        db.session.rollback()
        return _json_or_redirect({"ok": False, "error": t("interview_ended"), "reload": True}, 409)
    if step.complete and step.next_code is None and step.termination is None:
        complete_interview(db.session, interview, now, user_id=user.id)
        call_id = _finish_call_state(user, now)
        db.session.commit()
        _hangup_quietly(call_id)
        session["last_call"] = t("interview_complete")
        return _json_or_redirect({"ok": True, "done": "complete", "redirect": url_for("interviewer.console")})
    html = _render_step(interview, case, user, study, lang, answers=step.answers)
    db.session.commit()
    return _json_or_redirect({"ok": True, "html": html, "code": interview.current_question})


def _answerable(q, answers: dict, code: str, current: str) -> bool:
    """Only the current question, one before it on the route (changing an earlier answer), or a row of the
    current rating grid may be answered: skipping ahead is not possible, even with a hand-made request.

    ``answers`` may be those after the answer was applied: routing up to ``code`` depends only on earlier
    answers, so whether ``code`` is on the route is the same before and after."""
    if code not in q.path(answers):
        return False
    order = {c: i for i, c in enumerate(q.codes)}
    if order[code] <= order[current]:
        return True
    return code in q.grid_codes(answers, current)


@bp.post("/interview/<int:interview_id>/back")
@interviewer_only
def back(interview_id: int):
    user = current_user()
    lang = _lang()
    interview, case = _my_interview(interview_id, user)
    if interview.status != InterviewStatus.IN_PROGRESS:
        db.session.rollback()
        return _json_or_redirect({"ok": False, "reload": True}, 409)
    study = _study(interview.study_id)
    q = questionnaire_for(study)
    answers = answers_of(db.session, interview, q)
    code = interview.current_question or q.first()
    stopped = q.terminated(answers)
    if stopped is not None and stopped[0] == code:
        # Backspace on the "interview ends here" panel: show the terminating question again to correct it.
        html = _render_step(interview, case, user, study, lang, show_termination=False)
        db.session.rollback()
        return _json_or_redirect({"ok": True, "html": html, "code": code})
    prev = q.previous_code(answers, code)
    if prev is not None:
        interview.current_question = prev
    html = _render_step(interview, case, user, study, lang)
    db.session.commit()
    return _json_or_redirect({"ok": True, "html": html, "code": interview.current_question})


@bp.post("/interview/<int:interview_id>/terminate")
@interviewer_only
def terminate(interview_id: int):
    """Confirm the end the questionnaire's rules reached (screened out, refused consent)."""
    user = current_user()
    interview, case = _my_interview(interview_id, user)
    study = db.session.get(Study, interview.study_id)
    q = questionnaire_for(study)
    stopped = q.terminated(answers_of(db.session, interview, q))
    if stopped is None or interview.status != InterviewStatus.IN_PROGRESS:
        db.session.rollback()
        return _json_or_redirect({"ok": False, "reload": True}, 409)
    now = _now()
    terminate_interview(db.session, interview, stopped[1], now, user_id=user.id)
    call_id = _finish_call_state(user, now)
    db.session.commit()
    _hangup_quietly(call_id)
    session["last_call"] = t("outcome_saved", label=f"{stopped[1]} {catalogue()[stopped[1]].text(_lang())}")
    return _json_or_redirect({"ok": True, "done": "terminated", "redirect": url_for("interviewer.console")})


# -------------------------------------------------------------------------------------------------- dialing

@bp.post("/next")
@interviewer_only
def next_():
    user = current_user()
    now = _now()
    state = agents.state_of(db.session, user.id, now)
    if state.status == AgentStatus.PAUSED:
        db.session.rollback()
        return _json_or_redirect({"ok": False, "error": t("paused_text")}, 409)
    study = get_study(db.session)
    mode = state.dial_mode
    db.session.commit()  # next_case wants the start of a fresh transaction
    got = next_case(db.session, study, user.id, now, converter=user.refusal_converter)
    if isinstance(got, Claim):
        if got.appointment_id:
            serve_appointment(db.session, got.appointment_id)
        agents.set_state(db.session, user.id, AgentStatus.READY, now, case_id=got.case_id)
        db.session.commit()
        if mode == "progressive" and got.source != "own_claim":
            return _dial(user, got.case_id, None, "progressive")
        return _json_or_redirect({"ok": True, "case_id": got.case_id})
    db.session.commit()
    lang = _lang()
    msg = got.text(lang)
    if got.next_callable_at is not None:
        msg += f" — {t('next_callable_at')}: {got.next_callable_at.astimezone(zone('Asia/Shanghai')):%m-%d %H:%M}"
    session["last_call"] = msg
    return _json_or_redirect({"ok": False, "no_case": got.reason.value, "message": msg})


@bp.post("/case/<int:case_id>/dial")
@interviewer_only
def dial(case_id: int):
    user = current_user()
    case = _my_case(case_id, user)
    phone_id = request.form.get("phone_id", type=int)
    if phone_id is not None and phone_id not in {p.id for p in case.phones}:
        abort(403)
    attempt = _current_attempt(case, user)
    if attempt is not None and attempt.status != AttemptStatus.ENDED:
        db.session.rollback()
        return _json_or_redirect({"ok": True, "call_id": attempt.call_id})  # already dialing: no double dial
    mode = agents.state_of(db.session, user.id, _now()).dial_mode
    db.session.commit()
    return _dial(user, case.id, phone_id, mode)


def _dial(user: User, case_id: int, phone_id: int | None, mode: str):
    from cati.telephony.base import TelephonyError
    from cati.telephony.dialer import dial_and_commit

    now = _now()
    extension = user.extension or f"console-{user.id}"
    try:
        call_id = dial_and_commit(db.sessionmaker, get_backend(), case_id, phone_id, user.id, extension,
                                  mode=mode, machine_detection=True, now=now)
    except (TelephonyError, ValueError) as exc:
        return _json_or_redirect({"ok": False, "error": f"{t('dial_failed')}: {exc}"}, 502)
    agents.set_state(db.session, user.id, AgentStatus.DIALING, now, case_id=case_id, call_id=call_id)
    db.session.commit()
    return _json_or_redirect({"ok": True, "call_id": call_id})


def _my_attempt(call_id: str, user: User) -> CallAttempt:
    attempt = db.session.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))
    if attempt is None:
        abort(404)
    if attempt.interviewer_id != user.id:
        abort(403)
    return attempt


@bp.post("/call/<call_id>/hangup")
@interviewer_only
def hangup(call_id: str):
    user = current_user()
    _my_attempt(call_id, user)
    db.session.rollback()
    _hangup_quietly(call_id)
    return _json_or_redirect({"ok": True})


def _hangup_quietly(call_id: str | None) -> None:
    """Hang up a call that may still be live. A backend that no longer knows the call (the server process
    that placed it was restarted) cannot report its end, so the end is recorded here, without any outcome
    (the interviewer's code stands), so supervisors don't see a call that never ends."""
    if not call_id:
        return
    from cati.telephony.base import ENDED, CallEvent, TelephonyError
    from cati.telephony.dialer import apply_event

    try:
        get_backend().hangup(call_id)
    except (TelephonyError, KeyError, ValueError):
        with db.sessionmaker() as s, s.begin():
            a = s.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))
            if a is not None and a.status != AttemptStatus.ENDED:
                apply_event(s, CallEvent(call_id, ENDED, _now(), cause_text="lost: backend restarted"),
                            settle_case=False)


def _finish_call_state(user: User, now: datetime) -> str | None:
    """After the case is coded: the interviewer is ready again; returns the call to hang up, if live."""
    state = agents.state_of(db.session, user.id, now)
    call_id = state.call_id
    live = None
    if call_id:
        a = db.session.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))
        live = call_id if a is not None and a.status != AttemptStatus.ENDED else None
    agents.set_state(db.session, user.id, AgentStatus.READY, now)
    return live


@bp.get("/call/<call_id>/events")
@interviewer_only
def call_events(call_id: str):
    """Server-sent events: the call's state (requested → ringing → answered/machine → ended) as it changes.

    Each poll reads in its own short, read-only transaction; the stream ends when the call ends (or after
    a minute: EventSource reconnects by itself).
    """
    user = current_user()
    _my_attempt(call_id, user)
    db.session.rollback()
    factory = db.sessionmaker
    stmt = select(CallAttempt).where(CallAttempt.call_id == call_id)

    def stream():
        last = None
        started = time.monotonic()
        beat = started
        yield "retry: 1000\n\n"
        while time.monotonic() - started < 60:
            with factory() as s:
                s.connection(execution_options={"sqlite_begin": "DEFERRED"})
                a = s.scalar(stmt)
                payload = {"state": call_state(a), "outcome": a.outcome, "source": a.outcome_source}
                s.rollback()
            if payload != last:
                last = payload
                yield f"event: call\ndata: {json.dumps(payload)}\n\n"
                beat = time.monotonic()
            elif time.monotonic() - beat > 15:
                yield ": keep-alive\n\n"
                beat = time.monotonic()
            if payload["state"] == "ended":
                return
            time.sleep(0.2)

    return Response(stream(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# ------------------------------------------------------------------------------------------- outcome coding

def _appointment_choices(case: Case, study: Study, now: datetime, lang: str) -> dict:
    """Quick choices (in 1 h, tonight, tomorrow morning) and the calling windows, in respondent-local time;
    every offered time lies inside the calling window."""
    rules = rules_for(study)
    tz = case.timezone
    lt = local(now, tz)

    def fmt(dt: datetime) -> dict:
        loc = local(dt, tz)
        minute = (loc.minute + 4) // 5 * 5  # round up to 5 minutes (stays inside: windows start on the 5)
        loc = loc.replace(minute=0, second=0, microsecond=0) + timedelta(minutes=minute)
        return {"date": loc.strftime("%Y-%m-%d"), "time": loc.strftime("%H:%M"),
                "label": loc.strftime("%m-%d %H:%M")}

    quick = []
    in1h = next_callable_time(now + timedelta(hours=1), tz, rules)
    quick.append({"key": "quick_1h", **fmt(in1h)})
    tonight = datetime.combine(lt.date(), dtime(19, 0), zone(tz)).astimezone(UTC)
    if tonight > now and in_window(tonight, tz, rules):
        quick.append({"key": "quick_tonight", **fmt(tonight)})
    tomorrow = datetime.combine(lt.date() + timedelta(days=1), dtime(9, 30), zone(tz)).astimezone(UTC)
    quick.append({"key": "quick_tomorrow", **fmt(next_callable_time(tomorrow, tz, rules))})
    windows = {
        "weekday": [(a.strftime("%H:%M"), b.strftime("%H:%M")) for a, b in rules.weekday_windows],
        "weekend": [(a.strftime("%H:%M"), b.strftime("%H:%M")) for a, b in rules.weekend_windows],
    }
    first = fmt(next_callable_time(now + timedelta(minutes=10), tz, rules))
    return {"quick": quick, "windows": windows, "default_date": first["date"], "default_time": first["time"],
            "min_date": lt.strftime("%Y-%m-%d"), "max_date": (lt + timedelta(days=60)).strftime("%Y-%m-%d"),
            "slots": _slots(date.fromisoformat(first["date"]), rules), "tz": tz}


def _slots(day: date, rules) -> list[str]:
    out = []
    for a, b in rules.windows_on(day):
        t0 = datetime.combine(day, a)
        while t0.time() < b:
            out.append(t0.strftime("%H:%M"))
            t0 += timedelta(minutes=15)
    return out


def parse_appointment(date_text: str, time_text: str, tz: str, now: datetime, rules) -> datetime:
    """Respondent-local date + time → UTC; raises ValueError with an i18n key when invalid or outside the
    calling window or in the past."""
    try:
        d = date.fromisoformat(date_text.strip())
        hh, mm = time_text.strip().split(":")[:2]
        when = datetime.combine(d, dtime(int(hh), int(mm)), zone(tz)).astimezone(UTC)
    except (ValueError, AttributeError):
        raise ValueError("appointment_bad") from None
    if when <= now:
        raise ValueError("appointment_past")
    if not in_window(when, tz, rules):
        raise ValueError("appointment_outside")
    return when


@bp.post("/case/<int:case_id>/outcome")
@interviewer_only
def outcome(case_id: int):
    """Code the call: the chosen disposition (only those that fit the call), note, refusal reason,
    appointment. During an interview, 2.12 is a break-off that keeps every answer."""
    user = current_user()
    lang = _lang()
    case = _my_case(case_id, user)
    study = db.session.get(Study, case.study_id)
    rules = rules_for(study)
    now = _now()
    attempt = _current_attempt(case, user)
    interview = open_interview(db.session, case.id)
    running = interview is not None and interview.status == InterviewStatus.IN_PROGRESS
    if running:
        allowed = agents.outcome_choices("human", interview_started=True)
    elif attempt is not None and (attempt.status == AttemptStatus.ENDED or attempt.answered_at is not None):
        allowed = agents.outcome_choices(_contact_kind(attempt), interview_started=False)
    else:
        allowed = []
    code = request.form.get("outcome", "")
    errors = []
    if code not in allowed:
        errors.append(t("outcome_invalid"))
    disp = catalogue().get(code)
    note = (request.form.get("note") or "").strip()[:1500]
    reason = request.form.get("refusal_reason") or ""
    if disp is not None and disp.needs_note and not note:
        errors.append(t("note_required"))
    if code in agents.REFUSAL_CODES and reason not in agents.REFUSAL_REASONS:
        errors.append(t("refusal_reason_required"))
    appointment_at = None
    if request.form.get("appt_date") and code in ("2.21", "2.12", "2.113"):
        try:
            appointment_at = parse_appointment(request.form.get("appt_date", ""), request.form.get("appt_time", ""),
                                               case.timezone, now, rules)
        except ValueError as exc:
            errors.append(t(str(exc)))
    elif code == "2.21":
        errors.append(t("appointment_required"))
    if errors:
        db.session.rollback()
        return _json_or_redirect({"ok": False, "error": "；".join(errors) if lang == "zh-CN" else "; ".join(errors)},
                                 422)
    text = " ".join(x for x in (f"[{t('rr_' + reason, 'zh-CN')}]" if code in agents.REFUSAL_CODES else "", note) if x)
    if running:
        if code == "2.12":
            break_off(db.session, interview, now, user_id=user.id, appointment_at=appointment_at)
        else:
            terminate_interview(db.session, interview, code, now, user_id=user.id)
        target = db.session.get(CallAttempt, interview.attempt_id) if interview.attempt_id else attempt
    else:
        from cati.telephony.dialer import code_attempt

        code_attempt(db.session, attempt, code)
        record_outcome(db.session, case, code, now, interviewer_id=user.id, appointment_at=appointment_at,
                       appointment_for_anyone=bool(request.form.get("for_anyone")), rules=rules)
        target = attempt
    if target is not None and text:
        target.notes = ((target.notes + " | ") if target.notes else "") + text
    if appointment_at is not None:
        appt = db.session.scalars(select(Appointment).where(Appointment.case_id == case.id,
                                                            Appointment.status == AppointmentStatus.PENDING)
                                  .order_by(Appointment.id.desc()).limit(1)).first()
        if appt is not None and note:
            appt.note = note[:1000]
    call_id = _finish_call_state(user, now)
    db.session.commit()
    _hangup_quietly(call_id)
    session["last_call"] = t("outcome_saved", label=f"{code} {disp.text(lang)}")
    return _json_or_redirect({"ok": True, "redirect": url_for("interviewer.console")})


# ---------------------------------------------------------------------------------------- status and prefs

@bp.post("/state")
@interviewer_only
def set_state():
    user = current_user()
    now = _now()
    status = request.form.get("status")
    reason = request.form.get("reason") or None
    if status not in ("ready", "paused"):
        abort(400)
    if status == "paused" and reason not in agents.PAUSE_REASONS:
        reason = "break"
    case = _held_case(user)
    agents.set_state(db.session, user.id, status, now, reason=reason, case_id=case.id if case else None)
    db.session.commit()
    return _json_or_redirect({"ok": True})


@bp.post("/prefs")
@interviewer_only
def prefs():
    user = current_user()
    mode = request.form.get("dial_mode")
    if mode in agents.DIAL_MODES:
        agents.set_dial_mode(db.session, user.id, mode, _now())
    if "grid" in request.form:
        session["grid"] = "1" in request.form.getlist("grid")  # hidden "0" + checkbox "1" when ticked
    db.session.commit()
    return _json_or_redirect({"ok": True})


@bp.get("/status")
@interviewer_only
def status():
    user = current_user()
    now = _now()
    st = agents.state_of(db.session, user.id, now)
    c = agents.shift_counters(db.session, user.id, now)
    db.session.commit()
    return jsonify(status=st.status.value, reason=st.pause_reason, since=st.since_at.isoformat(),
                   dials=c.dials, contacts=c.contacts, completes=c.completes,
                   completes_per_hour=round(c.completes_per_hour, 2))


@bp.post("/heartbeat")
@interviewer_only
def heartbeat():
    """The open console keeps its claim alive (a closed browser lets it expire after the claim timeout)."""
    user = current_user()
    case = _held_case(user)
    ok = False
    if case is not None:
        ok = renew_claim(db.session, case.id, user.id, _now(), rules_for(db.session.get(Study, case.study_id)))
    db.session.commit()
    return jsonify(ok=ok)
