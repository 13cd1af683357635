"""Who is called next: claims, appointments, retry times, quotas and replicate release (docs/domain.md §5).

Over 600 lines on purpose: next_case, its claim SQL, the retry rules, appointments and sample release share
the one locking order and the same time arithmetic; split, the invariants (no double claim, no over-quota) would
span modules.

``next_case`` is the heart of interviewer productivity. It must be called at the start of a fresh transaction
(it asks SQLite for a write lock up front) and the caller commits right after, so claims are held briefly.
Two interviewers never get the same case: PostgreSQL locks the chosen row with ``FOR UPDATE SKIP LOCKED``;
SQLite serialises writers (``BEGIN IMMEDIATE``) and the claim is a conditional update on the case's status.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Select, String, and_, bindparam, cast, func, or_, select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from cati.i18n import gettext
from cati.models import (
    Appointment,
    AppointmentStatus,
    AuditLog,
    CallAttempt,
    Case,
    CasePhone,
    CaseStatus,
    DoNotCall,
    Enterprise,
    EnterpriseStatus,
    PhoneStatus,
    Replicate,
    Study,
)

from . import audit
from .calling import CallRules, day_part_index, in_window, local, next_callable_time
from .contact_model import allowed_masks, contact_model
from .dispositions import catalogue, final_disposition, max_attempts_disposition
from .quotas import (
    close_as_quota_filled,
    close_filled_cells,
    has_cells,
    in_filled_cell_clause,
    open_cells_clause,
    release_cells,
    reserve_cells,
)


class NoCaseReason(enum.StrEnum):
    QUOTAS_FULL = "all_quotas_full"
    OUTSIDE_HOURS = "outside_calling_hours"
    WAITING = "waiting_for_retry_times"
    EXHAUSTED = "sample_exhausted"
    QUOTAS_RESERVED = "quotas_reserved_by_interviews"


@dataclass(frozen=True)
class Claim:
    case_id: int
    source: str  # own_claim | own_appointment | appointment | callable
    appointment_id: int | None = None


@dataclass(frozen=True)
class NoCase:
    reason: NoCaseReason
    next_callable_at: datetime | None = None

    def text(self, lang: str = "zh-CN") -> str:
        return gettext(f"nocase_{self.reason.value}", lang)


def rules_for(study: Study) -> CallRules:
    """The compiled calling rules of a study (its runtime's, see ``services.runtime``)."""
    from .runtime import runtime_for

    return runtime_for(study).rules


def _lock_for_claim(session: Session) -> None:
    if session.get_bind().dialect.name != "sqlite":
        return
    # Take the write lock before reading, so two claimers queue (busy timeout) instead of one failing when it
    # upgrades a read snapshot that the other has just made stale.
    if not session.in_transaction():
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    else:
        session.execute(update(Case).where(Case.id == -1).values(status=Case.status)
                        .execution_options(synchronize_session=False))


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class _Stmts:
    """Hot-path statements, built once and reused (building SQLAlchemy expressions costs more than running
    these indexed queries, and prebuilt statements also hit the compiled-SQL cache)."""

    def __init__(self) -> None:
        p = bindparam
        self.own_claim = (
            select(Case.id)
            .where(Case.study_id == p("study_id"), Case.status == CaseStatus.CLAIMED,
                   Case.claimed_by_id == p("interviewer_id"))
            .limit(1)
        )
        self.claim = (
            update(Case)
            .where(Case.id == p("case_id"), Case.status == p("from_status"))
            .values(status=CaseStatus.CLAIMED, claimed_by_id=p("interviewer_id"), claimed_at=p("now"),
                    claim_expires_at=p("expires"))
            .execution_options(synchronize_session=False)
        )
        self.release_stale = (
            update(Case)
            .where(Case.study_id == p("p_study"), Case.status == CaseStatus.CLAIMED,
                   Case.claim_expires_at < p("now"))
            .values(status=CaseStatus.READY, claimed_by_id=None, claimed_at=None, claim_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        self.break_appointments = (
            update(Appointment)
            .where(Appointment.study_id == p("p_study"), Appointment.status == AppointmentStatus.PENDING,
                   Appointment.due_at < p("cutoff"))
            .values(status=AppointmentStatus.BROKEN)
            .execution_options(synchronize_session=False)
        )
        self.due_appointments = (
            select(Appointment.id, Appointment.case_id, Appointment.interviewer_id, Appointment.due_at)
            .join(Case, Case.id == Appointment.case_id)
            .join(Enterprise, Enterprise.id == Case.enterprise_id)
            .where(
                Appointment.study_id == p("study_id"),
                Appointment.status == AppointmentStatus.PENDING,
                Appointment.due_at <= p("horizon"),
                Case.status == CaseStatus.READY,
                Case.timezone.in_(p("tzs", expanding=True)),
                Enterprise.status == EnterpriseStatus.ACTIVE,
                Enterprise.quota_open,
                _not_excluded(),
                # Mine, unassigned ones, or someone else's that its owner let slip for 5 minutes.
                or_(Appointment.interviewer_id == p("interviewer_id"), Appointment.interviewer_id.is_(None),
                    Appointment.due_at <= p("slipped")),
            )
            .order_by(Appointment.due_at)
            .limit(20)
        )
        self._due: dict[tuple[bool, bool], Select] = {}
        # Cases a supervisor assigned to this interviewer, due now (before the general queue).
        assigned = (
            select(Case.id).join(Enterprise, Enterprise.id == Case.enterprise_id)
            .where(Case.study_id == p("study_id"), Case.assigned_to_id == p("interviewer_id"),
                   Case.status == CaseStatus.READY, Case.next_call_at <= p("now"),
                   Case.attempts < p("max_attempts"), Case.timezone.in_(p("tzs", expanding=True)),
                   Enterprise.status == EnterpriseStatus.ACTIVE, Enterprise.quota_open)
            .order_by(Case.next_call_at, Case.id).limit(5)
        )
        self.assigned = {True: assigned, False: assigned.where(Case.needs_converter.is_(False))}
        self.enterprise_order = self._neediest().limit(p("limit"))
        # Quota slots (reserve_quota_slot / release_quota_slot): one per interview start and end.
        slot = update(Enterprise).where(Enterprise.id == p("enterprise_id")).execution_options(
            synchronize_session=False)
        self.reserve_slot = slot.where(
            Enterprise.status == EnterpriseStatus.ACTIVE,
            Enterprise.quota_open,
        ).values(in_progress=Enterprise.in_progress + 1)
        self.end_slot = slot.values(in_progress=Enterprise.in_progress - 1)
        self.complete_slot = slot.values(in_progress=Enterprise.in_progress - 1, completes=Enterprise.completes + 1)
        self.enterprise_counts = select(Enterprise.completes, Enterprise.quota_target).where(
            Enterprise.id == p("enterprise_id"))
        self._callable: dict[tuple, Select] = {}

    def due_appointments_for(self, converter: bool, cells: bool) -> Select:
        """Due appointments this interviewer may keep: a case waiting for a refusal converter goes only to
        converters, through its appointment as through the queue; with industry / sample-variable quotas, no case
        of a full or fully reserved cell."""
        key = (converter, cells)
        stmt = self._due.get(key)
        if stmt is None:
            stmt = self.due_appointments
            if not converter:
                stmt = stmt.where(Case.needs_converter.is_(False))
            if cells:
                stmt = stmt.where(open_cells_clause())
            self._due[key] = stmt
        return stmt

    def callable_in_enterprise(self, n_tzs: int, converter: bool, pg: bool, cells: bool = False,
                               predictive: bool = False) -> Select:
        """Callable cases of one enterprise, fewest attempts and longest waiting first within a pass (time zone
        and tried-parts mask; passes in the contact model's order, likeliest to answer first).

        SQLite (the embedded default, serialized claims, an enterprise's due cases in the hundreds): one question
        per enterprise for every pass; the pass rank is the position of the case's ``timezone|mask`` token in
        ``pass_order`` (a comma-separated list built by next_case). Asking mask by mask cost up to 8 statements per
        enterprise with 3 day parts (17 per claim in the demo), and a statement costs more in SQLAlchemy than the
        sort. PostgreSQL (large studies, concurrent claimers): one pass per question (``tz``, ``mask``), each one
        range of ``ix_cases_claim_mask`` read in index order, so the database stops after one row instead of
        sorting an enterprise's due cases on every claim (about 1,000 at 10 million cases: the single ranked
        question doubled the claim's p50 there, docs/bench/next_case.md).
        """
        key = (n_tzs, converter, pg, cells, predictive)
        stmt = self._callable.get(key)
        if stmt is None:
            p = bindparam
            if pg:
                in_passes = and_(Case.tried_day_parts == p("mask"), Case.timezone == p("tz"))
                order: tuple = (Case.attempts, Case.next_call_at, Case.id)
            else:
                in_passes = _allowed_passes(n_tzs)
                token = "," + Case.timezone + "|" + cast(Case.tried_day_parts, String) + ","
                order = (func.instr(p("pass_order"), token), Case.attempts, Case.next_call_at, Case.id)
            stmt = (
                select(Case.id)
                .where(
                    Case.enterprise_id == p("enterprise_id"),
                    Case.status == CaseStatus.READY,
                    in_passes,
                    Case.next_call_at <= p("now"),
                    Case.attempts < p("max_attempts"),
                    or_(Case.assigned_to_id.is_(None), Case.assigned_to_id == p("interviewer_id")),
                    _not_excluded(),
                )
                .order_by(*order)
            )
            if not converter:
                stmt = stmt.where(Case.needs_converter.is_(False))
            if cells:
                stmt = stmt.where(open_cells_clause())
            if predictive:
                stmt = stmt.where(_not_predictive_held())
            if pg:
                # One row only: a locked row stays hidden from every other claimer (SKIP LOCKED) until this
                # transaction ends, so locking spare candidates would hide cases this claim never takes; with
                # the last few cases of a study, a concurrent claimer then found nothing and was told to wait.
                # The row comes back locked and re-checked, so claiming it cannot fail.
                stmt = stmt.limit(1).with_for_update(skip_locked=True, of=Case)
            else:
                # SQLite claimers are serialized by the write lock taken first; a few spares cost nothing.
                stmt = stmt.limit(3)
            self._callable[key] = stmt
        return stmt

    @staticmethod
    def _neediest() -> Select:
        """Open enterprises, furthest behind their quota (share done or running) first; ties broken by a
        permutation of the ids drawn per claim, which spreads concurrent claimers over equally needy ones."""
        p = bindparam
        claims = (
            select(Case.enterprise_id, func.count().label("n"))
            .where(Case.study_id == p("study_id"), Case.status == CaseStatus.CLAIMED)
            .group_by(Case.enterprise_id)
            .subquery()
        )
        open_slots = Enterprise.quota_target - Enterprise.completes - Enterprise.in_progress
        return (
            select(Enterprise.id)
            .outerjoin(claims, claims.c.enterprise_id == Enterprise.id)
            .where(Enterprise.study_id == p("study_id"), Enterprise.status == EnterpriseStatus.ACTIVE,
                   open_slots > 0,
                   # An enterprise already dialed by enough interviewers for what it still needs waits its turn.
                   func.coalesce(claims.c.n, 0) < open_slots * p("claims_per_open_slot"))
            .order_by((Enterprise.completes + Enterprise.in_progress) * 1.0 / Enterprise.quota_target,
                      # 64-bit: id x multiplier passes 2^31 from a few thousand enterprises (PostgreSQL's INTEGER
                      # overflowed at 10,000 enterprises; SQLite is always 64-bit)
                      (cast(Enterprise.id, BigInteger) * p("tie_mul", type_=BigInteger)
                       + p("tie_add", type_=BigInteger)) % _TIE_MOD)
        )

    def enterprises_with_callable(self, n_tzs: int, converter: bool, cells: bool = False,
                                  predictive: bool = False) -> Select:
        """The neediest enterprises (as ``enterprise_order``) that have a case worth dialing now, at most
        ``limit``: used when the neediest few had none, instead of asking every enterprise mask by mask.

        The ordered list is a subquery with a LIMIT so that neither database merges the EXISTS into it: the
        EXISTS then runs per enterprise in need order (one index probe into ``ix_cases_claim_mask``) and the
        query stops once ``limit`` enterprises qualify, instead of reading every due case of the study.
        """
        key = ("any", n_tzs, converter, cells, predictive)
        stmt = self._callable.get(key)
        if stmt is None:
            p = bindparam
            neediest = self._neediest().limit(p("all")).subquery("neediest")
            allowed = _allowed_passes(n_tzs)
            has_callable = (
                select(Case.id)
                .where(Case.enterprise_id == neediest.c.id, Case.status == CaseStatus.READY,
                       Case.next_call_at <= p("now"), Case.attempts < p("max_attempts"), allowed,
                       or_(Case.assigned_to_id.is_(None), Case.assigned_to_id == p("interviewer_id")),
                       _not_excluded())
            )
            if not converter:
                has_callable = has_callable.where(Case.needs_converter.is_(False))
            if cells:
                has_callable = has_callable.where(open_cells_clause())
            if predictive:
                has_callable = has_callable.where(_not_predictive_held())
            stmt = select(neediest.c.id).where(has_callable.exists()).limit(p("limit"))
            self._callable[key] = stmt
        return stmt


def _allowed_passes(n_tzs: int):
    """The case's time zone is one of the open ones (``tz0``…) and its tried-parts mask one of that zone's passes
    (``masks0``…)."""
    p = bindparam
    return or_(*(and_(Case.timezone == p(f"tz{i}"), Case.tried_day_parts.in_(p(f"masks{i}", expanding=True)))
                 for i in range(n_tzs)))


def _not_excluded():
    """Not a case this interviewer must not get (QC rejected their interview of it: someone else verifies)."""
    return or_(Case.excluded_interviewer_id.is_(None), Case.excluded_interviewer_id != bindparam("interviewer_id"))


def predictive_hold_codes() -> list[tuple[str, int]]:
    """The catalogue's codes that hold a case from predictive dialing, with their hours (3.201, 72 h): in code
    order, which is the order of the ``hold_since<i>`` parameters of :func:`_not_predictive_held`."""
    return sorted((code, d.predictive_hold_hours) for code, d in catalogue().items() if d.predictive_hold_hours)


def _not_predictive_held():
    """No attempt of the case coded with a predictive-hold code (an abandoned call) since that code's hold began
    (``hold_since<i>`` = now − its hours). One probe of ``ix_call_attempts_case`` (case, requested_at) per
    candidate: the hold lasts from the abandoned dial, whatever was dialled after it (a preview no-answer does
    not make a respondent who was just abandoned fair game for the next predictive burst)."""
    p = bindparam
    codes = predictive_hold_codes()
    if not codes:
        return true()
    held = (
        select(CallAttempt.id)
        .where(CallAttempt.case_id == Case.id,
               or_(*(and_(CallAttempt.outcome == code, CallAttempt.requested_at > p(f"hold_since{i}"))
                     for i, (code, _h) in enumerate(codes))))
        .correlate(Case)
    )
    return ~held.exists()


def predictive_hold_params(now: datetime) -> dict:
    return {f"hold_since{i}": now - timedelta(hours=hours) for i, (_c, hours) in enumerate(predictive_hold_codes())}


_stmts: _Stmts | None = None


def _s() -> _Stmts:
    global _stmts
    if _stmts is None:
        _stmts = _Stmts()
    return _stmts


def _claim(session: Session, case_id: int, interviewer_id: int, now: datetime, rules: CallRules,
           *, from_status: CaseStatus = CaseStatus.READY) -> bool:
    result = session.connection().execute(_s().claim, {
        "case_id": case_id, "from_status": from_status, "interviewer_id": interviewer_id, "now": now,
        "expires": now + timedelta(minutes=rules.claim_timeout_minutes),
    })
    return result.rowcount == 1


def claim_specific(session: Session, case_id: int, interviewer_id: int, now: datetime, rules: CallRules) -> bool:
    """Claim one named case (a ready one) for this interviewer, with the same lock and statement as
    :func:`next_case`; False when someone else got it first or it is not ready. For an inbound callback
    (:mod:`cati.services.inbound`): no calling window or attempt cap, since the respondent called us."""
    _lock_for_claim(session)
    return _claim(session, case_id, interviewer_id, now, rules)


def _open_timezones(session: Session, study: Study, now: datetime, rules: CallRules) -> tuple[list[str], list[str]]:
    zones = _timezones(session, study, rules)
    open_ = [tz for tz in zones if in_window(now, tz, rules)]
    return open_, zones


_tz_cache: dict[tuple, tuple[float, list[str]]] = {}


def _study_key(session: Session, study: Study) -> tuple:
    """Which study of which database, for this process's per-study caches. The creation time tells apart studies
    that share an id in one database over time (a dropped and re-made study, a test database truncated between
    tests): keyed on the id alone, the new study inherited the old one's cached state."""
    return (str(session.get_bind().url), study.id, study.created_at)


def _distinct_timezones(session: Session, study_id: int) -> list[str]:
    """The study's distinct case time zones by skipping through ``ix_cases_study_timezone`` (one index probe
    per zone, well under a millisecond). A plain ``SELECT DISTINCT`` reads every case: on PostgreSQL with a
    million cases a parallel sequential scan of 0.2–0.8 s, which every claimer arriving while the cache had just
    expired ran at once (the p99 spikes of next_case)."""
    zones: list[str] = []
    while True:
        stmt = select(func.min(Case.timezone)).where(Case.study_id == study_id)
        if zones:
            stmt = stmt.where(Case.timezone > zones[-1])
        zone = session.scalar(stmt)
        if zone is None:
            return zones
        zones.append(zone)


def _timezones(session: Session, study: Study, rules: CallRules) -> list[str]:
    # Distinct respondent time zones change only on import; a short cache keeps even the index probes off
    # most claims (imports in this process clear it; other processes' imports are seen within 30 s).
    key = _study_key(session, study)
    cached = _tz_cache.get(key)
    wall = time.monotonic()
    if cached and wall - cached[0] < 30:
        return cached[1]
    zones = _distinct_timezones(session, study.id) or [rules.timezone_default]
    _tz_cache[key] = (wall, zones)
    return zones


def invalidate_timezone_cache() -> None:
    _tz_cache.clear()


def release_stale_claims(session: Session, study_id: int, now: datetime) -> int:
    """Claims whose holder went silent (crashed browser, lost network) past the timeout go back to the pool."""
    return session.connection().execute(_s().release_stale, {"p_study": study_id, "now": now}).rowcount


def renew_claim(session: Session, case_id: int, interviewer_id: int, now: datetime, rules: CallRules) -> bool:
    """Heartbeat from the holder's screen: push the claim's expiry forward."""
    result = session.execute(
        update(Case)
        .where(Case.id == case_id, Case.claimed_by_id == interviewer_id, Case.status == CaseStatus.CLAIMED)
        .values(claim_expires_at=now + timedelta(minutes=rules.claim_timeout_minutes))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def break_missed_appointments(session: Session, study_id: int, now: datetime, rules: CallRules) -> int:
    """Appointments unserved past their grace period are marked broken; their cases stay in the queue
    (they were due, so they are callable now) and keep their place at the front of the line.

    A case at the attempt cap is not callable through the queue: only an appointment lets it be dialed again
    (appointments may exceed the cap). Its broken appointment is re-booked once, for anyone, at the next
    callable time (the respondent asked to be called; a missed callback is our fault, not theirs); broken a
    second time, the case closes with the max-attempts code instead of staying open where nothing can reach it.
    """
    cutoff = now - timedelta(minutes=rules.appointment_grace_minutes)
    at_cap = session.execute(
        select(Appointment.case_id, Case.timezone)
        .join(Case, Case.id == Appointment.case_id)
        .where(Appointment.study_id == study_id, Appointment.status == AppointmentStatus.PENDING,
               Appointment.due_at < cutoff, Case.status == CaseStatus.READY,
               Case.attempts >= rules.max_attempts)
    ).all()
    broken = session.connection().execute(_s().break_appointments, {"p_study": study_id, "cutoff": cutoff}).rowcount
    if at_cap:
        _requeue_or_close_at_cap(session, at_cap, now, rules)
    return broken


def _requeue_or_close_at_cap(session: Session, cases: list, now: datetime, rules: CallRules) -> None:
    ids = [case_id for case_id, _tz in cases]
    times_broken = dict(session.execute(
        select(Appointment.case_id, func.count())
        .where(Appointment.case_id.in_(ids), Appointment.status == AppointmentStatus.BROKEN)
        .group_by(Appointment.case_id)).all())
    cat = catalogue()
    for case_id, tz in cases:
        case = session.get(Case, case_id)
        if times_broken.get(case_id, 0) >= 2:
            finalize_case(session, case, max_attempts_disposition(_case_outcomes(session, case_id), cat=cat), now)
            continue
        due = next_callable_time(now, tz, rules)
        case.next_call_at = due
        session.add(Appointment(study_id=case.study_id, case_id=case_id, due_at=due, interviewer_id=None,
                                note="改约：原预约未按时回拨 / re-booked: the callback was missed", created_at=now))
    session.flush()


_maintenance_at: dict[tuple, datetime] = {}


def _maintenance_due(session: Session, study: Study, now: datetime) -> bool:
    """Stale claims and missed appointments are swept at most once a minute (of the caller's clock) per study
    and process: they are minutes-scale rules, and sweeping on every claim costs two writes per claim."""
    key = _study_key(session, study)
    last = _maintenance_at.get(key)
    if last is not None and last <= now < last + timedelta(seconds=60):
        return False
    _maintenance_at[key] = now
    return True


_projection_at: dict[tuple, datetime] = {}
_PROJECTION_EVERY = timedelta(minutes=10)


def _projection_due(session: Session, study: Study, now: datetime) -> bool:
    """The per-enterprise release projection (``need_shortfalls``) runs at most every 10 minutes (caller's
    clock) per study and process."""
    key = _study_key(session, study)
    last = _projection_at.get(key)
    if last is not None and last <= now < last + _PROJECTION_EVERY:
        return False
    _projection_at[key] = now
    return True


_TIE_MOD = 1_000_003  # a prime: id·a + b mod it is a permutation of the ids for any a in 1..mod-1


def _order_params(study_id: int, rules: CallRules, rng: random.Random) -> dict:
    return {"study_id": study_id, "claims_per_open_slot": rules.claims_per_open_slot,
            "tie_mul": rng.randrange(1, _TIE_MOD), "tie_add": rng.randrange(_TIE_MOD), "all": 1 << 30}


def _enterprise_order(session: Session, study_id: int, rules: CallRules, rng: random.Random,
                      limit: int | None = None) -> list[int]:
    """Open enterprises, furthest behind their quota first (at most ``limit``); an enterprise already being
    dialed by enough interviewers for the completes it still needs waits its turn."""
    params = _order_params(study_id, rules, rng)
    params["limit"] = limit if limit is not None else params["all"]
    return list(session.connection().scalars(_s().enterprise_order, params))


def next_case(
    session: Session,
    study: Study,
    interviewer_id: int | None,
    now: datetime,
    *,
    converter: bool = False,
    rng: random.Random | None = None,
    predictive: bool = False,
) -> Claim | NoCase:
    """Claim the next case for this interviewer, or say why there is none and when there will be.

    Order (docs/domain.md §5): the interviewer's own open claim (a crashed screen resumes), a due appointment of
    this interviewer, a due appointment of anyone, a case a supervisor assigned to this interviewer, then callable
    cases — inside the respondent-local calling
    window, past their retry time, under the attempt cap, enterprise quota open — from the enterprises
    furthest behind their quota, likeliest to answer now first (contact model), fewer attempts first. Cases the
    best-time preference defers come only after every other callable case: a ready interviewer is never told to
    wait while a callable case exists.

    ``predictive``: a claim for the team dialer (``interviewer_id`` None: the PBX picks who gets the call). Only
    the general queue is dialled predictively — appointments and cases assigned to someone stay with preview
    and progressive, which put the interviewer on the line first — and never a case abandoned by the dialer
    within its code's ``predictive_hold_hours`` (3.201: 72 h; Ofcom/FTC). Converter-only cases are not dialled.
    """
    if predictive and (interviewer_id is not None or converter):
        raise ValueError("next_case: a predictive claim is for the team (interviewer_id None, converter False)")
    rng = rng or random
    rules = rules_for(study)
    stmts = _s()
    _lock_for_claim(session)
    conn = session.connection()
    own = None if predictive else conn.scalar(stmts.own_claim, {"study_id": study.id, "interviewer_id": interviewer_id})
    if own is not None:
        renew_claim(session, own, interviewer_id, now, rules)
        return Claim(own, "own_claim")
    sweep = _maintenance_due(session, study, now)
    if sweep:
        release_stale_claims(session, study.id, now)
        break_missed_appointments(session, study.id, now, rules)
    open_tzs, all_tzs = _open_timezones(session, study, now, rules)
    if sweep and open_tzs:
        # Automatic sample release (calling_rules.sample_release), in production as in the simulator: the team
        # check every sweep, the per-enterprise projection every few minutes.
        auto_release(session, study, now, rules=rules, shortfalls=_projection_due(session, study, now))

    cells = has_cells(study)
    if open_tzs and not predictive:
        due = conn.execute(stmts.due_appointments_for(converter, cells), {
            "study_id": study.id, "horizon": now + timedelta(minutes=rules.appointment_window_minutes),
            "tzs": open_tzs, "interviewer_id": interviewer_id, "slipped": now - timedelta(minutes=5),
        }).all()
        # The interviewer's own appointments first, then anyone's, each by due time.
        due.sort(key=lambda r: (r.interviewer_id != interviewer_id, r.due_at))
        for appt_id, case_id, owner, _due in due:
            if _claim(session, case_id, interviewer_id, now, rules):
                return Claim(case_id, "own_appointment" if owner == interviewer_id else "appointment", appt_id)
        # Cases a supervisor assigned to this interviewer ("指定访员") come next, before the general queue.
        assigned = conn.scalars(stmts.assigned[bool(converter)], {
            "study_id": study.id, "interviewer_id": interviewer_id, "now": now, "max_attempts": rules.max_attempts,
            "tzs": open_tzs}).all()
        for case_id in assigned:
            if _claim(session, case_id, interviewer_id, now, rules):
                return Claim(case_id, "assigned")
    if open_tzs:
        model = contact_model(session, study, rules, now)
        ratio = rules.best_time_ratio
        if ratio > 0 and _best_time_released(session, study, now):
            ratio = 0.0
        preferred: list[tuple[float, int, str, int]] = []  # (rate, bits, time zone, mask), likeliest first
        deferred: list[tuple[float, int, str, int]] = []
        for tz in open_tzs:
            rates, allowed, _later = allowed_masks(model, now, tz, rules, ratio)
            for m in range(1 << model.n_parts):
                # Near-equal chances (2 decimals): the mask with fewer parts tried, i.e. fewer attempts, first.
                (preferred if m in allowed else deferred).append((-round(rates[m], 2), m.bit_count(), tz, m))
        preferred.sort()
        deferred.sort()
        params: dict = {"now": now, "max_attempts": rules.max_attempts, "interviewer_id": interviewer_id,
                        "study_id": study.id, **_order_params(study.id, rules, rng)}
        if predictive:
            params.update(predictive_hold_params(now))
        for i, tz in enumerate(open_tzs):
            params[f"tz{i}"] = tz
        # Best time to call is a preference, never a reason to idle a paid interviewer (docs/domain.md §5): cases
        # whose better part of the day is still to come are handed out only when no other case is callable.
        for passes in (preferred, deferred):
            got = _claim_callable(session, interviewer_id, now, rules, passes, params, len(open_tzs),
                                  converter=converter, cells=cells, predictive=predictive)
            if got is not None:
                return got
        # Nothing callable within the cap on concurrent dials per open quota place (claims_per_open_slot): the
        # cap spreads the team over the enterprises, but it must not idle a paid interviewer while a case is
        # callable. Lifted here; a start beyond the quota is still refused when the interview begins.
        if rules.claims_per_open_slot:
            got = _claim_callable(session, interviewer_id, now, rules, sorted(preferred + deferred),
                                  {**params, "claims_per_open_slot": 1 << 20}, len(open_tzs),
                                  converter=converter, cells=cells, predictive=predictive)
            if got is not None:
                return got
        # Nothing callable at all for a ready interviewer: draw new sample now (queXS draws a new case when no
        # existing one is callable), if the study's release rule allows and an open enterprise has some left.
        if auto_release(session, study, now, rules=rules, starving=True, shortfalls=False):
            got = _claim_callable(session, interviewer_id, now, rules, sorted(preferred + deferred),
                                  {**params, "claims_per_open_slot": 1 << 20}, len(open_tzs),
                                  converter=converter, cells=cells, predictive=predictive)
            if got is not None:
                return got
    return explain_no_case(session, study, now, rules=rules, timezones=all_tzs, converter=converter)


def _claim_callable(session: Session, interviewer_id: int, now: datetime, rules: CallRules,
                    passes: list[tuple[float, int, str, int]], params: dict, n_tzs: int, *, converter: bool,
                    cells: bool, predictive: bool = False) -> Claim | None:
    """Claim a callable case of one of ``passes`` (time zone and tried-parts mask, in order), from the enterprises
    furthest behind their quota; None when no such case can be claimed."""
    if not passes:
        return None
    stmts, conn = _s(), session.connection()
    masks = {tz: [m for _r, _b, z, m in passes if z == tz] for _r, _b, tz, _m in passes}
    params = {**params, **{f"masks{i}": masks.get(params[f"tz{i}"], []) for i in range(n_tzs)}}
    pg = _is_pg(session)
    stmt = stmts.callable_in_enterprise(n_tzs, converter, pg, cells, predictive)
    params["pass_order"] = "," + ",".join(f"{tz}|{mask}" for _r, _b, tz, mask in passes) + ","

    def candidates(enterprise_id: int) -> Iterable[int]:
        if not pg:
            return conn.scalars(stmt, {**params, "enterprise_id": enterprise_id}).all()
        return (case_id for _r, _b, tz, mask in passes
                for case_id in conn.scalars(stmt, {**params, "enterprise_id": enterprise_id, "tz": tz,
                                                   "mask": mask}).all())

    # Enterprises in need order: the neediest few asked directly (the top-N is cheaper than probing every
    # enterprise for something due, and they usually have something), then only enterprises that have a case of
    # these passes callable now. A case can be lost to a concurrent claimer in between: then ask for the next few.
    with_callable = stmts.enterprises_with_callable(n_tzs, converter, cells, predictive)
    tried: set[int] = set()
    order = list(conn.scalars(stmts.enterprise_order, {**params, "limit": _ENTERPRISES_PER_ASK}))
    more = len(order) == _ENTERPRISES_PER_ASK  # fewer came back: that was every open enterprise
    while True:
        for enterprise_id in order:
            if enterprise_id in tried:
                continue
            tried.add(enterprise_id)
            for case_id in candidates(enterprise_id):
                if _claim(session, case_id, interviewer_id, now, rules):
                    return Claim(case_id, "callable")
        if not more:
            return None
        limit = len(tried) + _ENTERPRISES_PER_ASK
        order = list(conn.scalars(with_callable, {**params, "limit": limit}))
        more = len(order) == limit  # fewer: that was every enterprise with something callable


# Enterprises asked for at a time. Two, not eight: with sample released by need (calling_rules.sample_release) the
# neediest enterprises often have nothing due, and eight direct tries cost up to 64 queries per claim (the
# 60-enterprise demo: 55.9 s → 40.7 s).
_ENTERPRISES_PER_ASK = 2


# ---------------------------------------------------------------------------------------- best time to call

BEST_TIME_RELEASE = "best_time.release"
_released_cache: dict[tuple, tuple[float, datetime | None]] = {}


def _best_time_released(session: Session, study: Study, now: datetime) -> bool:
    """Has a supervisor released the cases the best-time preference defers (until a time still to come)?

    The release is the audit entry of the supervisor's action (it must be audited anyway, and needs no table of
    its own); every process reads the latest one at most every 30 s, so next_case does not pay a query per claim.
    """
    key = _study_key(session, study)
    cached = _released_cache.get(key)
    wall = time.monotonic()
    if cached is None or wall - cached[0] >= 30:
        after = session.scalar(
            select(AuditLog.after).where(AuditLog.entity == "study", AuditLog.entity_id == str(study.id),
                                         AuditLog.action == BEST_TIME_RELEASE)
            .order_by(AuditLog.id.desc()).limit(1))
        until = datetime.fromisoformat(after["until"]) if after and after.get("until") else None
        cached = _released_cache[key] = (wall, until)
    return cached[1] is not None and now < cached[1]


@dataclass(frozen=True)
class BestTimeDeferral:
    """What the best-time preference does now (the supervisor board): ``cases`` callable cases are handed out
    only after every other callable case, because their chance of reaching someone is markedly better in a part
    of the day starting at ``until``; ``released_until``: a supervisor released them until then."""

    cases: int
    until: datetime | None
    released_until: datetime | None = None


def best_time_deferral(session: Session, study: Study, now: datetime) -> BestTimeDeferral:
    """How many callable cases the best-time preference puts behind the others now, and until when (board only:
    one count per open time zone)."""
    rules = rules_for(study)
    if rules.best_time_ratio <= 0:
        return BestTimeDeferral(0, None)
    open_tzs, _zones = _open_timezones(session, study, now, rules)
    if _best_time_released(session, study, now):
        return BestTimeDeferral(0, None, _released_cache[_study_key(session, study)][1])
    model = contact_model(session, study, rules, now)
    cases, until = 0, None
    for tz in open_tzs:
        _rates, allowed, later = allowed_masks(model, now, tz, rules, rules.best_time_ratio)
        held = [m for m in range(1 << model.n_parts) if m not in allowed]
        if not held or later is None:
            continue
        n = session.scalar(
            select(func.count()).select_from(Case).join(Enterprise, Enterprise.id == Case.enterprise_id)
            .where(Case.study_id == study.id, Case.status == CaseStatus.READY, Case.timezone == tz,
                   Case.tried_day_parts.in_(held), Case.next_call_at <= now, Case.attempts < rules.max_attempts,
                   Enterprise.status == EnterpriseStatus.ACTIVE,
                   Enterprise.quota_open))
        if n:
            cases += n
            until = later if until is None else min(until, later)
    return BestTimeDeferral(cases, until)


def release_best_time_deferral(session: Session, study: Study, now: datetime, *, user_id: int | None
                               ) -> BestTimeDeferral:
    """A supervisor releases the deferred cases: until the better part of the day starts, every callable case is
    handed out by quota need and chance alone, as if ``best_time_ratio`` were 0. Audited; returns what was
    released (nothing when nothing was deferred)."""
    deferral = best_time_deferral(session, study, now)
    if not deferral.cases:
        return deferral
    audit.record(session, user_id=user_id, action=BEST_TIME_RELEASE, entity="study", entity_id=study.id,
                 before={"deferred_cases": deferral.cases}, after={"until": deferral.until.isoformat()})
    _released_cache.pop(_study_key(session, study), None)
    return deferral


def explain_no_case(session: Session, study: Study, now: datetime, *, rules: CallRules | None = None,
                    timezones: list[str] | None = None, converter: bool = False) -> NoCase:
    """Why nothing is callable now, and the earliest time something will be (slow path, diagnostics only).

    When cases are due yet none could be handed out for a passing reason (an enterprise already dialed by enough
    interviewers, an appointment kept by its owner, a case assigned to someone else), the answer is "look
    again in a minute", never "callable now".
    """
    rules = rules or rules_for(study)
    timezones = timezones or _timezones(session, study, rules)
    active = and_(Enterprise.study_id == study.id, Enterprise.status == EnterpriseStatus.ACTIVE)
    not_complete, not_reserved = session.execute(
        select(func.count().filter(Enterprise.completes < Enterprise.quota_target),
               func.count().filter(Enterprise.quota_open))
        .where(active)).one()
    if not not_complete:
        return NoCase(NoCaseReason.QUOTAS_FULL)
    if not not_reserved:
        return NoCase(NoCaseReason.QUOTAS_RESERVED)
    open_ent = and_(Enterprise.status == EnterpriseStatus.ACTIVE,
                    Enterprise.quota_open)
    pending = (
        select(func.min(Case.next_call_at), func.count())
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .where(Case.study_id == study.id, Case.status == CaseStatus.READY, Case.attempts < rules.max_attempts, open_ent)
    )
    if not converter:
        pending = pending.where(Case.needs_converter.is_(False))
    earliest, n_ready = session.execute(pending).one()
    appointments = (
        select(func.min(Appointment.due_at)).join(Case, Case.id == Appointment.case_id)
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .where(Appointment.study_id == study.id, Appointment.status == AppointmentStatus.PENDING,
               Case.status.in_([CaseStatus.READY, CaseStatus.CLAIMED]), open_ent)
    )
    if not converter:
        appointments = appointments.where(Case.needs_converter.is_(False))
    appt = session.scalar(appointments)
    claimed = session.scalar(
        select(func.count()).select_from(Case).join(Enterprise, Enterprise.id == Case.enterprise_id)
        .where(Case.study_id == study.id, Case.status == CaseStatus.CLAIMED, open_ent))
    if not n_ready and appt is None:
        if claimed:  # cases being dialed now may come back (no answer, appointment)
            return NoCase(NoCaseReason.WAITING, now + _POLL)
        return NoCase(NoCaseReason.EXHAUSTED)
    if not any(in_window(now, tz, rules) for tz in timezones):
        when = min(t for t in (earliest, appt) if t is not None)
        return NoCase(NoCaseReason.OUTSIDE_HOURS,
                      min(next_callable_time(max(when, now), tz, rules) for tz in timezones))
    # Appointments inside their window are due now; anything else becomes callable at its next call time.
    appt_due = appt - timedelta(minutes=rules.appointment_window_minutes) if appt is not None else None
    future = [t for t in (earliest, appt_due) if t is not None and t > now]
    due_now = any(t is not None and t <= now for t in (earliest, appt_due))
    if due_now:
        # Due work exists but none could be handed out: a passing obstacle.
        future.append(now + _POLL)
    when = min(future)
    when = min(next_callable_time(when, tz, rules) for tz in timezones)
    return NoCase(NoCaseReason.WAITING, when)


_POLL = timedelta(minutes=1)


# --------------------------------------------------------------------------------------------------- dialing


@dataclass(frozen=True)
class DialMark:
    """What ``mark_dialed`` records about a dial, for the attempt's paradata."""

    day_part: str | None  # name of the respondent-local part of the day (None outside them)
    tried_parts_before: int  # the case's tried-parts mask before this dial
    prior_outcome: str | None  # the case's last outcome before this dial
    local_weekday: int  # respondent-local weekday, Monday 0


def mark_dialed(session: Session, case: Case, now: datetime, rules: CallRules) -> DialMark:
    """Count a dial against the case: attempts, last call time, the part of the day it was tried in.

    Returns the paradata the attempt stores (the contact model learns from it).
    """
    idx = day_part_index(now, case.timezone, rules)
    before = case.tried_day_parts or 0
    prior = case.last_outcome
    case.attempts += 1
    case.last_called_at = now
    if idx is not None:
        case.tried_day_parts = before | (1 << idx)
    return DialMark(rules.day_parts[idx][0] if idx is not None else None, before, prior,
                    local(now, case.timezone).weekday())


def _case_outcomes(session: Session, case_id: int) -> list[str]:
    return list(session.scalars(
        select(CallAttempt.outcome).where(CallAttempt.case_id == case_id, CallAttempt.outcome.is_not(None))
        .order_by(CallAttempt.requested_at, CallAttempt.id)
    ))


def finalize_case(session: Session, case: Case, disposition: str, now: datetime) -> None:
    case.status = CaseStatus.FINAL
    case.final_disposition = disposition
    case.finalized_at = now
    case.claimed_by_id = case.claimed_at = case.claim_expires_at = None
    case.next_call_at = None
    session.flush()


def add_to_do_not_call(session: Session, numbers: Iterable[str], *, reason: str, source: str,
                       user_id: int | None, now: datetime) -> int:
    """Put numbers on the do-not-call list at once; every open case holding one of them stops."""
    numbers = sorted(set(numbers))
    known = set(session.scalars(select(DoNotCall.e164).where(DoNotCall.e164.in_(numbers))))
    for number in numbers:
        if number not in known:
            session.add(DoNotCall(e164=number, reason=reason, source=source, added_by_id=user_id, added_at=now))
    session.execute(update(CasePhone).where(CasePhone.e164.in_(numbers)).values(status=PhoneStatus.DNC)
                    .execution_options(synchronize_session=False))
    # Cases whose every number is now blocked can't be dialed: close them (refusal codes stay as coded).
    blocked = select(CasePhone.case_id).where(CasePhone.e164.in_(numbers))
    stopped = 0
    for case_obj in session.scalars(select(Case).where(Case.id.in_(blocked), Case.status != CaseStatus.FINAL)):
        if all(p.status == PhoneStatus.DNC for p in case_obj.phones):
            case_obj.status = CaseStatus.STOPPED
            case_obj.claimed_by_id = case_obj.claimed_at = case_obj.claim_expires_at = None
            stopped += 1
    session.flush()
    return stopped


def record_outcome(
    session: Session,
    case: Case,
    outcome: str,
    now: datetime,
    *,
    interviewer_id: int | None = None,
    appointment_at: datetime | None = None,
    appointment_for_anyone: bool = False,
    rules: CallRules | None = None,
) -> str | None:
    """Apply an attempt's outcome to its case and release the claim. Returns the final disposition if the
    case ended (final outcome, attempt cap, filled quota), else None.

    The attempt row itself carries the outcome (set by the dialer or the interviewer's coding) — this
    function moves the case: next call time by the retry rules, refusal conversion, appointments,
    do-not-call, and the final code.
    """
    cat = catalogue()
    disp = cat.get_code(outcome)
    rules = rules or rules_for(session.get(Study, case.study_id))
    case.last_outcome = outcome
    case.claimed_by_id = case.claimed_at = case.claim_expires_at = None
    if disp.do_not_call:
        add_to_do_not_call(session, [p.e164 for p in case.phones], reason=disp.text("zh-CN"), source="respondent",
                           user_id=interviewer_id, now=now)
    enterprise = session.get(Enterprise, case.enterprise_id)
    quota_full = enterprise.completes >= enterprise.quota_target
    if disp.final:
        finalize_case(session, case, outcome, now)
        return outcome
    if case.status == CaseStatus.STOPPED:
        # Stopped while claimed (a do-not-call entry, a supervisor): the holder's coding of the call is kept
        # in last_outcome, but the case stays stopped and is never handed out again.
        case.next_call_at = None
        session.flush()
        return None
    if quota_full:
        code = catalogue().code_for("quota_full")
        finalize_case(session, case, code, now)
        return code
    case.status = CaseStatus.READY
    if disp.refusal_conversion:
        case.needs_converter = True
    if appointment_at is not None:
        session.add(Appointment(study_id=case.study_id, case_id=case.id, due_at=appointment_at,
                                interviewer_id=None if appointment_for_anyone else interviewer_id,
                                created_by_id=interviewer_id, created_at=now))
        case.next_call_at = appointment_at
        session.flush()
        return None
    cap_reached = case.attempts >= rules.max_attempts
    streak = rules.stop_after_consecutive.get(outcome)
    if cap_reached or streak:
        outcomes = _case_outcomes(session, case.id)  # this attempt's own outcome included (autoflush)
        if cap_reached or outcomes[-streak:] == [outcome] * streak:
            # The cap gets its own code; a streak stop keeps the outcome that stopped it (e.g. 3.15 blocking).
            code = (max_attempts_disposition(outcomes, cat=cat) if cap_reached
                    else final_disposition(outcomes, cap_reached=True, cat=cat))
            finalize_case(session, case, code, now)
            return code
    case.next_call_at = retry_time_for(case, outcome, now, rules)
    session.flush()
    return None


def retry_time_for(case: Case, outcome: str, now: datetime, rules: CallRules) -> datetime:
    from .calling import retry_time

    return retry_time(outcome, now, case.timezone, rules, tried_parts=case.tried_day_parts)


def serve_appointment(session: Session, appointment_id: int) -> None:
    appt = session.get(Appointment, appointment_id)
    if appt is not None and appt.status == AppointmentStatus.PENDING:
        appt.status = AppointmentStatus.KEPT
        session.flush()


# ----------------------------------------------------------------------------------------------------- quotas


def close_quota(session: Session, enterprise: Enterprise, now: datetime) -> int:
    """A full enterprise stops: its released, unclaimed open cases get 4.80 (quota filled).

    Claimed cases get 4.80 when their holder codes the call (``record_outcome``); unreleased replicates were
    never part of the fieldwork sample and stay unreleased (they don't enter the response rates).
    """
    return close_as_quota_filled(session, Case.enterprise_id == enterprise.id, now)


class QuotaFull(Exception):
    """The enterprise's quota (completes + interviews in progress) is already reached."""


def reserve_quota_slot(session: Session, enterprise_id: int, case_id: int | None = None) -> None:
    """Count an interview in progress against the quota, atomically; raises QuotaFull when none is left.

    This conditional update is the hard guarantee that no interview beyond the target is ever started. With
    ``case_id``, the case's industry and sample-variable quota cells are reserved too (``quotas.reserve_cells``);
    a full cell raises QuotaFull and keeps no slot anywhere.
    """
    stmts, params = _s(), {"enterprise_id": enterprise_id}
    if session.execute(stmts.reserve_slot, params).rowcount != 1:
        raise QuotaFull(enterprise_id)
    if case_id is not None and reserve_cells(session, case_id) is not None:
        session.execute(stmts.end_slot, params)
        _forget_enterprise(session, enterprise_id)
        raise QuotaFull(enterprise_id)
    _forget_enterprise(session, enterprise_id)


def _forget_enterprise(session: Session, enterprise_id: int) -> None:
    """The enterprise's counters changed in SQL: a copy already loaded in the session re-reads them when next used
    (nothing is read now, and nothing is loaded that was not)."""
    loaded = session.identity_map.get(identity_key(Enterprise, enterprise_id))
    if loaded is not None:
        session.expire(loaded)


def release_quota_slot(session: Session, enterprise_id: int, *, completed: bool, now: datetime,
                       case_id: int | None = None) -> None:
    """An interview in progress ended: as a complete (it now counts as one) or not (its slot frees up). With
    ``case_id``, the case's quota cells likewise (a cell it fills closes its remaining cases).

    Rows are locked in the order reserve_quota_slot takes them (the enterprise, then the cells by id), so a start
    and an end in the same cells never deadlock on PostgreSQL.
    """
    stmts, params = _s(), {"enterprise_id": enterprise_id}
    session.execute(stmts.complete_slot if completed else stmts.end_slot, params)
    if case_id is not None:
        release_cells(session, case_id, completed=completed, now=now)
    _forget_enterprise(session, enterprise_id)
    if completed:
        done, target = session.execute(stmts.enterprise_counts, params).one()
        if done >= target:
            close_quota(session, session.get(Enterprise, enterprise_id), now)


# ------------------------------------------------------------------------------------------------- replicates


def release_replicate(session: Session, enterprise_id: int, number: int | None, now: datetime, *,
                      user_id: int | None = None, automatic: bool = False) -> int:
    """Release a replicate of an enterprise (the next unreleased one when ``number`` is None).

    Returns how many cases became callable.
    """
    q = select(Replicate).where(Replicate.enterprise_id == enterprise_id, Replicate.released_at.is_(None))
    if number is not None:
        q = q.where(Replicate.number == number)
    rep = session.scalars(q.order_by(Replicate.number).limit(1)).first()
    if rep is None:
        return 0
    rep.released_at, rep.released_by_id, rep.automatic = now, user_id, automatic
    result = session.execute(
        update(Case)
        .where(Case.enterprise_id == enterprise_id, Case.replicate == rep.number,
               Case.status == CaseStatus.UNRELEASED)
        .values(status=CaseStatus.READY, next_call_at=now)
        .execution_options(synchronize_session=False)
    )
    # Released cases of an industry / sample-variable cell that has already filled close at once (4.80).
    close_filled_cells(session, session.get(Study, rep.study_id), now)
    session.flush()
    return result.rowcount


def projected_shortfalls(session: Session, study: Study, *, prior_yield: float = 0.08) -> dict[int, float]:
    """Enterprises whose released sample is projected to fall short of the quota: {enterprise id: shortfall}.

    Projection = completes + in progress + open released cases × yield per case, where the yield is the
    enterprise's completes per finalised case so far, shrunk towards ``prior_yield`` (few finalised cases
    say little). The ``projected`` release mode acts on it; the board flags the shortfalls.
    """
    rows = session.execute(
        select(
            Enterprise.id, Enterprise.quota_target, Enterprise.completes, Enterprise.in_progress,
            func.count(Case.id).filter(Case.status.in_([CaseStatus.READY, CaseStatus.CLAIMED])),
            func.count(Case.id).filter(Case.status == CaseStatus.FINAL),
        )
        .outerjoin(Case, Case.enterprise_id == Enterprise.id)
        .where(Enterprise.study_id == study.id, Enterprise.status == EnterpriseStatus.ACTIVE)
        .group_by(Enterprise.id)
    ).all()
    short = {}
    weight = 20.0  # pseudo-cases of prior
    for eid, target, done, running, open_cases, final_cases in rows:
        if done + running >= target:
            continue
        yield_rate = (done + prior_yield * weight) / (final_cases + weight)
        projected = done + running + open_cases * yield_rate
        if projected < target:
            short[eid] = target - projected
    return _useful_releases(session, study, short)


def _useful_releases(session: Session, study: Study, short: dict[int, float]) -> dict[int, float]:
    if short and has_cells(study):
        # Releasing cases that a filled industry / sample-variable cell closes at once gains nothing.
        useful = set(session.scalars(
            select(Case.enterprise_id).where(Case.enterprise_id.in_(list(short)), Case.status == CaseStatus.UNRELEASED,
                                             ~in_filled_cell_clause()).distinct()))
        short = {eid: gap for eid, gap in short.items() if eid in useful}
    return short


def need_shortfalls(session: Session, study: Study, rules: CallRules | None = None) -> dict[int, float]:
    """Enterprises (with sample still unreleased) whose workable open cases — released, ready or being dialed,
    under the attempt cap or holding an appointment — are fewer than ``sample_release.min_open_per_needed`` × the
    completes they still need: {enterprise id: cases missing}.

    A learned yield per case was tried here first and released too early: invalid numbers and refusals are coded
    on the first dials while non-contacts stay open, so completes per finalised case starts low (hard_to_reach,
    seed 1: 77 of 80 replicates out by day 2, 7.10 cases used per complete against queXS's 5.53).
    """
    rules = rules or rules_for(study)
    per_needed = rules.sample_release.min_open_per_needed
    if per_needed <= 0:
        return {}
    has_unreleased = (select(Replicate.id).where(Replicate.enterprise_id == Enterprise.id,
                                                 Replicate.released_at.is_(None)).exists())
    open_cases = (
        select(func.count()).select_from(Case)
        .where(Case.enterprise_id == Enterprise.id, Case.status.in_([CaseStatus.READY, CaseStatus.CLAIMED]),
               or_(Case.attempts < rules.max_attempts,
                   Case.id.in_(select(Appointment.case_id).where(Appointment.status == AppointmentStatus.PENDING))))
        .scalar_subquery()
    )
    rows = session.execute(
        select(Enterprise.id, Enterprise.quota_target - Enterprise.completes - Enterprise.in_progress, open_cases)
        .where(Enterprise.study_id == study.id, Enterprise.status == EnterpriseStatus.ACTIVE,
               Enterprise.quota_target > Enterprise.completes + Enterprise.in_progress, has_unreleased)
    ).all()
    short = {eid: need * per_needed - n for eid, need, n in rows if n < need * per_needed}
    return _useful_releases(session, study, short)


def callable_pool(session: Session, study: Study, now: datetime, rules: CallRules, *, limit: int) -> int:
    """How many cases are callable now (at most ``limit``: the query stops there): released, past their retry
    time, under the attempt cap, of an enterprise with an open quota, for any interviewer."""
    sub = (
        select(Case.id).join(Enterprise, Enterprise.id == Case.enterprise_id)
        .where(Case.study_id == study.id, Case.status == CaseStatus.READY, Case.next_call_at <= now,
               Case.attempts < rules.max_attempts, Case.needs_converter.is_(False),
               Enterprise.status == EnterpriseStatus.ACTIVE, Enterprise.quota_open)
        .limit(limit).subquery()
    )
    return session.scalar(select(func.count()).select_from(sub)) or 0


def _working_interviewers(session: Session, study: Study) -> int:
    """Interviewers at work on the study now, as the claims held (each dialing or interviewing interviewer holds
    one), plus the one asking."""
    return (session.scalar(select(func.count()).select_from(Case).where(
        Case.study_id == study.id, Case.status == CaseStatus.CLAIMED)) or 0) + 1


def _neediest_with_sample(session: Session, study: Study) -> list[int]:
    """Enterprises with an open quota and a replicate still unreleased, furthest behind their quota first."""
    has_unreleased = (select(Replicate.id).where(Replicate.enterprise_id == Enterprise.id,
                                                 Replicate.released_at.is_(None)).exists())
    ids = list(session.scalars(
        select(Enterprise.id)
        .where(Enterprise.study_id == study.id, Enterprise.status == EnterpriseStatus.ACTIVE,
               Enterprise.quota_target > Enterprise.completes + Enterprise.in_progress, has_unreleased)
        .order_by((Enterprise.completes + Enterprise.in_progress) * 1.0 / Enterprise.quota_target, Enterprise.id)))
    if ids and has_cells(study):
        keep = set(_useful_releases(session, study, dict.fromkeys(ids, 1.0)))
        ids = [e for e in ids if e in keep]
    return ids


def _release_auto(session: Session, eid: int, now: datetime, reason: str) -> int:
    n = release_replicate(session, eid, None, now, automatic=True)
    if n:
        number = session.scalar(select(func.max(Replicate.number)).where(
            Replicate.enterprise_id == eid, Replicate.released_at == now, Replicate.automatic.is_(True)))
        audit.record(session, user_id=None, action="replicate.release", entity="enterprise", entity_id=eid,
                     before={"replicate": number, "released": False},
                     after={"replicate": number, "released": True, "cases": n, "automatic": True, "reason": reason})
    return n


def release_for_team(session: Session, study: Study, now: datetime, rules: CallRules, *, wanted: int,
                     exclude: Iterable[int] = ()) -> dict[int, int]:
    """The team is short of callable cases: release the next replicate of the neediest enterprises that have
    sample left, one each, until at least ``wanted`` cases were released. {enterprise id: cases released}."""
    released: dict[int, int] = {}
    skip = set(exclude)
    total = 0
    for eid in _neediest_with_sample(session, study):
        if total >= wanted:
            break
        if eid in skip:
            continue
        n = _release_auto(session, eid, now, "team_short_of_work")
        if n:
            released[eid] = n
            total += n
    return released


def auto_release(session: Session, study: Study, now: datetime, *, rules: CallRules | None = None,
                 starving: bool = False, shortfalls: bool = True, **kw) -> dict[int, int]:
    """Automatic replicate release by the study's ``calling_rules.sample_release`` rule. {enterprise id: cases}.

    ``need`` (default): release an enterprise's next replicate when its open cases are too few for its remaining
    quota (:func:`need_shortfalls`), and release for the neediest enterprises when the team
    is short of callable work — fewer than ``callable_per_interviewer`` callable cases per interviewer at work, or
    ``starving`` (an interviewer found nothing to call). ``projected``: every enterprise projected short by
    :func:`projected_shortfalls`. ``manual``: nothing. ``shortfalls=False`` skips the per-enterprise
    projection (it reads every enterprise's cases; next_case runs it every few minutes, the team check every
    minute). Every automatic release is audited
    (``replicate.release`` with ``automatic: true`` and the reason) and marked on its replicate.
    """
    rules = rules or rules_for(study)
    policy = rules.sample_release
    released: dict[int, int] = {}
    if policy.mode == "manual":
        return released
    if policy.mode == "projected":
        if not shortfalls:
            return released
        for eid in projected_shortfalls(session, study, prior_yield=kw.get("prior_yield", policy.prior_yield)):
            n = _release_auto(session, eid, now, "projected_shortfall")
            if n:
                released[eid] = n
        return released
    for eid in (need_shortfalls(session, study, rules) if shortfalls else ()):
        n = _release_auto(session, eid, now, "open_cases_short_of_quota")
        if n:
            released[eid] = n
    wanted = 0
    if starving:
        wanted = 1
    elif policy.callable_per_interviewer > 0:
        want = int(policy.callable_per_interviewer * _working_interviewers(session, study) + 0.999)
        pool = callable_pool(session, study, now, rules, limit=want)
        wanted = want - pool
    if wanted > 0:
        released.update(release_for_team(session, study, now, rules, wanted=wanted, exclude=released))
    return released
