"""Quota targets edited on the supervisor's quota screen change what is enforced: the enterprise's quota_target
(the next claim sees it) and a quota cell's target (a new study version, the cell row follows); lowering closes the
open cases as quota filled, raising reopens them; each change audited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from cati.db import transaction
from cati.models import AuditLog, Case, CaseStatus, Enterprise, QuotaCell, Study
from cati.services.quotas import link_quota_cells
from cati.services.scheduling import NoCase, next_case

from .conftest import csrf_of, login
from .test_supervisor import sup_app, sworld  # noqa: F401  (fixtures)


@pytest.fixture
def qworld(sworld):  # noqa: F811
    return sworld


def statuses(session_factory, ids):
    with session_factory() as s:
        return [s.get(Case, i).status for i in ids]


def test_enterprise_target_is_enforced(client, qworld, session_factory):
    eid, ids = qworld["enterprise_id"], qworld["case_ids"]
    with transaction(session_factory) as s:
        s.execute(update(Enterprise).where(Enterprise.id == eid).values(completes=2))
    login(client, "sue")
    html = client.get("/supervisor/quotas").get_data(as_text=True)
    assert f'<tr data-eid="{eid}"' in html
    token = csrf_of(client, "/supervisor/quotas")

    def set_target(value):
        return client.post(f"/supervisor/quotas/enterprise/{eid}", data={"csrf_token": token, "target": value,
                                                                         "next": "/supervisor/quotas"},
                           follow_redirects=True).get_data(as_text=True)

    assert "不是整数" in set_target("二十")
    assert "超出允许范围" in set_target("0")
    html = set_target("2")
    assert "配额目标 20 → 2；5 个个案以配额已满结束" in html
    assert statuses(session_factory, ids) == [CaseStatus.FINAL] * 5
    with session_factory() as s:
        assert s.get(Enterprise, eid).quota_target == 2
        assert isinstance(next_case(s, s.get(Study, qworld["study_id"]), qworld["ann"], datetime.now(UTC)), NoCase)
    html = set_target("3")
    assert "5 个个案重新可拨" in html
    assert statuses(session_factory, ids) == [CaseStatus.READY] * 5
    with session_factory() as s:
        entries = s.scalars(select(AuditLog).where(AuditLog.action == "enterprise.quota").order_by(AuditLog.id)).all()
        assert [(e.before["quota_target"], e.after["quota_target"]) for e in entries] == [(20, 2), (2, 3)]


def test_cell_target_changes_the_study_and_the_cell(client, qworld, session_factory):
    ids = qworld["case_ids"]
    with transaction(session_factory) as s:
        st = s.get(Study, qworld["study_id"])
        st.definition = {**st.definition, "quota": {**st.definition["quota"], "per_industry": {"银行": 5}}}
        s.flush()
        link_quota_cells(s, st, datetime.now(UTC))
        s.execute(update(QuotaCell).values(completes=1))
        version = st.version
    login(client, "sue")
    html = client.get("/supervisor/quotas").get_data(as_text=True)
    assert 'data-cell="industry|study|银行"' in html
    token = csrf_of(client, "/supervisor/quotas")

    def set_cell(value):
        return client.post("/supervisor/quotas/cell", data={
            "csrf_token": token, "variable": "industry", "per": "study", "value": "银行", "target": value,
            "next": "/supervisor/quotas"}, follow_redirects=True).get_data(as_text=True)

    html = set_cell("1")  # one complete already: the cell is full, its open cases close
    assert "配额目标 5 → 1" in html
    assert statuses(session_factory, ids) == [CaseStatus.FINAL] * 5
    with session_factory() as s:
        st = s.get(Study, qworld["study_id"])
        assert st.version == version + 1 and st.definition["quota"]["per_industry"] == {"银行": 1}
        assert s.scalar(select(QuotaCell.target)) == 1
    set_cell("4")
    assert statuses(session_factory, ids) == [CaseStatus.READY] * 5
    assert "没有 industry = 保险 的配额" in client.post("/supervisor/quotas/cell", data={
        "csrf_token": token, "variable": "industry", "per": "study", "value": "保险", "target": "3"},
        follow_redirects=True).get_data(as_text=True)
    with session_factory() as s:
        assert s.scalar(select(QuotaCell.target)) == 4
        assert [e.after["target"] for e in s.scalars(select(AuditLog).where(AuditLog.action == "quota.cell")
                                                     .order_by(AuditLog.id))] == [1, 4]


def test_analysts_cannot_edit_targets(client, qworld):
    login(client, "ana")
    assert client.get("/supervisor/quotas").status_code == 200
    r = client.post(f"/supervisor/quotas/enterprise/{qworld['enterprise_id']}",
                    data={"csrf_token": csrf_of(client, "/supervisor/quotas"), "target": "5"})
    assert r.status_code == 403
