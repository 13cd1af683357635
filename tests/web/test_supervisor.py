"""The supervisor screens through the Flask test client: roles, CSRF, masking, the live board stream, export,
and each action reaching the database (and the audit log)."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from cati.db import transaction
from cati.models import (
    Appointment,
    AuditLog,
    Case,
    CaseStatus,
    Enterprise,
    Interview,
    QCStatus,
    Role,
    Study,
)
from cati.models.agents import AgentState, AgentStatus
from cati.services import agents
from cati.services.interviews import complete_interview, save_answers, start_interview
from cati.services.scheduling import next_case
from tests import factories

from .conftest import csrf_of, login, lunchtime_of_no_answers

FULL = {"INTRO": None, "CONSENT": 1, "S1": 1, "S2": 1, **{c: [4, 5, 3][i % 3] for i, c in enumerate(
    "A1 A2 A3 A4 B1 B2 B3 B4 C1 C2 C3 C4".split())}, "D0": 2, **{c: 5 for c in "E1 E2 E3 F1 F2 F3 F4".split()},
    "Q0": 4, "CB1": 1, "OPEN1": "无", "P1": 2, "P2": 3, "P3": 1, "END": None}


@pytest.fixture
def sup_app(console_app):
    return console_app


@pytest.fixture
def sworld(sup_app, world, session_factory):
    """The console world plus: a second replicate of 3 unreleased cases and an analyst."""
    with transaction(session_factory) as s:
        st = s.get(Study, world["study_id"])
        ent = s.get(Enterprise, world["enterprise_id"])
        world["unreleased"] = factories.cases(s, st, ent, 3, status=CaseStatus.UNRELEASED, replicate=2,
                                              timezone=world["tz"])
        world["ana"] = quick_user(s, "ana", Role.ANALYST)
    return world


_HASH: list[str] = []


def quick_user(s, username: str, role: Role) -> int:
    """A user with the password 'password-123', hashed once per test run (argon2 costs ~1 s on a busy box)."""
    from cati.models import User
    from cati.services.users import hash_password

    if not _HASH:
        _HASH.append(hash_password("password-123"))
    u = User(username=username, display_name=username, password_hash=_HASH[0], role=role)
    s.add(u)
    s.flush()
    return u.id


def complete_one(factory, study_id, interviewer_id) -> int:
    now = datetime.now(UTC)
    with transaction(factory) as s:
        st = s.get(Study, study_id)
        claim = next_case(s, st, interviewer_id, now)
        iv = start_interview(s, s.get(Case, claim.case_id), interviewer_id, now - timedelta(minutes=9))
        save_answers(s, iv, FULL, user_id=interviewer_id, now=now)
        complete_interview(s, iv, now, user_id=interviewer_id)
        return iv.id


def post(client, path, data=None, page="/supervisor/"):
    return client.post(path, data={**(data or {}), "csrf_token": csrf_of(client, page)})


def test_roles_and_csrf(client, sworld):
    assert client.get("/supervisor/").status_code == 302  # signed out → login
    login(client, "ann")
    assert client.get("/supervisor/").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_of(client, "/interviewer")})
    login(client, "ana")
    assert client.get("/supervisor/").status_code == 200
    # Analysts look, never act.
    assert post(client, f"/supervisor/enterprise/{sworld['enterprise_id']}/release").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_of(client, "/supervisor/")})
    login(client, "sue")
    r = client.post(f"/supervisor/enterprise/{sworld['enterprise_id']}/release")  # no token
    assert r.status_code == 400


def test_numbers_masked_for_analysts_and_shown_to_supervisors_in_a_case(client, sworld, session_factory):
    cid = sworld["case_ids"][0]
    with session_factory() as s:
        number = s.get(Case, cid).phones[0].e164
    national = number[3:]
    login(client, "ana")
    html = client.get(f"/supervisor/case/{cid}").get_data(as_text=True)
    assert national not in html and f"{national[:3]}****{national[-4:]}" in html
    client.post("/logout", data={"csrf_token": csrf_of(client, "/supervisor/")})
    login(client, "sue")
    assert national not in client.get("/supervisor/sample").get_data(as_text=True)
    html = client.get(f"/supervisor/case/{cid}").get_data(as_text=True)
    assert national in html
    with session_factory() as s:
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "case.open"))
        assert entry.user_id == sworld["sue"] and entry.entity_id == str(cid)


def test_board_filters_and_times_itself(client, sworld, session_factory):
    with transaction(session_factory) as s:
        st = s.get(Study, sworld["study_id"])
        factories.enterprise(s, st, name="平安保险", industry_name="保险")
    login(client, "sue")
    r = client.get("/supervisor/")
    html = r.get_data(as_text=True)
    assert "招商银行" in html and "平安保险" in html
    assert re.match(r"app;dur=\d+(\.\d)?", r.headers["Server-Timing"])
    html = client.get("/supervisor/?industry=保险").get_data(as_text=True)
    assert "平安保险" in html and "招商银行" not in html
    shown_rows = html.count('<tr data-eid="')
    assert f'data-total="enterprises">{shown_rows}<' in html and "按当前搜索与筛选汇总" in html  # cards follow filters
    html = client.get("/supervisor/?sort=phone").get_data(as_text=True)  # a bad sort key is explained, not a 500
    assert "未知的列" in html


def test_xlsx_export_has_the_board(client, sworld):
    from openpyxl import load_workbook

    login(client, "sue")
    r = client.get("/supervisor/board.xlsx")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.data))
    rows = list(wb["配额进度"].iter_rows(values_only=True))
    assert rows[1][1] == "招商银行" and rows[1][4:6] == (0, 20) and rows[1][9] == 3  # 3 unreleased
    assert {"行业", "地区"} <= set(wb.sheetnames) and "预计缺口" in rows[0]


def _events(resp):
    """Parse server-sent events from a streamed test-client response, one at a time."""
    buf = ""
    for chunk in resp.response:
        buf += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buf:
            block, buf = buf.split("\n\n", 1)
            name = re.search(r"^event: (\w+)$", block, re.M)
            data = re.search(r"^data: (.*)$", block, re.M)
            if name and data:
                yield name.group(1), json.loads(data.group(1))


def test_stream_sends_the_board_then_only_changed_rows(client, sworld, session_factory):
    with transaction(session_factory) as s:
        st = s.get(Study, sworld["study_id"])
        other = factories.enterprise(s, st, name="平安保险", industry_name="保险").id
    login(client, "sue")
    resp = client.get("/supervisor/stream?what=board&max=20&interval=0.05", buffered=False)
    events = _events(resp)
    name, first = next(events)
    assert name == "board" and {r["eid"] for r in first["rows"]} == {sworld["enterprise_id"], other}
    complete_one(session_factory, sworld["study_id"], sworld["ann"])  # an interviewer completes meanwhile
    name, second = next(events)
    assert [r["eid"] for r in second["rows"]] == [sworld["enterprise_id"]]
    assert second["rows"][0]["completes"] == 1 and second["totals"]["completes"] == 1
    resp.close()


def test_release_from_the_board(client, sworld, session_factory):
    login(client, "sue")
    r = post(client, f"/supervisor/enterprise/{sworld['enterprise_id']}/release", {"next": "/supervisor/?only=open"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/supervisor/?only=open")
    with session_factory() as s:
        assert {s.get(Case, c).status for c in sworld["unreleased"]} == {CaseStatus.READY}
    html = client.get("/supervisor/").get_data(as_text=True)
    assert "已释放 3 个样本" in html
    r = post(client, f"/supervisor/enterprise/{sworld['enterprise_id']}/release")
    assert "没有可释放" in client.get("/supervisor/").get_data(as_text=True)


def test_stop_enterprise_and_outside_redirects_refused(client, sworld, session_factory):
    login(client, "sue")
    r = post(client, f"/supervisor/enterprise/{sworld['enterprise_id']}/status",
             {"action": "stop", "next": "https://evil.example/"})
    assert r.headers["Location"].endswith("/supervisor/")
    with session_factory() as s:
        assert s.get(Enterprise, sworld["enterprise_id"]).status.value == "stopped"


def test_appointment_move_and_case_actions(client, sworld, session_factory):
    a, b = sworld["case_ids"][:2]
    with transaction(session_factory) as s:
        appt = Appointment(study_id=sworld["study_id"], case_id=a, interviewer_id=sworld["ann"],
                           due_at=datetime.now(UTC) + timedelta(hours=1))
        s.add(appt)
        s.flush()
        appt_id = appt.id
    login(client, "sue")
    post(client, f"/supervisor/appointments/{appt_id}/move", {"to": str(sworld["bob"]), "due_at": ""},
         "/supervisor/sample")
    post(client, f"/supervisor/case/{b}/reassign", {"to": str(sworld["bob"])}, "/supervisor/sample")
    post(client, f"/supervisor/case/{b}/stop", {}, "/supervisor/sample")
    with session_factory() as s:
        assert s.get(Appointment, appt_id).interviewer_id == sworld["bob"]
        case_b = s.get(Case, b)
        assert case_b.assigned_to_id == sworld["bob"] and case_b.status == CaseStatus.STOPPED
        acts = s.scalars(select(AuditLog.action).where(AuditLog.action != "case.open")).all()
        assert acts == ["appointment.move", "case.reassign", "case.stop"]


def test_sample_page_lists_the_earliest_appointments_and_links_to_the_rest(client, sworld, session_factory):
    from cati.web.supervisor.sample import SAMPLE_PAGE_APPOINTMENTS

    n = SAMPLE_PAGE_APPOINTMENTS + 3
    cases = sworld["case_ids"]
    start = datetime.now(UTC) + timedelta(hours=1)
    with transaction(session_factory) as s:
        s.add_all(Appointment(study_id=sworld["study_id"], case_id=cases[i % len(cases)], interviewer_id=sworld["ann"],
                              due_at=start + timedelta(minutes=i)) for i in range(n))
    login(client, "sue")
    html = client.get("/supervisor/sample").get_data(as_text=True)
    table = html.split('id="appointments"', 1)[1].split("</table>", 1)[0]
    assert table.count("data-appt=") == SAMPLE_PAGE_APPOINTMENTS
    more = html.split('id="appointments-more"', 1)[1].split("</p>", 1)[0]
    assert f"共 {n} 个" in more and "/supervisor/appointments" in more


def test_dnc_from_the_sample_page(client, sworld, session_factory):
    cid = sworld["case_ids"][2]
    with session_factory() as s:
        number = s.get(Case, cid).phones[0].e164
    login(client, "sue")
    post(client, "/supervisor/dnc", {"numbers": f"{number[3:]}\nabc", "reason": "投诉"}, "/supervisor/sample")
    html = client.get("/supervisor/sample").get_data(as_text=True)
    assert "已加入 1 个号码，停止 1 个样本" in html and "未能识别" in html
    with session_factory() as s:
        assert s.get(Case, cid).status == CaseStatus.STOPPED


def test_qc_reject_frees_the_slot(client, sworld, session_factory):
    with transaction(session_factory) as s:
        s.execute(update(Enterprise).values(quota_target=1))
    iid = complete_one(session_factory, sworld["study_id"], sworld["ann"])
    login(client, "sue")
    assert "过快" not in client.get("/supervisor/qc").get_data(as_text=True)  # too few completes for a median
    post(client, f"/supervisor/qc/{iid}/reject", {"note": ""}, "/supervisor/qc")
    assert "驳回必须填写原因" in client.get("/supervisor/qc").get_data(as_text=True)
    post(client, f"/supervisor/qc/{iid}/reject", {"note": "回访否认"}, "/supervisor/qc")
    with session_factory() as s:
        assert s.get(Interview, iid).qc_status == QCStatus.REJECTED
        assert s.get(Enterprise, sworld["enterprise_id"]).completes == 0
        assert s.scalar(select(Case.id).where(Case.final_disposition == "4.80")) is None
    assert "重新开放 4 个配额已满样本" in client.get("/supervisor/qc").get_data(as_text=True)


def test_edit_answer_needs_a_reason_and_is_audited(client, sworld, session_factory):
    iid = complete_one(session_factory, sworld["study_id"], sworld["ann"])
    with session_factory() as s:
        cid = s.get(Interview, iid).case_id
    login(client, "sue")
    page = f"/supervisor/case/{cid}"
    post(client, f"/supervisor/interview/{iid}/answer", {"question": "B2", "value": "2", "reason": ""}, page)
    assert "必须填写原因" in client.get(page).get_data(as_text=True)
    post(client, f"/supervisor/interview/{iid}/answer", {"question": "B2", "value": "7", "reason": "x"}, page)
    assert "B2:" in client.get(page).get_data(as_text=True)  # invalid code explained
    post(client, f"/supervisor/interview/{iid}/answer", {"question": "B2", "value": "2", "reason": "录音核实"}, page)
    html = client.get(page).get_data(as_text=True)
    assert "答案已修改并记入审计日志" in html and "录音核实" in html
    row = html.split('data-q="B2"', 1)[1].split("</tr>", 1)[0]
    assert "B2" in row and "muted small" in row  # the question's text beside its code, not the code alone
    with session_factory() as s:
        e = s.scalar(select(AuditLog).where(AuditLog.action == "answer.change"))
        assert (e.before["code"], e.after["code"], e.user_id) == (3, 2, sworld["sue"])  # B2 was keyed 3


def test_interviewers_live_pause_sign_out_and_listen(client, sworld, session_factory, backend):
    now = datetime.now(UTC)
    with transaction(session_factory) as s:
        agents.begin_shift(s, sworld["ann"], now - timedelta(minutes=30))
        agents.set_state(s, sworld["ann"], AgentStatus.TALKING, now - timedelta(minutes=2),
                         case_id=sworld["case_ids"][0], call_id="call-xyz")
        s.get(factories.User, sworld["sue"]).extension = "9001"
    login(client, "sue")
    html = client.get("/supervisor/interviewers").get_data(as_text=True)
    assert "王芳" in html and "通话中" in html and "招商银行" in html
    post(client, f"/supervisor/interviewers/{sworld['ann']}/listen", {}, "/supervisor/interviewers")
    # The simulated backend refuses an unknown call id: the error is shown, nothing breaks.
    assert "电话系统错误" in client.get("/supervisor/interviewers").get_data(as_text=True) or backend.spies
    post(client, f"/supervisor/interviewers/{sworld['ann']}/pause", {"reason": "training"}, "/supervisor/interviewers")
    with session_factory() as s:
        st = s.get(AgentState, sworld["ann"])
        assert (st.status, st.pause_reason) == (AgentStatus.PAUSED, "training")
    post(client, f"/supervisor/interviewers/{sworld['ann']}/signout", {}, "/supervisor/interviewers")
    with session_factory() as s:
        assert s.get(AgentState, sworld["ann"]).status == AgentStatus.OFFLINE
        acts = s.scalars(select(AuditLog.action)).all()
        assert acts == ["call.listen", "agent.pause", "agent.sign_out"]


def test_outcomes_page_groups_and_filters(client, sworld, session_factory):
    complete_one(session_factory, sworld["study_id"], sworld["ann"])
    login(client, "sue")
    html = client.get("/supervisor/outcomes?group=interviewer").get_data(as_text=True)
    assert "王芳" in html and "完成访问" in html and "<svg" in html
    html = client.get("/supervisor/outcomes?group=industry&only_key=interviewer&only_value=李强").get_data(as_text=True)
    assert "n = 0" in html
    html = client.get("/supervisor/outcomes?plan_start=notadate").get_data(as_text=True)
    assert "不是有效日期" in html


def test_every_screen_in_english(client, sworld, session_factory):
    iid = complete_one(session_factory, sworld["study_id"], sworld["ann"])
    with session_factory() as s:
        cid = s.get(Interview, iid).case_id
    login(client, "sue")
    client.post("/lang", data={"lang": "en", "next": "/supervisor/", "csrf_token": csrf_of(client, "/supervisor/")})
    expected = {"/supervisor/": "Quota board", "/supervisor/interviewers": "Interviewers",
                "/supervisor/outcomes?group=day": "AAPOR disposition table", "/supervisor/sample": "Pending appointments",
                "/supervisor/qc": "Call-back verification list", f"/supervisor/case/{cid}": "Change an answer (audited)"}
    for path, text in expected.items():
        r = client.get(path)
        assert r.status_code == 200 and text in r.get_data(as_text=True), path


def test_per_day_chart_bars_and_round_axes(sup_app):
    import pandas as pd

    from cati.web.supervisor.charts import _nice, per_day_svg

    assert [_nice(x) for x in (4, 7, 1008, 7200, 21)] == [4, 8, 1200, 8000, 24]
    df = pd.DataFrame({"day": ["2020-01-01", "2020-01-02", "2099-01-03"], "completes": [3, 5, 0],
                       "cumulative": [3, 8, 8], "plan_cumulative": [4.0, 8.0, 12.0], "plan_daily": [4.0, 4.0, 4.0]})
    with sup_app.test_request_context("/supervisor/outcomes"):
        svg = per_day_svg(df)
    assert svg.count('class="bar"><title>') == 3 and "2020-01-02: 5" in svg
    cum = re.search(r'<polyline points="([^"]+)" class="cum"/>', svg).group(1)
    plan = re.search(r'<polyline points="([^"]+)" class="plan"/>', svg).group(1)
    assert len(cum.split()) == 2 and len(plan.split()) == 3  # achieved line stops today, the plan runs on


def test_industry_quota_through_interviews_board_and_qc(client, sworld, session_factory):
    """An industry quota of 1: the complete (real interview services) fills it, the board shows the cell full and
    the industry's other cases closed; a QC rejection opens it again."""
    from cati.services.quotas import link_quota_cells

    with transaction(session_factory) as s:
        st = s.get(Study, sworld["study_id"])
        industry = s.get(Enterprise, sworld["enterprise_id"]).industry.name
        st.definition = {**st.definition, "quota": {**st.definition["quota"], "per_industry": {industry: 1}}}
        s.flush()
        link_quota_cells(s, st, datetime.now(UTC))
    iid = complete_one(session_factory, sworld["study_id"], sworld["ann"])
    with session_factory() as s:
        closed = s.scalars(select(Case.id).where(Case.final_disposition == "4.80")).all()
        assert closed  # the industry's other released cases, though the enterprise is far from its 20
        assert s.get(Enterprise, sworld["enterprise_id"]).completes == 1
    login(client, "sue")
    html = client.get("/supervisor/").get_data(as_text=True)
    cells = html[html.index('id="quota-cells"'):]
    cells = cells[:cells.index("</table>")]
    assert "行业与样本变量配额" in cells and industry in cells and "全部样本" in cells and "100.0%" in cells
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(client.get("/supervisor/board.xlsx").data))["行业与样本变量配额"]
    assert list(sheet.iter_rows(values_only=True))[1][:5] == ("行业", "全部样本", industry, 1, 1)
    post(client, f"/supervisor/qc/{iid}/reject", {"note": "回访否认"}, "/supervisor/qc")
    with session_factory() as s:
        assert s.scalar(select(Case.id).where(Case.final_disposition == "4.80")) is None
    client.post("/lang", data={"lang": "en", "next": "/supervisor/", "csrf_token": csrf_of(client, "/supervisor/")})
    html = client.get("/supervisor/").get_data(as_text=True)
    assert "Industry and sample-variable quotas" in html and "whole study" in html


def test_one_monitoring_session_per_supervisor_shown_on_the_live_table(client, sworld, session_factory, backend):
    """Listen, then whisper: still one session for the supervisor (the new mode replaced the old), shown beside
    the interviewer; stop ends it."""
    from cati.web.supervisor import interviewers as sup_view

    backend.place_call("call-live-1", "+8613900000001", "1001")
    now = datetime.now(UTC)
    with transaction(session_factory) as s:
        agents.begin_shift(s, sworld["ann"], now - timedelta(minutes=30))
        agents.set_state(s, sworld["ann"], AgentStatus.TALKING, now - timedelta(minutes=1),
                         case_id=sworld["case_ids"][0], call_id="call-live-1")
        s.get(factories.User, sworld["sue"]).extension = "9001"
    login(client, "sue")
    post(client, f"/supervisor/interviewers/{sworld['ann']}/listen", {}, "/supervisor/interviewers")
    post(client, f"/supervisor/interviewers/{sworld['ann']}/whisper", {}, "/supervisor/interviewers")
    assert [(m["supervisor_extension"], m["call_id"], m["mode"]) for m in backend.monitors()] == \
        [("9001", "call-live-1", "whisper")]
    sup_view._MONITORING_CACHE["at"] = 0.0
    html = client.get("/supervisor/interviewers").get_data(as_text=True)
    assert "正在耳语" in html and "正在监听" not in html
    post(client, "/supervisor/monitoring/stop", {}, "/supervisor/interviewers")
    assert backend.monitors() == []
    sup_view._MONITORING_CACHE["at"] = 0.0
    assert "正在耳语" not in client.get("/supervisor/interviewers").get_data(as_text=True)
    with session_factory() as s:
        acts = s.scalars(select(AuditLog.action)).all()
    assert acts[-3:] == ["call.listen", "call.whisper", "call.monitor_stop"]


def test_the_board_says_what_best_time_defers_and_a_supervisor_releases_it(client, sworld, session_factory):
    deferral = lunchtime_of_no_answers(session_factory, sworld)
    assert deferral.cases >= 300
    until = deferral.until.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M")
    login(client, "ana")
    html = client.get("/supervisor/").get_data(as_text=True)
    assert f"{deferral.cases} 个可拨样本在 {until} 起的时段更容易接通" in html
    assert "/supervisor/best-time/release" not in html  # analysts look, never act
    assert post(client, "/supervisor/best-time/release").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_of(client, "/supervisor/")})
    login(client, "sue")
    assert client.post("/supervisor/best-time/release").status_code == 400  # no CSRF token
    client.post("/lang", data={"lang": "en", "next": "/supervisor/", "csrf_token": csrf_of(client, "/supervisor/")})
    html = client.get("/supervisor/").get_data(as_text=True)
    assert f"{deferral.cases} callable cases are more likely to answer from {until}" in html
    assert "/supervisor/best-time/release" in html
    r = post(client, "/supervisor/best-time/release")
    assert r.status_code == 302
    with session_factory() as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "best_time.release")).one()
        assert entry.before == {"deferred_cases": deferral.cases} and entry.after["until"] == deferral.until.isoformat()
    html = client.get("/supervisor/").get_data(as_text=True)
    assert f"{deferral.cases} cases released: dialed by quota need until {until}" in html
    assert f"Best-time ordering released by a supervisor until {until}" in html
    assert "/supervisor/best-time/release" not in html


def test_board_projects_the_finish_against_the_end_date(client, sworld, session_factory):
    """The board says when the quotas will fill (in calling time, with its interval) and whether the study's end
    date is at risk; without an end date it says the study file has none."""
    login(client, "sue")
    html = client.get("/supervisor/").get_data(as_text=True)
    assert "完成进度预测" in html and "研究文件未设截止日期" in html
    with transaction(session_factory) as s:
        st_row = s.get(Study, sworld["study_id"])
        st_row.definition = {**st_row.definition, "fieldwork": {"end_date": "2026-11-24"}}
    html = client.get("/supervisor/").get_data(as_text=True)
    assert "截止" in html and "通话小时" in html
    assert 'class="pace pace-' in html


def test_staffing_page_ranks_the_parts_of_the_day_and_plans_shifts(client, sworld):
    login(client, "sue")
    html = client.get("/supervisor/staffing").get_data(as_text=True)
    assert "每付薪小时完成数" in html and "建议排班" in html and "工作日 · 晚上" in html
    assert 'id="plan"' in html  # quotas remain: shifts are suggested


def test_monitoring_rules_and_confirmations_name_the_action_and_the_interviewer(client, sworld, session_factory,
                                                                                backend):
    """Issue 15 defect 10: the no-extension refusal names the action tried; confirmations say who is monitored and
    how (zh and en); one session per call: a second supervisor is refused with the first one's name; the same
    supervisor switching mode is told the earlier session ended; stop says whose call it was."""
    from cati.web.supervisor import interviewers as sup_view

    backend.place_call("call-live-7", "+8613900000007", "1001")
    now = datetime.now(UTC)
    with transaction(session_factory) as s:
        agents.begin_shift(s, sworld["ann"], now - timedelta(minutes=30))
        agents.set_state(s, sworld["ann"], AgentStatus.TALKING, now - timedelta(minutes=1),
                         case_id=sworld["case_ids"][0], call_id="call-live-7")
        sam = quick_user(s, "sam", Role.SUPERVISOR)
        s.get(factories.User, sam).display_name = "赵主管"
        s.get(factories.User, sam).extension = "9002"
    sup_view._MONITORING_CACHE["at"] = 0.0

    def flash_after(path):
        r = post(client, path, {}, "/supervisor/interviewers")
        assert r.status_code == 302
        html = client.get("/supervisor/interviewers").get_data(as_text=True)
        return html

    login(client, "sue")  # no extension yet: each refusal names its own action
    assert "无法耳语" in flash_after(f"/supervisor/interviewers/{sworld['ann']}/whisper")
    assert "无法强插" in flash_after(f"/supervisor/interviewers/{sworld['ann']}/barge")
    assert "无法监听" in flash_after(f"/supervisor/interviewers/{sworld['ann']}/listen")
    assert backend.monitors() == []
    with transaction(session_factory) as s:
        s.get(factories.User, sworld["sue"]).extension = "9001"
    assert "正在监听 王芳 的通话" in flash_after(f"/supervisor/interviewers/{sworld['ann']}/listen")
    html = flash_after(f"/supervisor/interviewers/{sworld['ann']}/barge")
    assert "已强插 王芳 的通话" in html and "您之前对 王芳 的监听已结束" in html
    assert [(m["supervisor_extension"], m["mode"]) for m in backend.monitors()] == [("9001", "barge")]

    client.post("/logout", data={"csrf_token": csrf_of(client, "/supervisor/interviewers")})
    login(client, "sam")  # a second supervisor on the same call is refused, told who is on it
    html = flash_after(f"/supervisor/interviewers/{sworld['ann']}/whisper")
    assert "sue 正在强插 王芳 的通话" in html or "正在强插 王芳 的通话" in html
    assert "一通电话同时只能有一个" in html
    assert [(m["supervisor_extension"], m["mode"]) for m in backend.monitors()] == [("9001", "barge")]
    client.post("/lang", data={"lang": "en", "next": "/supervisor/interviewers",
                               "csrf_token": csrf_of(client, "/supervisor/interviewers")})
    html = flash_after(f"/supervisor/interviewers/{sworld['ann']}/listen")
    assert "is already on 王芳&#39;s call (Barge)" in html
    assert "Stopped monitoring" not in flash_after("/supervisor/monitoring/stop")  # sam has nothing to stop

    client.post("/logout", data={"csrf_token": csrf_of(client, "/supervisor/interviewers")})
    login(client, "sue")
    client.post("/lang", data={"lang": "en", "next": "/supervisor/interviewers",
                               "csrf_token": csrf_of(client, "/supervisor/interviewers")})
    assert "Whispering to 王芳 (the respondent cannot hear you)" in \
        flash_after(f"/supervisor/interviewers/{sworld['ann']}/whisper")
    assert "Stopped monitoring 王芳&#39;s call (Whisper)" in flash_after("/supervisor/monitoring/stop")
    assert backend.monitors() == []
    client.post("/logout", data={"csrf_token": csrf_of(client, "/supervisor/interviewers")})
    login(client, "sam")  # the call is free again
    assert "Listening to 王芳&#39;s call" in flash_after(f"/supervisor/interviewers/{sworld['ann']}/listen")
    assert [(m["supervisor_extension"], m["mode"]) for m in backend.monitors()] == [("9002", "listen")]


def test_the_board_warms_the_outcomes_frame_and_a_stale_one_is_served_while_rebuilt(client, sworld, sup_app,
                                                                                   monkeypatch):
    """The outcomes screen's first open took 3.2 s at 200,000 cases: the board (the landing page) builds its frame
    in the background, and a frame past its 30 s is served at once while a fresh one is built."""
    import time as _time

    from cati.web.supervisor import board as board_view
    from cati.web.supervisor import outcomes as out_view

    monkeypatch.setattr(board_view, "WARM_MIN_CASES", 0)
    cache_name = "cati.supervisor.frames"
    login(client, "sue")
    assert client.get("/supervisor/").status_code == 200
    key = (sworld["study_id"], 1)
    end = _time.monotonic() + 10
    while _time.monotonic() < end and not any(isinstance(k[0], int) and k[0] == sworld["study_id"]
                                              for k in sup_app.extensions.get(cache_name, {})):
        _time.sleep(0.05)
    cache = sup_app.extensions[cache_name]
    key = next(k for k in cache if isinstance(k[0], int))
    built_at, frame_at, frame = cache[key]
    assert len(frame) > 0
    assert client.get("/supervisor/outcomes").status_code == 200
    assert cache[key][0] == built_at  # served from the warmed frame, not rebuilt
    cache[key] = (built_at - out_view.FRAME_TTL - 1, frame_at, frame)  # now stale
    assert client.get("/supervisor/outcomes").status_code == 200  # served at once ...
    end = _time.monotonic() + 10
    while _time.monotonic() < end and cache[key][0] < built_at:
        _time.sleep(0.05)
    assert cache[key][0] >= built_at  # ... and rebuilt behind it
