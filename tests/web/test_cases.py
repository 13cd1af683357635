"""The case browser through the test client: each filter narrows the list (numbers stay masked), key paging, and
the bulk actions reaching the cases and the audit log; the case page shows the sample's own fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from cati.db import transaction
from cati.models import Appointment, AuditLog, CallAttempt, Case, CaseStatus, DoNotCall, Enterprise, Study
from tests import factories

from .conftest import csrf_of, login
from .test_supervisor import sup_app, sworld  # noqa: F401  (fixtures)


def shown(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-case="(\d+)"', html)]


@pytest.fixture
def cworld(sworld, session_factory):  # noqa: F811
    """sworld plus a second enterprise of 60 cases, one case with sample fields, a dial by ann, an appointment."""
    now = datetime.now(UTC)
    with transaction(session_factory) as s:
        st = s.get(Study, sworld["study_id"])
        other = factories.enterprise(s, st, name="平安保险", industry_name="保险")
        sworld["many"] = factories.cases(s, st, other, 60, timezone=sworld["tz"])
        sworld["other"] = other.id
        first = sworld["case_ids"][0]
        s.execute(update(Case).where(Case.id == first).values(
            attributes={"service_type": "投诉", "last_call_date": "2026-10-17"}))
        s.execute(update(Case).where(Case.id == sworld["case_ids"][1]).values(
            last_outcome="2.112", attempts=1))
        s.add(CallAttempt(call_id="c-ann-1", case_id=sworld["case_ids"][2], interviewer_id=sworld["ann"],
                          backend="simulated", outcome="3.13"))
        s.add(Appointment(study_id=st.id, case_id=sworld["case_ids"][3], interviewer_id=sworld["bob"],
                          due_at=now - timedelta(hours=3)))
        s.add(Appointment(study_id=st.id, case_id=sworld["case_ids"][4], interviewer_id=sworld["bob"],
                          due_at=now + timedelta(hours=3)))
    return sworld


def test_filters_narrow_the_list_and_numbers_stay_masked(client, cworld, session_factory):
    login(client, "sue")
    html = client.get("/supervisor/cases").get_data(as_text=True)
    assert len(shown(html)) == 50 and "共 68 个个案" in html  # 5 + 3 unreleased + 60, a page of 50
    html = client.get(f"/supervisor/cases?enterprise={cworld['enterprise_id']}").get_data(as_text=True)
    assert sorted(shown(html)) == sorted(cworld["case_ids"] + cworld["unreleased"])
    html = client.get("/supervisor/cases?status=unreleased").get_data(as_text=True)
    assert sorted(shown(html)) == sorted(cworld["unreleased"])
    html = client.get("/supervisor/cases?outcome=2.11").get_data(as_text=True)
    assert shown(html) == [cworld["case_ids"][1]]
    html = client.get(f"/supervisor/cases?interviewer={cworld['ann']}").get_data(as_text=True)
    assert shown(html) == [cworld["case_ids"][2]]  # dialed by ann
    html = client.get("/supervisor/cases?appointment=missed").get_data(as_text=True)
    assert shown(html) == [cworld["case_ids"][3]]
    html = client.get("/supervisor/cases?appointment=pending").get_data(as_text=True)
    assert sorted(shown(html)) == cworld["case_ids"][3:5]
    # Phone: the digits typed, whole or in part; the list shows the number masked only.
    cid = cworld["many"][7]
    with session_factory() as s:
        number = s.get(Case, cid).phones[0].e164
    national = number[3:]
    html = client.get(f"/supervisor/cases?phone={national[:3]} {national[3:7]} {national[7:]}").get_data(as_text=True)
    assert shown(html) == [cid]
    assert national not in html and f"{national[:3]}****{national[-4:]}" in html
    html = client.get(f"/supervisor/cases?phone={national[-6:]}").get_data(as_text=True)
    assert cid in shown(html)
    html = client.get("/supervisor/cases?phone=13").get_data(as_text=True)
    assert "至少需要输入 4 位数字" in html


def test_key_paging_walks_every_case_once(client, cworld):
    login(client, "sue")
    seen, url = [], "/supervisor/cases"
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += shown(html)
        m = re.search(r'href="([^"]+)" id="page-next"', html)
        url = m.group(1).replace("&amp;", "&") if m else None
    assert len(seen) == 68 == len(set(seen)) and seen == sorted(seen)
    html = client.get(f"/supervisor/cases?before={seen[50]}").get_data(as_text=True)
    assert shown(html) == seen[:50]


def test_bulk_actions_change_the_cases_and_are_audited(client, cworld, session_factory):
    login(client, "sue")
    token = csrf_of(client, "/supervisor/cases")
    ready, unreleased = cworld["case_ids"][:2], cworld["unreleased"][:2]

    def bulk(action, ids, **extra):
        return client.post("/supervisor/cases/bulk", data={"csrf_token": token, "action": action,
                                                           "case": [str(i) for i in ids], **extra},
                           follow_redirects=True).get_data(as_text=True)

    html = bulk("stop", ready, note="客户投诉")
    assert "停止：已处理 2 个个案" in html
    html = bulk("release", ready + unreleased)  # stopped → resumed, unreleased → callable
    assert "释放：已处理 4 个个案" in html
    html = bulk("reassign", unreleased, to=str(cworld["bob"]))
    with session_factory() as s:
        assert {s.get(Case, i).status for i in ready + unreleased} == {CaseStatus.READY}
        assert {s.get(Case, i).assigned_to_id for i in unreleased} == {cworld["bob"]}
        actions = s.execute(select(AuditLog.action, func.count()).where(AuditLog.entity == "case")
                            .group_by(AuditLog.action)).all()
        assert dict(actions) == {"case.stop": 2, "case.resume": 2, "case.release": 2, "case.reassign": 2}
        assert s.scalar(select(AuditLog.note).where(AuditLog.action == "case.stop").limit(1)) == "客户投诉"
        s.execute(update(Case).where(Case.id == ready[0]).values(status=CaseStatus.FINAL, final_disposition="1.1"))
        s.commit()
    html = bulk("stop", ready)  # one final: refused with its reason, the other stopped
    assert "停止：已处理 1 个个案" in html and "1 个个案未处理" in html
    html = bulk("dnc", [cworld["many"][0]])
    assert "已加入免打扰名单" in html
    with session_factory() as s:
        assert s.get(Case, cworld["many"][0]).status == CaseStatus.STOPPED
        assert s.scalar(select(func.count(DoNotCall.id))) == 1
        assert s.scalar(select(AuditLog.action).where(AuditLog.action == "dnc.add")) == "dnc.add"
    html = bulk("stop", [])
    assert "请先勾选个案" in html


def test_analysts_browse_but_cannot_act(client, cworld):
    login(client, "ana")
    html = client.get("/supervisor/cases").get_data(as_text=True)
    assert len(shown(html)) == 50 and 'id="bulk-bar"' not in html
    r = client.post("/supervisor/cases/bulk", data={"csrf_token": csrf_of(client, "/supervisor/cases"),
                                                    "action": "stop", "case": [str(cworld["case_ids"][0])]})
    assert r.status_code == 403


def test_case_page_shows_sample_fields_and_question_texts(client, cworld, session_factory):
    login(client, "sue")
    html = client.get(f"/supervisor/case/{cworld['case_ids'][0]}").get_data(as_text=True)
    assert 'data-field="service_type"' in html and "投诉" in html and "2026-10-17" in html
    with session_factory() as s:
        assert s.get(Enterprise, cworld["enterprise_id"]).name in html


def test_qc_review_scores_and_back_check_on_the_case_page(client, cworld, session_factory):
    from cati.models import Interview, InterviewStatus, QCReview

    cid = cworld["case_ids"][0]
    with transaction(session_factory) as s:
        iv = Interview(study_id=cworld["study_id"], case_id=cid, interviewer_id=cworld["ann"],
                       status=InterviewStatus.COMPLETE, ended_at=datetime.now(UTC))
        s.add(iv)
        s.flush()
        iv_id = iv.id
    login(client, "sue")
    token = csrf_of(client, f"/supervisor/case/{cid}")

    def review(**data):
        return client.post(f"/supervisor/interview/{iv_id}/review", data={"csrf_token": token, **data},
                           follow_redirects=True).get_data(as_text=True)

    assert "请至少打一项分" in review()
    assert "无效（1–5）" in review(score_opening="7")
    assert "须填写说明" in review(backcheck="denied")
    html = review(score_opening="5", score_reading="4", score_coding="3", backcheck="confirmed", note="录音清楚")
    assert "质检记录已保存" in html
    table = re.search(rf'<table class="data" id="reviews-{iv_id}">(.*?)</table>', html, re.S).group(1)
    assert 'data-k="score">80<' in table and "受访者确认" in table and "录音清楚" in table
    with session_factory() as s:
        r = s.scalar(select(QCReview))
        assert r.scores == {"opening": 5, "reading": 4, "coding": 3} and r.score == 80.0
        assert s.scalar(select(AuditLog.action).where(AuditLog.action == "qc.review")) == "qc.review"
