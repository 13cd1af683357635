"""The analyst's releases (frozen, named snapshots of a study's scored results) and the report/export jobs run
from the web."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class AnalysisRelease(Base):
    """A named, dated snapshot: the completes as they were (``responses``), what scoring made of them
    (``scored``) and the parameters (weights, bootstrap seed, replicate count). Pages, reports and exports of a
    release read these bytes, never the live tables, so every number of one release is the same number."""

    __tablename__ = "analysis_releases"
    __table_args__ = (UniqueConstraint("study_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    study_version: Mapped[int]
    n_completes: Mapped[int]
    n_enterprises: Mapped[int]
    n_boot: Mapped[int]
    seed: Mapped[int]
    weights: Mapped[dict[str, Any]]  # indicator weights used (and the industry aggregation)
    overall: Mapped[dict[str, Any]]  # the overall scores, for lists without unpacking the snapshot
    #: zlib-compressed pickles written by :mod:`cati.services.releases` only (never from user uploads).
    responses: Mapped[bytes] = mapped_column(LargeBinary)
    scored: Mapped[bytes] = mapped_column(LargeBinary)
    #: The previous wave (本企业去年): its enterprise scores, from another release (possibly of last year's study
    #: in this database) or an imported ``enterprise_scores.csv``; matched on enterprise_id.
    previous_label: Mapped[str | None] = mapped_column(String(200))
    previous: Mapped[bytes | None] = mapped_column(LargeBinary)


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class AnalysisJob(Base):
    """A report or export asked for in the web app, carried out by the job queue's worker."""

    __tablename__ = "analysis_jobs"
    __table_args__ = (Index("ix_analysis_jobs_study", "study_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    release_id: Mapped[int | None] = mapped_column(ForeignKey("analysis_releases.id", ondelete="SET NULL"))
    product: Mapped[str] = mapped_column(String(32))  # industry | enterprise | fieldwork | exports
    formats: Mapped[list[Any]]
    lang: Mapped[str] = mapped_column(String(8), default="zh-CN")
    enterprise_ids: Mapped[list[Any] | None]
    include_phone: Mapped[bool] = mapped_column(default=False)
    status: Mapped[JobStatus] = mapped_column(Enum(JobStatus, native_enum=False, length=16,
                                                   values_callable=lambda e: [m.value for m in e]),
                                              default=JobStatus.QUEUED)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=1)
    error: Mapped[str | None] = mapped_column(Text)
    files: Mapped[list[Any] | None]  # paths relative to the job's folder
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
