"""Staffing advice: which parts of which days give the most completes per paid interviewer-hour, and a shift plan
for the work that remains.

A paid interviewer-hour in a part of the day yields

    completes/hour = 3600 · c · q / (c · (q · t_interview + (1 − q) · t_contact) + (1 − c) · t_dial)

where ``c`` is the chance a first dial reaches a person in that slot (the study's contact model, learned from its
own dials with shrinkage towards the prior), ``q`` the share of contacts that end in a complete, ``t_interview``
the seconds a complete takes (dial, talk, wrap-up), ``t_contact`` those of a contact without a complete and
``t_dial`` those of a dial that reaches nobody (ringing plus coding). ``q`` and the times come from the study's
own attempts and interviews once there are enough, else from defaults (stated in :data:`DEFAULT_TIMING`).

The plan fills the coming calling stretches (up to the fieldwork end date, or two weeks) best-yield first with up
to ``max_team`` interviewers until the expected completes cover what remains, so the same paid hours buy the most
completes. It is advice: the supervisor staffs the shifts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cati.models import CallAttempt, Case, Interview, InterviewStatus, Study

from .calling import CallRules, local, segments
from .contact_model import contact_codes, contact_model
from .dispositions import catalogue
from .pacing import remaining_completes
from .runtime import runtime_for

#: Seconds per dial outcome and the complete share of contacts, used until the study has its own evidence.
DEFAULT_TIMING = {"q": 0.35, "t_interview": 15 * 60.0, "t_contact": 3 * 60.0, "t_dial": 50.0}
#: How many of the study's own contacts / completes / no-contact dials make its own figures trusted.
MIN_EVIDENCE = 30


@dataclass(frozen=True)
class Timing:
    q: float
    t_interview: float
    t_contact: float
    t_dial: float
    own: bool  # from the study's own attempts (else the defaults)


@dataclass(frozen=True)
class SlotYield:
    weekend: bool
    part: str
    contact_rate: float
    completes_per_paid_hour: float
    dials: int  # the study's dials behind the contact rate


@dataclass(frozen=True)
class Shift:
    start: datetime
    end: datetime
    part: str
    weekend: bool
    interviewers: int
    expected_completes: float


@dataclass(frozen=True)
class StaffingAdvice:
    timing: Timing
    slots: list[SlotYield]          # best first
    plan: list[Shift]               # chronological
    remaining: int
    planned_hours: float
    planned_completes: float


def completes_per_paid_hour(c: float, timing: Timing) -> float:
    """Expected completes per paid interviewer-hour at contact rate ``c`` (module docstring).

    >>> t = Timing(q=0.35, t_interview=900, t_contact=180, t_dial=50, own=False)
    >>> round(completes_per_paid_hour(0.30, t), 3)
    2.296
    >>> completes_per_paid_hour(0.45, t) > completes_per_paid_hour(0.20, t)
    True
    """
    per_dial = c * (timing.q * timing.t_interview + (1 - timing.q) * timing.t_contact) + (1 - c) * timing.t_dial
    return 3600 * c * timing.q / per_dial if per_dial > 0 else 0.0


def _seconds(start, end, sqlite: bool):
    """SQL for the seconds from ``start`` to ``end`` (SQLite has no interval type)."""
    if sqlite:
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


def study_timing(session: Session, study: Study) -> Timing:
    """``q`` and the seconds per kind of dial from the study's own attempts, or the defaults when thin."""
    codes = contact_codes()
    d = DEFAULT_TIMING
    contacts, completes = session.execute(
        select(func.count().filter(CallAttempt.outcome.in_(codes)),
               func.count().filter(CallAttempt.outcome == catalogue().code_for("complete")))
        .join(Case, Case.id == CallAttempt.case_id).where(Case.study_id == study.id)).one()
    sqlite = session.get_bind().dialect.name == "sqlite"
    secs = _seconds(CallAttempt.requested_at, CallAttempt.ended_at, sqlite)
    no_contact = session.execute(
        select(func.count(), func.avg(secs)).join(Case, Case.id == CallAttempt.case_id)
        .where(Case.study_id == study.id, CallAttempt.ended_at.is_not(None), CallAttempt.outcome.is_not(None),
               CallAttempt.outcome.not_in(codes))).one()
    iv_secs = _seconds(Interview.started_at, Interview.ended_at, sqlite)
    iv_n, iv_avg = session.execute(
        select(func.count(), func.avg(iv_secs)).where(Interview.study_id == study.id,
                                                      Interview.status == InterviewStatus.COMPLETE,
                                                      Interview.ended_at.is_not(None))).one()
    own = contacts >= MIN_EVIDENCE and iv_n >= MIN_EVIDENCE and no_contact[0] >= MIN_EVIDENCE
    if not own:
        return Timing(d["q"], d["t_interview"], d["t_contact"], d["t_dial"], False)
    # a complete costs the dial and the interview, plus about a minute of wrap-up
    return Timing(q=completes / contacts, t_interview=float(iv_avg) + 60 + 30, t_contact=d["t_contact"],
                  t_dial=max(20.0, float(no_contact[1] or d["t_dial"]) + 15), own=True)


def slot_yields(session: Session, study: Study, now: datetime, rules: CallRules | None = None,
                timing: Timing | None = None) -> list[SlotYield]:
    """Every (weekday/weekend, part of the day) with its contact rate and completes per paid hour, best first."""
    from .scheduling import rules_for

    rules = rules or rules_for(study)
    timing = timing or study_timing(session, study)
    model = contact_model(session, study, rules, now)
    out = []
    for weekend in (0, 1):
        for part, (name, _a, _b) in enumerate(rules.day_parts):
            if not _part_has_window(rules, weekend, part):
                continue
            c = model.rates(weekend, part)[0]  # a first dial: nothing tried yet
            out.append(SlotYield(bool(weekend), name, round(c, 4), round(completes_per_paid_hour(c, timing), 3),
                                 model.slot_dials(weekend, part)))
    return sorted(out, key=lambda s: -s.completes_per_paid_hour)


def _part_has_window(rules: CallRules, weekend: int, part: int) -> bool:
    _name, a, b = rules.day_parts[part]
    windows = rules.weekend_windows if weekend else rules.weekday_windows
    return any(wa < b and a < wb for wa, wb in windows)


def staffing_advice(session: Session, study: Study, now: datetime, *, max_team: int = 20,
                    horizon_days: int = 14) -> StaffingAdvice:
    """Slot yields and a shift plan that covers the remaining completes, best-yield stretches first."""
    from .scheduling import rules_for

    rules = rules_for(study)
    tz = rules.timezone_default
    timing = study_timing(session, study)
    slots = slot_yields(session, study, now, rules, timing)
    by_slot = {(s.weekend, s.part): s for s in slots}
    remaining = remaining_completes(session, study)
    end = runtime_for(study).fieldwork.end_date
    last_day = end or local(now, tz).date() + timedelta(days=horizon_days)
    stretches = []
    day = local(now, tz).date()
    while day <= last_day:
        weekend = day.weekday() >= 5
        for a, b, part in segments(day, tz, rules):
            a = max(a, now)
            if a >= b or part is None:
                continue
            name = rules.day_parts[part][0]
            slot = by_slot.get((weekend, name))
            if slot is not None:
                stretches.append((a, b, slot))
        day += timedelta(days=1)
    # Best yield first (earlier first among equals): the fewest paid hours for the completes still needed.
    stretches.sort(key=lambda x: (-x[2].completes_per_paid_hour, x[0]))
    plan, need, hours, expected = [], float(remaining), 0.0, 0.0
    for a, b, slot in stretches:
        if need <= 0:
            break
        length = (b - a).total_seconds() / 3600
        per_interviewer = slot.completes_per_paid_hour * length
        if per_interviewer <= 0:
            continue
        team = min(max_team, max(1, int(-(-need // per_interviewer))))
        got = team * per_interviewer
        plan.append(Shift(a, b, slot.part, slot.weekend, team, round(got, 1)))
        need -= got
        hours += team * length
        expected += got
    plan.sort(key=lambda s: s.start)
    return StaffingAdvice(timing, slots, plan, remaining, round(hours, 1), round(expected, 1))
