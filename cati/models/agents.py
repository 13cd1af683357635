"""Interviewer (agent) states for the shift, their history, and failed sign-ins for rate limiting."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow
from .sample import _enum


class AgentStatus(enum.StrEnum):
    OFFLINE = "offline"
    READY = "ready"  # waiting for / previewing the next case
    PAUSED = "paused"  # on a break, in training… (reason in pause_reason)
    DIALING = "dialing"
    TALKING = "talking"
    WRAPUP = "wrapup"  # call over, coding the outcome


class AgentState(Base):
    """One row per interviewer: what they are doing now and since when (supervisors read it)."""

    __tablename__ = "agent_states"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    status: Mapped[AgentStatus] = mapped_column(_enum(AgentStatus), default=AgentStatus.OFFLINE)
    pause_reason: Mapped[str | None] = mapped_column(String(32))  # break | training | meeting | technical | other
    since_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The shift's counters are computed from call attempts and interviews since this moment (no duplicated
    # counters to drift): it is set at sign-in when the last shift ended or is older than 12 hours.
    shift_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    call_id: Mapped[str | None] = mapped_column(String(36))
    dial_mode: Mapped[str] = mapped_column(String(16), default="preview")  # preview | progressive
    # Presence: the open console's last heartbeat (None: no console has reported since the column exists).
    last_seen_at: Mapped[datetime | None]
    # Who paused the interviewer when a supervisor did (None: the interviewer's own pause or no pause): the pause
    # reaches the open console and is kept at the next sign-in.
    paused_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentEvent(Base):
    """Every state change (time in each state per shift, pause reasons) for supervisors' reports."""

    __tablename__ = "agent_events"
    __table_args__ = (Index("ix_agent_events_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[AgentStatus] = mapped_column(_enum(AgentStatus))
    reason: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginFailure(Base):
    """A failed sign-in (stored, so the rate limit holds across server processes and restarts)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key", "username", "address", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
