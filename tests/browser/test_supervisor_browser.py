"""The supervisor's screens in a real browser (Playwright + Debian chromium, headless) against the app served by
gunicorn in a subprocess: the quota board following simulated interviewers live, a replicate release, an
appointment move, a QC rejection that reopens a quota slot, and the audit trail of an edited answer."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from cati.db import make_engine, make_sessionmaker, transaction
from cati.migrate import upgrade
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
    User,
)
from cati.models.agents import AgentStatus
from cati.services import agents
from cati.services.interviews import complete_interview, save_answers, start_interview
from cati.services.scheduling import next_case
from cati.services.users import hash_password
from tests import factories

from .conftest import ROOT, SCREENSHOTS, STUDY_FILE, _free_port, open_timezone

pytestmark = pytest.mark.browser

FULL = {"INTRO": None, "CONSENT": 1, "S1": 1, "S2": 1, **{c: [4, 5, 3][i % 3] for i, c in enumerate(
    "A1 A2 A3 A4 B1 B2 B3 B4 C1 C2 C3 C4".split())}, "D0": 2, **{c: 5 for c in "E1 E2 E3 F1 F2 F3 F4".split()},
    "Q0": 4, "CB1": 1, "OPEN1": "等待太久", "P1": 2, "P2": 3, "P3": 1, "END": None}


class SupervisorServer:
    """gunicorn serving ``cati.app:create_app()`` (the console plus the supervisor and admin screens)."""

    def __init__(self, db_url: str, instance: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.instance = instance
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("CATI_")},
                    "CATI_DATABASE_URL": db_url, "CATI_INSTANCE_PATH": str(instance),
                    "CATI_SECRET_KEY": "browser-test-secret", "CATI_TELEPHONY": "simulated"}

    def start(self) -> None:
        self.instance.mkdir(parents=True, exist_ok=True)
        self.log = open(self.instance / "gunicorn.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", "1", "--graceful-timeout",
             "1", "-b", f"127.0.0.1:{self.port}", "cati.app:create_app()"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.instance / 'gunicorn.log').read_text()[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError("server did not come up in 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Three enterprises in a time zone where it is now mid-afternoon, people, and the server."""
    tmp = tmp_path_factory.mktemp("supervisor-site")
    db_url = f"sqlite:///{tmp / 'cati.sqlite'}"
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    from cati.services.studies import install_study

    tz = open_timezone()
    due = datetime.now(UTC) - timedelta(minutes=5)
    pw = hash_password("password-123")
    out = {"factory": factory, "tz": tz}
    with transaction(factory) as s:
        study = install_study(s, STUDY_FILE)
        out["study_id"] = study.id
        for key, name, industry, quota, n in [("bank", "招商银行", "银行", 3, 12), ("ins", "平安保险", "保险", 20, 12),
                                              ("tel", "中国移动", "通信", 1, 4), ("fund", "华夏基金", "基金", 20, 4)]:
            ent = factories.enterprise(s, study, name=name, industry_name=industry, quota=quota)
            ent.region = {"bank": "华南", "ins": "华东", "tel": "华北", "fund": "华北"}[key]
            out[key] = ent.id
            out[key + "_cases"] = factories.cases(s, study, ent, n, timezone=tz, next_call_at=due)
        out["bank_unreleased"] = factories.cases(s, study, s.get(Enterprise, out["bank"]), 5,
                                                 status=CaseStatus.UNRELEASED, replicate=2, timezone=tz)
        for username, name, role, ext in [("sue", "张督导", Role.SUPERVISOR, "9001"), ("adm", "管理员", Role.ADMIN, None),
                                          ("ann", "王芳", Role.INTERVIEWER, "8001"), ("bob", "李强", Role.INTERVIEWER, "8002"),
                                          ("cat", "赵敏", Role.INTERVIEWER, "8003")]:
            u = User(username=username, display_name=name, password_hash=pw, role=role, extension=ext)
            s.add(u)
            s.flush()
            out[username] = u.id
    server = SupervisorServer(db_url, tmp / "instance")
    server.start()
    out["url"] = server.url
    yield out
    server.stop()
    engine.dispose()


@pytest.fixture
def page(browser, site):
    ctx = browser.new_context(viewport={"width": 1500, "height": 1000}, locale="zh-CN")
    p = ctx.new_page()
    yield p
    ctx.close()


def sign_in(page, site, user="sue", landing="/supervisor/"):
    page.goto(site["url"] + "/login")
    page.fill("#username", user)
    page.fill("#password", "password-123")
    page.click("button[type=submit]")
    page.wait_for_url(site["url"] + landing)


def work_one(site, interviewer: str, *, enterprise: int | None = None) -> int:
    """One simulated interviewer's complete, through the real services (claim → interview → complete), with
    their live state moving talking → ready as it would from the console."""
    factory = site["factory"]
    now = datetime.now(UTC)
    uid = site[interviewer]
    with transaction(factory) as s:
        st = s.get(Study, site["study_id"])
        if enterprise is not None:  # keep other enterprises out of this claim
            for other in s.scalars(select(Enterprise).where(Enterprise.id != enterprise)):
                other.status = "stopped"
            s.flush()
        claim = next_case(s, st, uid, now)
        if enterprise is not None:
            for other in s.scalars(select(Enterprise).where(Enterprise.id != enterprise)):
                other.status = "active"
        agents.set_state(s, uid, AgentStatus.TALKING, now, case_id=claim.case_id)
    with transaction(factory) as s:
        case = s.get(Case, claim.case_id)
        iv = start_interview(s, case, uid, now - timedelta(minutes=8))
        save_answers(s, iv, FULL, user_id=uid, now=now)
        complete_interview(s, iv, now, user_id=uid)
        agents.set_state(s, uid, AgentStatus.READY, datetime.now(UTC))
        return iv.id


def db_completes(site, key):
    with site["factory"]() as s:
        return s.get(Enterprise, site[key]).completes


def cell(page, eid, k):
    return page.locator(f'tr[data-eid="{eid}"] [data-k="{k}"]')


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"supervisor-{name}.png"), full_page=True)


def test_board_follows_interviewers_live_without_reload(page, site):
    now = datetime.now(UTC)
    with transaction(site["factory"]) as s:
        for who in ("ann", "bob", "cat"):
            agents.begin_shift(s, site[who], now - timedelta(hours=1))
    sign_in(page, site)
    page.wait_for_selector("#live.on", timeout=10000)
    page.evaluate("window.__marker = 'still the same page'")
    assert cell(page, site["bank"], "completes").inner_text() == "0"

    errors: list[BaseException] = []

    def interviewers():
        try:
            for i, who in enumerate(["ann", "bob", "cat", "ann", "bob"]):
                work_one(site, who, enterprise=site["bank"] if i < 3 else site["ins"])
                time.sleep(0.4)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    worker = threading.Thread(target=interviewers)
    worker.start()
    # While they work, the page moves with them: the bank's counter climbs through 1 and 2 to its quota.
    page.wait_for_function(f"""() => Number(document.querySelector('tr[data-eid="{site["bank"]}"] [data-k=completes]')
                              .textContent) >= 1""", timeout=10000)
    worker.join(60)
    assert not errors, errors
    page.wait_for_function(f"""() => document.querySelector('tr[data-eid="{site["bank"]}"] [data-k=completes]')
                              .textContent === '3'""", timeout=5000)
    page.wait_for_function(f"""() => document.querySelector('tr[data-eid="{site["ins"]}"] [data-k=completes]')
                              .textContent === '2'""", timeout=5000)
    assert (db_completes(site, "bank"), db_completes(site, "ins")) == (3, 2)
    bank_row = page.locator(f'tr[data-eid="{site["bank"]}"]')
    assert "done" in bank_row.get_attribute("class")  # 3 of 3: shown as done
    assert cell(page, site["bank"], "eta").inner_text() == "已完成"
    assert page.locator('[data-total="completes"]').inner_text() == "5"
    assert page.evaluate("window.__marker") == "still the same page"
    assert int(page.evaluate("document.body.dataset.boardEvents")) >= 3
    shot(page, "board-live")

    # The interviewers' screen follows too.
    page.goto(site["url"] + "/supervisor/interviewers")
    page.wait_for_selector('tr[data-uid] >> text=王芳')
    with transaction(site["factory"]) as s:
        agents.set_state(s, site["bob"], AgentStatus.PAUSED, datetime.now(UTC), reason="training")
    page.wait_for_selector(f'tr[data-uid="{site["bob"]}"] >> text=培训', timeout=5000)
    ann_row = page.locator(f'tr[data-uid="{site["ann"]}"]').inner_text()
    assert "就绪" in ann_row and "\t2\t" in ann_row  # ready, 2 completes this shift
    shot(page, "interviewers")


def test_replicate_release_from_the_board(page, site):
    sign_in(page, site)
    row = page.locator(f'tr[data-eid="{site["bank"]}"]')
    assert cell(page, site["bank"], "unreleased").inner_text() == "5"
    row.locator('button[data-act="release"]').click()
    page.wait_for_selector(".flash >> text=已释放 5 个样本")
    assert cell(page, site["bank"], "unreleased").inner_text() == "0"
    with site["factory"]() as s:
        assert {s.get(Case, c).status for c in site["bank_unreleased"]} != {CaseStatus.UNRELEASED}
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "replicate.release"))
        assert entry.user_id == site["sue"] and entry.after["cases"] == 5


def test_appointment_move(page, site):
    case_id = site["fund_cases"][0]
    with transaction(site["factory"]) as s:
        appt = Appointment(study_id=site["study_id"], case_id=case_id, interviewer_id=site["ann"],
                           due_at=datetime.now(UTC) + timedelta(hours=2), note="客户说晚点")
        s.add(appt)
        s.flush()
        appt_id = appt.id
    sign_in(page, site)
    page.goto(site["url"] + "/supervisor/sample")
    row = page.locator(f'tr[data-appt="{appt_id}"]')
    assert row.locator('[data-k="owner"]').inner_text() == "王芳"
    row.locator('select[name="to"]').select_option(label="李强")
    row.locator('button[type="submit"]').click()
    page.wait_for_selector(".flash >> text=已完成操作")
    assert page.locator(f'tr[data-appt="{appt_id}"] [data-k="owner"]').inner_text() == "李强"
    shot(page, "sample")
    with site["factory"]() as s:
        assert s.get(Appointment, appt_id).interviewer_id == site["bob"]
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "appointment.move"))
        assert entry.before["interviewer_id"] == site["ann"] and entry.after["interviewer_id"] == site["bob"]


def test_qc_rejection_reopens_the_quota_slot(page, site):
    iid = work_one(site, "cat", enterprise=site["tel"])
    with site["factory"]() as s:
        closed = s.scalars(select(Case.id).where(Case.enterprise_id == site["tel"],
                                                 Case.final_disposition == "4.80")).all()
    assert len(closed) == 3 and db_completes(site, "tel") == 1
    sign_in(page, site)
    assert cell(page, site["tel"], "completes").inner_text() == "1"
    page.goto(site["url"] + "/supervisor/qc?flagged=0")  # every complete (the default lists flagged ones)
    row = page.locator(f'#qc tr[data-iv="{iid}"]')
    row.locator('input[name="note"]').fill("回访核实：受访者否认接受过访问")
    row.locator('button[data-act="reject"]').click()
    page.wait_for_selector(".flash >> text=重新开放 3 个配额已满样本")
    assert "已驳回" in page.locator(f'#qc tr[data-iv="{iid}"]').inner_text()
    shot(page, "qc")
    with site["factory"]() as s:
        assert s.get(Interview, iid).qc_status == QCStatus.REJECTED
        assert s.get(Enterprise, site["tel"]).completes == 0
        assert {s.get(Case, c).status for c in closed} == {CaseStatus.READY}
    page.goto(site["url"] + "/supervisor/?q=中国移动")
    assert cell(page, site["tel"], "completes").inner_text() == "0"
    assert cell(page, site["tel"], "callable_left").inner_text() == "4"  # 3 reopened + the rejected case itself


def test_audit_trail_of_an_edited_answer(page, site):
    iid = work_one(site, "ann", enterprise=site["fund"])
    with site["factory"]() as s:
        case_id = s.get(Interview, iid).case_id
    sign_in(page, site)
    page.goto(f"{site['url']}/supervisor/case/{case_id}")
    form = page.locator(f"#edit-{iid}")
    form.locator('select[name="question"]').select_option("B2")
    form.locator('input[name="value"]').fill("2")
    form.locator('input[name="reason"]').fill("听录音后更正")
    form.locator('button[type="submit"]').click()
    page.wait_for_selector(".flash >> text=答案已修改并记入审计日志")
    rev = page.locator("#revisions tbody tr").first.inner_text()
    assert "B2" in rev and "3" in rev and "2" in rev and "张督导" in rev and "听录音后更正" in rev
    # The answer with its question's text beside the code.
    assert page.locator(f'[data-interview="{iid}"] tr[data-q="B2"]').inner_text().split() == [
        "B2", "客服耐心倾听，不打断您", "2", "不满意"]
    assert "answer.change" in page.locator("#trail").inner_text()
    shot(page, "case")
    # The administrator finds the change in the audit log by its reason.
    page.locator("form[action='/logout'] button").click()
    sign_in(page, site, "adm", "/admin/users")
    page.goto(site["url"] + "/admin/audit")
    page.fill("input[name=q]", "听录音后更正")
    page.locator("#audit-search button[type=submit]").click()
    page.wait_for_url("**q=*")
    rows = page.locator("#audit tbody tr")
    assert rows.count() == 1
    text = rows.first.inner_text()
    assert "answer.change" in text and "张督导" in text and '"code": 3' in text and '"code": 2' in text
    assert f"interview {iid}" in text
    shot(page, "audit")


def test_live_interviewers_table_keeps_rows_focus_and_a_slow_click(page, site):
    # A busy centre: states change several times a second. The table follows them, but never rebuilds a row:
    # a pause reason chosen, a button focused with Tab and a click held for 120 ms all survive the updates.
    now = datetime.now(UTC)
    with transaction(site["factory"]) as s:
        for who in ("ann", "bob", "cat"):
            agents.begin_shift(s, site[who], now - timedelta(hours=1))
            agents.set_state(s, site[who], AgentStatus.READY, now)
    sign_in(page, site)
    page.goto(site["url"] + "/supervisor/interviewers")
    page.wait_for_selector(f'tr[data-uid="{site["ann"]}"]')
    page.wait_for_selector("#live.on", timeout=10000)
    page.evaluate("""() => {
        const body = document.getElementById('agents-body');
        window.__rowsReplaced = 0; window.__actionsReplaced = 0;
        new MutationObserver(ms => ms.forEach(m => {
            if (m.target === body) window.__rowsReplaced += m.addedNodes.length + m.removedNodes.length;
            else if (m.target.closest && m.target.closest('.actions-cell')) window.__actionsReplaced += 1;
        })).observe(body, {childList: true, subtree: true});
    }""")
    stop = threading.Event()

    def busy_centre():
        states = [AgentStatus.TALKING, AgentStatus.WRAPUP, AgentStatus.READY]
        i = 0
        while not stop.is_set():
            with transaction(site["factory"]) as s:
                agents.set_state(s, site["bob"], states[i % 3], datetime.now(UTC))
                agents.set_state(s, site["cat"], states[(i + 1) % 3], datetime.now(UTC))
            i += 1
            time.sleep(0.3)

    worker = threading.Thread(target=busy_centre)
    worker.start()
    try:
        ann = page.locator(f'tr[data-uid="{site["ann"]}"]')
        ann.locator("select[name=reason]").select_option("training")
        # Tab from the select to its 暂停 button, then hold focus through several live updates.
        ann.locator("select[name=reason]").focus()
        page.keyboard.press("Tab")
        events_before = int(page.evaluate("document.body.dataset.agentEvents || 0"))
        page.wait_for_function(f"Number(document.body.dataset.agentEvents || 0) >= {events_before + 3}",
                               timeout=10000)
        assert page.evaluate("document.activeElement.textContent.trim()") == "暂停"
        assert page.evaluate("document.activeElement.closest('tr').dataset.uid") == str(site["ann"])
        assert ann.locator("select[name=reason]").input_value() == "training"
        # The others' rows moved with them while nothing was rebuilt.
        page.wait_for_selector(f'tr[data-uid="{site["bob"]}"] >> text=/通话中|话后处理|就绪/')
        assert page.evaluate("window.__rowsReplaced") == 0
        assert page.evaluate("window.__actionsReplaced") == 0
        # A person's click: press, 120 ms, release — on the button under the pointer while updates arrive.
        box = ann.locator("button", has_text="暂停").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.wait_for_timeout(120)
        page.mouse.up()
        page.wait_for_selector(f'tr[data-uid="{site["ann"]}"] >> text=暂停 · 培训', timeout=5000)
    finally:
        stop.set()
        worker.join(10)
    with site["factory"]() as s:
        state = agents.state_of(s, site["ann"], datetime.now(UTC))
        assert (state.status, state.pause_reason) == (AgentStatus.PAUSED, "training")


def test_narrow_screen_header_rates_table_and_favicon(browser, site):
    # At 390 px the top bar wraps into a couple of lines (it was 550 px tall, one character per line); the rates
    # table has the page's width (COOP3 onwards were clipped); /favicon.ico answers.
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = ctx.new_page()
    try:
        sign_in(page, site)
        header = page.locator("header.topbar").bounding_box()
        assert header["height"] < 160, header
        tab = page.locator(".topnav a").first.bounding_box()
        assert tab["height"] < 40 and tab["width"] > 40, tab  # a label on one line
        assert requests.get(site["url"] + "/favicon.ico", timeout=10).status_code == 200
    finally:
        ctx.close()
    wide = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = wide.new_page()
    try:
        sign_in(page, site)
        page.goto(site["url"] + "/supervisor/outcomes")
        cell = page.locator("table >> text=CON3").first
        box = cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1366, box
    finally:
        wide.close()
