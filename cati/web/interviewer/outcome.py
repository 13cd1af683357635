"""Outcome coding: the interviewer's code for the call (parse → :func:`cati.services.wrapup.code_call` → reply)."""

from __future__ import annotations

from flask import request, session, url_for

from cati.db import db
from cati.models import Study
from cati.services import agents, wrapup
from cati.services.interviews import open_interview
from cati.services.scheduling import rules_for

from ..i18n import t
from ..security import current_user
from ..uow import commit
from .backend import hangup_quietly
from .common import bp, current_attempt, interviewer_only, json_or_redirect, lang, my_case, now_utc

#: Which form field each wrap-up error is about (the rest are about the appointment time).
FIELD_OF = {"outcome_invalid": "outcome", "note_required": "note", "refusal_reason_required": "refusal_reason",
            "appointment_required": "appt_date", "appointment_bad": "appt_date", "appointment_past": "appt_date",
            "appointment_outside": "appt_time"}


@bp.post("/case/<int:case_id>/outcome")
@interviewer_only
def outcome(case_id: int):
    """Code the call: the chosen disposition (only those that fit the call), note, refusal reason,
    appointment. During an interview, the break-off keeps every answer."""
    user = current_user()
    language = lang()
    case = my_case(case_id, user)
    f = request.form
    entry = wrapup.Wrapup(code=f.get("outcome", ""), note=(f.get("note") or "").strip()[:1500],
                          refusal_reason=f.get("refusal_reason") or "", appt_date=f.get("appt_date") or "",
                          appt_time=f.get("appt_time") or "", for_anyone=bool(f.get("for_anyone")))
    reason = entry.refusal_reason
    reason_label = t("rr_" + reason, "zh-CN") if reason in agents.REFUSAL_REASONS else ""
    done = commit(lambda: wrapup.code_call(db.session, case, user.id, entry, now_utc(),
                                           rules=rules_for(db.session.get(Study, case.study_id)),
                                           attempt=current_attempt(case, user),
                                           interview=open_interview(db.session, case.id), reason_label=reason_label),
                  wrapup.WrapupError, show=None)
    if done.error is not None:
        errors = [t(key) for key in done.error.keys]
        # The field to put the interviewer on: the first one an error is about.
        field = next((FIELD_OF[key] for key in done.error.keys if key in FIELD_OF), "outcome")
        return json_or_redirect({"ok": False, "field": field, "error": t("error_sep").join(errors)}, 422)
    disp, call_id = done.value
    hangup_quietly(call_id)
    session["last_call"] = t("outcome_saved", label=f"{disp.code} {disp.text(language)}")
    return json_or_redirect({"ok": True, "redirect": url_for("interviewer.console")})
