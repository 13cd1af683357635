"""Wrap-up: coding a call once it is over. Which outcomes fit the call (the catalogue's ``offered``), what each
requires (a note, a refusal reason, an appointment: the catalogue's ``needs_note``, ``refusal``,
``appointment``), appointment times in the respondent's local time, and applying the code to the attempt, the
interview and the case. No Flask: errors carry i18n keys; the caller commits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cati.models import Appointment, AppointmentStatus, CallAttempt, Case, Interview, InterviewStatus
from cati.models.agents import AgentStatus
from cati.models.calls import AttemptStatus
from cati.services import agents
from cati.services.calling import in_window, local, next_callable_time, zone
from cati.services.dispositions import Disposition, catalogue
from cati.services.interviews import break_off, terminate_interview
from cati.services.scheduling import record_outcome


class WrapupError(ValueError):
    """The outcome cannot be saved as given; ``keys`` are the i18n keys of every reason."""

    def __init__(self, keys: list[str]):
        super().__init__(", ".join(keys))
        self.keys = keys


# ------------------------------------------------------------------------------------------------ the call

_MACHINE_VERDICTS = ("MACHINE", "FAX")


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
        if verdict in _MACHINE_VERDICTS:
            return "machine"
        if attempt.amd_requested and not verdict:
            return "detecting"
        return "answered"
    return attempt.status.value


def contact_kind(attempt: CallAttempt | None) -> str:
    """How the call went, for the outcome choices: human | machine | no_answer."""
    if attempt is None or attempt.answered_at is None:
        return "no_answer"
    if (attempt.machine_detection or "").upper() in _MACHINE_VERDICTS:
        return "machine"
    return "human"


def offered_codes(attempt: CallAttempt | None, interview: Interview | None) -> list[str] | None:
    """The codes the interviewer may choose now, in the catalogue's order; None while the call is still being
    placed (nothing to code yet)."""
    if interview is not None and interview.status == InterviewStatus.IN_PROGRESS:
        return agents.outcome_choices("human", interview_started=True)
    if attempt is not None and (attempt.status == AttemptStatus.ENDED or attempt.answered_at is not None):
        return agents.outcome_choices(contact_kind(attempt), interview_started=False)
    return None


def finish_call(session: Session, user_id: int, now: datetime) -> str | None:
    """After the case is coded: the interviewer is ready again; returns the call to hang up, if still live."""
    state = agents.state_of(session, user_id, now)
    call_id = state.call_id
    live = None
    if call_id:
        a = session.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))
        live = call_id if a is not None and a.status != AttemptStatus.ENDED else None
    if state.status == AgentStatus.PAUSED:  # paused (by a supervisor) during the call: the pause outlives it
        agents.set_state(session, user_id, AgentStatus.PAUSED, now, reason=state.pause_reason)
    else:
        agents.set_state(session, user_id, AgentStatus.READY, now)
    return live


# ---------------------------------------------------------------------------------------------- appointments

def appointment_choices(case: Case, rules, now: datetime) -> dict:
    """Quick choices (in 1 h, tonight, tomorrow morning) and the calling windows, in respondent-local time;
    every offered time lies inside the calling window."""
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
            "slots": slots(date.fromisoformat(first["date"]), rules), "tz": tz}


def slots(day: date, rules) -> list[str]:
    """Every quarter hour inside the calling windows of ``day``."""
    out = []
    for a, b in rules.windows_on(day):
        t0 = datetime.combine(day, a)
        while t0.time() < b:
            out.append(t0.strftime("%H:%M"))
            t0 += timedelta(minutes=15)
    return out


def parse_typed_date(text: str) -> date:
    """A date as people type it: ``2026-12-07``, ``2026/12/7``, ``2026.12.7``, ``20261207`` or ``2026年12月7日``.

    >>> parse_typed_date("20261207"), parse_typed_date("2026/12/7"), parse_typed_date("2026年12月7日")
    (datetime.date(2026, 12, 7), datetime.date(2026, 12, 7), datetime.date(2026, 12, 7))
    """
    s = text.strip()
    digits = "".join(ch for ch in s if ch.isdigit())
    if s.isdigit() and len(s) == 8:
        return date(int(s[:4]), int(s[4:6]), int(s[6:]))
    parts = [p for p in re.split(r"[^0-9]+", s) if p]
    if len(parts) == 3 and len(parts[0]) == 4:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    raise ValueError(f"not a date: {text!r} ({digits})")


def parse_appointment(date_text: str, time_text: str, tz: str, now: datetime, rules) -> datetime:
    """Respondent-local date + time → UTC; raises ValueError with an i18n key when invalid or outside the
    calling window or in the past."""
    try:
        d = parse_typed_date(date_text)
        hh, mm = time_text.strip().split(":")[:2]
        when = datetime.combine(d, dtime(int(hh), int(mm)), zone(tz)).astimezone(UTC)
    except (ValueError, AttributeError):
        raise ValueError("appointment_bad") from None
    if when <= now:
        raise ValueError("appointment_past")
    if not in_window(when, tz, rules):
        raise ValueError("appointment_outside")
    return when


# ----------------------------------------------------------------------------------------------- the code

@dataclass(frozen=True)
class Wrapup:
    """What the interviewer entered: the code, a note, a refusal reason, an appointment (respondent-local date
    and time) and whether anyone may keep it."""

    code: str
    note: str = ""
    refusal_reason: str = ""
    appt_date: str = ""
    appt_time: str = ""
    for_anyone: bool = False


def needs_detail(code: str) -> bool:
    """Whether coding ``code`` needs more than the code: a refusal reason (refusals) or a note (the catalogue's
    ``needs_note``). The same rule holds for the outcome panel and for a script's termination."""
    disp = catalogue().get(code)
    return code in agents.refusal_codes() or bool(disp is not None and disp.needs_note)


def _check(entry: Wrapup, allowed: list[str], case: Case, rules, now: datetime) -> datetime | None:
    """The appointment time (None without one); WrapupError naming everything that is wrong."""
    errors = []
    if entry.code not in allowed:
        errors.append("outcome_invalid")
    disp = catalogue().get(entry.code)
    if disp is not None and disp.needs_note and not entry.note:
        errors.append("note_required")
    if entry.code in agents.refusal_codes() and entry.refusal_reason not in agents.REFUSAL_REASONS:
        errors.append("refusal_reason_required")
    appointment_at = None
    if entry.appt_date and disp is not None and disp.appointment:
        try:
            appointment_at = parse_appointment(entry.appt_date, entry.appt_time, case.timezone, now, rules)
        except ValueError as exc:
            errors.append(str(exc))
    elif disp is not None and disp.appointment == "required":
        errors.append("appointment_required")
    if errors:
        raise WrapupError(errors)
    return appointment_at


def code_call(session: Session, case: Case, user_id: int, entry: Wrapup, now: datetime, *, rules,
              attempt: CallAttempt | None, interview: Interview | None,
              reason_label: str = "") -> tuple[Disposition, str | None]:
    """Code the call with the interviewer's entry (only outcomes that fit the call; see :func:`offered_codes`).
    During an interview the break-off keeps every answer; any other code ends the interview. ``reason_label``
    is the refusal reason as written into the attempt's notes. Returns the disposition and the call to hang up
    (if still live). Raises :class:`WrapupError`."""
    appointment_at = _check(entry, offered_codes(attempt, interview) or [], case, rules, now)
    code = entry.code
    running = interview is not None and interview.status == InterviewStatus.IN_PROGRESS
    text = " ".join(x for x in (f"[{reason_label}]" if code in agents.refusal_codes() else "", entry.note) if x)
    if running:
        if code == catalogue().code_for("break_off"):
            break_off(session, interview, now, user_id=user_id, appointment_at=appointment_at)
        else:
            terminate_interview(session, interview, code, now, user_id=user_id)
        target = session.get(CallAttempt, interview.attempt_id) if interview.attempt_id else attempt
    else:
        from cati.telephony.dialer import code_attempt

        code_attempt(session, attempt, code)
        record_outcome(session, case, code, now, interviewer_id=user_id, appointment_at=appointment_at,
                       appointment_for_anyone=entry.for_anyone, rules=rules)
        target = attempt
    if target is not None and text:
        target.notes = ((target.notes + " | ") if target.notes else "") + text
    if appointment_at is not None:
        appt = session.scalars(select(Appointment).where(Appointment.case_id == case.id,
                                                         Appointment.status == AppointmentStatus.PENDING)
                               .order_by(Appointment.id.desc()).limit(1)).first()
        if appt is not None and entry.note:
            appt.note = entry.note[:1000]
    return catalogue()[code], finish_call(session, user_id, now)
