"""The CCSO audit in the web app (issue 17): an audit of one centre against a checklist, the people on it (auditors
and the centre's own users), evidence files per requirement, judgements per requirement and pass (document review
and on-site review, kept apart) and the non-conformities raised from "non-conforming" judgements.

Judgements are append-only: every judgement the auditor sends is a row with the client-generated ``client_id``
(unique: a resend of the same judgement is recognised and not stored twice) and the time it was made on the
device (``judged_at``). The current judgement of a requirement in a pass is the one made last on the device, so
a judgement synced late from an offline tablet never overwrites a newer one.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


def _enum(e: type[enum.Enum]) -> Enum:
    return Enum(e, native_enum=False, length=16, values_callable=lambda x: [m.value for m in x])


class AuditStatus(enum.StrEnum):
    DOCUMENTS = "documents"  # the centre submits evidence, the document review runs
    ONSITE = "onsite"  # the on-site review
    CLOSED = "closed"  # result given


class MemberKind(enum.StrEnum):
    AUDITOR = "auditor"
    CENTRE = "centre"


class AuditPass(enum.StrEnum):
    DOCUMENT = "document"
    ONSITE = "onsite"


class Verdict(enum.StrEnum):
    YES = "yes"  # conforming
    NO = "no"  # non-conforming
    NA = "na"  # not applicable


class Audit(Base):
    __tablename__ = "ccso_audits"

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_name: Mapped[str] = mapped_column(String(200))
    # The audited enterprise's id as CSAT studies know it (links category 六 to its satisfaction scores).
    enterprise_external_id: Mapped[str | None] = mapped_column(String(64))
    checklist_id: Mapped[str] = mapped_column(String(64))
    checklist_version: Mapped[int] = mapped_column(default=1)
    checklist: Mapped[dict[str, Any]]  # the validated checklist as loaded, kept with the audit
    status: Mapped[AuditStatus] = mapped_column(_enum(AuditStatus), default=AuditStatus.DOCUMENTS)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class AuditMember(Base):
    __tablename__ = "ccso_audit_members"
    __table_args__ = (UniqueConstraint("audit_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("ccso_audits.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[MemberKind] = mapped_column(_enum(MemberKind))


class EvidenceFile(Base):
    __tablename__ = "ccso_evidence_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("ccso_audits.id"), index=True)
    requirement_code: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(200))  # the client's file name, cleaned; shown, never a path
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)  # generated
    kind: Mapped[str] = mapped_column(String(16))  # sniffed from the content: pdf, png, jpg, xlsx, docx, csv, txt
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Judgement(Base):
    __tablename__ = "ccso_judgements"
    __table_args__ = (Index("ix_ccso_judgements_current", "audit_id", "review", "requirement_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("ccso_audits.id"))
    review: Mapped[AuditPass] = mapped_column(_enum(AuditPass))  # which pass: document or on-site
    requirement_code: Mapped[str] = mapped_column(String(32))
    verdict: Mapped[Verdict] = mapped_column(_enum(Verdict))
    note: Mapped[str | None] = mapped_column(Text)
    evidence_seen: Mapped[str | None] = mapped_column(Text)
    auditor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    judged_at: Mapped[datetime]  # when the auditor made it, on their device
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class NonConformity(Base):
    __tablename__ = "ccso_nonconformities"
    __table_args__ = (UniqueConstraint("audit_id", "requirement_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("ccso_audits.id"), index=True)
    requirement_code: Mapped[str] = mapped_column(String(32))
    judgement_id: Mapped[int | None] = mapped_column(ForeignKey("ccso_judgements.id"))
    description: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[date]
    raised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closing_note: Mapped[str | None] = mapped_column(Text)
