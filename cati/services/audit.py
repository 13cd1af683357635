"""The audit trail: every after-the-fact change of an answer or disposition, and every supervisor action."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from cati.models import AuditLog


def record(
    session: Session,
    *,
    user_id: int | None,
    action: str,
    entity: str,
    entity_id: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str | None = None,
) -> AuditLog:
    entry = AuditLog(
        user_id=user_id, action=action, entity=entity, entity_id=str(entity_id), before=before, after=after,
        note=note,
    )
    session.add(entry)
    session.flush()
    return entry
