"""Inbound callback lookup: the number typed (any usual form) finds the case, which the interviewer then holds;
do-not-call numbers, final, stopped and held cases are refused with their reason; several matches and no match are
said plainly; a pending appointment of the case is served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from cati.db import transaction
from cati.models import Appointment, AppointmentStatus, AuditLog, Case, CasePhone, CaseStatus, DoNotCall

from .conftest import Console


def number(session_factory, case_id):
    with session_factory() as s:
        return s.get(Case, case_id).phones[0].e164


def test_callback_number_gets_the_case(client, world, session_factory):
    cid = world["case_ids"][2]
    e164 = number(session_factory, cid)
    with transaction(session_factory) as s:
        s.add(Appointment(study_id=world["study_id"], case_id=cid, interviewer_id=world["bob"],
                          due_at=datetime.now(UTC) + timedelta(hours=2)))
    con = Console(client, "ann")
    typed = f"+86 {e164[3:6]}-{e164[6:10]}-{e164[10:]}"
    r = con.post("/interviewer/inbound", {"number": typed})
    assert r.status_code == 200 and r.json == {"ok": True, "case_id": cid}
    html = con.page()
    assert f"C{cid:08d}" in html and "已接入回电个案" in html and 'id="btn-dial"' in html
    with session_factory() as s:
        case = s.get(Case, cid)
        assert case.status == CaseStatus.CLAIMED and case.claimed_by_id == world["ann"]
        assert s.scalar(select(Appointment.status).where(Appointment.case_id == cid)) == AppointmentStatus.KEPT
        log = s.scalar(select(AuditLog).where(AuditLog.action == "case.inbound_callback"))
        assert log.user_id == world["ann"] and e164[3:] not in str(log.after)
    # Holding a case: finish it first.
    r = con.post("/interviewer/inbound", {"number": number(session_factory, world["case_ids"][3])})
    assert r.status_code == 409 and "请先结束当前个案" in r.json["error"]


def test_refusals_say_why(client, world, session_factory):
    c = world["case_ids"]
    con = Console(client, "ann")

    def ask(raw):
        r = con.post("/interviewer/inbound", {"number": raw})
        assert r.status_code == 409, r.json
        return r.json["error"]

    nums = [number(session_factory, i) for i in c]
    assert "没有找到号码 139****0000" in ask("13900000000")
    assert "至少 7 位" in ask("12345")
    with transaction(session_factory) as s:
        s.execute(update(Case).where(Case.id == c[0]).values(status=CaseStatus.FINAL, final_disposition="1.1"))
        s.execute(update(Case).where(Case.id == c[1]).values(status=CaseStatus.STOPPED))
        s.execute(update(Case).where(Case.id == c[2]).values(status=CaseStatus.CLAIMED, claimed_by_id=world["bob"]))
        s.add(DoNotCall(e164=nums[3], reason="x", source="respondent"))
        s.execute(update(CasePhone).where(CasePhone.case_id == c[3]).values(status="dnc"))
    assert f"C{c[0]:08d} 已结束（1.1）" in ask(nums[0])
    assert "已被督导停止" in ask(nums[1])
    assert "正由其他访员处理" in ask(nums[2])
    assert "免打扰名单" in ask(nums[3])
    # A caller ID that is not a whole number matches by its last digits; two cases share them → say so.
    a, b = nums[4], nums[0]
    assert a[-7:] != b[-7:]
    with transaction(session_factory) as s:
        s.execute(update(CasePhone).where(CasePhone.case_id == c[0]).values(e164="+8613700" + a[-6:]))
    assert "2 个个案的号码与输入相符" in ask(a[-6:].rjust(7, "0"))
    with session_factory() as s:
        assert s.get(Case, c[4]).status == CaseStatus.READY  # nothing claimed by a refused lookup


def test_console_shows_the_sample_fields_of_the_held_case(client, world, session_factory):
    cid = world["case_ids"][1]
    with transaction(session_factory) as s:
        s.execute(update(Case).where(Case.id == cid).values(
            attributes={"service_type": "投诉", "last_call_date": "2026-10-17", "callback": "13912345678"}))
    con = Console(client, "ann")
    r = con.post("/interviewer/inbound", {"number": number(session_factory, cid)})
    assert r.json["ok"]
    html = con.page()
    import re

    box = re.search(r'<dl class="sample-fields" id="sample-fields">(.*?)</dl>', html, re.S).group(1)
    assert "<dt>service_type</dt><dd>投诉</dd>" in box and "<dd>2026-10-17</dd>" in box
    assert "13912345678" not in box and "139****5678" in box
