"""Case selectors the simulator can run: ours (the real scheduler) and three yardsticks.

All four work on the same tables with the same claim mechanics (``scheduling._claim``: a conditional update of
the case's status) and the same coding of outcomes (``record_outcome`` and the interview services). They differ
only in which case they hand out, and — for the two baselines — in how they count quotas:

``ours``
    :func:`cati.services.scheduling.next_case` as is; it releases replicates itself, as in production, by the
    study's ``calling_rules.sample_release`` rule (no separate hourly release).
``call_list``
    Cases in file order; any case whose last dial is older than a fixed delay is callable again; no
    appointments; the quota is checked only when an interview completes (an enterprise closes when its
    completes reach the target), so interviews running at the same time can overshoot it.
``quexs_style``
    queXS's ``get_case_id`` (ACSPRI/queXS, see :class:`QuexsStyle` for the lines read): a case is callable if
    nobody holds it, its last call ended longer ago than its outcome's ``default_delay_minutes`` (the outcome
    table of ``database/quexs.sql``), it has no future appointment, the respondent-local calling hours and the
    work shifts are open, it is under the attempt cap (appointments exempt) and its quota row is open, and the
    interviewer has the skill for its outcome type (refusals only to refusal converters). Order: appointments due
    now, then quota-row priority (``autoprioritise``: 100 − completions %), then the oldest last call (so ties
    rotate). New sample is drawn only when no existing case is callable, in priority and then sample order. The
    quota counts completes only (``update_quotas`` runs when a case ends complete).
``oracle``
    Knows each respondent's hidden availability and number validity: dials a case only when a person would be
    there to answer. Otherwise our rules (quota with interviews in progress, furthest-behind enterprise first,
    appointments first, attempt cap). The upper bound.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import and_, case, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session

from cati.models import (
    Appointment,
    AppointmentStatus,
    Case,
    CaseStatus,
    Enterprise,
    EnterpriseStatus,
    Interview,
    InterviewStatus,
    Study,
)
from cati.services import scheduling
from cati.services.calling import in_window
from cati.services.dispositions import catalogue
from cati.services.scheduling import (
    Claim,
    NoCase,
    NoCaseReason,
    close_quota,
    next_case,
    record_outcome,
    rules_for,
)

STRATEGIES = ("ours", "call_list", "quexs_style", "oracle")

# queXS outcome delays (minutes), keyed by our AAPOR attempt outcome. Source: ACSPRI/queXS database/quexs.sql,
# the rows of `INSERT INTO outcome (outcome_id, aapor_id, description, default_delay_minutes, outcome_type_id, …)`
# (stored copy at commit 02741d94, about 2/3 into the file, one INSERT per line):
#   outcome_id 2  '3.13'  No answer ................................. 180, type 1 (temporary)
#   outcome_id 3  '3.16'  Technical phone problems ................... 180, type 1
#   outcome_id 23 '2.221' Household answering machine - message left . 180, type 1
#   outcome_id 24 '2.222' Household answering machine - no message ... 180, type 1
#   outcome_id 31 '2.20'  Non contact ................................ 180, type 1
#   outcome_id 8  '2.112a' Soft Refusal, Respondent ................ 10080, type 3 (refusal: converters only)
#   outcome_id 18 '2.35a' Accidental hang up / temporary problem ........ 0, type 1
#   outcome_id 19-22 '2.12a/b', '2.13a/b' appointments .................. 0, type 5
# queXS has no busy code (there is no 3.12 row): an operator hearing a busy tone codes no answer, so our busy
# (3.12) takes 3.13's 180 minutes. Our 3.14 (machine, household unknown) is coded in queXS as a household machine
# (2.221/2.222: 180; queXS's own 3.14 row is a final "not a household" code). Our 3.15 (call blocking, a network
# rejection) is queXS's technical problem 3.16: 180. Our callback (2.21) and break-off (2.12) book an appointment
# (queXS: appointment outcomes, delay 0; the appointment itself keeps the case back until it is due).
QUEXS_DELAYS = {"3.13": 180, "3.12": 180, "3.16": 180, "3.15": 180, "3.14": 180, "2.221": 180, "2.222": 180,
                "2.20": 180, "2.113": 7 * 24 * 60, "2.21": 0, "2.12": 0}
QUEXS_DEFAULT_DELAY = 0  # every other temporary outcome of the table (e.g. 2.35a) has a delay of 0
# Outcomes of queXS outcome type 3 ("Refusal Outcomes"): only operators with that skill get the case.
QUEXS_REFUSAL_OUTCOMES = ("2.113",)
# How long an appointment counts as "due now" (queXS's appointment has a start and an end; we book a time).
QUEXS_APPOINTMENT_SPAN = timedelta(minutes=60)
CALL_LIST_DELAY_MINUTES = 60
POLL = timedelta(minutes=5)


class Strategy:
    """Base: how cases are chosen and whether interviews reserve quota slots."""

    name = "base"
    reserves_quota = True  # interviews count against the quota while in progress (start_interview)
    uses_appointments = True
    release = "first"  # sample release at import: "first" replicate (then automatic release) or "all"
    auto_release = False

    def __init__(self, oracle_view=None):
        self.view = oracle_view
        # Is a work shift running at a time? (Set by the simulator; queXS's restrict_work_shifts uses it.)
        self.in_shift = None

    def select(self, session: Session, study: Study, interviewer_id: int, now: datetime, *, converter: bool,
               rng: random.Random) -> Claim | NoCase:  # pragma: no cover - abstract
        raise NotImplementedError


class Ours(Strategy):
    name = "ours"
    auto_release = False  # next_case releases sample itself (scheduling.auto_release), as in production

    def select(self, session, study, interviewer_id, now, *, converter, rng):
        return next_case(session, study, interviewer_id, now, converter=converter, rng=rng)


def _open_zones(session: Session, study: Study, now: datetime) -> list[str]:
    rules = rules_for(study)
    return [tz for tz in scheduling._timezones(session, study, rules) if in_window(now, tz, rules)]


def _baseline_no_case(session: Session, study: Study, now: datetime, open_zones: list[str],
                      delays: dict[str, int], default_delay: int) -> NoCase:
    """Why a baseline has nothing to call, and when its retry delays make something callable again."""
    rules = rules_for(study)
    open_ent = and_(Enterprise.status == EnterpriseStatus.ACTIVE, Enterprise.completes < Enterprise.quota_target)
    if not session.scalar(select(func.count()).select_from(Enterprise)
                          .where(Enterprise.study_id == study.id, open_ent)):
        return NoCase(NoCaseReason.QUOTAS_FULL)
    n_open = session.scalar(
        select(func.count()).select_from(Case).join(Enterprise, Enterprise.id == Case.enterprise_id)
        .where(Case.study_id == study.id, Case.status == CaseStatus.READY, Case.attempts < rules.max_attempts,
               open_ent))
    if not n_open:
        return NoCase(NoCaseReason.EXHAUSTED)
    if not open_zones:
        return NoCase(NoCaseReason.OUTSIDE_HOURS, now + POLL)
    rows = session.execute(
        select(Case.last_outcome, func.min(Case.last_called_at)).join(Enterprise, Enterprise.id == Case.enterprise_id)
        .where(Case.study_id == study.id, Case.status == CaseStatus.READY, Case.attempts < rules.max_attempts,
               Case.last_called_at.is_not(None), open_ent)
        .group_by(Case.last_outcome)).all()
    times = [last + timedelta(minutes=delays.get(outcome, default_delay)) for outcome, last in rows if last]
    appt = session.scalar(select(func.min(Appointment.due_at)).where(
        Appointment.study_id == study.id, Appointment.status == AppointmentStatus.PENDING, Appointment.due_at > now))
    if appt is not None and delays is QUEXS_DELAYS:
        times.append(appt)
    later = [t for t in times if t > now]
    return NoCase(NoCaseReason.WAITING, min(later) if later else now + timedelta(seconds=30))


class CallList(Strategy):
    name = "call_list"
    reserves_quota = False
    uses_appointments = False
    release = "all"

    def __init__(self, oracle_view=None, delay_minutes: int = CALL_LIST_DELAY_MINUTES):
        super().__init__(oracle_view)
        self.delay = timedelta(minutes=delay_minutes)

    def select(self, session, study, interviewer_id, now, *, converter, rng):
        rules = rules_for(study)
        scheduling._lock_for_claim(session)
        zones = _open_zones(session, study, now)
        if zones:
            stmt = (
                select(Case.id).join(Enterprise, Enterprise.id == Case.enterprise_id)
                .where(Case.study_id == study.id, Case.status == CaseStatus.READY,
                       Case.attempts < rules.max_attempts, Case.timezone.in_(zones),
                       Enterprise.status == EnterpriseStatus.ACTIVE,
                       Enterprise.completes < Enterprise.quota_target,
                       or_(Case.last_called_at.is_(None), Case.last_called_at <= now - self.delay))
                .order_by(Case.id).limit(5)
            )
            for cid in session.scalars(stmt):
                if scheduling._claim(session, cid, interviewer_id, now, rules):
                    return Claim(cid, "callable")
        minutes = int(self.delay.total_seconds() // 60)
        return _baseline_no_case(session, study, now, zones, {}, minutes)


class QuexsStyle(Strategy):
    """queXS's case selection, read line by line from ACSPRI/queXS ``functions/functions.operator.php``
    (stored copy at commit 0098908b; line numbers counted in that copy, ±3):

    * ``get_case_id`` starts at line ~459. Its main query (~614-643) joins the case's last call
      (``LEFT JOIN call as a on a.call_id = c.last_call_id``), the work shift running now (``LEFT JOIN shift as
      sh``), a future appointment (``ap``, ``ap.start > NOW()``) and an appointment running now (``apn``), and keeps
      a case when: nobody holds it (``c.current_operator_id IS NULL``); its last call ended more than its current
      outcome's ``default_delay_minutes`` ago (~633); it has no future appointment (``ap.case_id is NULL``); the
      work shift is open unless the outcome is a supervisor one (``!(q.restrict_work_shifts = 1 AND
      sh.shift_id IS NULL AND os.outcome_type_id != 2)``, ~636; restrict_work_shifts defaults to 1 in quexs.sql);
      the respondent-local calling times are open (``call_restrict``, ~637); it is under ``call_attempt_max``
      unless an appointment is running (~638); its quota rows are open (``quota_reached = 1`` count is 0, ~641);
      and the operator has the skill for the outcome's type (``JOIN operator_skill as os … os.outcome_type_id =
      ou.outcome_type_id``, ~628: refusal outcomes, type 3, only reach refusal converters).
    * Order (~642): ``ORDER BY IF(ISNULL(apn.end),1,0), apn.end ASC, qsep.priority DESC,
      CONVERT_TZ(NOW(), 'System', s.Time_zone_name) DESC, a.start ASC`` — appointments running now, then the quota
      priority, then (one time zone here, so no effect) the respondent's local time, then the OLDEST LAST CALL.
      Case ids play no part, so equal-priority cases rotate.
    * Only when that query finds nothing (``if (empty($r2))``, ~649) is a new case drawn from the sample
      (~660-690): unused sample, same shift/calling-time/quota checks, ``ORDER BY qsep.priority DESC, …,
      rand() * qs.random_select, s.sample_id`` (random_select defaults to 0: sample order).
    * ``qsep.priority`` comes from ``update_quota_priorities`` (every sample record 50, then each open quota
      row's priority); a row with ``autoprioritise`` gets ``100 - (completions %)`` (quexs.sql, column comment of
      ``questionnaire_sample_quota_row.autoprioritise``). Our enterprise quota is that row.

    Cases already dialed are queXS's "existing cases"; cases never dialed are sample not yet drawn (all sample is
    released at import, as queXS assigns a whole sample import to a questionnaire).
    """

    name = "quexs_style"
    reserves_quota = False
    release = "all"

    def select(self, session, study, interviewer_id, now, *, converter, rng):
        rules = rules_for(study)
        scheduling._lock_for_claim(session)
        zones = _open_zones(session, study, now)
        if not zones or (self.in_shift is not None and not self.in_shift(now)):
            nc = _baseline_no_case(session, study, now, zones, QUEXS_DELAYS, QUEXS_DEFAULT_DELAY)
            if zones and nc.reason == NoCaseReason.WAITING:  # outside the work shifts: look again shortly
                return NoCase(NoCaseReason.OUTSIDE_HOURS, now + POLL)
            return nc
        open_ent = and_(Enterprise.status == EnterpriseStatus.ACTIVE, Enterprise.completes < Enterprise.quota_target)
        base = [Case.study_id == study.id, Case.status == CaseStatus.READY, Case.timezone.in_(zones), open_ent]
        if not converter:  # operator_skill: refusal outcomes (type 3) only for refusal converters
            base.append(or_(Case.last_outcome.is_(None), Case.last_outcome.not_in(QUEXS_REFUSAL_OUTCOMES)))
        # 1. Appointments running now (apn), earliest end first; the attempt cap does not apply to them.
        due = session.execute(
            select(Appointment.id, Appointment.case_id)
            .join(Case, Case.id == Appointment.case_id).join(Enterprise, Enterprise.id == Case.enterprise_id)
            .where(Appointment.study_id == study.id, Appointment.status == AppointmentStatus.PENDING,
                   Appointment.due_at <= now, Appointment.due_at > now - QUEXS_APPOINTMENT_SPAN, *base)
            .order_by(Appointment.due_at).limit(5)
        ).all()
        for appt_id, cid in due:
            if scheduling._claim(session, cid, interviewer_id, now, rules):
                return Claim(cid, "appointment", appt_id)
        priority = 100 - func.round(100.0 * Enterprise.completes / Enterprise.quota_target)
        # 2. Existing cases: outcome delay passed, no future appointment; quota priority, then oldest last call.
        thresholds = {code: now - timedelta(minutes=m) for code, m in QUEXS_DELAYS.items()}
        limit = case(*((Case.last_outcome == code, literal(t)) for code, t in thresholds.items()),
                     else_=literal(now - timedelta(minutes=QUEXS_DEFAULT_DELAY)))
        future_appt = exists().where(Appointment.case_id == Case.id, Appointment.status == AppointmentStatus.PENDING,
                                     Appointment.due_at > now)
        existing = (
            select(Case.id).join(Enterprise, Enterprise.id == Case.enterprise_id)
            .where(*base, Case.attempts < rules.max_attempts, Case.last_called_at.is_not(None), ~future_appt,
                   Case.last_called_at <= limit)
            .order_by(priority.desc(), Case.last_called_at, Case.id).limit(5)
        )
        for cid in session.scalars(existing):
            if scheduling._claim(session, cid, interviewer_id, now, rules):
                return Claim(cid, "callable")
        # 3. Nothing existing is callable: draw new sample, by quota priority, then sample order.
        new = (
            select(Case.id).join(Enterprise, Enterprise.id == Case.enterprise_id)
            .where(*base, Case.attempts == 0, Case.last_called_at.is_(None), ~future_appt)
            .order_by(priority.desc(), Case.id).limit(5)
        )
        for cid in session.scalars(new):
            if scheduling._claim(session, cid, interviewer_id, now, rules):
                return Claim(cid, "new")
        return _baseline_no_case(session, study, now, zones, QUEXS_DELAYS, QUEXS_DEFAULT_DELAY)


# Outcomes after which even the oracle waits for the retry time (the person asked for time or refused).
_CONTACT_WAITS = ("2.113", "2.12", "2.21", "3.20")


class Oracle(Strategy):
    name = "oracle"
    auto_release = True

    def select(self, session, study, interviewer_id, now, *, converter, rng):
        view = self.view
        rules = rules_for(study)
        scheduling._lock_for_claim(session)
        zones = _open_zones(session, study, now)
        if zones:
            due = session.execute(
                select(Appointment.id, Appointment.case_id)
                .join(Case, Case.id == Appointment.case_id).join(Enterprise, Enterprise.id == Case.enterprise_id)
                .where(Appointment.study_id == study.id, Appointment.status == AppointmentStatus.PENDING,
                       Appointment.due_at <= now + timedelta(minutes=rules.appointment_window_minutes),
                       Case.status == CaseStatus.READY, Case.timezone.in_(zones),
                       Enterprise.completes + Enterprise.in_progress < Enterprise.quota_target)
                .order_by(Appointment.due_at).limit(20)
            ).all()
            for appt_id, cid in due:
                if view(cid, now) and scheduling._claim(session, cid, interviewer_id, now, rules):
                    return Claim(cid, "appointment", appt_id)
            # One query for every callable case of the open enterprises; the oracle's knowledge filters them.
            stmt = (
                select(Case.id, Case.enterprise_id)
                .where(Case.study_id == study.id, Case.status == CaseStatus.READY,
                       Case.attempts < rules.max_attempts, Case.timezone.in_(zones),
                       or_(Case.last_outcome.not_in(_CONTACT_WAITS), Case.last_outcome.is_(None),
                           Case.next_call_at <= now))
                .order_by(Case.attempts, Case.id)
            )
            if not converter:
                stmt = stmt.where(Case.needs_converter.is_(False))
            by_ent: dict[int, list[int]] = {}
            for cid, eid in session.execute(stmt):
                if view(cid, now):
                    by_ent.setdefault(eid, []).append(cid)
            if by_ent:
                for eid in scheduling._enterprise_order(session, study.id, rules, rng):
                    for cid in by_ent.get(eid, ()):
                        if scheduling._claim(session, cid, interviewer_id, now, rules):
                            return Claim(cid, "callable")
        nc = scheduling.explain_no_case(session, study, now, rules=rules, converter=converter)
        if nc.reason == NoCaseReason.WAITING:
            # Something is callable by our rules but nobody would answer now: look again shortly.
            return NoCase(NoCaseReason.WAITING, min(nc.next_callable_at or now + POLL, now + POLL))
        return nc


def make_strategy(name: str, oracle_view=None) -> Strategy:
    """The strategy called ``name`` (one of :data:`STRATEGIES`); the oracle needs ``oracle_view(case_id, now)``."""
    classes = {"ours": Ours, "call_list": CallList, "quexs_style": QuexsStyle, "oracle": Oracle}
    if name not in classes:
        raise ValueError(f"unknown strategy {name!r}; one of {', '.join(STRATEGIES)}")
    if name == "oracle" and oracle_view is None:
        raise ValueError("the oracle strategy needs a view of the respondents' availability")
    return classes[name](oracle_view)


# --------------------------------------------------------------------------------------------------------------
# Interviews of the baselines: no quota slot is reserved; the quota is checked when an interview completes.


def baseline_start(session: Session, case_obj: Case, interviewer_id: int, now: datetime, attempt_id: int,
                   first_question: str) -> Interview:
    interview = Interview(study_id=case_obj.study_id, case_id=case_obj.id, interviewer_id=interviewer_id,
                          attempt_id=attempt_id, status=InterviewStatus.IN_PROGRESS, started_at=now,
                          current_question=first_question)
    session.add(interview)
    session.flush()
    return interview


def baseline_finish(session: Session, interview: Interview, disposition: str, now: datetime, *,
                    interviewer_id: int, appointment_at: datetime | None = None) -> bool:
    """End a baseline interview with ``disposition`` (1.1, 2.12 or a termination code).

    Returns True when a complete arrived after its enterprise had already reached the target (over quota).
    """
    from cati.models import CallAttempt

    study = session.get(Study, interview.study_id)
    case_obj = session.get(Case, interview.case_id)
    cat = catalogue()
    interview.status = {cat.code_for("complete"): InterviewStatus.COMPLETE,
                        cat.code_for("break_off"): InterviewStatus.PARTIAL}.get(disposition, InterviewStatus.TERMINATED)
    interview.ended_at = now
    interview.disposition = disposition
    attempt = session.get(CallAttempt, interview.attempt_id)
    attempt.outcome, attempt.outcome_source = disposition, "interviewer"
    over = False
    if disposition == cat.code_for("complete"):
        ent = session.get(Enterprise, case_obj.enterprise_id)
        session.refresh(ent)
        over = ent.completes >= ent.quota_target
        session.execute(update(Enterprise).where(Enterprise.id == ent.id)
                        .values(completes=Enterprise.completes + 1).execution_options(synchronize_session=False))
        # The complete itself is final; record it before the quota closes the rest of the enterprise.
        record_outcome(session, case_obj, cat.code_for("complete"), now, interviewer_id=interviewer_id,
                       rules=rules_for(study))
        session.refresh(ent)
        if ent.completes >= ent.quota_target:
            close_quota(session, ent, now)
        return over
    record_outcome(session, case_obj, disposition, now, interviewer_id=interviewer_id,
                   appointment_at=appointment_at, rules=rules_for(study))
    return False
