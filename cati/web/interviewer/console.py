"""The console page (``/interviewer``): the held case with its history, the call and the outcome choices, or
the idle screen; the interviewer's status, preferences, shift counters and the claim's heartbeat."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask import abort, current_app, jsonify, render_template, request, session
from sqlalchemy import select

from cati.db import db
from cati.models import (
    Appointment,
    AppointmentStatus,
    CallAttempt,
    Case,
    Enterprise,
    InterviewStatus,
    Study,
    User,
)
from cati.models.agents import AgentStatus
from cati.models.calls import AttemptStatus
from cati.services import agents, appointments, messages, wrapup
from cati.services.calling import local
from cati.services.dispositions import catalogue
from cati.services.interviews import (
    answers_of,
    open_interview,
    questionnaire_for,
    resume_point,
    revision_token,
)
from cati.services.phones import mask_phone
from cati.services.scheduling import renew_claim, rules_for
from cati.services.studies import get_study

from ..i18n import t
from ..security import current_user
from ..uow import commit
from .common import (
    bp,
    context,
    current_attempt,
    held_case,
    interviewer_only,
    json_or_redirect,
    lang,
    mask_text,
    now_utc,
    show_phone,
)
from .interview import step_view


@bp.get("")
@interviewer_only
def console():
    user, now, language = current_user(), now_utc(), lang()
    study = get_study(db.session)
    rules = rules_for(study)
    state = agents.state_of(db.session, user.id, now)
    case = held_case(user)
    view: dict = {"mode": "idle", "study": study, "user": user, "now": now}
    if case is not None:
        renew_claim(db.session, case.id, user.id, now, rules)
        view.update(_case_view(case, user, study, now, language))
    elif state.call_id:
        # The last dial ended on the network's word (busy, no answer, dead number…): say so once.
        a = db.session.scalar(select(CallAttempt).where(CallAttempt.call_id == state.call_id))
        if a is not None and a.outcome_source == "auto" and a.outcome in catalogue():
            session["last_call"] = t("auto_outcome", label=f"{a.outcome} {catalogue()[a.outcome].text(language)}")
        if a is None or a.status == AttemptStatus.ENDED:
            state.call_id = None
    desired = _agent_status_for(view, state.status)
    if desired != state.status:
        state = agents.set_state(db.session, user.id, desired, now, reason=state.pause_reason,
                                 case_id=case.id if case else None, call_id=view.get("call_id"))
    counters = agents.shift_counters(db.session, user.id, now)
    centre = current_app.config["CATI_SETTINGS"].centre_timezone
    inbox = [{"id": m.id, "from": m.sender, "body": m.body, "broadcast": m.broadcast,
              "at": local(m.sent_at, centre).strftime("%H:%M")} for m in messages.unread(db.session, user.id, now)]
    my_appts = [{"due": local(a.due_at, centre).strftime("%m-%d %H:%M"), "state": a.state, "case_ref": a.case_ref,
                 "enterprise": a.enterprise, "note": mask_text(a.note)}
                for a in appointments.mine(db.session, study.id, user.id, now,
                                           grace_minutes=rules.appointment_grace_minutes)]
    db.session.commit()
    since_text = local(state.since_at, rules.timezone_default).strftime("%H:%M")
    return render_template("interviewer/console.html", state=state, counters=counters, view=view,
                           since_text=since_text, show_phone=show_phone,
                           grid=session.get("grid", False), pause_reasons=agents.PAUSE_REASONS,
                           heartbeat_seconds=current_app.config["CATI_SETTINGS"].console.heartbeat_seconds,
                           my_appts=my_appts, inbox=inbox, last=session.pop("last_call", None), notice=session.pop("notice", None))


def _agent_status_for(view: dict, current: AgentStatus) -> AgentStatus:
    mode = view["mode"]
    if current == AgentStatus.PAUSED and mode in ("interview", "call"):
        return current  # paused mid-call: the call in hand goes on, the pause stays (and shows) until it is over
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


_DATE = re.compile(r"\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?( \d{1,2}:\d{2}(:\d{2})?)?")


def _field_text(value) -> str:
    """A sample column's value for the console: dates as they are, any number in it masked."""
    text = str(value)
    return text if _DATE.fullmatch(text.strip()) else mask_text(text)


def _case_view(case: Case, user: User, study: Study, now: datetime, language: str) -> dict:
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
        "outcome": f"{a.outcome} {cat[a.outcome].text(language)}" if a.outcome in cat else (a.outcome or ""),
        "notes": mask_text(a.notes),
        "interviewer": users.get(a.interviewer_id, ""),
    } for a in attempts]
    appointment = db.session.scalars(
        select(Appointment).where(Appointment.case_id == case.id)
        .where(Appointment.status.in_([AppointmentStatus.PENDING, AppointmentStatus.KEPT]))
        .order_by(Appointment.due_at.desc()).limit(1)).first()
    intro = q.render(q.first(), language, context(case, user))["text"]
    attempt = current_attempt(case, user)
    interview = open_interview(db.session, case.id)
    dialable = [p for p in case.phones if p.status.value == "ok"]
    industry = ""
    if ent.industry is not None:
        industry = (ent.industry.name_en or ent.industry.name) if language == "en" else ent.industry.name
    lt = local(now, case.timezone)
    view = {
        "case": case, "enterprise": ent, "industry": industry,
        "phones": dialable, "history": history, "intro": intro,
        "local_now": f"{lt:%Y-%m-%d %H:%M} {t('wd_' + str(lt.weekday()))}",
        "appointment": appointment and {
            "due": local(appointment.due_at, case.timezone).strftime("%Y-%m-%d %H:%M"),
            "note": mask_text(appointment.note)},
        # The sample's own columns (service type, last call date… which the intro refers to), numbers masked.
        "fields": [(k, _field_text(v)) for k, v in sorted((case.attributes or {}).items()) if v not in (None, "")],
        "attempt": attempt, "call_state": wrapup.call_state(attempt),
        "call_id": attempt.call_id if attempt else None, "interview": interview,
    }
    if interview is not None and interview.status == InterviewStatus.PARTIAL:
        answers = answers_of(db.session, interview, q)
        pos, _total = q.progress(answers, resume_point(q, answers))
        view["resume"] = {"n": len(answers), "pos": pos}
    if interview is not None and interview.status == InterviewStatus.IN_PROGRESS:
        view["mode"] = "interview"
        view["step"] = step_view(interview, case, user, study, language)
        view["rev"] = revision_token(db.session, interview)
    elif attempt is not None:
        view["mode"] = "call"
    else:
        view["mode"] = "preview"
    offered = wrapup.offered_codes(attempt, interview)
    if offered is not None:
        view["outcomes"] = [{"code": c, "label": cat[c].text(language), "needs_note": cat[c].needs_note}
                            for c in offered]
        view["appt"] = wrapup.appointment_choices(case, rules_for(study), now)
        view["refusal_reasons"] = agents.REFUSAL_REASONS
        view["refusal_codes"] = sorted(agents.refusal_codes())
        view["appointment_codes"] = sorted(cat.appointment_codes())
    return view


# ---------------------------------------------------------------------------------------- status and prefs

@bp.post("/state")
@interviewer_only
def set_state():
    user = current_user()
    now = now_utc()
    status = request.form.get("status")
    reason = request.form.get("reason") or None
    if status not in ("ready", "paused"):
        abort(400)
    if status == "paused" and reason not in agents.PAUSE_REASONS:
        reason = "break"
    case = held_case(user)
    commit(lambda: agents.set_state(db.session, user.id, status, now, reason=reason,
                                    case_id=case.id if case else None))
    return json_or_redirect({"ok": True})


@bp.post("/prefs")
@interviewer_only
def prefs():
    user = current_user()
    mode = request.form.get("dial_mode")
    if mode in agents.DIAL_MODES:
        agents.set_dial_mode(db.session, user.id, mode, now_utc())
    if "grid" in request.form:
        session["grid"] = "1" in request.form.getlist("grid")  # hidden "0" + checkbox "1" when ticked
    db.session.commit()
    return json_or_redirect({"ok": True})


@bp.get("/status")
@interviewer_only
def status():
    """The interviewer's status and shift counters (the console polls them)."""
    user, now = current_user(), now_utc()
    st = agents.state_of(db.session, user.id, now)
    c = agents.shift_counters(db.session, user.id, now)
    db.session.commit()
    return jsonify(status=st.status.value, reason=st.pause_reason, since=st.since_at.isoformat(),
                   dials=c.dials, contacts=c.contacts, completes=c.completes,
                   completes_per_hour=None if c.completes_per_hour is None else round(c.completes_per_hour, 2))


#: Per process: when the last sweep for silent consoles ran (every heartbeat would be wasteful).
_last_sweep = {"at": 0.0}


@bp.post("/heartbeat")
@interviewer_only
def heartbeat():
    """The open console says it is alive: presence, the held claim kept alive, and the reply tells the console a
    supervisor's pause or sign-out. Heartbeats also sweep consoles gone silent (closed browsers): those
    interviewers go offline and their cases back to the queue."""
    import time

    user, now = current_user(), now_utc()
    settings = current_app.config["CATI_SETTINGS"].console
    presence = agents.heartbeat(db.session, user.id, now)
    case = held_case(user)
    ok = False
    if case is not None:
        ok = renew_claim(db.session, case.id, user.id, now, rules_for(db.session.get(Study, case.study_id)))
    if time.monotonic() - _last_sweep["at"] >= settings.heartbeat_seconds:
        _last_sweep["at"] = time.monotonic()
        agents.sweep_absent(db.session, now, timedelta(seconds=settings.presence_timeout_seconds))
    # Supervisor messages ride on the heartbeat: the ones not read yet (first delivery notes the receipt).
    inbox = [{"id": m.id, "from": m.sender, "body": m.body, "broadcast": m.broadcast,
              "at": local(m.sent_at, current_app.config["CATI_SETTINGS"].centre_timezone).strftime("%H:%M")}
             for m in messages.unread(db.session, user.id, now)]
    db.session.commit()
    text = None
    if presence.paused_by_supervisor and presence.reason:
        text = t("paused_by_supervisor", reason=t("pr_" + presence.reason))
    return jsonify(ok=ok, status=presence.status, reason=presence.reason, signed_out=presence.signed_out,
                   paused_by_supervisor=presence.paused_by_supervisor, text=text, messages=inbox)


@bp.post("/messages/<int:message_id>/read")
@interviewer_only
def message_read(message_id: int):
    """The interviewer marks a supervisor's message read (the read receipt the supervisor sees)."""
    user = current_user()
    if not messages.mark_read(db.session, user.id, message_id, now_utc()):
        db.session.rollback()
        abort(404)
    db.session.commit()
    return json_or_redirect({"ok": True})
