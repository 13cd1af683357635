"""Studies, industries and the enterprises whose hotlines are surveyed."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint, event, inspect
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.orm.base import NEVER_SET, NO_VALUE

from .base import Base, utcnow


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    version: Mapped[int] = mapped_column(default=1)
    title: Mapped[str] = mapped_column(String(255))
    definition: Mapped[dict[str, Any]]  # the validated study file as loaded (questions, scales, rules)
    source_file: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


@event.listens_for(Study.definition, "set", active_history=True)
def _definition_names_its_version(study: Study, value: Any, oldvalue: Any, _initiator: Any) -> None:
    """A study's version names its definition: every process caches what it compiles from a study (rules,
    questionnaire, scoring spec; ``services.runtime``) under (id, version), so replacing the definition of a
    stored study without a new version would leave those caches stale. Writers that choose the version
    themselves (an admin's rules edit, a newer study file) set it first; anyone else gets the next one."""
    if oldvalue in (NO_VALUE, NEVER_SET) or study.version is None or value == oldvalue:
        return
    if inspect(study).attrs.version.history.has_changes():
        return
    study.version += 1
    if isinstance(value, dict):
        value["version"] = study.version


class Industry(Base):
    __tablename__ = "industries"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # 行业标签, e.g. 银行
    name_en: Mapped[str | None] = mapped_column(String(64))


class EnterpriseStatus(enum.StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"  # a supervisor stopped calling it


class Enterprise(Base):
    __tablename__ = "enterprises"
    __table_args__ = (UniqueConstraint("study_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))  # the client's enterprise_id
    name: Mapped[str] = mapped_column(String(255))
    industry_id: Mapped[int] = mapped_column(ForeignKey("industries.id"), index=True)
    province: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    quota_target: Mapped[int] = mapped_column(default=20)
    # Live quota counters, changed in the same transaction as the interview they count: the scheduler reads
    # them on every claim, so they must not be recomputed from the interviews table each time.
    completes: Mapped[int] = mapped_column(default=0)
    in_progress: Mapped[int] = mapped_column(default=0)
    status: Mapped[EnterpriseStatus] = mapped_column(
        Enum(EnterpriseStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=EnterpriseStatus.ACTIVE,
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    industry: Mapped[Industry] = relationship(lazy="joined")

    @hybrid_property
    def quota_open(self) -> bool:
        """The enterprise quota has room: completes plus interviews in progress below the target. The one
        definition of the rule, in Python and (as ``Enterprise.quota_open``) in SQL."""
        return self.completes + self.in_progress < self.quota_target
