"""The console through the Flask test client, the way its fetch() calls drive it: next case, dialing with the
call state streamed over SSE, answers stored one by one with routing/validation/back, outcome coding that
fits the call, appointments in respondent-local time, break-off and resume, pause/ready and counters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from cati.db import transaction
from cati.models import (
    Answer,
    Appointment,
    CallAttempt,
    Case,
    CaseStatus,
    Interview,
    InterviewStatus,
)
from cati.models.agents import AgentEvent, AgentState, AgentStatus
from cati.telephony.simulated import SimScript

from .conftest import Console, attempt_of, lunchtime_of_no_answers, wait_for


def script_all(backend, world, outcome="human", ring_s=0.2):
    for i in world["case_ids"]:
        backend.scripts[f"+86139{i:08d}"] = SimScript(outcome, ring_s=ring_s, amd_s=0.1)


def answered_call(console, session_factory):
    """Next case, dial, wait until a person answered (as the console sees it)."""
    case_id = console.post("/interviewer/next").get_json()["case_id"]
    call_id = console.post(f"/interviewer/case/{case_id}/dial").get_json()["call_id"]
    wait_for(lambda: attempt_of(session_factory, call_id).machine_detection == "HUMAN")
    return case_id, call_id


def start(console, session_factory, case_id):
    assert console.post(f"/interviewer/case/{case_id}/start").get_json()["ok"]
    with session_factory() as s:
        return s.scalar(select(Interview.id).where(Interview.case_id == case_id,
                                                   Interview.status == InterviewStatus.IN_PROGRESS))


def ans(console, interview_id, code, value=""):
    return console.post(f"/interviewer/interview/{interview_id}/answer", {"code": code, "value": value})


def stored(session_factory, interview_id):
    with session_factory() as s:
        rows = s.execute(select(Answer.question_code, Answer.value_code, Answer.value_text)
                         .where(Answer.interview_id == interview_id)).all()
    return {c: (v if v is not None else t) for c, v, t in rows if v is not None or t is not None}


def test_next_case_shows_enterprise_piped_intro_and_local_time(client, world):
    c = Console(client, "ann")
    r = c.post("/interviewer/next")
    assert r.get_json()["ok"]
    html = c.page()
    assert "我们受委托开展一项关于招商银行客服热线服务质量的独立调查" in html  # enterprise piped into the script
    assert "我是联信调研的访员王芳" in html
    assert "尚未拨打过" in html and world["tz"] in html


def test_call_state_is_streamed_over_sse(client, world, backend, session_factory):
    script_all(backend, world, ring_s=0.4)
    c = Console(client, "ann")
    case_id = c.post("/interviewer/next").get_json()["case_id"]
    call_id = c.post(f"/interviewer/case/{case_id}/dial").get_json()["call_id"]
    resp = client.get(f"/interviewer/call/{call_id}/events")
    assert resp.mimetype == "text/event-stream"
    states = []
    for chunk in resp.response:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        for line in text.splitlines():
            if line.startswith("data: "):
                states.append(json.loads(line[6:])["state"])
        if states and states[-1] == "answered":
            break
    resp.close()
    assert states[-1] == "answered" and "ringing" in states
    assert states.index("ringing") < states.index("answered")
    # Hang-up ends the call; the stream then reports "ended" and stops by itself.
    assert c.post(f"/interviewer/call/{call_id}/hangup").get_json()["ok"]
    body = client.get(f"/interviewer/call/{call_id}/events").get_data(as_text=True)
    assert '"state": "ended"' in body


def test_busy_line_is_coded_by_the_network_and_said_once(client, world, backend, session_factory):
    script_all(backend, world, outcome="busy")
    c = Console(client, "ann")
    case_id = c.post("/interviewer/next").get_json()["case_id"]
    call_id = c.post(f"/interviewer/case/{case_id}/dial").get_json()["call_id"]
    wait_for(lambda: attempt_of(session_factory, call_id).outcome == "3.12")
    html = c.page()
    assert "系统自动记录：3.12 占线" in html and "下一个样本" in html
    assert "系统自动记录" not in c.page()
    with session_factory() as s:
        assert s.get(Case, case_id).status == CaseStatus.READY  # released with its retry time


def test_answers_are_stored_at_once_with_validation_routing_and_back(client, world, backend, session_factory):
    script_all(backend, world)
    c = Console(client, "ann")
    case_id, _ = answered_call(c, session_factory)
    iid = start(c, session_factory, case_id)
    r = ans(c, iid, "INTRO").get_json()
    assert r["code"] == "CONSENT" and "是否同意接受本次访问" in r["html"]
    for code in ("CONSENT", "S1", "S2"):
        assert ans(c, iid, code, "1").get_json()["ok"]
    assert stored(session_factory, iid) == {"CONSENT": 1, "S1": 1, "S2": 1}  # each stored on its own POST
    bad = ans(c, iid, "A1", "7")
    assert bad.status_code == 422 and "请输入" in bad.get_json()["error"] and "7" in bad.get_json()["error"]
    assert "A1" not in stored(session_factory, iid)
    for code, v in zip(["A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "C1", "C2", "C3", "C4"],
                       "543215894321", strict=True):
        assert ans(c, iid, code, v).get_json()["ok"]
    r = ans(c, iid, "D0", "2").get_json()
    assert r["code"] == "E1"  # no follow-up needed: D1–D3 skipped
    r = c.post(f"/interviewer/interview/{iid}/back").get_json()
    assert r["code"] == "D0" and "chosen" in r["html"]  # back lands on D0 (not D3), showing the answer
    r = ans(c, iid, "D0", "1").get_json()
    assert r["code"] == "D1"  # changed routing: D1–D3 now asked
    # Skipping ahead with a hand-made request is refused and changes nothing.
    assert ans(c, iid, "Q0", "5").status_code == 409
    assert ans(c, iid, "END").status_code == 409
    with session_factory() as s:
        assert s.get(Interview, iid).status == InterviewStatus.IN_PROGRESS
    got = stored(session_factory, iid)
    assert got["B3"] == 8 and got["B4"] == 9 and got["D0"] == 1 and "Q0" not in got


def _finish(c, iid):
    seq = [("D1", "3"), ("D2", "4"), ("D3", "5"), ("E1", "5"), ("E2", "5"), ("E3", "5"), ("F1", "4"), ("F2", "4"),
           ("F3", "4"), ("F4", "4"), ("Q0", "4"), ("CB1", "2"), ("OPEN1", "希望缩短等待时间"), ("P1", "2"),
           ("P2", "3"), ("P3", "1")]
    for code, v in seq:
        r = ans(c, iid, code, v)
        assert r.status_code == 200, (code, r.get_json())
    return ans(c, iid, "END").get_json()


def test_complete_is_recorded_at_the_end_and_counted(client, world, backend, session_factory):
    script_all(backend, world)
    c = Console(client, "ann")
    case_id, call_id = answered_call(c, session_factory)
    iid = start(c, session_factory, case_id)
    ans(c, iid, "INTRO")
    for code, v in zip(["CONSENT", "S1", "S2", "A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "C1", "C2", "C3",
                        "C4", "D0"], "1115432158943211", strict=True):
        ans(c, iid, code, v)
    r = _finish(c, iid)
    assert r["done"] == "complete"
    with session_factory() as s:
        interview = s.get(Interview, iid)
        assert interview.status == InterviewStatus.COMPLETE and interview.disposition == "1.1"
        assert s.get(Case, case_id).final_disposition == "1.1"
        attempt = s.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))
        assert attempt.outcome == "1.1"
    wait_for(lambda: attempt_of(session_factory, call_id).status.value == "ended")  # the call was hung up
    status = client.get("/interviewer/status").get_json()
    assert (status["dials"], status["contacts"], status["completes"]) == (1, 1, 1)
    assert status["status"] == "ready"
    assert "访问已完成并保存" in c.page()


def test_consent_refused_ends_the_interview_after_confirmation(client, world, backend, session_factory):
    script_all(backend, world)
    c = Console(client, "ann")
    case_id, _ = answered_call(c, session_factory)
    iid = start(c, session_factory, case_id)
    ans(c, iid, "INTRO")
    r = ans(c, iid, "CONSENT", "2").get_json()
    assert 'data-termination="1"' in r["html"] and "2.112" in r["html"]
    r = c.post(f"/interviewer/interview/{iid}/back").get_json()  # Backspace: correct the key
    assert r["code"] == "CONSENT" and 'data-termination="0"' in r["html"]
    ans(c, iid, "CONSENT", "2")
    # A refusal needs its reason: the plain confirmation is refused and points to the outcome panel.
    r = c.post(f"/interviewer/interview/{iid}/terminate")
    assert r.status_code == 422 and r.get_json()["outcome_panel"] == "2.112"
    with session_factory() as s:
        assert s.get(Interview, iid).status == InterviewStatus.IN_PROGRESS
    r = c.post(f"/interviewer/case/{case_id}/outcome", {"outcome": "2.112", "refusal_reason": "busy", "note": "开会"})
    assert r.get_json()["ok"]
    with session_factory() as s:
        assert s.get(Interview, iid).status == InterviewStatus.TERMINATED
        assert s.get(Case, case_id).final_disposition == "2.112"


def test_outcome_choices_fit_the_call(client, world, backend, session_factory):
    script_all(backend, world, outcome="noanswer", ring_s=0.3)  # rang 0.3 s: too short for the network's 3.13
    c = Console(client, "ann")
    case_id = c.post("/interviewer/next").get_json()["case_id"]
    call_id = c.post(f"/interviewer/case/{case_id}/dial").get_json()["call_id"]
    wait_for(lambda: attempt_of(session_factory, call_id).status.value == "ended")
    html = c.page()
    assert 'value="3.13"' in html and 'value="2.112"' not in html and 'value="1.1"' not in html
    r = c.post(f"/interviewer/case/{case_id}/outcome", {"outcome": "2.112", "refusal_reason": "busy", "note": "x"})
    assert r.status_code == 422 and "不符" in r.get_json()["error"]
    assert c.post(f"/interviewer/case/{case_id}/outcome", {"outcome": "3.13"}).get_json()["ok"]
    with session_factory() as s:
        assert s.scalar(select(CallAttempt.outcome).where(CallAttempt.call_id == call_id)) == "3.13"
        case = s.get(Case, case_id)
        assert case.status == CaseStatus.READY and case.next_call_at > datetime.now(UTC) + timedelta(hours=2)


def test_answered_call_offers_contact_codes_only(client, world, backend, session_factory):
    script_all(backend, world)
    c = Console(client, "ann")
    case_id, _ = answered_call(c, session_factory)
    html = c.page()
    assert 'value="2.21"' in html and 'value="2.112"' in html
    assert 'value="3.13"' not in html and 'value="3.12"' not in html and 'value="2.12"' not in html
    r = c.post(f"/interviewer/case/{case_id}/outcome", {"outcome": "3.13"})
    assert r.status_code == 422
    # A refusal needs its reason, and 2.112 a note.
    r = c.post(f"/interviewer/case/{case_id}/outcome", {"outcome": "2.112"})
    err = r.get_json()["error"]
    assert "请选择拒访原因" in err and "必须填写备注" in err
    r = c.post(f"/interviewer/case/{case_id}/outcome",
               {"outcome": "2.112", "refusal_reason": "too_long", "note": "说太忙"})
    assert r.get_json()["ok"]
    with session_factory() as s:
        assert s.get(Case, case_id).final_disposition == "2.112"


def test_appointment_in_respondent_local_time_inside_the_window(client, world, backend, session_factory):
    script_all(backend, world)
    c = Console(client, "ann")
    case_id, _ = answered_call(c, session_factory)
    tz = ZoneInfo(world["tz"])
    tomorrow = (datetime.now(UTC).astimezone(tz) + timedelta(days=1)).date()
    url = f"/interviewer/case/{case_id}/outcome"
    assert "需要预约时间" in c.post(url, {"outcome": "2.21"}).get_json()["error"]
    r = c.post(url, {"outcome": "2.21", "appt_date": tomorrow.isoformat(), "appt_time": "03:00"})
    assert "不在允许拨打的时段" in r.get_json()["error"]
    r = c.post(url, {"outcome": "2.21", "appt_date": "2020-01-01", "appt_time": "10:00"})
    assert "不能早于现在" in r.get_json()["error"]
    r = c.post(url, {"outcome": "2.21", "appt_date": tomorrow.isoformat(), "appt_time": "10:00",
                     "note": "客户说明天上午方便"})
    assert r.get_json()["ok"]
    expected = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 10, 0, tzinfo=tz).astimezone(UTC)
    with session_factory() as s:
        appt = s.scalars(select(Appointment).where(Appointment.case_id == case_id)).one()
        assert appt.due_at == expected and appt.interviewer_id == world["ann"]
        assert appt.note == "客户说明天上午方便"
        case = s.get(Case, case_id)
        assert case.status == CaseStatus.READY and case.next_call_at == expected


def test_quick_appointment_choices_are_inside_the_calling_window(client, world, backend, session_factory):
    script_all(backend, world)
    c = Console(client, "ann")
    answered_call(c, session_factory)
    html = c.page()
    from cati.services.calling import CallRules, in_window

    rules = CallRules()
    tz = ZoneInfo(world["tz"])
    import re

    quick = re.findall(r'data-date="([\d-]+)" data-time="([\d:]+)"', html)
    assert len(quick) >= 2
    for d, t in quick:
        when = datetime.fromisoformat(f"{d}T{t}").replace(tzinfo=tz).astimezone(UTC)
        assert in_window(when, world["tz"], rules), (d, t)
        assert when > datetime.now(UTC)


def test_break_off_keeps_answers_and_the_next_call_resumes_at_the_right_question(client, world, backend,
                                                                                  session_factory):
    script_all(backend, world)
    c = Console(client, "ann")
    case_id, _ = answered_call(c, session_factory)
    iid = start(c, session_factory, case_id)
    ans(c, iid, "INTRO")
    for code, v in zip(["CONSENT", "S1", "S2", "A1", "A2"], "11154", strict=True):
        ans(c, iid, code, v)
    r = c.post(f"/interviewer/case/{case_id}/outcome", {"outcome": "2.12", "note": "客户要开会"})
    assert r.get_json()["ok"]
    with session_factory() as s:
        assert s.get(Interview, iid).status == InterviewStatus.PARTIAL
    assert stored(session_factory, iid) == {"CONSENT": 1, "S1": 1, "S2": 1, "A1": 5, "A2": 4}
    # Later: the case is due again (others stopped so it is the one served).
    with transaction(session_factory) as s:
        s.execute(update(Case).where(Case.id != case_id).values(status=CaseStatus.STOPPED))
        s.execute(update(Case).where(Case.id == case_id).values(next_call_at=datetime.now(UTC) - timedelta(minutes=1)))
    assert c.post("/interviewer/next").get_json()["case_id"] == case_id
    assert "将从第 7 题继续（已保存 5 个回答）" in c.page()
    call_id = c.post(f"/interviewer/case/{case_id}/dial").get_json()["call_id"]
    wait_for(lambda: attempt_of(session_factory, call_id).machine_detection == "HUMAN")
    assert start(c, session_factory, case_id) == iid
    html = c.page()
    assert 'data-code="A3"' in html
    assert ans(c, iid, "A3", "3").get_json()["code"] == "A4"


def test_grid_mode_shows_the_rating_block_and_moves_row_by_row(client, world, backend, session_factory):
    script_all(backend, world)
    c = Console(client, "ann")
    case_id, _ = answered_call(c, session_factory)
    iid = start(c, session_factory, case_id)
    assert c.post("/interviewer/prefs", {"grid": "1"}).get_json()["ok"]
    ans(c, iid, "INTRO")
    for code in ("CONSENT", "S1"):
        ans(c, iid, code, "1")
    html = ans(c, iid, "S2", "1").get_json()["html"]
    assert 'class="grid"' in html and all(f'data-code="{q}"' in html for q in ("A1", "A2", "A3", "A4"))
    html = ans(c, iid, "A1", "5").get_json()["html"]
    assert 'class="current" data-code="A2"' in html  # the cursor moved down a row, A1 shows its answer
    assert stored(session_factory, iid)["A1"] == 5


def test_pause_with_reason_then_ready_is_stored_for_supervisors(client, world, session_factory):
    c = Console(client, "ann")
    assert c.post("/interviewer/state", {"status": "paused", "reason": "training"}).get_json()["ok"]
    assert c.post("/interviewer/next").status_code == 409  # no cases while paused
    assert "培训" in c.page()
    assert c.post("/interviewer/state", {"status": "ready"}).get_json()["ok"]
    with session_factory() as s:
        st = s.get(AgentState, world["ann"])
        assert st.status == AgentStatus.READY and st.pause_reason is None
        events = s.execute(select(AgentEvent.status, AgentEvent.reason).where(AgentEvent.user_id == world["ann"])
                           .order_by(AgentEvent.id)).all()
    assert [(e.value, r) for e, r in events][-2:] == [("paused", "training"), ("ready", None)]


@pytest.mark.parametrize("lang,text", [("en", "Do you agree to take part"), ("zh-CN", "是否同意接受本次访问")])
def test_questions_in_the_chosen_language(client, world, backend, session_factory, lang, text):
    script_all(backend, world)
    c = Console(client, "ann")
    c.post("/lang", {"lang": lang})
    case_id, _ = answered_call(c, session_factory)
    iid = start(c, session_factory, case_id)
    assert text in ans(c, iid, "INTRO").get_json()["html"]


def test_progressive_mode_dials_the_next_case_at_once(client, world, backend, session_factory):
    script_all(backend, world)
    c = Console(client, "ann")
    assert c.post("/interviewer/prefs", {"dial_mode": "progressive"}).get_json()["ok"]
    assert 'data-auto-next="1"' in c.page()  # the idle console asks for the next case by itself
    r = c.post("/interviewer/next").get_json()
    assert r["ok"] and r["call_id"]
    with session_factory() as s:
        attempt = s.scalar(select(CallAttempt).where(CallAttempt.call_id == r["call_id"]))
        assert attempt.mode == "progressive" and attempt.interviewer_id == world["ann"]
        assert s.get(AgentState, world["ann"]).status == AgentStatus.DIALING


def test_no_interview_starts_before_the_machine_detection_verdict(client, world, backend, session_factory):
    """Answered while AMD still listens: the console shows "checking", refuses to start the interview (even a
    hand-made request), and offers it once a person is confirmed."""
    for i in world["case_ids"]:
        backend.scripts[f"+86139{i:08d}"] = SimScript("human", ring_s=0.1, amd_s=2.5)
    c = Console(client, "ann")
    case_id = c.post("/interviewer/next").get_json()["case_id"]
    call_id = c.post(f"/interviewer/case/{case_id}/dial").get_json()["call_id"]
    wait_for(lambda: attempt_of(session_factory, call_id).answered_at is not None)
    assert attempt_of(session_factory, call_id).machine_detection is None
    html = c.page()
    assert "正在识别是否真人" in html
    assert 'id="btn-start"' not in html
    r = c.post(f"/interviewer/case/{case_id}/start")
    assert r.status_code == 409 and not r.get_json()["ok"]
    with session_factory() as s:
        assert s.scalar(select(Interview.id).where(Interview.case_id == case_id)) is None
    wait_for(lambda: attempt_of(session_factory, call_id).machine_detection == "HUMAN", timeout=10)
    assert 'id="btn-start"' in c.page()
    assert start(c, session_factory, case_id)


def test_the_browser_case_a_new_interviewer_gets_a_case_while_fresh_sample_is_deferred(client, world,
                                                                                       session_factory):
    """Issue 20's browser session through the console: after a lunchtime of no answers the default rules defer
    fresh sample to the evening, and an interviewer who has never dialed still gets a case at once."""
    deferral = lunchtime_of_no_answers(session_factory, world)
    assert deferral.cases >= 300  # the preference is at work: the fresh cases are deferred …
    r = Console(client, "bob").post("/interviewer/next").get_json()
    assert r["ok"] and r["case_id"], r  # … and nobody is told to wait for 17:30


def test_a_supervisors_pause_mid_interview_outlives_the_interview(client, world, backend, session_factory):
    """Paused by a supervisor during the interview: the console page (reloaded) keeps the pause, the interview in
    hand is completed, and afterwards the interviewer is still paused (no next case) until she says she is ready —
    before, rendering the interview set her back to talking and the end of the call to ready: the pause was lost."""
    from cati.models import Role
    from cati.services import agents
    from tests import factories as fx

    script_all(backend, world)
    with transaction(session_factory) as s:
        sup = fx.user(s, Role.SUPERVISOR, username="sup1").id
    c = Console(client, "ann")
    case_id, _call = answered_call(c, session_factory)
    iid = start(c, session_factory, case_id)
    ans(c, iid, "INTRO")
    ans(c, iid, "CONSENT", "1")
    with transaction(session_factory) as s:
        agents.pause_by_supervisor(s, world["ann"], datetime.now(UTC), reason="training", by=sup)
    assert 'data-mode="interview"' in c.page()  # a reload mid-interview: the interview goes on ...
    with session_factory() as s:
        assert s.get(AgentState, world["ann"]).status == AgentStatus.PAUSED  # ... and the pause stays
    for code, v in zip(["S1", "S2", "A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "C1", "C2", "C3", "C4", "D0"],
                       "115432158943211", strict=True):
        ans(c, iid, code, v)
    assert _finish(c, iid)["done"] == "complete"
    with session_factory() as s:
        st = s.get(AgentState, world["ann"])
        assert (st.status, st.pause_reason, st.paused_by_id) == (AgentStatus.PAUSED, "training", sup)
    html = c.page()
    assert 'id="btn-ready"' in html and "培训" in html
    assert c.post("/interviewer/next").status_code == 409
