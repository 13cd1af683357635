"""The supervisor's case browser: cases of the study filtered by enterprise, status, outcome, interviewer, phone
digits and appointment state, a page at a time, and bulk actions on the chosen cases.

Paging is by key (``Case.id`` after / before the page's last / first id), never by offset, so page 4,000 of 200,000
cases costs what page 1 does; each filter narrows through an index (``ix_cases_claim_mask`` for an enterprise and
status, ``ix_appointments_due`` for appointments, ``ix_call_attempts_*`` for who dialed, the (study, e164) unique
index of ``case_phones`` for phone digits). The total is counted up to :data:`COUNT_CAP` (a "10,000+" is all a
screen needs to say). Bulk actions call the single-case actions of :mod:`cati.services.sample_admin`, each in its
own savepoint and each audited there; a case an action refuses is reported, the others go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, union
from sqlalchemy.orm import Session

from cati.models import (
    Appointment,
    AppointmentStatus,
    CallAttempt,
    Case,
    CasePhone,
    CaseStatus,
    Enterprise,
    User,
)

from . import audit
from . import sample_admin as sa
from .phones import PhoneError, mask_phone, normalize_phone

PAGE_SIZE = 50
COUNT_CAP = 10_000
APPOINTMENT_FILTERS = ("pending", "due", "missed")
BULK_ACTIONS = ("release", "stop", "reassign", "dnc")


@dataclass(frozen=True)
class CaseFilter:
    enterprise_id: int | None = None
    status: str | None = None  # a CaseStatus value
    outcome: str | None = None  # an AAPOR code (prefix): final disposition, else the last outcome
    interviewer_id: int | None = None  # assigned to, holding, or dialed by
    phone: str | None = None  # digits typed by the supervisor
    appointment: str | None = None  # pending | due | missed

    def is_empty(self) -> bool:
        return not any((self.enterprise_id, self.status, self.outcome, self.interviewer_id, self.phone,
                        self.appointment))


@dataclass(frozen=True)
class CaseRow:
    id: int
    case_ref: str
    enterprise: str
    status: str
    outcome: str | None
    final: bool
    attempts: int
    last_called_at: datetime | None
    next_call_at: datetime | None
    owner: str
    phone: str  # masked
    appointment_at: datetime | None


@dataclass
class CasePage:
    rows: list[CaseRow]
    total: int
    capped: bool  # the total is at least COUNT_CAP
    first_id: int | None
    last_id: int | None
    has_next: bool
    has_prev: bool
    problems: list[str] = field(default_factory=list)  # catalogue keys about the filter (e.g. phone too short)


def phone_digits(raw: str | None) -> str:
    """The digits a supervisor typed (spaces, dashes, full-width digits allowed); "" for none."""
    if not raw:
        return ""
    out = []
    for ch in raw:
        if "０" <= ch <= "９":
            ch = chr(ord("0") + ord(ch) - ord("０"))
        if ch.isdigit():
            out.append(ch)
    return "".join(out)


def _phone_condition(session: Session, study_id: int, raw: str):
    """Cases with a number matching the typed digits: the exact number when the digits make a whole one (an index
    probe), else any number containing them (at least 4 digits). The partial match scans the study's numbers
    (~50 ms at 200,000) once: its case ids go into the page and count queries as a list (a subquery would scan
    again for each), unless there are more than :data:`COUNT_CAP`."""
    digits = phone_digits(raw)
    try:
        e164 = normalize_phone(raw).e164
    except PhoneError:
        e164 = None
    if e164 is not None:
        return Case.id.in_(select(CasePhone.case_id).where(CasePhone.study_id == study_id, CasePhone.e164 == e164))
    matching = select(CasePhone.case_id).where(CasePhone.study_id == study_id, CasePhone.e164.like(f"%{digits}%"))
    ids = session.scalars(matching.limit(COUNT_CAP + 1)).all()
    return Case.id.in_(matching) if len(ids) > COUNT_CAP else Case.id.in_(sorted(set(ids)))


def _conditions(session: Session, study_id: int, f: CaseFilter, now: datetime,
                grace_minutes: int) -> tuple[list, list[str]]:
    problems: list[str] = []
    # Which index leads is chosen here, not left to SQLite's planner (without ANALYZE statistics it reads the
    # whole study through ix_cases_sched for "study_id = ?"): an enterprise → ix_cases_claim_mask; a status
    # alone → ix_cases_sched; a set of ids (interviewer, phone, appointment) → primary-key probes; nothing →
    # the primary key in order, stopping at a page. "study_id + 0" keeps the study condition off the index.
    id_sets = bool(f.interviewer_id or f.appointment or (f.phone and len(phone_digits(f.phone)) >= 4))
    by_status = bool(f.status and not f.enterprise_id and not id_sets)
    conds = [Case.study_id == study_id if by_status else Case.study_id + 0 == study_id]
    if f.enterprise_id:
        conds.append(Case.enterprise_id == f.enterprise_id)
    if f.status:
        conds.append(Case.status == CaseStatus(f.status))
    if f.outcome:
        code = f.outcome.strip()
        conds.append(or_(Case.final_disposition.like(f"{code}%"),
                         and_(Case.final_disposition.is_(None), Case.last_outcome.like(f"{code}%"))))
    if f.interviewer_id:
        uid = f.interviewer_id
        conds.append(Case.id.in_(union(
            select(CallAttempt.case_id).where(CallAttempt.interviewer_id == uid),
            select(Case.id).where(Case.assigned_to_id == uid),
            select(Case.id).where(Case.study_id == study_id, Case.status == CaseStatus.CLAIMED,
                                  Case.claimed_by_id == uid))))
    if f.phone:
        if len(phone_digits(f.phone)) < 4:
            problems.append("phone_filter_short")
        else:
            conds.append(_phone_condition(session, study_id, f.phone))
    if f.appointment:
        appt = select(Appointment.case_id).where(Appointment.study_id == study_id)
        cutoff = now - timedelta(minutes=grace_minutes)
        if f.appointment == "pending":
            appt = appt.where(Appointment.status == AppointmentStatus.PENDING)
        elif f.appointment == "due":
            appt = appt.where(Appointment.status == AppointmentStatus.PENDING, Appointment.due_at <= now,
                              Appointment.due_at >= cutoff)
        else:  # missed: past its grace unserved (broken, or not yet swept)
            appt = appt.where(or_(Appointment.status == AppointmentStatus.BROKEN,
                                  and_(Appointment.status == AppointmentStatus.PENDING,
                                       Appointment.due_at < cutoff)))
        conds.append(Case.id.in_(appt))
    return conds, problems


def browse(session: Session, study_id: int, f: CaseFilter, now: datetime, *, grace_minutes: int = 60,
           after: int | None = None, before: int | None = None, limit: int = PAGE_SIZE) -> CasePage:
    """One page of the cases matching ``f`` in id order: the first page, the one after id ``after`` or the one
    before id ``before``."""
    conds, problems = _conditions(session, study_id, f, now, grace_minutes)
    q = select(Case.id).where(*conds)
    if before is not None:
        ids = list(reversed(session.scalars(q.where(Case.id < before).order_by(Case.id.desc())
                                            .limit(limit + 1)).all()))
        has_prev = len(ids) > limit
        ids = ids[-limit:] if has_prev else ids
        has_next = True
    else:
        if after is not None:
            q = q.where(Case.id > after)
        ids = session.scalars(q.order_by(Case.id).limit(limit + 1)).all()
        has_next = len(ids) > limit
        ids = ids[:limit]
        has_prev = after is not None
    counted = session.scalar(select(func.count()).select_from(
        select(Case.id).where(*conds).limit(COUNT_CAP).subquery()))
    rows = _rows(session, ids, now)
    return CasePage(rows=rows, total=counted or 0, capped=(counted or 0) >= COUNT_CAP,
                    first_id=ids[0] if ids else None, last_id=ids[-1] if ids else None,
                    has_next=has_next and bool(ids), has_prev=has_prev and bool(ids), problems=problems)


def _rows(session: Session, ids: Sequence[int], now: datetime) -> list[CaseRow]:
    if not ids:
        return []
    owner = User.__table__.alias("owner")
    found = session.execute(
        select(Case.id, Case.case_ref, Enterprise.name, Case.status, Case.final_disposition, Case.last_outcome,
               Case.attempts, Case.last_called_at, Case.next_call_at, owner.c.display_name)
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .outerjoin(owner, owner.c.id == func.coalesce(Case.claimed_by_id, Case.assigned_to_id))
        .where(Case.id.in_(ids))).all()
    phones: dict[int, str] = {}
    for cid, e164 in session.execute(select(CasePhone.case_id, CasePhone.e164).where(CasePhone.case_id.in_(ids))
                                     .order_by(CasePhone.case_id, CasePhone.position)):
        phones.setdefault(cid, mask_phone(e164))
    appts = dict(session.execute(
        select(Appointment.case_id, func.min(Appointment.due_at))
        .where(Appointment.case_id.in_(ids), Appointment.status == AppointmentStatus.PENDING)
        .group_by(Appointment.case_id)).all())
    by_id = {r[0]: r for r in found}
    out = []
    for cid in ids:
        r = by_id.get(cid)
        if r is None:
            continue
        _, ref, ent, status, final, last, attempts, last_at, next_at, who = r
        out.append(CaseRow(id=cid, case_ref=ref, enterprise=ent, status=status.value, outcome=final or last,
                           final=final is not None, attempts=attempts, last_called_at=last_at,
                           next_call_at=next_at, owner=who or "", phone=phones.get(cid, ""),
                           appointment_at=appts.get(cid)))
    return out


# ------------------------------------------------------------------------------------------------ bulk actions


@dataclass
class BulkResult:
    done: int = 0
    refused: list[tuple[str, Exception]] = field(default_factory=list)  # (case ref, the keyed error)
    dnc_numbers: int = 0


def release_case(session: Session, case_id: int, now: datetime, *, user_id: int | None,
                 note: str | None = None) -> Case:
    """Put one case into calling ahead of its replicate: an unreleased case becomes callable now, a stopped one is
    resumed (:func:`sample_admin.resume_case`). Audited."""
    case = session.get(Case, case_id)
    if case is None:
        raise sa.SampleAdminError("case_id_not_found", id=case_id)
    if case.status == CaseStatus.STOPPED:
        resumed = sa.resume_case(session, case_id, now, user_id=user_id, note=note)
        if resumed.status == CaseStatus.UNRELEASED:
            return release_case(session, case_id, now, user_id=user_id, note=note)
        return resumed
    if case.status != CaseStatus.UNRELEASED:
        raise sa.SampleAdminError("case_not_releasable", status=case.status.value)
    case.status, case.next_call_at = CaseStatus.READY, now
    audit.record(session, user_id=user_id, action="case.release", entity="case", entity_id=case.id,
                 before={"status": "unreleased", "replicate": case.replicate}, after={"status": "ready"}, note=note)
    session.flush()
    return case


def bulk(session: Session, case_ids: Sequence[int], action: str, now: datetime, *, user_id: int | None,
         to_interviewer_id: int | None = None, note: str | None = None) -> BulkResult:
    """Apply ``action`` (release | stop | reassign | dnc) to each case; each change is audited by the action itself.
    A case the action refuses (final, being dialed, …) is listed in ``refused`` and left as it was."""
    if action not in BULK_ACTIONS:
        raise sa.SampleAdminError("bulk_action_unknown", action=action)
    ids = list(dict.fromkeys(int(i) for i in case_ids))
    if not ids:
        raise sa.SampleAdminError("bulk_choose_cases")
    if action == "reassign" and to_interviewer_id is not None:
        sa._interviewer(session, to_interviewer_id)  # refuse a wrong interviewer once, not per case
    refs = dict(session.execute(select(Case.id, Case.case_ref).where(Case.id.in_(ids))).all())
    out = BulkResult()
    if action == "dnc":
        numbers = session.scalars(select(CasePhone.e164).where(CasePhone.case_id.in_(ids))).all()
        if not numbers:
            raise sa.SampleAdminError("enter_a_number")
        added, _stopped, _bad = sa.add_do_not_call(session, numbers, now, user_id=user_id,
                                                   reason=note or "supervisor")
        out.done, out.dnc_numbers = len(refs), added
        return out
    for cid in ids:
        if cid not in refs:
            out.refused.append((str(cid), sa.SampleAdminError("case_id_not_found", id=cid)))
            continue
        sp = session.begin_nested()
        try:
            if action == "release":
                release_case(session, cid, now, user_id=user_id, note=note)
            elif action == "stop":
                sa.stop_case(session, cid, user_id=user_id, note=note)
            else:
                sa.reassign_case(session, cid, to_interviewer_id, user_id=user_id, note=note)
            sp.commit()
            out.done += 1
        except sa.SampleAdminError as err:
            sp.rollback()
            out.refused.append((refs[cid], err))
    return out

