"""The do-not-call list as a supervisor manages it: a page of entries (numbers masked, found by the digits a
supervisor types), removing an entry with a reason, and every entry for export.

Adding numbers is :func:`cati.services.sample_admin.add_do_not_call` (it stops the cases at once). Removing an
entry makes its number callable again (the case's phone goes back to ``ok``); the cases it stopped stay stopped
until a supervisor resumes them, since a number is removed for a reason that need not mean "call them now".
Every removal is audited with the masked number and the reason; an export is audited too (it holds full numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cati.i18n import KeyedError
from cati.models import CasePhone, DoNotCall, PhoneStatus, User

from . import audit
from .case_browser import phone_digits
from .phones import PhoneError, mask_phone, normalize_phone

PAGE_SIZE = 50


class DncError(KeyedError):
    """A refused change of the do-not-call list."""


@dataclass(frozen=True)
class DncRow:
    id: int
    masked: str
    e164: str  # the full number: only for the export, never rendered in the list
    reason: str
    source: str
    added_by: str
    added_at: datetime
    cases: int  # cases of the study holding this number


def _search(q: str | None):
    """The condition for the digits typed (a whole number: exact; otherwise 4+ digits anywhere), or None."""
    if not q:
        return None
    try:
        return DoNotCall.e164 == normalize_phone(q).e164
    except PhoneError:
        digits = phone_digits(q)
        if len(digits) < 4:
            raise DncError("phone_filter_short") from None
        return DoNotCall.e164.like(f"%{digits}%")


def _query(q: str | None):
    stmt = (select(DoNotCall, User.display_name).outerjoin(User, User.id == DoNotCall.added_by_id))
    cond = _search(q)
    return stmt if cond is None else stmt.where(cond)


def _row(entry: DoNotCall, who: str | None, cases: int = 0) -> DncRow:
    return DncRow(id=entry.id, masked=mask_phone(entry.e164), e164=entry.e164, reason=entry.reason or "",
                  source=entry.source, added_by=who or "", added_at=entry.added_at, cases=cases)


def page(session: Session, q: str | None = None, *, before: int | None = None, study_id: int | None = None,
         limit: int = PAGE_SIZE) -> tuple[list[DncRow], int, int | None]:
    """Newest entries first: (rows, total matching, id to continue before or None); ``cases`` counts the cases
    of ``study_id`` holding each number (through the (study, e164) index)."""
    stmt = _query(q)
    if before is not None:
        stmt = stmt.where(DoNotCall.id < before)
    found = session.execute(stmt.order_by(DoNotCall.id.desc()).limit(limit + 1)).all()
    more = len(found) > limit
    found = found[:limit]
    cond = _search(q)
    total = session.scalar(select(func.count(DoNotCall.id)).where(*(() if cond is None else (cond,))))
    numbers = [e.e164 for e, _ in found]
    held = dict(session.execute(select(CasePhone.e164, func.count(CasePhone.case_id.distinct()))
                                .where(CasePhone.study_id == study_id, CasePhone.e164.in_(numbers))
                                .group_by(CasePhone.e164)).all()) if numbers and study_id is not None else {}
    rows = [_row(e, who, held.get(e.e164, 0)) for e, who in found]
    return rows, total or 0, rows[-1].id if more and rows else None


def all_rows(session: Session, q: str | None = None) -> list[DncRow]:
    return [_row(e, who) for e, who in session.execute(_query(q).order_by(DoNotCall.id))]


def remove(session: Session, entry_id: int, reason: str, now: datetime, *, user_id: int | None) -> int:
    """Take one number off the list (a reason is required); its phones become callable. Returns how many case
    phones were released; the cases it stopped stay stopped."""
    reason = (reason or "").strip()
    if not reason:
        raise DncError("reason_required")
    entry = session.get(DoNotCall, entry_id)
    if entry is None:
        raise DncError("dnc_entry_not_found", id=entry_id)
    phones = session.execute(update(CasePhone).where(CasePhone.e164 == entry.e164,
                                                     CasePhone.status == PhoneStatus.DNC)
                             .values(status=PhoneStatus.OK).execution_options(synchronize_session=False)).rowcount
    audit.record(session, user_id=user_id, action="dnc.remove", entity="do_not_call", entity_id=entry.id,
                 before={"number": mask_phone(entry.e164), "reason": entry.reason, "source": entry.source,
                         "added_at": entry.added_at.isoformat()},
                 after={"removed_at": now.isoformat(), "phones_callable": phones}, note=reason[:1000])
    session.delete(entry)
    session.flush()
    return phones


def record_export(session: Session, count: int, fmt: str, q: str | None, *, user_id: int | None) -> None:
    audit.record(session, user_id=user_id, action="dnc.export", entity="do_not_call", entity_id=count,
                 after={"format": fmt, "rows": count, "search": bool(q)})
