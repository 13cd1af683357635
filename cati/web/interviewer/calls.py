"""Dialing: the next case (and, in progressive mode, its dial), dialing a held case, hanging up, and the call's
state as server-sent events."""

from __future__ import annotations

import json
import time

from flask import Response, abort, current_app, request, session
from sqlalchemy import select

from cati.db import db
from cati.models import CallAttempt, User
from cati.models.agents import AgentStatus
from cati.models.calls import AttemptStatus
from cati.services import agents, wrapup
from cati.services.calling import zone
from cati.services.scheduling import Claim, next_case, serve_appointment
from cati.services.studies import get_study

from ..i18n import t
from ..security import current_user
from .backend import get_backend, hangup_quietly
from .common import (
    bp,
    current_attempt,
    interviewer_only,
    json_or_redirect,
    lang,
    my_attempt,
    my_case,
    now_utc,
    refuse,
)


@bp.post("/next")
@interviewer_only
def next_():
    user = current_user()
    now = now_utc()
    state = agents.state_of(db.session, user.id, now)
    if state.status == AgentStatus.PAUSED:
        return refuse({"ok": False, "error": t("paused_text")}, 409)
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
        return json_or_redirect({"ok": True, "case_id": got.case_id})
    db.session.commit()
    msg = got.text(lang())
    if got.next_callable_at is not None:
        centre = zone(current_app.config["CATI_SETTINGS"].centre_timezone)
        msg += f" — {t('next_callable_at')}: {got.next_callable_at.astimezone(centre):%m-%d %H:%M}"
    session["notice"] = msg  # not about a call: shown without the "last call" prefix
    return json_or_redirect({"ok": False, "no_case": got.reason.value, "message": msg})


@bp.post("/inbound")
@interviewer_only
def inbound():
    """A respondent calls back: the number they call from → their case, claimed for this interviewer."""
    from cati.services.inbound import InboundError, claim_callback

    from ..i18n import message
    from .common import held_case

    user = current_user()
    now = now_utc()
    if agents.state_of(db.session, user.id, now).status == AgentStatus.PAUSED:
        return refuse({"ok": False, "error": t("paused_text")}, 409)
    held = held_case(user)
    study = get_study(db.session)
    db.session.commit()  # the claim wants the start of a fresh transaction
    try:
        got = claim_callback(db.session, study, user.id, request.form.get("number", ""), now,
                             held_case_id=held.id if held is not None else None)
    except InboundError as err:
        return refuse({"ok": False, "error": message(err)}, 409)
    agents.set_state(db.session, user.id, AgentStatus.READY, now, case_id=got.case_id)
    db.session.commit()
    session["notice"] = t("inbound_got", ref=got.case_ref, number=got.number)
    return json_or_redirect({"ok": True, "case_id": got.case_id})


@bp.post("/case/<int:case_id>/dial")
@interviewer_only
def dial(case_id: int):
    user = current_user()
    case = my_case(case_id, user)
    phone_id = request.form.get("phone_id", type=int)
    if phone_id is not None and phone_id not in {p.id for p in case.phones}:
        abort(403)
    attempt = current_attempt(case, user)
    if attempt is not None and attempt.status != AttemptStatus.ENDED:
        return refuse({"ok": True, "call_id": attempt.call_id}, 200)  # already dialing: no double dial
    mode = agents.state_of(db.session, user.id, now_utc()).dial_mode
    db.session.commit()
    return _dial(user, case.id, phone_id, mode)


def _dial(user: User, case_id: int, phone_id: int | None, mode: str):
    from cati.telephony.base import TelephonyError
    from cati.telephony.dialer import dial_and_commit

    now = now_utc()
    extension = user.extension or f"console-{user.id}"
    try:
        call_id = dial_and_commit(db.sessionmaker, get_backend(), case_id, phone_id, user.id, extension,
                                  mode=mode, machine_detection=True, now=now)
    except (TelephonyError, ValueError) as exc:
        return json_or_redirect({"ok": False, "error": f"{t('dial_failed')}: {exc}"}, 502)
    agents.set_state(db.session, user.id, AgentStatus.DIALING, now, case_id=case_id, call_id=call_id)
    db.session.commit()
    return json_or_redirect({"ok": True, "call_id": call_id})


@bp.post("/call/<call_id>/hangup")
@interviewer_only
def hangup(call_id: str):
    my_attempt(call_id, current_user())
    db.session.rollback()
    hangup_quietly(call_id)
    return json_or_redirect({"ok": True})


@bp.get("/call/<call_id>/events")
@interviewer_only
def call_events(call_id: str):
    """Server-sent events: the call's state (requested → ringing → answered/machine → ended) as it changes.

    Each poll reads in its own short, read-only transaction; the stream ends when the call ends (or after
    a minute: EventSource reconnects by itself).
    """
    my_attempt(call_id, current_user())
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
                payload = {"state": wrapup.call_state(a), "outcome": a.outcome, "source": a.outcome_source}
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
