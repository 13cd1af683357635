"""Overdue and missed appointments, the day's calendar by interviewer and hour, and the interviewer's own list."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cati.db import transaction
from cati.models import Appointment, AppointmentStatus

from .conftest import Console, csrf_of, login
from .test_supervisor import sup_app, sworld  # noqa: F401  (fixtures)


@pytest.fixture
def aworld(sworld):  # noqa: F811
    return sworld


def add_appts(session_factory, w, now):
    c = w["case_ids"]
    spec = [("overdue", c[0], w["ann"], now - timedelta(minutes=20), AppointmentStatus.PENDING, "下午三点后"),
            ("missed", c[1], w["bob"], now - timedelta(hours=3), AppointmentStatus.PENDING, ""),
            ("broken", c[2], None, now - timedelta(hours=5), AppointmentStatus.BROKEN, ""),
            ("coming", c[3], w["ann"], now + timedelta(hours=2), AppointmentStatus.PENDING, "找李先生 13912345678"),
            ("bobs", c[4], w["bob"], now + timedelta(hours=1), AppointmentStatus.PENDING, "")]
    out = {}
    with transaction(session_factory) as s:
        for key, case_id, who, due, status, note in spec:
            a = Appointment(study_id=w["study_id"], case_id=case_id, interviewer_id=who, due_at=due, status=status,
                            note=note or None)
            s.add(a)
            s.flush()
            out[key] = a.id
    return out


def test_overdue_missed_and_calendar(client, aworld, session_factory):
    now = datetime.now(UTC)
    ids = add_appts(session_factory, aworld, now)
    login(client, "sue")
    html = client.get("/supervisor/appointments").get_data(as_text=True)
    late = re.search(r'<table class="data" id="late">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r'<tr data-appt="(\d+)".*?data-k="state">([^<]+)<', late, re.S)
    assert rows == [(str(ids["broken"]), "已错过"), (str(ids["missed"]), "已错过"), (str(ids["overdue"]), "已逾期")]
    # The calendar of today (centre time): one row per interviewer, each appointment in its hour.
    cal = re.search(r'<table class="data" id="calendar">(.*?)</table>', html, re.S)
    tz = ZoneInfo("Asia/Shanghai")
    today_local = now.astimezone(tz).date()
    coming = now + timedelta(hours=2)
    if coming.astimezone(tz).date() == today_local:
        row = re.search(r'<tr data-who="王芳">(.*?)</tr>', cal.group(1), re.S).group(1)
        assert f'data-hour="{coming.astimezone(tz).hour}">' in row
    nxt = (today_local + timedelta(days=1)).isoformat()
    assert client.get(f"/supervisor/appointments?day={nxt}").status_code == 200
    assert "2026-13-45 不是有效日期" in client.get("/supervisor/appointments?day=2026-13-45").get_data(as_text=True)
    # Move the overdue one to bob from this screen.
    r = client.post(f"/supervisor/appointments/{ids['overdue']}/move",
                    data={"csrf_token": csrf_of(client, "/supervisor/appointments"), "to": str(aworld["bob"]),
                          "next": "/supervisor/appointments"}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert re.search(rf'<tr data-appt="{ids["overdue"]}".*?data-k="owner">李强<', html, re.S)


def test_interviewer_sees_own_appointments_masked(client, aworld, session_factory):
    now = datetime.now(UTC)
    add_appts(session_factory, aworld, now)
    con = Console(client, "ann")
    html = con.page()
    box = re.search(r'<section class="card my-appts" id="my-appts">(.*?)</section>', html, re.S).group(1)
    assert box.count("<li") == 2 and "已逾期" in box and "下午三点后" in box
    assert "13912345678" not in box and "139****5678" in box
    c = aworld["case_ids"]
    assert f"C{c[0]:08d}" in box and f"C{c[3]:08d}" in box and f"C{c[4]:08d}" not in box  # bob's is not hers


def test_move_ticked_appointments_at_once(client, aworld, session_factory):
    from sqlalchemy import func, select

    from cati.models import AuditLog

    now = datetime.now(UTC)
    ids = add_appts(session_factory, aworld, now)
    login(client, "sue")
    token = csrf_of(client, "/supervisor/appointments")
    html = client.post("/supervisor/appointments/move-selected",
                       data={"csrf_token": token, "appt": [str(ids["overdue"]), str(ids["missed"]), str(ids["broken"])],
                             "to": str(aworld["bob"]), "due_at": "2030-01-02T10:30",
                             "next": "/supervisor/appointments"}, follow_redirects=True).get_data(as_text=True)
    assert "已转移 2 个预约" in html and f"#{ids['broken']}" in html  # the broken one is refused, named
    with session_factory() as s:
        for key in ("overdue", "missed"):
            a = s.get(Appointment, ids[key])
            assert a.interviewer_id == aworld["bob"]
            assert a.due_at == datetime(2030, 1, 2, 2, 30, tzinfo=UTC)  # 10:30 centre time (Asia/Shanghai)
        assert s.scalar(select(func.count()).where(AuditLog.action == "appointment.move")) == 2
    html = client.post("/supervisor/appointments/move-selected",
                       data={"csrf_token": token, "to": "anyone"}, follow_redirects=True).get_data(as_text=True)
    assert "请先勾选预约" in html
