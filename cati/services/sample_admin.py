"""Supervisor actions on the sample: release replicates, stop/resume enterprises and cases, move appointments,
reassign cases, add numbers to the do-not-call list, hand soft refusals to chosen converters.

Every action writes one audit entry (who, what, before, after) in the same transaction. Functions take a
session and only flush; the web edge commits. Errors are ``SampleAdminError`` with zh-CN and en text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cati.i18n import KeyedError, language_for
from cati.models import (
    Appointment,
    AppointmentStatus,
    AuditLog,
    Case,
    CaseStatus,
    Enterprise,
    EnterpriseStatus,
    PhoneStatus,
    Replicate,
    Role,
    User,
)

from . import audit
from .phones import PhoneError, mask_phone, normalize_phone, rejected_line_text
from .scheduling import add_to_do_not_call, release_replicate


class SampleAdminError(KeyedError):
    """A refused action: a catalogue ``key`` and ``params``; ``str()`` is the English, ``message(lang)`` any.

    The older form ``SampleAdminError(zh, en)`` (two finished texts) is still accepted for callers not yet
    converted; it carries no key.
    """

    def __init__(self, key: str, en: str | None = None, /, **params: Any):
        if en is None:
            super().__init__(key, **params)
            return
        self.key, self.params, self._texts = "", {}, {"zh-CN": key, "en": en}
        ValueError.__init__(self, en)

    def message(self, lang: str | None = "zh-CN") -> str:
        if not self.key:
            return self._texts[language_for(lang)]
        return super().message(lang)


def _enterprise(session: Session, enterprise_id: int) -> Enterprise:
    ent = session.get(Enterprise, enterprise_id)
    if ent is None:
        raise SampleAdminError("enterprise_not_found", id=enterprise_id)
    return ent


def _case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise SampleAdminError("case_id_not_found", id=case_id)
    return case


def _interviewer(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.role != Role.INTERVIEWER or not user.is_active:
        raise SampleAdminError("not_active_interviewer", id=user_id)
    return user


# ----------------------------------------------------------------------------------------------- replicates


def release(session: Session, enterprise_id: int, number: int | None, now: datetime, *, user_id: int | None) -> int:
    """Release a replicate (the next unreleased one when ``number`` is None); audited. Returns cases released."""
    ent = _enterprise(session, enterprise_id)
    q = select(Replicate).where(Replicate.enterprise_id == ent.id, Replicate.released_at.is_(None))
    if number is not None:
        q = q.where(Replicate.number == number)
    rep = session.scalars(q.order_by(Replicate.number).limit(1)).first()
    if rep is None:
        raise SampleAdminError("no_unreleased_replicate", name=ent.name)
    n = release_replicate(session, ent.id, rep.number, now, user_id=user_id)
    audit.record(session, user_id=user_id, action="replicate.release", entity="enterprise", entity_id=ent.id,
                 before={"replicate": rep.number, "released": False},
                 after={"replicate": rep.number, "released": True, "cases": n})
    return n


def unreleased_replicates(session: Session, enterprise_id: int) -> list[tuple[int, int]]:
    """(number, size) of the enterprise's replicates not yet released."""
    return [tuple(r) for r in session.execute(
        select(Replicate.number, Replicate.size)
        .where(Replicate.enterprise_id == enterprise_id, Replicate.released_at.is_(None))
        .order_by(Replicate.number)
    )]


def unreleased_by_enterprise(session: Session, study_id: int) -> dict[int, list[tuple[int, int]]]:
    """{enterprise id: [(number, size), …]} of every replicate not yet released, in one query."""
    out: dict[int, list[tuple[int, int]]] = {}
    for eid, number, size in session.execute(
        select(Replicate.enterprise_id, Replicate.number, Replicate.size)
        .where(Replicate.study_id == study_id, Replicate.released_at.is_(None))
        .order_by(Replicate.enterprise_id, Replicate.number)
    ):
        out.setdefault(eid, []).append((number, size))
    return out


@dataclass(frozen=True)
class AutoRelease:
    """A replicate the scheduler released by itself (calling_rules.sample_release), for the supervisor board."""

    enterprise_id: int
    enterprise: str
    number: int
    cases: int
    released_at: datetime
    reason: str


def automatic_releases(session: Session, study_id: int, limit: int = 20) -> list[AutoRelease]:
    """The latest automatic replicate releases of the study, newest first (the replicate rows marked
    ``automatic``, with the reason the audit log gives)."""
    reps = session.execute(
        select(Replicate.enterprise_id, Enterprise.name, Replicate.number, Replicate.size, Replicate.released_at)
        .join(Enterprise, Enterprise.id == Replicate.enterprise_id)
        .where(Replicate.study_id == study_id, Replicate.automatic.is_(True), Replicate.released_at.is_not(None))
        .order_by(Replicate.released_at.desc(), Replicate.id.desc()).limit(limit)).all()
    if not reps:
        return []
    reasons: dict[tuple[str, int], tuple[str, int]] = {}
    for entity_id, after in session.execute(
            select(AuditLog.entity_id, AuditLog.after)
            .where(AuditLog.action == "replicate.release", AuditLog.entity == "enterprise",
                   AuditLog.entity_id.in_({str(r[0]) for r in reps}))):
        if after and after.get("automatic"):
            reasons[(entity_id, after.get("replicate"))] = (after.get("reason") or "", after.get("cases") or 0)
    out = []
    for eid, name, number, size, at in reps:
        reason, n = reasons.get((str(eid), number), ("", size))
        out.append(AutoRelease(eid, name, number, n or size, at, reason))
    return out


# ------------------------------------------------------------------------------------------- stop / resume


def set_enterprise_status(session: Session, enterprise_id: int, stopped: bool, *, user_id: int | None,
                          note: str | None = None) -> Enterprise:
    """Stop (no case of it is handed out any more) or resume an enterprise; audited."""
    ent = _enterprise(session, enterprise_id)
    new = EnterpriseStatus.STOPPED if stopped else EnterpriseStatus.ACTIVE
    if ent.status == new:
        return ent
    before = ent.status.value
    ent.status = new
    audit.record(session, user_id=user_id, action="enterprise.stop" if stopped else "enterprise.resume",
                 entity="enterprise", entity_id=ent.id, before={"status": before}, after={"status": new.value},
                 note=note)
    session.flush()
    return ent


def stop_case(session: Session, case_id: int, *, user_id: int | None, note: str | None = None) -> Case:
    """Take a case out of calling. A case someone is dialing now, or a final one, can't be stopped."""
    case = _case(session, case_id)
    if case.status == CaseStatus.CLAIMED:
        raise SampleAdminError("case_dialing_stop_later")
    if case.status == CaseStatus.FINAL:
        raise SampleAdminError("case_already_final")
    if case.status == CaseStatus.STOPPED:
        return case
    before = case.status.value
    case.status = CaseStatus.STOPPED
    audit.record(session, user_id=user_id, action="case.stop", entity="case", entity_id=case.id,
                 before={"status": before}, after={"status": "stopped"}, note=note)
    session.flush()
    return case


def resume_case(session: Session, case_id: int, now: datetime, *, user_id: int | None,
                note: str | None = None) -> Case:
    """Put a stopped case back: callable now if its replicate was released, else unreleased. A case whose every
    number is on the do-not-call list stays stopped."""
    case = _case(session, case_id)
    if case.status != CaseStatus.STOPPED:
        raise SampleAdminError("case_not_stopped")
    if case.phones and all(p.status == PhoneStatus.DNC for p in case.phones):
        raise SampleAdminError("case_all_dnc")
    released = session.scalar(select(Replicate.released_at).where(Replicate.enterprise_id == case.enterprise_id,
                                                                  Replicate.number == case.replicate))
    if released is not None:
        case.status, case.next_call_at = CaseStatus.READY, case.next_call_at or now
    else:
        case.status = CaseStatus.UNRELEASED
    audit.record(session, user_id=user_id, action="case.resume", entity="case", entity_id=case.id,
                 before={"status": "stopped"}, after={"status": case.status.value}, note=note)
    session.flush()
    return case


# -------------------------------------------------------------------------------------------- appointments


def move_appointment(session: Session, appointment_id: int, to_interviewer_id: int | None, *, user_id: int | None,
                     due_at: datetime | None = None, note: str | None = None) -> Appointment:
    """Give a pending appointment to another interviewer (None: anyone may keep it), optionally at a new time."""
    appt = session.get(Appointment, appointment_id)
    if appt is None:
        raise SampleAdminError("appointment_not_found", id=appointment_id)
    if appt.status != AppointmentStatus.PENDING:
        raise SampleAdminError("appointment_not_pending")
    if to_interviewer_id is not None:
        _interviewer(session, to_interviewer_id)
    before = {"interviewer_id": appt.interviewer_id, "due_at": appt.due_at.isoformat()}
    appt.interviewer_id = to_interviewer_id
    if due_at is not None:
        appt.due_at = due_at
        case = session.get(Case, appt.case_id)
        if case is not None and case.status == CaseStatus.READY:
            case.next_call_at = due_at
    audit.record(session, user_id=user_id, action="appointment.move", entity="appointment", entity_id=appt.id,
                 before=before, after={"interviewer_id": appt.interviewer_id, "due_at": appt.due_at.isoformat()},
                 note=note)
    session.flush()
    return appt


def move_all_appointments(session: Session, from_interviewer_id: int, to_interviewer_id: int | None, *,
                          user_id: int | None) -> int:
    """Every pending appointment of one interviewer to another (an interviewer off sick). Returns how many."""
    ids = session.scalars(select(Appointment.id).where(Appointment.interviewer_id == from_interviewer_id,
                                                        Appointment.status == AppointmentStatus.PENDING)).all()
    for aid in ids:
        move_appointment(session, aid, to_interviewer_id, user_id=user_id)
    return len(ids)


def pending_appointments(session: Session, study_id: int, *, interviewer_id: int | None = None,
                         enterprise_id: int | None = None, limit: int = 500) -> list[dict]:
    """Pending appointments by due time with case, enterprise, owner (numbers masked)."""
    q = (select(Appointment, Case.case_ref, Enterprise.name, User.display_name)
         .join(Case, Case.id == Appointment.case_id)
         .join(Enterprise, Enterprise.id == Case.enterprise_id)
         .outerjoin(User, User.id == Appointment.interviewer_id)
         .where(Appointment.study_id == study_id, Appointment.status == AppointmentStatus.PENDING)
         .order_by(Appointment.due_at).limit(limit))
    if interviewer_id is not None:
        q = q.where(Appointment.interviewer_id == interviewer_id)
    if enterprise_id is not None:
        q = q.where(Case.enterprise_id == enterprise_id)
    return [{"id": a.id, "case_id": a.case_id, "case_ref": ref, "enterprise": ename, "due_at": a.due_at,
             "interviewer_id": a.interviewer_id, "interviewer": who or "", "note": a.note or ""}
            for a, ref, ename, who in session.execute(q)]


def count_pending_appointments(session: Session, study_id: int) -> int:
    """How many appointments of the study are pending."""
    return int(session.scalar(select(func.count(Appointment.id)).where(
        Appointment.study_id == study_id, Appointment.status == AppointmentStatus.PENDING)) or 0)


# ------------------------------------------------------------------------------------------- reassignment


def reassign_case(session: Session, case_id: int, to_interviewer_id: int | None, *, user_id: int | None,
                  note: str | None = None) -> Case:
    """Reserve a case for one interviewer (None: anyone). Not while someone else is dialing it."""
    case = _case(session, case_id)
    if case.status == CaseStatus.CLAIMED and case.claimed_by_id != to_interviewer_id:
        raise SampleAdminError("case_dialing_other")
    if case.status == CaseStatus.FINAL:
        raise SampleAdminError("case_already_final")
    if to_interviewer_id is not None:
        _interviewer(session, to_interviewer_id)
    before = case.assigned_to_id
    case.assigned_to_id = to_interviewer_id
    audit.record(session, user_id=user_id, action="case.reassign", entity="case", entity_id=case.id,
                 before={"assigned_to_id": before}, after={"assigned_to_id": to_interviewer_id}, note=note)
    session.flush()
    return case


def assign_refusal_conversion(session: Session, study_id: int, interviewer_ids: Sequence[int], *,
                              user_id: int | None, case_ids: Iterable[int] | None = None) -> dict[int, list[int]]:
    """Hand soft refusals waiting for conversion to the chosen interviewers, in turn (round robin by case id).

    The chosen interviewers get the refusal-converter role flag (the scheduler gives such cases only to
    converters), and each case is reserved for one of them. ``case_ids`` limits the set; by default every
    open case marked for conversion in the study. Returns {interviewer id: [case ids]}.
    """
    if not interviewer_ids:
        raise SampleAdminError("choose_interviewer")
    users = [_interviewer(session, uid) for uid in dict.fromkeys(interviewer_ids)]
    for u in users:
        if not u.refusal_converter:
            u.refusal_converter = True
            audit.record(session, user_id=user_id, action="user.refusal_converter", entity="user", entity_id=u.id,
                         before={"refusal_converter": False}, after={"refusal_converter": True})
    q = select(Case).where(Case.study_id == study_id, Case.needs_converter.is_(True),
                           Case.status.in_([CaseStatus.READY, CaseStatus.STOPPED])).order_by(Case.id)
    if case_ids is not None:
        q = q.where(Case.id.in_(list(case_ids)))
    out: dict[int, list[int]] = {u.id: [] for u in users}
    for i, case in enumerate(session.scalars(q)):
        to = users[i % len(users)].id
        if case.assigned_to_id != to:
            audit.record(session, user_id=user_id, action="case.refusal_conversion", entity="case",
                         entity_id=case.id, before={"assigned_to_id": case.assigned_to_id},
                         after={"assigned_to_id": to})
            case.assigned_to_id = to
        out[to].append(case.id)
    session.flush()
    return out


# ------------------------------------------------------------------------------------------------ do-not-call


def add_do_not_call(session: Session, raw_numbers: Iterable[str], now: datetime, *, user_id: int | None,
                    reason: str = "supervisor") -> tuple[int, int, list[tuple[str, str]]]:
    """Normalise typed numbers and put them on the do-not-call list (their cases stop at once).

    Returns (numbers added, cases stopped, rejected [(masked input, reason)]). The audit entry carries masked
    numbers only.
    """
    good, bad = [], []
    for raw in raw_numbers:
        raw = str(raw).strip()
        if not raw:
            continue
        try:
            good.append(normalize_phone(raw).e164)
        except PhoneError as exc:
            bad.append((rejected_line_text(raw), exc.reason))  # keyed: the screen shows message(reason)
    if not good:
        if bad:
            return 0, 0, bad
        raise SampleAdminError("enter_a_number")
    stopped = add_to_do_not_call(session, good, reason=reason, source="supervisor", user_id=user_id, now=now)
    audit.record(session, user_id=user_id, action="dnc.add", entity="do_not_call", entity_id=len(set(good)),
                 before=None, after={"numbers": sorted(mask_phone(n) for n in set(good)), "cases_stopped": stopped},
                 note=reason)
    return len(set(good)), stopped, bad
