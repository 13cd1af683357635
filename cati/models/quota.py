"""Quota cells beyond the enterprise quota: per industry and per sample variable (``quota.per_industry``,
``quota.by_variable`` in the study file)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class QuotaCell(Base):
    """One target of completes: e.g. industry 银行 (study-wide), gender 女 (study-wide), or gender 女 within one
    enterprise (``scope`` ``enterprise:<id>``) or one industry (``industry:<id>``).

    Like the enterprise quota it counts completes plus interviews in progress, with live counters changed in the
    transaction of the interview they count.
    """

    __tablename__ = "quota_cells"
    __table_args__ = (UniqueConstraint("study_id", "variable", "scope", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    variable: Mapped[str] = mapped_column(String(64))  # "industry" or a sample column
    scope: Mapped[str] = mapped_column(String(32), default="")  # "" (study), "enterprise:<id>", "industry:<id>"
    value: Mapped[str] = mapped_column(String(200))
    target: Mapped[int]
    completes: Mapped[int] = mapped_column(default=0)
    in_progress: Mapped[int] = mapped_column(default=0)


class CaseQuotaCell(Base):
    """Which quota cells a case counts in (linked when the case is imported)."""

    __tablename__ = "case_quota_cells"
    __table_args__ = (Index("ix_case_quota_cells_cell", "cell_id"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("quota_cells.id"), primary_key=True)
