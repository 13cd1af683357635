"""Quotas per industry and per sample variable (quota cells), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from cati.models import Case, CaseStatus, Enterprise, QuotaCell, Study
from cati.services.imports import import_sample
from cati.services.qc import reopen_quota_filled
from cati.services.quotas import cell_progress, link_quota_cells, unfill_cells
from cati.services.scheduling import (
    Claim,
    NoCase,
    QuotaFull,
    next_case,
    projected_shortfalls,
    release_quota_slot,
    release_replicate,
    reserve_quota_slot,
)
from cati.study.loader import StudyError, validate_study_mapping
from tests import factories as f
from tests.services.test_imports import write_csv

ROOT = Path(__file__).resolve().parents[2]
NOW = f.MONDAY_10AM


def with_quota(session, study, **quota) -> Study:
    """The test's study (as stored) with these quotas added to its definition."""
    st = session.get(Study, study.id)
    st.definition = {**st.definition, "quota": {**st.definition["quota"], **quota}}
    session.flush()
    return st


def claim_all(session, study, interviewer_id, now=NOW) -> list[int]:
    """Claim until nothing is offered (each claimed case is set aside as stopped so the next claim moves on)."""
    got = []
    while isinstance(result := next_case(session, study, interviewer_id, now), Claim):
        got.append(result.case_id)
        session.get(Case, result.case_id).status = CaseStatus.STOPPED
        session.flush()
    return got


def test_industry_quota_counts_across_enterprises_and_closes_the_industry(session, study):
    study = with_quota(session, study, per_industry={"银行": 2})
    bank_a = f.enterprise(session, study, industry_name="银行")
    bank_b = f.enterprise(session, study, industry_name="银行")
    insurer = f.enterprise(session, study, industry_name="保险")
    a, b = f.cases(session, study, bank_a, 3), f.cases(session, study, bank_b, 3)
    ins = f.cases(session, study, insurer, 2)
    assert link_quota_cells(session, study, NOW) == 6  # the insurer's cases have no industry target
    iv = f.user(session).id

    # Two bank interviews running fill the industry's two places: a third is never started anywhere in it.
    reserve_quota_slot(session, bank_a.id, a[0])
    reserve_quota_slot(session, bank_b.id, b[0])
    with pytest.raises(QuotaFull):
        reserve_quota_slot(session, bank_a.id, a[1])
    session.refresh(bank_a)
    assert bank_a.in_progress == 1  # the refused start kept no slot in its enterprise either
    # …and the scheduler offers only the insurer's cases meanwhile.
    for cid in (a[0], b[0]):
        session.get(Case, cid).status = CaseStatus.CLAIMED
    session.flush()
    assert sorted(claim_all(session, study, iv)) == sorted(ins)

    # Both complete: the industry is full, its remaining released cases close as 4.80 (quota filled).
    release_quota_slot(session, bank_a.id, completed=True, now=NOW, case_id=a[0])
    release_quota_slot(session, bank_b.id, completed=True, now=NOW, case_id=b[0])
    for cid in (a[0], b[0]):  # what coding the complete does to the case
        session.get(Case, cid).status, session.get(Case, cid).final_disposition = CaseStatus.FINAL, "1.1"
    session.flush()
    closed = session.scalars(select(Case.id).where(Case.final_disposition == "4.80")).all()
    assert sorted(closed) == sorted(a[1:] + b[1:])
    [cell] = cell_progress(session, study)
    assert (cell.variable, cell.value, cell.target, cell.completes, cell.in_progress, cell.open_cases) == (
        "industry", "银行", 2, 2, 0, 0)
    # The enterprises themselves are far from their own quota of 20: the industry closed them.
    assert session.get(Enterprise, bank_a.id).completes == 1


def test_a_rejected_complete_reopens_the_cell(session, study):
    study = with_quota(session, study, per_industry={"银行": 1})
    bank_a, bank_b = f.enterprise(session, study), f.enterprise(session, study)
    a, b = f.cases(session, study, bank_a, 2), f.cases(session, study, bank_b, 2)
    link_quota_cells(session, study, NOW)
    session.get(Case, a[0]).status = CaseStatus.CLAIMED
    reserve_quota_slot(session, bank_a.id, a[0])
    release_quota_slot(session, bank_a.id, completed=True, now=NOW, case_id=a[0])
    session.get(Case, a[0]).status, session.get(Case, a[0]).final_disposition = CaseStatus.FINAL, "1.1"
    assert session.scalar(select(func.count()).where(Case.final_disposition == "4.80")) == 3
    # The enterprise's own reopening leaves cases of a filled cell closed.
    assert reopen_quota_filled(session, bank_b.id, NOW, user_id=None) == 0
    # QC rejects the complete: the cell has a place again and its closed cases are callable.
    assert sorted(unfill_cells(session, a[0], NOW)) == sorted([a[1], *b])
    assert all(session.get(Case, c).status == CaseStatus.READY for c in (a[1], *b))


def test_sample_variable_quota_per_enterprise_from_an_import(session, study, tmp_path):
    study = with_quota(session, study, by_variable=[
        {"variable": "gender", "per": "enterprise", "targets": {"女": 1, "男": 1}}])
    ents = [f.enterprise(session, study) for _ in range(2)]
    rows = [[f"R{i}", e.external_id, f"1380000{i:04d}", g]
            for i, (e, g) in enumerate((e, g) for e in ents for g in ("女", "女", "男", ""))]
    report = import_sample(session, study, write_csv(tmp_path / "s.csv", ["case_ref", "enterprise_id", "phone",
                                                                        "gender"], rows))
    assert report.imported == 8 and report.quota_links == 6  # blank gender: no cell
    cells = session.scalars(select(QuotaCell).order_by(QuotaCell.scope, QuotaCell.value)).all()
    assert [(c.scope, c.value, c.target) for c in cells] == [
        (f"enterprise:{ents[0].id}", "女", 1), (f"enterprise:{ents[0].id}", "男", 1),
        (f"enterprise:{ents[1].id}", "女", 1), (f"enterprise:{ents[1].id}", "男", 1)]
    first_woman = session.scalar(select(Case).where(Case.case_ref == "R0"))
    first_woman.status = CaseStatus.CLAIMED
    reserve_quota_slot(session, ents[0].id, first_woman.id)
    release_quota_slot(session, ents[0].id, completed=True, now=NOW, case_id=first_woman.id)
    # Enterprise 1's other woman closes; its man, its blank and enterprise 2's cases are still offered.
    assert session.scalar(select(Case.final_disposition).where(Case.case_ref == "R1")) == "4.80"
    # Imported cases are callable from the import's wall-clock time: ask on a Monday 10:00 after it.
    offered = claim_all(session, study, f.user(session).id, f.weeks_later_than(NOW, datetime.now(UTC)))
    assert sorted(session.get(Case, c).case_ref for c in offered) == ["R2", "R3", "R4", "R5", "R6", "R7"]
    # A later import of another woman of enterprise 1 is closed at once: her cell is full.
    more = write_csv(tmp_path / "t.csv", ["case_ref", "enterprise_id", "phone", "gender"],
                     [["R9", ents[0].external_id, "13800009999", "女"]])
    import_sample(session, study, more)
    r9 = session.scalar(select(Case).where(Case.case_ref == "R9"))
    if r9.status == CaseStatus.UNRELEASED:  # a new replicate: closed when it is released
        release_replicate(session, ents[0].id, r9.replicate, NOW)
        session.refresh(r9)
    assert (r9.status, r9.final_disposition) == (CaseStatus.FINAL, "4.80")


def test_no_case_while_every_cell_is_reserved(session, study):
    study = with_quota(session, study, per_industry={"银行": 1})
    bank = f.enterprise(session, study)
    ids = f.cases(session, study, bank, 2)
    link_quota_cells(session, study, NOW)
    reserve_quota_slot(session, bank.id, ids[0])
    session.get(Case, ids[0]).status = CaseStatus.CLAIMED
    session.flush()
    assert isinstance(next_case(session, study, f.user(session).id, NOW), NoCase)


def test_quota_on_an_answer_is_rejected_by_the_study_loader():
    data = yaml.safe_load((ROOT / "config" / "studies" / "csat_contact_center.yaml").read_text(encoding="utf-8"))
    data["quota"]["by_variable"] = [{"variable": "S1", "source": "answer", "targets": {"1": 10}}]
    with pytest.raises(StudyError, match="quotas on answers are not supported"):
        validate_study_mapping(data)


def test_concurrent_starts_never_exceed_a_cell(session_factory, study):
    """Twelve interviews start at once in enterprises of one industry with 3 places: exactly 3 start."""
    import threading

    from cati.db import transaction

    with transaction(session_factory) as s:
        st = with_quota(s, study, per_industry={"银行": 3})
        ents = [f.enterprise(s, st) for _ in range(4)]
        work = [(e.id, cid) for e in ents for cid in f.cases(s, st, e, 3)]
        link_quota_cells(s, st, NOW)
    started, refused, errors = [], [], []
    barrier = threading.Barrier(len(work))

    def start(enterprise_id: int, case_id: int) -> None:
        try:
            barrier.wait()
            with transaction(session_factory) as s:
                reserve_quota_slot(s, enterprise_id, case_id)
            started.append(case_id)
        except QuotaFull:
            refused.append(case_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=w) for w in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert (len(started), len(refused)) == (3, 9)
    with session_factory() as s:
        [cell] = s.scalars(select(QuotaCell)).all()
        assert cell.in_progress == 3
        assert s.scalar(select(func.sum(Enterprise.in_progress))) == 3  # refused starts kept no enterprise slot


def test_no_replicate_is_released_into_a_filled_cell(session, study):
    study = with_quota(session, study, per_industry={"银行": 1})
    bank, insurer = f.enterprise(session, study), f.enterprise(session, study, industry_name="保险")
    first = f.cases(session, study, bank, 1)
    f.cases(session, study, bank, 3, status=CaseStatus.UNRELEASED, replicate=2)
    f.cases(session, study, insurer, 3, status=CaseStatus.UNRELEASED, replicate=2)
    link_quota_cells(session, study, NOW)
    assert set(projected_shortfalls(session, study)) == {bank.id, insurer.id}
    session.get(Case, first[0]).status = CaseStatus.CLAIMED
    reserve_quota_slot(session, bank.id, first[0])
    release_quota_slot(session, bank.id, completed=True, now=NOW, case_id=first[0])
    # The bank is 19 short of its own quota, but its next replicate would only be closed by the full industry.
    assert set(projected_shortfalls(session, study)) == {insurer.id}


def test_a_quota_added_during_fieldwork_counts_what_is_done(session, study, tmp_path):
    """A new study version adds an industry quota after completes exist: the cell starts from them."""
    from cati.services.studies import default_study_file, install_study

    bank = f.enterprise(session, study)
    done, *rest = f.cases(session, study, bank, 3)
    session.get(Case, done).status, session.get(Case, done).final_disposition = CaseStatus.FINAL, "1.1"
    session.flush()
    data = yaml.safe_load(default_study_file().read_text(encoding="utf-8"))
    data["version"] = session.get(Study, study.id).version + 1
    data["quota"]["per_industry"] = {"银行": 1}
    (tmp_path / "v2.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    install_study(session, tmp_path / "v2.yaml")
    [cell] = cell_progress(session, session.get(Study, study.id))
    assert (cell.completes, cell.target, cell.open_cases) == (1, 1, 0)
    assert all(session.get(Case, c).final_disposition == "4.80" for c in rest)

    # Version 3 raises the target: the cases it had closed are callable again.
    data["version"] += 1
    data["quota"]["per_industry"] = {"银行": 3}
    (tmp_path / "v3.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    install_study(session, tmp_path / "v3.yaml")
    session.expire_all()
    [cell] = cell_progress(session, session.get(Study, study.id))
    assert (cell.completes, cell.target, cell.open_cases) == (1, 3, 2)
    # Version 4 drops it and lowers nothing else: no cell is left, and nothing limits the bank's cases.
    data["version"] += 1
    del data["quota"]["per_industry"]
    (tmp_path / "v4.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    install_study(session, tmp_path / "v4.yaml")
    assert cell_progress(session, session.get(Study, study.id)) == []
    assert all(session.get(Case, c).status == CaseStatus.READY for c in rest)
