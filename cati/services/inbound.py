"""Inbound callbacks: a respondent calls the centre back; the interviewer types the number they call from and gets
their case.

The number is normalised like the sample's (:func:`cati.services.phones.normalize_phone`: spaces, dashes, +86, a
trunk 0 and full-width digits all work) and found by the (study, e164) index. A caller ID that does not normalise
(some exchanges drop digits) is matched by its last digits (7 at least); several cases may then match, and the
interviewer is told to ask for the whole number. The case is claimed through :func:`scheduling.claim_specific`
(the scheduler's own claim), and refused with a clear reason when it must not be called: its number is on the
do-not-call list, it is final, stopped, held by someone else, not yet released, its enterprise is stopped, or QC
keeps it from this interviewer. A pending appointment of the case is served by the callback. Audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cati.i18n import KeyedError
from cati.models import (
    Appointment,
    AppointmentStatus,
    Case,
    CasePhone,
    CaseStatus,
    DoNotCall,
    Enterprise,
    EnterpriseStatus,
    PhoneStatus,
    Study,
)

from . import audit
from .case_browser import phone_digits
from .phones import PhoneError, mask_phone, normalize_phone
from .scheduling import claim_specific, rules_for, serve_appointment

MIN_SUFFIX = 7


class InboundError(KeyedError):
    """No case for this callback, or one that must not be called; ``key`` says which."""


@dataclass(frozen=True)
class InboundClaim:
    case_id: int
    case_ref: str
    number: str  # masked
    appointment_id: int | None


def find_cases(session: Session, study_id: int, raw: str) -> tuple[list[tuple[int, str]], str | None]:
    """(case id, e164) of the numbers matching what was typed, and the normalised number (None if it did not
    normalise)."""
    raw = (raw or "").strip()
    if not raw:
        raise InboundError("enter_a_number")
    try:
        e164 = normalize_phone(raw).e164
    except PhoneError:
        e164 = None
    if e164 is not None:
        rows = session.execute(select(CasePhone.case_id, CasePhone.e164)
                               .where(CasePhone.study_id == study_id, CasePhone.e164 == e164)).all()
        return [tuple(r) for r in rows], e164
    digits = phone_digits(raw)
    if len(digits) < MIN_SUFFIX:
        raise InboundError("inbound_number_short", n=MIN_SUFFIX)
    rows = session.execute(select(CasePhone.case_id, CasePhone.e164)
                           .where(CasePhone.study_id == study_id, CasePhone.e164.like(f"%{digits}"))
                           .limit(20)).all()
    return [tuple(r) for r in rows], None


def claim_callback(session: Session, study: Study, interviewer_id: int, raw: str, now: datetime, *,
                   held_case_id: int | None = None) -> InboundClaim:
    """Claim the case of the number a respondent calls from, for this interviewer."""
    if held_case_id is not None:
        raise InboundError("inbound_finish_current")
    found, e164 = find_cases(session, study.id, raw)
    if not found:
        raise InboundError("inbound_no_match", number=mask_phone(e164 or raw))
    if len({cid for cid, _ in found}) > 1:
        raise InboundError("inbound_several", n=len({cid for cid, _ in found}),
                           numbers=", ".join(sorted({mask_phone(n) for _, n in found})))
    case_id, number = found[0]
    case = session.get(Case, case_id)
    masked = mask_phone(number)
    phone = next(p for p in case.phones if p.e164 == number)
    if phone.status == PhoneStatus.DNC or session.scalar(select(DoNotCall.id).where(DoNotCall.e164 == number)):
        raise InboundError("inbound_dnc", number=masked)
    if case.status == CaseStatus.FINAL:
        raise InboundError("inbound_final", ref=case.case_ref, code=case.final_disposition or "")
    if case.status == CaseStatus.STOPPED:
        raise InboundError("inbound_stopped", ref=case.case_ref)
    if case.status == CaseStatus.UNRELEASED:
        raise InboundError("inbound_unreleased", ref=case.case_ref)
    if case.status == CaseStatus.CLAIMED:
        if case.claimed_by_id != interviewer_id:
            raise InboundError("inbound_held", ref=case.case_ref)
    if case.excluded_interviewer_id == interviewer_id:
        raise InboundError("inbound_excluded", ref=case.case_ref)
    if session.get(Enterprise, case.enterprise_id).status == EnterpriseStatus.STOPPED:
        raise InboundError("inbound_enterprise_stopped", ref=case.case_ref)
    if case.status == CaseStatus.READY and not claim_specific(session, case.id, interviewer_id, now,
                                                              rules_for(study)):
        raise InboundError("inbound_held", ref=case.case_ref)
    appt_id = session.scalar(select(Appointment.id).where(Appointment.case_id == case.id,
                                                          Appointment.status == AppointmentStatus.PENDING)
                             .order_by(Appointment.due_at).limit(1))
    if appt_id is not None:
        serve_appointment(session, appt_id)
    audit.record(session, user_id=interviewer_id, action="case.inbound_callback", entity="case", entity_id=case.id,
                 after={"number": masked, "appointment_id": appt_id})
    session.expire(case)
    return InboundClaim(case.id, case.case_ref, masked, appt_id)
