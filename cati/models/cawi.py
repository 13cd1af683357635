"""Web self-completion (CAWI): invitations (an open link per enterprise, personal one-response tokens), the web
side of a response (device key, resume key, time on each question, QC flags). The answers themselves live in the
same ``interviews``/``answers`` tables as CATI's: a web response is an :class:`Interview` with ``mode = "cawi"``."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow
from .sample import _enum


class InvitationKind(enum.StrEnum):
    OPEN = "open"  # one link per enterprise, posted for all its staff (many responses, duplicates limited)
    PERSONAL = "personal"  # one response per token


class Invitation(Base):
    __tablename__ = "cawi_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    kind: Mapped[InvitationKind] = mapped_column(_enum(InvitationKind))
    token: Mapped[str] = mapped_column(String(64), unique=True)  # the secret in the link (/s/<token>)
    label: Mapped[str | None] = mapped_column(String(200))  # who a personal token is for (a note, not shown)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    used_at: Mapped[datetime | None]  # a personal token: when its response started
    interview_id: Mapped[int | None] = mapped_column(ForeignKey("interviews.id"))  # a personal token's response
    duplicates_blocked: Mapped[int] = mapped_column(default=0)  # second responses refused on this device


class WebResponse(Base):
    """The web side of one CAWI interview."""

    __tablename__ = "cawi_responses"
    __table_args__ = (Index("ix_cawi_responses_invitation_device", "invitation_id", "device_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(ForeignKey("interviews.id"), unique=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("cawi_invitations.id"))
    device_key: Mapped[str] = mapped_column(String(64))  # the respondent's device cookie
    resume_key: Mapped[str] = mapped_column(String(64), unique=True)  # the resume cookie's secret
    page_code: Mapped[str | None] = mapped_column(String(32))  # the question last shown
    page_shown_at: Mapped[datetime | None]  # when it was shown (its answer's time on the question starts here)
    total_seconds: Mapped[float] = mapped_column(default=0.0)  # time on the questions, summed
    speeder: Mapped[bool] = mapped_column(default=False)
    straightliner: Mapped[bool] = mapped_column(default=False)


class QuestionTime(Base):
    """Seconds a web respondent spent on one question (every visit summed; a visit is capped, see the service)."""

    __tablename__ = "cawi_question_times"
    __table_args__ = (UniqueConstraint("interview_id", "question_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    interview_id: Mapped[int] = mapped_column(ForeignKey("interviews.id"))
    question_code: Mapped[str] = mapped_column(String(32))
    seconds: Mapped[float] = mapped_column(default=0.0)
    visits: Mapped[int] = mapped_column(default=0)
