"""People who sign in, and their roles."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class Role(enum.StrEnum):
    INTERVIEWER = "interviewer"
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"
    ADMIN = "admin"
    AUDITOR = "auditor"  # CCSO audits: sees only the audits assigned to them
    CENTRE = "centre"  # an audited centre's own user: sees only its own audit


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]))
    is_active: Mapped[bool] = mapped_column(default=True)
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    extension: Mapped[str | None] = mapped_column(String(32))  # telephony endpoint of the interviewer's headset
    refusal_converter: Mapped[bool] = mapped_column(default=False)  # may receive soft refusals to convert
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"
