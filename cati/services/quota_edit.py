"""Quota targets changed from the screens: one enterprise's target, and a quota cell's target (a value of a
quota dimension of the study file, e.g. industry 银行 study-wide, or gender 女 within each enterprise).

Both change what is enforced, not a copy: an enterprise's ``quota_target`` is what the scheduler and the start of
an interview check; a cell's target lives in the study definition (cells are re-synced to it on every import and
new version), so a new study version is written and the cells follow through :func:`quotas.link_quota_cells`.
A target lowered to what is already done closes the open cases it covers (4.80 quota filled); a target raised
reopens the cases an earlier fill had closed (unless another full quota keeps them closed). Audited.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cati.i18n import KeyedError
from cati.models import Case, Enterprise, EnterpriseStatus, Study

from . import audit
from .quotas import _reopen, close_as_quota_filled, close_filled_cells, link_quota_cells


class QuotaEditError(KeyedError):
    """A target that cannot be set."""


def _target(raw) -> int:
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        raise QuotaEditError("quota_not_integer", value=raw) from None
    if value < 0 or value > 100_000:
        raise QuotaEditError("quota_out_of_range", value=value)
    return value


@dataclass(frozen=True)
class TargetChange:
    before: int
    after: int
    closed: int
    reopened: int


def set_enterprise_target(session: Session, study: Study, enterprise_id: int, raw, now: datetime, *,
                          user_id: int | None) -> TargetChange:
    target = _target(raw)
    if target < 1:
        raise QuotaEditError("quota_out_of_range", value=target)
    ent = session.get(Enterprise, enterprise_id)
    if ent is None or ent.study_id != study.id:
        raise QuotaEditError("enterprise_not_found", id=enterprise_id)
    before = ent.quota_target
    closed = reopened = 0
    if target != before:
        ent.quota_target = target
        session.flush()
        if not ent.quota_open:
            closed = close_as_quota_filled(session, Case.enterprise_id == ent.id, now)
        elif ent.status == EnterpriseStatus.ACTIVE:
            reopened = len(_reopen(session, select(Case.id).where(Case.enterprise_id == ent.id), now))
        audit.record(session, user_id=user_id, action="enterprise.quota", entity="enterprise", entity_id=ent.id,
                     before={"quota_target": before}, after={"quota_target": target, "closed": closed,
                                                             "reopened": reopened})
    session.flush()
    return TargetChange(before, target, closed, reopened)


@dataclass(frozen=True)
class CellTarget:
    variable: str
    per: str
    value: str
    target: int


def cell_targets(study: Study) -> list[CellTarget]:
    """Every (variable, per, value) target of the study file's quota cells."""
    q = study.definition.get("quota") or {}
    out = [CellTarget("industry", "study", str(k), int(v)) for k, v in (q.get("per_industry") or {}).items()]
    for vq in q.get("by_variable") or []:
        if (vq.get("source") or "sample") != "sample":
            continue
        for k, v in (vq.get("targets") or {}).items():
            out.append(CellTarget(str(vq["variable"]), vq.get("per") or "study", str(k), int(v)))
    return out


def set_cell_target(session: Session, study: Study, variable: str, per: str, value: str, raw, now: datetime, *,
                    user_id: int | None) -> TargetChange:
    """A new study version with this cell target; the cells, and the cases they close or reopen, follow."""
    from cati.study.loader import StudyError, validate_study_mapping

    target = _target(raw)
    new = copy.deepcopy(study.definition)
    q = new.setdefault("quota", {})
    before = None
    if variable == "industry" and per == "study" and value in (q.get("per_industry") or {}):
        before = int(q["per_industry"][value])
        if target < 1:
            raise QuotaEditError("quota_out_of_range", value=target)
        q["per_industry"][value] = target
    else:
        for vq in q.get("by_variable") or []:
            if (str(vq.get("variable")) == variable and (vq.get("per") or "study") == per
                    and (vq.get("source") or "sample") == "sample"):
                for k in vq.get("targets") or {}:
                    if str(k) == value:
                        before = int(vq["targets"][k])
                        vq["targets"][k] = target
    if before is None:
        raise QuotaEditError("quota_cell_unknown", variable=variable, value=value)
    if before == target:
        return TargetChange(before, target, 0, 0)
    try:
        validate_study_mapping(new, source=f"study {study.code}")
    except StudyError as err:
        raise QuotaEditError("quota_cell_invalid", err=str(err)) from None
    study.version += 1
    new["version"] = study.version
    study.definition = new
    session.flush()
    link_quota_cells(session, study, now)  # cells take the new target; cases an old fill closed reopen
    closed = close_filled_cells(session, study, now)
    audit.record(session, user_id=user_id, action="quota.cell", entity="study", entity_id=study.id,
                 before={"variable": variable, "per": per, "value": value, "target": before},
                 after={"target": target, "version": study.version, "closed": closed})
    session.flush()
    return TargetChange(before, target, closed, 0)
