"""Interviewers' sign-in history: one row per sign-in, closed when they sign out, a supervisor signs them out,
their console goes silent (presence sweep) or they sign in again without signing out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cati.models import LoginSession


def closed(session: Session, user_id: int, now: datetime, how: str) -> int:
    """End the user's open sign-in(s); returns how many were open."""
    rows = session.scalars(select(LoginSession).where(LoginSession.user_id == user_id,
                                                      LoginSession.logout_at.is_(None))).all()
    for row in rows:
        row.logout_at, row.ended_by = now, how
    session.flush()
    return len(rows)


def opened(session: Session, user_id: int, now: datetime, address: str | None) -> LoginSession:
    closed(session, user_id, now, "new_login")
    row = LoginSession(user_id=user_id, login_at=now, address=(address or "")[:64] or None)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class SignIn:
    login_at: datetime
    logout_at: datetime | None
    ended_by: str | None
    address: str | None


def history(session: Session, user_id: int, limit: int = 30) -> list[SignIn]:
    """The latest sign-ins, newest first."""
    return [SignIn(r.login_at, r.logout_at, r.ended_by, r.address) for r in session.scalars(
        select(LoginSession).where(LoginSession.user_id == user_id)
        .order_by(LoginSession.login_at.desc(), LoginSession.id.desc()).limit(limit))]
