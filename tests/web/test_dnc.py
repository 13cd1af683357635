"""The do-not-call list screen: numbers masked and found by typed digits, removal with a reason (audited, the
number callable again), and the CSV / XLSX export with full numbers for supervisors only (audited)."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from cati.models import AuditLog, Case, CasePhone, CaseStatus, DoNotCall, PhoneStatus

from .conftest import csrf_of, login
from .test_supervisor import sup_app, sworld  # noqa: F401  (fixtures)


@pytest.fixture
def dworld(sworld):  # noqa: F811
    return sworld


def numbers_of(session_factory, ids):
    with session_factory() as s:
        return [s.get(Case, i).phones[0].e164 for i in ids]


def add(client, numbers, reason="受访者要求"):
    return client.post("/supervisor/dnc", data={"csrf_token": csrf_of(client, "/supervisor/dnc"),
                                                "numbers": "\n".join(numbers), "reason": reason,
                                                "next": "/supervisor/dnc"}, follow_redirects=True)


def test_list_search_remove_and_export(client, dworld, session_factory):
    a, b = numbers_of(session_factory, dworld["case_ids"][:2])
    login(client, "sue")
    html = add(client, [a[3:], b[3:]]).get_data(as_text=True)
    assert "共 2 个号码" in html
    assert a[3:] not in html and f"{a[3:6]}****{a[-4:]}" in html  # masked in the list
    html = client.get(f"/supervisor/dnc?q={a[-6:]}").get_data(as_text=True)
    assert "共 1 个号码" in html and f"{a[3:6]}****{a[-4:]}" in html and f"****{b[-4:]}" not in html
    assert "至少需要输入 4 位数字" in client.get("/supervisor/dnc?q=12").get_data(as_text=True)

    with session_factory() as s:
        entry = s.scalar(select(DoNotCall).where(DoNotCall.e164 == a))
        assert s.get(Case, dworld["case_ids"][0]).status == CaseStatus.STOPPED
    token = csrf_of(client, "/supervisor/dnc")
    html = client.post(f"/supervisor/dnc/{entry.id}/remove", data={"csrf_token": token, "reason": " "},
                       follow_redirects=True).get_data(as_text=True)
    assert "必须填写原因" in html
    with session_factory() as s:
        assert s.get(DoNotCall, entry.id) is not None  # nothing removed without a reason
    html = client.post(f"/supervisor/dnc/{entry.id}/remove", data={"csrf_token": token, "reason": "号码已换机主"},
                       follow_redirects=True).get_data(as_text=True)
    assert "已移出免打扰名单" in html and "共 1 个号码" in html
    with session_factory() as s:
        assert s.get(DoNotCall, entry.id) is None
        assert s.scalar(select(CasePhone.status).where(CasePhone.e164 == a)) == PhoneStatus.OK
        assert s.get(Case, dworld["case_ids"][0]).status == CaseStatus.STOPPED  # resumed only on purpose
        log = s.scalar(select(AuditLog).where(AuditLog.action == "dnc.remove"))
        assert log.note == "号码已换机主" and log.before["number"] == f"{a[3:6]}****{a[-4:]}"
        assert a not in str(log.before) and log.user_id == dworld["sue"]

    r = client.get("/supervisor/dnc.csv")
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:2] == ["电话", "原因"]
    assert [row[0] for row in rows[1:]] == [b] and rows[1][1] == "受访者要求"
    from openpyxl import load_workbook

    r = client.get("/supervisor/dnc.xlsx")
    ws = load_workbook(io.BytesIO(r.data)).active
    assert [c.value for c in ws[2]][:2] == [b, "受访者要求"]
    with session_factory() as s:
        assert [e.after["format"] for e in s.scalars(select(AuditLog).where(AuditLog.action == "dnc.export")
                                                     .order_by(AuditLog.id))] == ["csv", "xlsx"]


def test_analysts_see_masked_list_but_cannot_remove_or_export(client, dworld, session_factory):
    (a,) = numbers_of(session_factory, dworld["case_ids"][:1])
    login(client, "sue")
    add(client, [a])
    client.post("/logout", data={"csrf_token": csrf_of(client, "/supervisor/dnc")})
    login(client, "ana")
    html = client.get("/supervisor/dnc").get_data(as_text=True)
    assert f"****{a[-4:]}" in html and a[3:] not in html and "dnc-csv" not in html
    assert client.get("/supervisor/dnc.csv").status_code == 403
    with session_factory() as s:
        eid = s.scalar(select(DoNotCall.id))
    r = client.post(f"/supervisor/dnc/{eid}/remove", data={"csrf_token": csrf_of(client, "/supervisor/dnc"),
                                                           "reason": "x"})
    assert r.status_code == 403
