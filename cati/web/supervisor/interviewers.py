"""Interviewers live (``/supervisor/interviewers``): who does what now, listening / whispering / barging in on a
call, pausing an interviewer and signing one out."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from datetime import time as dt_time

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from cati.db import db
from cati.models import User
from cati.models.agents import AgentState
from cati.services import agents, audit, logins, messages, productivity
from cati.services import supervision as sv
from cati.services.calling import zone
from cati.telephony.base import MonitorBusy, TelephonyError

from ..interviewer import get_backend
from ..security import current_user
from ..uow import commit
from .common import (
    actor,
    bp,
    centre_tz,
    interviewer_choices,
    now_utc,
    reading,
    screen,
    study_reading,
    tr,
    who,
)

PERIODS = {"today": 0, "7d": 6, "30d": 29}


@screen("/interviewers")
def interviewers():
    now = now_utc()
    tz = centre_tz()
    uid = request.args.get("uid", type=int)
    period = request.args.get("period") if request.args.get("period") in PERIODS else "today"
    local_midnight = datetime.combine(now.astimezone(zone(tz)).date() - timedelta(days=PERIODS[period]), dt_time.min,
                                      tzinfo=zone(tz))
    with study_reading() as (s, study):
        live = sv.interviewers_live(s, study, now, tz=tz)
        sent = messages.sent(s, now)
        people = interviewer_choices(s)
        hours = productivity.hourly(s, local_midnight, now, tz, interviewer_id=uid)
        sessions = logins.history(s, uid) if uid else []
    totals = productivity.HourRow(-1, sum(h.dials for h in hours), sum(h.contacts for h in hours),
                                  sum(h.completes for h in hours))
    return render_template("supervisor/interviewers.html", live=live, now=now, tab="agents",
                           monitoring=monitoring(), sent=sent, people=people, hours=hours, totals=totals,
                           sessions=sessions, uid=uid, period=period, periods=list(PERIODS))


@bp.post("/messages")
@actor
def send_message():
    """A message to one interviewer or to all; their consoles show it within a heartbeat."""
    user = current_user()
    commit(lambda: messages.send(db.session, user.id, who(request.form.get("to")), request.form.get("body", ""),
                                 now_utc()),
           messages.MessageError, ok=tr("message_sent"))
    return redirect(url_for("supervisor.interviewers") + "#messages")


_MONITORING_CACHE: dict = {"at": 0.0, "value": {}}


def monitoring() -> dict[str, list[dict]]:
    """Who monitors which call (call id → sessions), read from the PBX itself, so that every web worker and
    every supervisor sees the same; cached for 2 s (the live table may re-render often)."""
    if time.monotonic() - _MONITORING_CACHE["at"] < 2.0:
        return _MONITORING_CACHE["value"]
    out: dict[str, list[dict]] = {}
    try:
        sessions = get_backend().monitors()
    except (TelephonyError, OSError):
        sessions = []
    with reading() as s:
        names = dict(s.execute(select(User.extension, User.display_name)
                               .where(User.extension.in_([m["supervisor_extension"] for m in sessions]))).all()) \
            if sessions else {}
    for m in sessions:
        if m.get("call_id"):
            who = names.get(m["supervisor_extension"]) or m["supervisor_extension"]
            out.setdefault(m["call_id"], []).append(dict(m, who=who))
    _MONITORING_CACHE.update(at=time.monotonic(), value=out)
    return out


def _telephony(action, message) -> None:
    """Ask the telephony backend (after the audit record is committed: no lock held while it works)."""
    try:
        result = action(get_backend())
        _MONITORING_CACHE["at"] = 0.0
        flash(message(result), "info")
    except TelephonyError as exc:
        flash(tr("telephony_error", err=str(exc)), "error")


def _refuse(key: str):
    db.session.rollback()
    flash(tr(key), "error")
    return redirect(url_for("supervisor.interviewers"))


def _my_session(extension: str) -> dict | None:
    """This supervisor's monitoring session now, read from the PBX (not the 2 s cache)."""
    try:
        return next((m for m in get_backend().monitors() if m.get("supervisor_extension") == extension), None)
    except (TelephonyError, OSError):
        return None


def _name_on(call_id: str | None) -> str:
    """The interviewer on a call (their display name), for confirmations."""
    if not call_id:
        return "?"
    row = db.session.execute(select(User.display_name, User.username).join(AgentState, AgentState.user_id == User.id)
                             .where(AgentState.call_id == call_id)).first()
    return (row[0] or row[1]) if row else "?"


@bp.post("/interviewers/<int:uid>/<any(listen, whisper, barge):mode>")
@actor
def spy(uid: int, mode: str):
    """Listen, whisper or barge: one session per supervisor (a new mode replaces the old one) and one per call
    (another supervisor's session on the call refuses it, naming them)."""
    user = current_user()
    st = db.session.get(AgentState, uid)
    call_id = st.call_id if st is not None else None
    extension = user.extension
    if not call_id:
        return _refuse("no_call")
    if not extension:
        return _refuse(f"no_extension_{mode}")
    target = db.session.get(User, uid)
    name = target.display_name or target.username if target is not None else "?"
    before = _my_session(extension)
    commit(lambda: audit.record(db.session, user_id=user.id, action=f"call.{mode}", entity="interviewer",
                                entity_id=uid, after={"call_id": call_id, "extension": extension}))
    try:
        get_backend().monitor(call_id, extension, mode)
    except MonitorBusy as exc:
        other = db.session.scalar(select(User.display_name).where(User.extension == exc.supervisor_extension))
        flash(tr("monitor_busy", who=other or exc.supervisor_extension, mode=tr(exc.mode), name=name), "error")
        return redirect(url_for("supervisor.interviewers"))
    except TelephonyError as exc:
        flash(tr("telephony_error", err=str(exc)), "error")
        return redirect(url_for("supervisor.interviewers"))
    finally:
        _MONITORING_CACHE["at"] = 0.0
    message = tr(f"monitor_started_{mode}", name=name)
    if before is not None and (before.get("call_id"), before.get("mode")) != (call_id, mode):
        message += tr("monitor_replaced", mode=tr(before.get("mode") or "listen"), name=_name_on(before.get("call_id")))
    flash(message, "info")
    return redirect(url_for("supervisor.interviewers"))


@bp.post("/monitoring/stop")
@actor
def stop_monitoring():
    user = current_user()
    if not user.extension:
        return _refuse("monitor_none")
    extension = user.extension
    before = _my_session(extension)
    commit(lambda: audit.record(db.session, user_id=user.id, action="call.monitor_stop", entity="user",
                                entity_id=user.id, after={"extension": extension}))
    _telephony(lambda backend: backend.stop_monitor(extension),
               lambda n: (tr("monitor_stopped_of", mode=tr(before.get("mode") or "listen"),
                             name=_name_on(before.get("call_id"))) if before else tr("monitor_stopped"))
               if n else tr("monitor_none"))
    return redirect(url_for("supervisor.interviewers"))


@bp.post("/interviewers/<int:uid>/pause")
@actor
def pause_agent(uid: int):
    user = current_user()
    reason = request.form.get("reason") or "other"
    commit(lambda: agents.pause_by_supervisor(db.session, uid, now_utc(), reason=reason, by=user.id), ValueError,
           ok=tr("done_ok"))
    return redirect(url_for("supervisor.interviewers"))


@bp.post("/interviewers/<int:uid>/signout")
@actor
def sign_out_agent(uid: int):
    user = current_user()
    commit(lambda: agents.sign_out_by_supervisor(db.session, uid, now_utc(), by=user.id), ok=tr("done_ok"))
    return redirect(url_for("supervisor.interviewers"))
