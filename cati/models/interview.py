"""Interviews and their answers, with every revision kept."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow
from .sample import _enum


class InterviewStatus(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    PARTIAL = "partial"  # broken off; answers kept, may resume
    TERMINATED = "terminated"  # screened out or refused at consent


class QCStatus(enum.StrEnum):
    UNREVIEWED = "unreviewed"
    VERIFIED = "verified"
    REJECTED = "rejected"


class Interview(Base):
    __tablename__ = "interviews"
    __table_args__ = (Index("ix_interviews_study_status", "study_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    interviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("call_attempts.id"))
    status: Mapped[InterviewStatus] = mapped_column(_enum(InterviewStatus), default=InterviewStatus.IN_PROGRESS)
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    current_question: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    disposition: Mapped[str | None] = mapped_column(String(8))
    qc_status: Mapped[QCStatus] = mapped_column(_enum(QCStatus), default=QCStatus.UNREVIEWED)
    qc_note: Mapped[str | None] = mapped_column(String(2000))
    # How the respondent answered: "cati" (an interviewer keyed it) or "cawi" (the respondent on the web).
    mode: Mapped[str] = mapped_column(String(8), default="cati", server_default="cati")

    answers: Mapped[list[Answer]] = relationship(back_populates="interview", cascade="all, delete-orphan")


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("interview_id", "question_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(ForeignKey("interviews.id"))
    question_code: Mapped[str] = mapped_column(String(32))
    value_code: Mapped[int | None]  # scale code (1–5, 8, 9, …) or number
    value_text: Mapped[str | None] = mapped_column(Text)  # open answers
    revision: Mapped[int] = mapped_column(default=1)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    interview: Mapped[Interview] = relationship(back_populates="answers")


class AnswerRevision(Base):
    """Every earlier value of an answer: who changed it, when, from what to what."""

    __tablename__ = "answer_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    answer_id: Mapped[int] = mapped_column(ForeignKey("answers.id"), index=True)
    interview_id: Mapped[int] = mapped_column(ForeignKey("interviews.id"), index=True)
    question_code: Mapped[str] = mapped_column(String(32))
    revision: Mapped[int]
    old_code: Mapped[int | None]
    old_text: Mapped[str | None] = mapped_column(Text)
    new_code: Mapped[int | None]
    new_text: Mapped[str | None] = mapped_column(Text)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(500))
