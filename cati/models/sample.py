"""Sample: cases (one sampled person of one enterprise), their phone numbers, and release batches."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cati.config import DEFAULT_CENTRE_TIMEZONE

from .base import Base, utcnow


class CaseStatus(enum.StrEnum):
    UNRELEASED = "unreleased"  # imported, its replicate not released yet
    READY = "ready"  # released; callable when its time comes
    CLAIMED = "claimed"  # held by one interviewer (dialing, talking or wrapping up)
    FINAL = "final"  # has its final disposition
    STOPPED = "stopped"  # a supervisor took it out of calling


def _enum(cls):
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("study_id", "case_ref"),
        # The scheduler's hot path: callable cases of a study by status and next call time.
        Index("ix_cases_sched", "study_id", "status", "next_call_at"),
        # Claim order within an enterprise: one index range per tried-parts mask (the contact model ranks the
        # masks), fewest attempts and longest waiting first inside it; its (enterprise_id, status) prefix also
        # serves the per-enterprise counts of the quota board.
        Index("ix_cases_claim_mask", "enterprise_id", "status", "tried_day_parts", "attempts", "next_call_at"),
        # The scheduler's list of the study's time zones: an index skip over (study, zone), not a scan of all cases.
        Index("ix_cases_study_timezone", "study_id", "timezone"),
        # Which tried-parts masks the study's open cases have (contact model): one index probe per mask.
        Index("ix_cases_study_mask", "study_id", "status", "tried_day_parts"),
        # next_case asks on every claim for the cases assigned to this interviewer: an index range of that
        # interviewer's few cases, not a filter over every due case of the study.
        Index("ix_cases_assigned", "assigned_to_id", "status", "next_call_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    case_ref: Mapped[str] = mapped_column(String(64))
    replicate: Mapped[int] = mapped_column(default=1)
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus), default=CaseStatus.UNRELEASED)
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_CENTRE_TIMEZONE)
    attempts: Mapped[int] = mapped_column(default=0)
    next_call_at: Mapped[datetime | None]
    last_called_at: Mapped[datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(String(8))
    tried_day_parts: Mapped[int] = mapped_column(default=0)  # bitmask over the study's day parts
    final_disposition: Mapped[str | None] = mapped_column(String(8))
    finalized_at: Mapped[datetime | None]
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[datetime | None]
    claim_expires_at: Mapped[datetime | None]
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # reassignment / refusal conversion
    needs_converter: Mapped[bool] = mapped_column(default=False)  # soft refusal → refusal-conversion interviewer
    # Never handed to this interviewer (their interview of the case was rejected by QC: someone else verifies).
    excluded_interviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)  # extra sample columns, for piping/analysis
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)

    phones: Mapped[list[CasePhone]] = relationship(
        back_populates="case", order_by="CasePhone.position", cascade="all, delete-orphan"
    )
    enterprise = relationship("Enterprise", lazy="joined")


class PhoneStatus(enum.StrEnum):
    OK = "ok"
    INVALID = "invalid"  # the network said it doesn't exist
    DNC = "dnc"  # on the do-not-call list


class CasePhone(Base):
    __tablename__ = "case_phones"
    # One number belongs to one case per study: the same person is never sampled twice.
    __table_args__ = (UniqueConstraint("study_id", "e164"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    position: Mapped[int] = mapped_column(default=1)
    e164: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(16), default="mobile")  # mobile | fixed
    timezone: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[PhoneStatus] = mapped_column(_enum(PhoneStatus), default=PhoneStatus.OK)
    attempts: Mapped[int] = mapped_column(default=0)

    case: Mapped[Case] = relationship(back_populates="phones")


class Replicate(Base):
    """A release batch: sample is released in replicates so it isn't burned on nearly full enterprises."""

    __tablename__ = "replicates"
    __table_args__ = (UniqueConstraint("study_id", "enterprise_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    number: Mapped[int]
    size: Mapped[int] = mapped_column(default=0)
    released_at: Mapped[datetime | None]
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    automatic: Mapped[bool] = mapped_column(default=False)
