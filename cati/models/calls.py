"""Dials (call attempts) and appointments."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow
from .sample import _enum


class AttemptStatus(enum.StrEnum):
    REQUESTED = "requested"
    PLACED = "placed"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


class CallAttempt(Base):
    __tablename__ = "call_attempts"
    __table_args__ = (Index("ix_call_attempts_case", "case_id", "requested_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(36), unique=True)  # our correlation key (AMI ChannelId, etc.)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    phone_id: Mapped[int | None] = mapped_column(ForeignKey("case_phones.id"))
    interviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    backend: Mapped[str] = mapped_column(String(16))  # asterisk | twilio | simulated
    backend_call_id: Mapped[str | None] = mapped_column(String(64), index=True)  # Uniqueid / CallSid
    mode: Mapped[str] = mapped_column(String(16), default="preview")  # preview | progressive | simulated
    status: Mapped[AttemptStatus] = mapped_column(_enum(AttemptStatus), default=AttemptStatus.REQUESTED)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    placed_at: Mapped[datetime | None]
    ringing_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    dial_status: Mapped[str | None] = mapped_column(String(16))  # Dial() result: ANSWER, BUSY, NOANSWER, CANCEL…
    hangup_cause: Mapped[int | None]  # Q.850
    hangup_cause_text: Mapped[str | None] = mapped_column(String(64))
    originate_reason: Mapped[int | None]
    machine_detection: Mapped[str | None] = mapped_column(String(16))  # HUMAN | MACHINE | NOTSURE | HANGUP
    # AMD was asked for: until its verdict an answered call is "detecting" and no interview may start
    amd_requested: Mapped[bool] = mapped_column(default=False, server_default="0")
    amd_cause: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(8))  # AAPOR code
    outcome_source: Mapped[str | None] = mapped_column(String(16))  # auto | interviewer | system
    day_part: Mapped[str | None] = mapped_column(String(16))  # respondent-local part of the day when dialed
    # Paradata for the contact model: the case's tried-parts mask and last outcome before this dial, the
    # respondent-local weekday.
    tried_parts_before: Mapped[int | None]
    prior_outcome: Mapped[str | None] = mapped_column(String(8))
    local_weekday: Mapped[int | None]
    recording_uri: Mapped[str | None] = mapped_column(String(500))
    notes: Mapped[str | None] = mapped_column(String(2000))


class AppointmentStatus(enum.StrEnum):
    PENDING = "pending"
    KEPT = "kept"  # a call was made for it
    BROKEN = "broken"  # its time passed unserved; the case was re-queued
    CANCELLED = "cancelled"


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (Index("ix_appointments_due", "study_id", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    interviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: anyone may keep it
    due_at: Mapped[datetime]
    status: Mapped[AppointmentStatus] = mapped_column(_enum(AppointmentStatus), default=AppointmentStatus.PENDING)
    note: Mapped[str | None] = mapped_column(String(1000))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
