"""Installing a validated study file into the database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cati.models import Study

DEFAULT_STUDY_FILE = Path(__file__).resolve().parents[2] / "config" / "studies" / "csat_contact_center.yaml"


def default_study_file() -> Path:
    """The shipped default study (config/studies/csat_contact_center.yaml)."""
    return DEFAULT_STUDY_FILE


def install_study(session: Session, path: str | Path) -> Study:
    """Validate the study file and create its row, or update it when the file's version is newer.

    Raises the loader's ``StudyError`` (a ``ValueError``) listing every problem of a broken file.
    """
    from cati.study.loader import load_study

    path = Path(path)
    spec = load_study(path)
    title = spec.title.get(spec.default_language) or next(iter(spec.title.values()))
    row = session.scalar(select(Study).where(Study.code == spec.id))
    if row is None:
        row = Study(code=spec.id, version=spec.version, title=title, definition=spec.raw, source_file=str(path))
        session.add(row)
    elif spec.version >= row.version:
        row.version, row.title, row.definition, row.source_file = spec.version, title, spec.raw, str(path)
    session.flush()
    # Industry / sample-variable quotas added to a study that already has sample: its cases join their cells now
    # (new imports link their own cases).
    from .quotas import link_quota_cells

    link_quota_cells(session, row, datetime.now(UTC))
    return row


def get_study(session: Session, code: str | None = None) -> Study:
    """The study with this code, or the only/first active one."""
    query = select(Study).where(Study.is_active.is_(True)).order_by(Study.id)
    if code:
        query = select(Study).where(Study.code == code)
    study = session.scalars(query).first()
    if study is None:
        raise LookupError(f"no study {code!r}; run `cati init`" if code else "no study yet; run `cati init`")
    return study


def study_spec(study: Study):
    """The validated study model (questions, scales, rules) of a stored study: its runtime's spec."""
    from .runtime import runtime_for

    return runtime_for(study).spec
