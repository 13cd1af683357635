"""Quotas beyond the enterprise quota: per industry and per sample variable (study file ``quota.per_industry`` and
``quota.by_variable`` with ``source: sample``).

Every target is a *quota cell* (``QuotaCell``): industry 银行 study-wide, gender 女 study-wide, gender 女 within
one enterprise (``per: enterprise``) or within one industry (``per: industry``). A case is linked to the cells its
values fall in when it is imported; values without a target are not limited. A cell counts completes plus
interviews in progress, exactly like the enterprise quota:

- ``reserve_cells`` takes a slot in every cell of the case when an interview starts (a conditional update per
  cell: the hard guarantee that no interview beyond a cell's target is started);
- the scheduler offers no case with a cell already full or reserved (``open_cells_clause``);
- ``release_cells`` frees the slots when the interview ends, counts a complete, and closes the released cases of
  a cell that has just filled (4.80, quota filled), as ``close_quota`` does for an enterprise;
- ``unfill_cells`` undoes a complete rejected by QC and reopens the cell's 4.80 cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from cati.models import (
    Appointment,
    AppointmentStatus,
    Case,
    CaseQuotaCell,
    CaseStatus,
    Enterprise,
    EnterpriseStatus,
    Industry,
    Interview,
    InterviewStatus,
    QuotaCell,
    Study,
)

from .dispositions import catalogue
from .runtime import runtime_for

# Enterprise columns a quota can be on; any other variable is a sample column (the case's attributes).
ENTERPRISE_VARIABLES = ("industry", "province", "region")


@dataclass(frozen=True)
class CellSpec:
    """One quota dimension of the study file: targets by the value of ``variable``, within ``per``."""

    variable: str
    per: str  # study | enterprise | industry
    targets: dict[str, int]


def cell_specs(study: Study) -> list[CellSpec]:
    """The study's quota dimensions beyond the enterprise quota (empty for most studies)."""
    quota = runtime_for(study).quota
    specs = []
    if quota.per_industry:
        specs.append(CellSpec("industry", "study", {str(k): int(v) for k, v in quota.per_industry.items()}))
    for vq in quota.by_variable:
        if vq.source != "sample":
            # The loader rejects these; a definition stored by an older version must not be half-applied.
            raise ValueError(f"quota on answer '{vq.variable}' is not supported (sample variables only)")
        specs.append(CellSpec(str(vq.variable), vq.per, {str(k): int(v) for k, v in vq.targets.items()}))
    return specs


def has_cells(study: Study) -> bool:
    quota = runtime_for(study).quota
    return bool(quota.per_industry or quota.by_variable)


def _value(variable: str, industry: str, province: str | None, region: str | None, attributes: dict) -> str | None:
    if variable == "industry":
        raw = industry
    elif variable == "province":
        raw = province
    elif variable == "region":
        raw = region
    else:
        raw = (attributes or {}).get(variable)
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def _scope(per: str, enterprise_id: int, industry_id: int) -> str:
    return {"study": "", "enterprise": f"enterprise:{enterprise_id}", "industry": f"industry:{industry_id}"}[per]


def link_quota_cells(session: Session, study: Study, now: datetime) -> int:
    """Link the study's cases that have no cell yet to the quota cells their values fall in, creating cells as
    needed; a case linked to a cell that is already full is closed at once (4.80). Returns the links made.

    Runs after every import and when a study version is installed (a no-op for studies without such quotas);
    existing cells first take the study's current targets (``_apply_targets``). Cases whose values have no target
    stay unlinked and are looked at again next time; that is a read of those cases, not of the study.
    """
    specs = cell_specs(study)
    cells = {(c.variable, c.scope, c.value): c for c in
             session.scalars(select(QuotaCell).where(QuotaCell.study_id == study.id))}
    _apply_targets(session, specs, cells, now)  # with no specs left, every remaining cell goes
    if not specs:
        return 0
    linked = exists().where(CaseQuotaCell.case_id == Case.id)
    rows = session.execute(
        select(Case.id, Case.enterprise_id, Case.attributes, Enterprise.industry_id, Industry.name,
               Enterprise.province, Enterprise.region)
        .join(Enterprise, Enterprise.id == Case.enterprise_id).join(Industry, Industry.id == Enterprise.industry_id)
        .where(Case.study_id == study.id, ~linked)
    ).all()
    links: list[dict[str, int]] = []
    created: list[QuotaCell] = []
    for case_id, enterprise_id, attributes, industry_id, industry, province, region in rows:
        for spec in specs:
            value = _value(spec.variable, industry, province, region, attributes)
            if value is None or value not in spec.targets:
                continue
            key = (spec.variable, _scope(spec.per, enterprise_id, industry_id), value)
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = QuotaCell(study_id=study.id, variable=key[0], scope=key[1], value=value,
                                              target=spec.targets[value], completes=0, in_progress=0)
                session.add(cell)
                session.flush()
                created.append(cell)
            links.append({"case_id": case_id, "cell_id": cell.id})
    for start in range(0, len(links), 5000):
        session.execute(insert(CaseQuotaCell.__table__), links[start:start + 5000])
    for cell in created:
        # A quota added during fieldwork starts from what its cases already have: completes, and interviews
        # running now (they release their slot in it when they end).
        in_cell = select(CaseQuotaCell.case_id).where(CaseQuotaCell.cell_id == cell.id)
        cell.completes = session.scalar(select(func.count()).select_from(Case).where(
            Case.id.in_(in_cell), Case.final_disposition == catalogue().code_for("complete"))) or 0
        cell.in_progress = session.scalar(select(func.count()).select_from(Interview).where(
            Interview.case_id.in_(in_cell), Interview.status == InterviewStatus.IN_PROGRESS)) or 0
    session.flush()
    close_filled_cells(session, study, now)
    return len(links)


def close_filled_cells(session: Session, study: Study, now: datetime) -> int:
    """Close (4.80) the released open cases of every cell that already has all its completes: cases that became
    callable after their cell filled (a later import, a replicate released later)."""
    if not has_cells(study):
        return 0
    filled = session.scalars(select(QuotaCell.id).where(QuotaCell.study_id == study.id,
                                                        QuotaCell.completes >= QuotaCell.target))
    return sum(close_cell(session, cell_id, now) for cell_id in list(filled))


def open_cells_clause():
    """SQL condition on ``Case``: none of the case's quota cells is full or fully reserved (for the scheduler)."""
    return ~exists().where(CaseQuotaCell.case_id == Case.id, QuotaCell.id == CaseQuotaCell.cell_id,
                           QuotaCell.completes + QuotaCell.in_progress >= QuotaCell.target)


def in_filled_cell_clause():
    """SQL condition on ``Case``: one of the case's quota cells has all its completes (the case stays closed)."""
    return exists().where(CaseQuotaCell.case_id == Case.id, QuotaCell.id == CaseQuotaCell.cell_id,
                          QuotaCell.completes >= QuotaCell.target)


def _cell_ids(session: Session, case_id: int) -> list[int]:
    return list(session.scalars(select(CaseQuotaCell.cell_id).where(CaseQuotaCell.case_id == case_id)
                                .order_by(CaseQuotaCell.cell_id)))


def reserve_cells(session: Session, case_id: int) -> int | None:
    """Take an interview slot in every quota cell of the case. Returns None on success, else the id of the first
    full cell (then no slot is kept in any cell)."""
    taken: list[int] = []
    for cell_id in _cell_ids(session, case_id):
        result = session.execute(
            update(QuotaCell)
            .where(QuotaCell.id == cell_id, QuotaCell.completes + QuotaCell.in_progress < QuotaCell.target)
            .values(in_progress=QuotaCell.in_progress + 1)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            if taken:
                session.execute(update(QuotaCell).where(QuotaCell.id.in_(taken))
                                .values(in_progress=QuotaCell.in_progress - 1)
                                .execution_options(synchronize_session=False))
            return cell_id
        taken.append(cell_id)
    return None


def release_cells(session: Session, case_id: int, *, completed: bool, now: datetime) -> None:
    """The case's interview ended: free its slots; a complete counts, and a cell it fills closes its cases."""
    ids = _cell_ids(session, case_id)
    if not ids:
        return
    values = {"in_progress": QuotaCell.in_progress - 1}
    if completed:
        values["completes"] = QuotaCell.completes + 1
    # One row at a time in id order, as reserve_cells takes them: two transactions never wait on each other's
    # cells in opposite orders (a deadlock on PostgreSQL).
    for cell_id in ids:
        session.execute(update(QuotaCell).where(QuotaCell.id == cell_id, QuotaCell.in_progress > 0).values(**values)
                        .execution_options(synchronize_session=False))
    if completed:
        full = session.scalars(select(QuotaCell.id).where(QuotaCell.id.in_(ids),
                                                          QuotaCell.completes >= QuotaCell.target))
        for cell_id in list(full):
            close_cell(session, cell_id, now)


def close_cell(session: Session, cell_id: int, now: datetime) -> int:
    """A full cell stops: its cases are closed as for a full enterprise (``close_as_quota_filled``)."""
    return close_as_quota_filled(
        session, Case.id.in_(select(CaseQuotaCell.case_id).where(CaseQuotaCell.cell_id == cell_id)), now)


def close_as_quota_filled(session: Session, which, now: datetime) -> int:
    """The released, unclaimed open cases matching ``which`` (a SQL condition on ``Case``) get 4.80 (quota filled)
    and their pending appointments are cancelled; returns how many closed. Used for a full enterprise and a full
    quota cell.

    Claimed cases get 4.80 when their holder codes the call (``record_outcome``); unreleased replicates were
    never part of the fieldwork sample and stay unreleased (they don't enter the response rates).
    """
    quota_full = catalogue().code_for("quota_full")
    result = session.execute(
        update(Case).where(which, Case.status == CaseStatus.READY)
        .values(status=CaseStatus.FINAL, final_disposition=quota_full, finalized_at=now, next_call_at=None)
        .execution_options(synchronize_session=False))
    session.execute(
        update(Appointment)
        .where(Appointment.case_id.in_(select(Case.id).where(which, Case.final_disposition == quota_full)),
               Appointment.status == AppointmentStatus.PENDING)
        .values(status=AppointmentStatus.CANCELLED)
        .execution_options(synchronize_session=False))
    return result.rowcount


def unfill_cells(session: Session, case_id: int, now: datetime) -> list[int]:
    """A complete of this case was rejected (QC): it stops counting in its cells, and the cells' cases closed as
    quota filled (4.80) whose enterprise quota is open and whose other cells are open become callable again.
    Returns the reopened case ids."""
    ids = _cell_ids(session, case_id)
    if not ids:
        return []
    for cell_id in ids:  # id order, as reserve_cells
        session.execute(update(QuotaCell).where(QuotaCell.id == cell_id, QuotaCell.completes > 0)
                        .values(completes=QuotaCell.completes - 1).execution_options(synchronize_session=False))
    return _reopen(session, select(CaseQuotaCell.case_id).where(CaseQuotaCell.cell_id.in_(ids)), now)


def _reopen(session: Session, case_ids, now: datetime) -> list[int]:
    """Of these cases, those closed as quota filled (4.80) whose enterprise quota is open and none of whose cells
    is filled become callable again. Returns their ids."""
    candidates = (
        select(Case.id).join(Enterprise, Enterprise.id == Case.enterprise_id)
        .where(Case.id.in_(case_ids), Case.status == CaseStatus.FINAL,
               Case.final_disposition == catalogue().code_for("quota_full"),
               Enterprise.status == EnterpriseStatus.ACTIVE,
               Enterprise.quota_open, ~in_filled_cell_clause())
    )
    reopened = list(session.scalars(candidates))
    for start in range(0, len(reopened), 1000):
        session.execute(update(Case).where(Case.id.in_(reopened[start:start + 1000]))
                        .values(status=CaseStatus.READY, final_disposition=None, finalized_at=None, next_call_at=now)
                        .execution_options(synchronize_session=False))
    return reopened


def _apply_targets(session: Session, specs: list[CellSpec], cells: dict[tuple, QuotaCell], now: datetime) -> None:
    """Bring existing cells to the study's current targets (a newer study version changed them): a changed
    target is set, a cell whose target was removed stops limiting (its links and row go), and cases that the old
    target had closed as quota filled are reopened where nothing else keeps them closed."""
    wanted = {(spec.variable, spec.per): spec.targets for spec in specs}
    for key, cell in list(cells.items()):
        per = cell.scope.partition(":")[0] or "study"  # the inverse of _scope
        target = wanted.get((cell.variable, per), {}).get(cell.value)
        if target == cell.target:
            continue
        in_cell = list(session.scalars(select(CaseQuotaCell.case_id).where(CaseQuotaCell.cell_id == cell.id)))
        if target is None:
            session.execute(delete(CaseQuotaCell).where(CaseQuotaCell.cell_id == cell.id))
            session.delete(cell)
            del cells[key]
        else:
            cell.target = target
        session.flush()
        for start in range(0, len(in_cell), 1000):
            _reopen(session, in_cell[start:start + 1000], now)


@dataclass(frozen=True)
class CellProgress:
    variable: str
    scope: str
    scope_name: str  # the enterprise or industry a per-enterprise / per-industry cell is in ("" study-wide)
    value: str
    target: int
    completes: int
    in_progress: int
    open_cases: int

    @property
    def pct(self) -> float:
        return 100.0 * self.completes / self.target if self.target else 100.0


def cell_progress(session: Session, study: Study) -> list[CellProgress]:
    """Every quota cell of the study with its completes, interviews in progress and released open cases."""
    open_cases = (
        select(CaseQuotaCell.cell_id, func.count().label("n"))
        .join(Case, and_(Case.id == CaseQuotaCell.case_id, Case.status.in_([CaseStatus.READY, CaseStatus.CLAIMED])))
        .group_by(CaseQuotaCell.cell_id).subquery()
    )
    rows = session.execute(
        select(QuotaCell, func.coalesce(open_cases.c.n, 0))
        .outerjoin(open_cases, open_cases.c.cell_id == QuotaCell.id)
        .where(QuotaCell.study_id == study.id)
        .order_by(QuotaCell.variable, QuotaCell.scope, QuotaCell.value)
    ).all()
    names = {f"enterprise:{i}": n for i, n in session.execute(
        select(Enterprise.id, Enterprise.name).where(Enterprise.study_id == study.id))} if rows else {}
    names.update({f"industry:{i}": n for i, n in session.execute(select(Industry.id, Industry.name))} if rows else {})
    return [CellProgress(c.variable, c.scope, names.get(c.scope, c.scope), c.value, c.target, c.completes,
                         c.in_progress, int(n)) for c, n in rows]



@dataclass(frozen=True)
class QuotaChange:
    enterprises: int      # enterprises whose target changed
    kept: int             # enterprises with a target of their own (not the old default): unchanged
    closed: int           # cases closed 4.80 because their enterprise is now full
    reopened: int         # cases closed 4.80 earlier that are callable again


def apply_enterprise_quota(session: Session, study: Study, old: int, new: int, now: datetime) -> QuotaChange:
    """The study's per-enterprise quota changed from ``old`` to ``new``: the enforced targets follow.

    Every enterprise whose target is the old default gets the new one (a target set for one enterprise at import
    is its own and is kept). An enterprise the new target fills has its released open cases closed as quota filled
    (4.80); one it opens again has its 4.80 cases callable again (unless a filled quota cell keeps them closed).
    Flush only.
    """
    from cati.models import EnterpriseStatus

    if old == new:
        return QuotaChange(0, 0, 0, 0)
    ids = list(session.scalars(select(Enterprise.id).where(Enterprise.study_id == study.id,
                                                            Enterprise.quota_target == old)))
    kept = session.scalar(select(func.count()).select_from(Enterprise)
                          .where(Enterprise.study_id == study.id, Enterprise.quota_target != old)) or 0
    closed = reopened = 0
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        session.execute(update(Enterprise).where(Enterprise.id.in_(chunk)).values(quota_target=new)
                        .execution_options(synchronize_session=False))
        if new < old:
            full = select(Enterprise.id).where(Enterprise.id.in_(chunk), ~Enterprise.quota_open)
            closed += close_as_quota_filled(session, Case.enterprise_id.in_(full), now)
        else:
            opened = select(Enterprise.id).where(Enterprise.id.in_(chunk), Enterprise.quota_open,
                                                 Enterprise.status == EnterpriseStatus.ACTIVE)
            reopened += len(_reopen(session, select(Case.id).where(Case.enterprise_id.in_(opened)), now))
    session.expire_all()
    return QuotaChange(len(ids), int(kept), closed, reopened)
