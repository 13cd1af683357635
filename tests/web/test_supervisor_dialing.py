"""Supervisor controls of predictive dialing (issue 18): the study's dialing mode and abandon target, the hard
3 % ceiling only an admin raises (a supervisor's attempt is refused in both languages and audited), and the
board's dial level, abandon rates and 80 % alert."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cati.db import transaction
from cati.models import AuditLog, CallAttempt, Role, Study
from cati.models.agents import AgentState, AgentStatus
from cati.models.calls import AttemptStatus
from cati.services.dialing import settings_of
from cati.services.dispositions import catalogue
from cati.services.scheduling import rules_for

from . import test_supervisor as _sup
from .conftest import csrf_of, fast_user, login
from .test_supervisor import post

# The supervisor screens' world (console world, an analyst), shared with test_supervisor.
sup_app = _sup.sup_app
sworld = _sup.sworld


def _settings(session_factory, study_id):
    with session_factory() as s:
        return settings_of(s.get(Study, study_id))


def _lang(client, lang):
    client.post("/lang", data={"lang": lang, "next": "/supervisor/dialing",
                               "csrf_token": csrf_of(client, "/supervisor/dialing")})


def test_a_supervisor_sets_the_mode_and_target_analysts_only_look(client, sworld, session_factory):
    sid = sworld["study_id"]
    assert _settings(session_factory, sid).mode == "preview"
    login(client, "ana")
    html = client.get("/supervisor/dialing").get_data(as_text=True)
    assert "预览拨号" in html and 'id="dialing-form"' not in html  # analysts look, never act
    assert post(client, "/supervisor/dialing", {"mode": "predictive", "target": "2"}).status_code == 403
    client.post("/logout", data={"csrf_token": csrf_of(client, "/supervisor/")})

    login(client, "sue")
    assert client.post("/supervisor/dialing", data={"mode": "predictive", "target": "2"}).status_code == 400  # CSRF
    assert _settings(session_factory, sid).mode == "preview"
    r = post(client, "/supervisor/dialing", {"mode": "predictive", "target": "2.5"}, page="/supervisor/dialing")
    assert r.status_code == 302
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "已保存：预测拨号，放弃率目标 2.5%，上限 3%" in html
    got = _settings(session_factory, sid)
    assert (got.mode, got.target, got.ceiling) == ("predictive", 0.025, 0.03)
    with session_factory() as s:
        study = s.get(Study, sid)
        assert rules_for(study).dialing_mode == "predictive"  # a new study version: every process sees it
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "study.dialing")).one()
        assert entry.before["mode"] == "preview" and entry.after == {
            "mode": "predictive", "abandon_target": 0.025, "abandon_ceiling": 0.03}
    board = client.get("/supervisor/").get_data(as_text=True)
    assert "预测拨号" in board and "放弃率目标 2.5%，上限 3%" in board and 'id="dial-level"' in board


def test_only_an_admin_raises_the_ceiling(client, sworld, session_factory):
    sid = sworld["study_id"]
    login(client, "sue")
    r = post(client, "/supervisor/dialing", {"mode": "predictive", "target": "4"}, page="/supervisor/dialing")
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "放弃率不得超过 3% 的上限（请求 4%）：只有管理员可以提高上限" in html
    # A ceiling field in the form is ignored for supervisors: they cannot raise it that way either.
    _lang(client, "en")
    r = post(client, "/supervisor/dialing", {"mode": "predictive", "target": "5", "ceiling": "6"},
             page="/supervisor/dialing")
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "may not pass the 3% ceiling (asked for 5%): only an admin can raise the ceiling" in html
    assert 'name="ceiling"' not in html
    got = _settings(session_factory, sid)
    assert (got.mode, got.target, got.ceiling) == ("preview", 0.03, 0.03)  # nothing changed
    with session_factory() as s:
        refused = s.scalars(select(AuditLog).where(AuditLog.action == "study.dialing_refused")
                            .order_by(AuditLog.id)).all()
        assert [a.after["abandon_target"] for a in refused] == [0.04, 0.05]
        assert refused[0].user_id == sworld["sue"]
    # Bad input: a clear message, nothing saved.
    r = post(client, "/supervisor/dialing", {"mode": "predictive", "target": "two"}, page="/supervisor/dialing")
    assert "must be a percentage such as 2.5 (got: two)" in client.get(r.headers["Location"]).get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_of(client, "/supervisor/")})

    with transaction(session_factory) as s:
        fast_user(s, "root", Role.ADMIN)
    login(client, "root")
    html = client.get("/supervisor/dialing").get_data(as_text=True)
    assert 'name="ceiling"' in html
    r = post(client, "/supervisor/dialing", {"mode": "predictive", "target": "4", "ceiling": "5"},
             page="/supervisor/dialing")
    assert r.status_code == 302
    got = _settings(session_factory, sid)
    assert (got.target, got.ceiling) == (0.04, 0.05)
    client.post("/logout", data={"csrf_token": csrf_of(client, "/supervisor/")})
    # Under the admin's new ceiling, a supervisor may move the target.
    login(client, "sue")
    post(client, "/supervisor/dialing", {"mode": "predictive", "target": "4.5"}, page="/supervisor/dialing")
    assert _settings(session_factory, sid).target == 0.045


def _predictive_calls(session_factory, case_id, *, connected=0, abandoned=0, in_flight=0, iv=None):
    now = datetime.now(UTC) - timedelta(seconds=30)
    code = catalogue().code_for("abandoned")
    with transaction(session_factory) as s:
        for kind, n in (("connected", connected), ("abandoned", abandoned), ("flight", in_flight)):
            for _ in range(n):
                s.add(CallAttempt(
                    call_id=str(uuid.uuid4()), case_id=case_id, backend="simulated", mode="predictive",
                    requested_at=now, interviewer_id=iv if kind == "connected" else None,
                    status=AttemptStatus.RINGING if kind == "flight" else AttemptStatus.ENDED,
                    outcome=code if kind == "abandoned" else None,
                    outcome_source="dialer" if kind == "abandoned" else None))


def test_the_board_shows_dial_level_abandon_rates_and_the_alert(client, sworld, session_factory):
    case = sworld["case_ids"][0]
    login(client, "sue")
    post(client, "/supervisor/dialing", {"mode": "predictive", "target": "3"}, page="/supervisor/dialing")
    with transaction(session_factory) as s:
        for uid in (sworld["ann"], sworld["bob"]):
            s.add(AgentState(user_id=uid, status=AgentStatus.READY))
    # 49 connected, 1 abandoned: 2.0 % of 50 answered by a person, under 80 % of 3 % (2.4 %): no alert.
    _predictive_calls(session_factory, case, connected=49, abandoned=1, in_flight=3, iv=sworld["ann"])
    html = client.get("/supervisor/").get_data(as_text=True)
    assert "就绪访员 2 人，在拨电话 3 通（拨号水平 1.5）" in html
    assert "今日放弃率 2.0%（1/50 真人接听）" in html and "最近一小时 2.0%（1/50）" in html
    assert 'id="abandon-alert"' not in html
    # One more abandon: 2 of 51 = 3.9 %, past 2.4 %: the alert, in both languages.
    _predictive_calls(session_factory, case, abandoned=1)
    html = client.get("/supervisor/").get_data(as_text=True)
    assert "警告：今日放弃率 3.9% 已超过目标 3% 的 80%" in html and "pace-late" in html
    _lang(client, "en")
    html = client.get("/supervisor/dialing").get_data(as_text=True)
    assert "Alert: today&#39;s abandon rate 3.9% has passed 80% of the 3% target" in html
    assert "Abandon rate today 3.9% (2 of 51 answered by a person)" in html
    # The analyst sees the same board (the browser keeps its language across sign-ins).
    client.post("/logout", data={"csrf_token": csrf_of(client, "/supervisor/")})
    login(client, "ana")
    assert "Alert: today&#39;s abandon rate 3.9%" in client.get("/supervisor/").get_data(as_text=True)
