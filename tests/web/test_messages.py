"""Supervisor messages: one-to-one and broadcast, delivered through the console's heartbeat (and on the page),
read receipts back on the supervisor's screen; sign-in history recorded for interviewers."""

from __future__ import annotations

import re

from sqlalchemy import select

from cati.models import AuditLog, LoginSession, MessageReceipt

from .conftest import Console, csrf_of, login


def send(client, to, body):
    return client.post("/supervisor/messages", data={"csrf_token": csrf_of(client, "/supervisor/interviewers"),
                                                     "to": to, "body": body}, follow_redirects=True)


def test_messages_reach_the_console_and_come_back_read(app, world, session_factory):
    sup, ann, bob = app.test_client(), app.test_client(), app.test_client()
    con_ann, con_bob = Console(ann, "ann"), Console(bob, "bob")
    login(sup, "sue")
    assert "消息不能为空" in send(sup, "anyone", "  ").get_data(as_text=True)
    send(sup, "anyone", "10 点开会，请暂停拨号")
    send(sup, str(world["ann"]), "王芳：请回拨 C123 的预约")
    beat = con_ann.post("/interviewer/heartbeat").json
    assert [m["body"] for m in beat["messages"]] == ["10 点开会，请暂停拨号", "王芳：请回拨 C123 的预约"]
    assert beat["messages"][0]["broadcast"] is True and beat["messages"][0]["from"] == "sue"
    bob_msgs = con_bob.post("/interviewer/heartbeat").json["messages"]
    assert [m["body"] for m in bob_msgs] == ["10 点开会，请暂停拨号"]  # not ann's own message
    assert "10 点开会" in con_bob.page()  # the page shows unread messages at once too
    # ann reads both; bob reads nothing yet.
    for m in beat["messages"]:
        assert con_ann.post(f"/interviewer/messages/{m['id']}/read").json == {"ok": True}
    assert con_ann.post("/interviewer/heartbeat").json["messages"] == []
    assert con_bob.post(f"/interviewer/messages/{beat['messages'][1]['id']}/read").status_code == 404
    html = sup.get("/supervisor/interviewers").get_data(as_text=True)
    rows = dict(re.findall(r'<tr data-msg="(\d+)">.*?data-k="receipts"[^>]*>(.*?)</td>', html, re.S))
    broadcast, direct = (rows[str(m["id"])] for m in beat["messages"])
    assert "已读 1/2" in broadcast and "已送达 2" in broadcast and "未读：李强" in broadcast and "王芳" in broadcast
    assert "已读 1/1" in direct
    with session_factory() as s:
        assert s.scalar(select(MessageReceipt.read_at).where(MessageReceipt.user_id == world["bob"])) is None
        assert s.scalar(select(AuditLog.after).where(AuditLog.action == "message.send").limit(1)) == {
            "to": "all", "length": len("10 点开会，请暂停拨号")}


def test_interviewers_cannot_send_and_analysts_neither(client, world):
    con = Console(client, "ann")
    r = con.post("/supervisor/messages", {"to": "anyone", "body": "hi"}, fetch=False)
    assert r.status_code == 403


def test_sign_in_history_is_kept(app, world, session_factory):
    c = app.test_client()
    Console(c, "ann")
    c.post("/logout", data={"csrf_token": csrf_of(c, "/interviewer")})
    Console(c, "ann")
    with session_factory() as s:
        rows = s.scalars(select(LoginSession).where(LoginSession.user_id == world["ann"])
                         .order_by(LoginSession.id)).all()
        assert [(r.ended_by, r.logout_at is None) for r in rows] == [("logout", False), (None, True)]


def test_hourly_productivity_and_login_history_on_the_interviewers_screen(app, world, session_factory):
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from cati.db import transaction
    from cati.models import CallAttempt, Interview, InterviewStatus

    now = datetime.now(UTC)
    c = app.test_client()
    Console(c, "ann")  # a sign-in of ann
    tz = ZoneInfo("Asia/Shanghai")
    midnight = datetime.combine(now.astimezone(tz).date(), datetime.min.time(), tzinfo=tz)
    # Three dials in the same hour today (one a contact, coded 2.112) and one complete; bob dials once.
    at = max(midnight + timedelta(minutes=5), now - timedelta(minutes=30))
    with transaction(session_factory) as s:
        for k, (who, outcome) in enumerate([("ann", "3.13"), ("ann", "2.112"), ("ann", "3.13"), ("bob", "1.1")]):
            s.add(CallAttempt(call_id=f"h{k}", case_id=world["case_ids"][k], interviewer_id=world[who],
                              backend="simulated", requested_at=at, outcome=outcome))
        s.add(Interview(study_id=world["study_id"], case_id=world["case_ids"][0], interviewer_id=world["ann"],
                        status=InterviewStatus.COMPLETE, started_at=at, ended_at=at))
    sup = app.test_client()
    login(sup, "sue")
    hour = at.astimezone(tz).hour
    html = sup.get(f"/supervisor/interviewers?uid={world['ann']}&period=today").get_data(as_text=True)
    row = re.search(rf'<tr data-hour="{hour}">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'data-k="\w+">(\d+)<', row) == ["3", "1", "1"]
    logins = re.search(r'<table class="data" id="logins">(.*?)</table>', html, re.S).group(1)
    assert "仍在线" in logins
    html = sup.get("/supervisor/interviewers?period=today").get_data(as_text=True)  # the team
    row = re.search(rf'<tr data-hour="{hour}">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'data-k="\w+">(\d+)<', row)[0] == "4"


def test_live_table_shows_current_question_and_interview_time(app, world, session_factory):
    from datetime import UTC, datetime, timedelta

    from cati.db import transaction
    from cati.models import Case, Study
    from cati.models.agents import AgentStatus
    from cati.services import agents
    from cati.services.interviews import save_answers, start_interview
    from cati.services.scheduling import next_case

    now = datetime.now(UTC)
    Console(app.test_client(), "ann")
    Console(app.test_client(), "bob")
    with transaction(session_factory) as s:
        claim = next_case(s, s.get(Study, world["study_id"]), world["ann"], now)
        iv = start_interview(s, s.get(Case, claim.case_id), world["ann"], now - timedelta(minutes=4, seconds=10))
        save_answers(s, iv, {"INTRO": None, "CONSENT": 1, "S1": 1}, user_id=world["ann"], now=now)
        agents.set_state(s, world["ann"], AgentStatus.TALKING, now - timedelta(minutes=4), case_id=claim.case_id)
        question = iv.current_question
    assert question and question not in ("INTRO", "CONSENT", "S1")
    sup = app.test_client()
    login(sup, "sue")
    html = sup.get("/supervisor/interviewers").get_data(as_text=True)
    ann = re.search(rf'<tr data-uid="{world["ann"]}"[^>]*>(.*?)</tr>', html, re.S).group(1)
    assert f'data-k="question">{question}<' in ann
    assert re.search(r'data-k="interview-time">4:1\d<', ann) and re.search(r'data-k="in-state">4:0\d<', ann)
    bob = re.search(rf'<tr data-uid="{world["bob"]}"[^>]*>(.*?)</tr>', html, re.S).group(1)
    assert 'data-k="question">—<' in bob and 'data-k="interview-time">—<' in bob


def test_new_screens_in_english(app, world, session_factory):
    from datetime import UTC, datetime, timedelta

    from cati.db import transaction
    from cati.models import Appointment

    with transaction(session_factory) as s:
        s.add(Appointment(study_id=world["study_id"], case_id=world["case_ids"][0], interviewer_id=world["ann"],
                          due_at=datetime.now(UTC) - timedelta(minutes=10)))
    sup = app.test_client()
    login(sup, "sue")
    sup.post("/lang", data={"csrf_token": csrf_of(sup, "/supervisor/"), "lang": "en", "next": "/supervisor/"})
    send(sup, "anyone", "meeting at 10")
    for path, text in [("/supervisor/cases", "Case browser"), ("/supervisor/dnc", "Do-not-call list"),
                       ("/supervisor/appointments", "Overdue and missed appointments"),
                       ("/supervisor/quotas", "Quota per enterprise"),
                       (f"/supervisor/interviewers?uid={world['ann']}", "Sign-in history"),
                       (f"/supervisor/case/{world['case_ids'][0]}", "Sample fields")]:
        html = sup.get(path).get_data(as_text=True)
        assert text in html, path
        assert "个案浏览" not in html and "免打扰名单" not in html
    con = app.test_client()
    Console(con, "ann")
    con.post("/lang", data={"csrf_token": csrf_of(con, "/interviewer"), "lang": "en", "next": "/interviewer"})
    html = con.get("/interviewer").get_data(as_text=True)
    assert "My appointments" in html and "Inbound callback" in html and "meeting at 10" in html and "Read" in html
