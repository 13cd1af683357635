"""Supervisor messages to interviewers (one-to-one or broadcast) with their read receipts, the interviewers'
sign-in history, and supervisors' QC reviews of interviews (scores from listening, back-check results)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class SupervisorMessage(Base):
    """A message from a supervisor: to one interviewer (``recipient_id``) or to every interviewer (None)."""

    __tablename__ = "supervisor_messages"
    __table_args__ = (Index("ix_supervisor_messages_recipient", "recipient_id", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: broadcast
    body: Mapped[str] = mapped_column(String(1000))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class MessageReceipt(Base):
    """One interviewer's receipt of one message: when their console first showed it, and when they read it."""

    __tablename__ = "message_receipts"

    message_id: Mapped[int] = mapped_column(ForeignKey("supervisor_messages.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    shown_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]


class LoginSession(Base):
    """One sign-in of a user until it ended (signed out, signed out by a supervisor, or gone silent)."""

    __tablename__ = "login_sessions"
    __table_args__ = (Index("ix_login_sessions_user", "user_id", "login_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    login_at: Mapped[datetime] = mapped_column(default=utcnow)
    logout_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(16))  # logout | supervisor | absent | new_login
    address: Mapped[str | None] = mapped_column(String(64))


class QCReview(Base):
    """A supervisor's review of one interview: criterion scores (1–5) from listening to it, and/or the result of a
    back-check call to the respondent."""

    __tablename__ = "qc_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(ForeignKey("interviews.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)  # criterion → 1..5
    score: Mapped[float | None]  # 0–100: the mean criterion score on the 20–100 scale
    backcheck: Mapped[str | None] = mapped_column(String(16))  # confirmed | not_reached | denied | discrepancy
    note: Mapped[str | None] = mapped_column(String(1000))
    at: Mapped[datetime] = mapped_column(default=utcnow)
