"""The supervisor's shift screens in a real browser (Playwright + Debian chromium) against the app served by
gunicorn: the case browser (filters typed and chosen, rows ticked, a bulk action), the do-not-call list (search,
remove with a reason), appointments, the interviewer's own appointments and callback lookup, and messages."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from cati.db import make_engine, make_sessionmaker, transaction
from cati.migrate import upgrade
from cati.models import AuditLog, Case, CaseStatus, DoNotCall, Role, User
from cati.services.users import hash_password
from tests import factories

from .conftest import SCREENSHOTS, STUDY_FILE, open_timezone
from .test_supervisor_browser import SupervisorServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shift-site")
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
        bank = factories.enterprise(s, study, name="招商银行")
        ins = factories.enterprise(s, study, name="平安保险", industry_name="保险")
        out["bank"], out["ins"] = bank.id, ins.id
        out["bank_cases"] = factories.cases(s, study, bank, 8, timezone=tz, next_call_at=due)
        out["ins_cases"] = factories.cases(s, study, ins, 70, timezone=tz, next_call_at=due)
        for username, name, role, ext in [("sue", "张督导", Role.SUPERVISOR, "9001"),
                                          ("ann", "王芳", Role.INTERVIEWER, "8001"),
                                          ("bob", "李强", Role.INTERVIEWER, "8002")]:
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
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    p = ctx.new_page()
    yield p
    ctx.close()


def sign_in(page, site, user="sue", landing="/supervisor/"):
    page.goto(site["url"] + "/login")
    page.click("#username")
    page.keyboard.type(user, delay=20)
    page.keyboard.press("Tab")
    page.keyboard.type("password-123", delay=10)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(".*" + re.escape(landing) + ".*"))


def number_of(site, case_id):
    with site["factory"]() as s:
        return s.get(Case, case_id).phones[0].e164


def test_case_browser_filter_tick_and_bulk_stop(site, page):
    sign_in(page, site)
    page.click("text=个案")
    page.wait_for_url("**/supervisor/cases")
    assert page.locator("#cases tbody tr").count() == 50
    page.click("#page-next")
    page.wait_for_selector("#page-prev")
    assert page.locator("#cases tbody tr").count() == 28
    # Filter: the bank's cases, by choosing the enterprise and pressing Enter in the phone field.
    page.select_option("#f-enterprise", str(site["bank"]))
    page.click("#f-apply")
    page.wait_for_url(re.compile(r".*enterprise=\d+.*"))
    assert page.locator("#cases tbody tr").count() == 8
    # Typing part of one number finds that case; the list shows it masked.
    number = number_of(site, site["bank_cases"][2])[3:]
    page.click("#f-phone")
    page.keyboard.type(number[-6:], delay=40)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*phone=\d+.*"))
    rows = page.locator("#cases tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("[data-k=phone]").inner_text() == f"{number[:3]}****{number[-4:]}"
    assert number not in page.content()
    # Back to the bank's list; tick three rows by clicking, stop them with a reason.
    page.fill("#f-phone", "")
    page.click("#f-apply")
    page.wait_for_timeout(300)
    picked = site["bank_cases"][:3]
    for cid in picked:
        page.click(f'#cases tr[data-case="{cid}"] input[name=case]')
        page.wait_for_timeout(120)
    assert page.inner_text("#bulk-n") == "3"
    page.select_option("#bulk-action", "stop")
    page.click("#bulk-note")
    page.keyboard.type("客户要求暂停", delay=20)
    page.click("#bulk-go")
    page.wait_for_selector("text=停止：已处理 3 个个案")
    for cid in picked:
        assert page.inner_text(f'#cases tr[data-case="{cid}"] [data-k=status]') == "已停止"
    with site["factory"]() as s:
        assert {s.get(Case, c).status for c in picked} == {CaseStatus.STOPPED}
        notes = s.scalars(select(AuditLog.note).where(AuditLog.action == "case.stop")).all()
        assert notes == ["客户要求暂停"] * 3
    # Select all on the page, reassign to 李强.
    page.select_option("#f-status", "stopped")
    page.click("#f-apply")
    page.wait_for_url(re.compile(r".*status=stopped.*"))
    page.click("#check-all")
    assert page.inner_text("#bulk-n") == "3"
    page.select_option("#bulk-action", "reassign")
    assert page.is_visible("#bulk-to")
    page.select_option("#bulk-to", str(site["bob"]))
    page.click("#bulk-go")
    page.wait_for_selector("text=指定访员：已处理 3 个个案")
    assert page.locator('#cases [data-k=owner]:has-text("李强")').count() == 3
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "case-browser.png"), full_page=True)


def test_dnc_list_search_and_remove_with_reason(site, page):
    a, b = number_of(site, site["ins_cases"][0]), number_of(site, site["ins_cases"][1])
    sign_in(page, site)
    page.click("text=免打扰")
    page.wait_for_url("**/supervisor/dnc")
    page.click("textarea[name=numbers]")
    page.keyboard.type(a[3:], delay=10)
    page.keyboard.press("Enter")
    page.keyboard.type(b[3:], delay=10)
    page.fill("form.stack input[name=reason]", "受访者要求")
    page.click("form.stack button.danger")
    page.wait_for_selector("#dnc-total:has-text('共 2 个号码')")
    assert a[3:] not in page.content()
    page.click("#dnc-q")
    page.keyboard.type(a[-5:], delay=40)
    page.keyboard.press("Enter")
    page.wait_for_selector("#dnc-total:has-text('共 1 个号码')")
    row = page.locator("#dnc tbody tr").first
    assert row.locator("[data-k=phone]").inner_text() == f"{a[3:6]}****{a[-4:]}"
    # A removal without a reason is stopped by the form itself; with one it goes through.
    row.locator("button").click()
    assert page.locator("#dnc tbody tr").count() == 1
    row.locator("input[name=reason]").click()
    page.keyboard.type("号码已更换机主", delay=20)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=已移出免打扰名单")
    with site["factory"]() as s:
        assert s.scalar(select(DoNotCall.e164)) == b
        assert s.scalar(select(AuditLog.note).where(AuditLog.action == "dnc.remove")) == "号码已更换机主"
    page.fill("#dnc-q", "")
    page.keyboard.press("Enter")
    page.wait_for_selector("#dnc-total:has-text('共 1 个号码')")
    with page.expect_download() as dl:
        page.click("#dnc-csv")
    text = open(dl.value.path(), encoding="utf-8-sig").read()
    assert b in text and a not in text  # the export holds full numbers (supervisors only)


def test_appointments_screen_moves_a_missed_one_and_the_interviewer_sees_hers(site, browser):
    from cati.models import Appointment

    now = datetime.now(UTC)
    c = site["ins_cases"]
    with transaction(site["factory"]) as s:
        missed = Appointment(study_id=site["study_id"], case_id=c[10], interviewer_id=site["bob"],
                             due_at=now - timedelta(hours=2), note="客户说晚上再打")
        coming = Appointment(study_id=site["study_id"], case_id=c[11], interviewer_id=site["ann"],
                             due_at=now + timedelta(hours=1), note="找张女士")
        s.add_all([missed, coming])
        s.flush()
        ids = (missed.id, coming.id)
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = ctx.new_page()
    sign_in(page, site)
    page.click("nav a[href=\"/supervisor/appointments\"]")
    page.wait_for_url("**/supervisor/appointments")
    row = page.locator(f'#late tr[data-appt="{ids[0]}"]')
    assert row.locator("[data-k=state]").inner_text() == "已错过"
    shanghai = ZoneInfo("Asia/Shanghai")
    if (now + timedelta(hours=1)).astimezone(shanghai).date() == now.astimezone(shanghai).date():
        hour = (now + timedelta(hours=1)).astimezone(shanghai).hour
        assert f"C{c[11]:08d}" in page.inner_text(f'#calendar tr[data-who="王芳"] td[data-hour="{hour}"]')
    row.locator("input[name=appt]").click()
    page.select_option("#late-to", str(site["ann"]))
    page.click("#late-move")
    page.wait_for_selector("text=已转移 1 个预约")
    assert page.locator(f'#late tr[data-appt="{ids[0]}"] [data-k=owner]').inner_text() == "王芳"
    ctx.close()
    # ann's console lists both, the moved one first.
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = ctx.new_page()
    sign_in(page, site, user="ann", landing="/interviewer")
    items = page.locator("#my-appts li")
    assert items.count() == 2
    assert f"C{c[10]:08d}" in items.nth(0).inner_text() and "找张女士" in items.nth(1).inner_text()
    ctx.close()


def test_inbound_callback_typed_by_the_interviewer(site, browser):
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = ctx.new_page()
    sign_in(page, site, user="ann", landing="/interviewer")
    page.click("#inbound-number")
    page.keyboard.type("139 0000 0000", delay=30)  # nobody's number
    page.keyboard.press("Enter")
    page.wait_for_selector("text=没有找到号码 139****0000")
    cid = site["ins_cases"][20]
    number = number_of(site, cid)[3:]
    page.click("#inbound-number")
    page.keyboard.type(f"{number[:3]}-{number[3:7]}-{number[7:]}", delay=30)
    page.keyboard.press("Enter")
    page.wait_for_selector("#btn-dial")
    assert "已接入回电个案" in page.inner_text("#notice") and f"C{cid:08d}" in page.content()
    with site["factory"]() as s:
        case = s.get(Case, cid)
        assert case.status == CaseStatus.CLAIMED and case.claimed_by_id == site["ann"]
    ctx.close()


def test_messages_reach_the_open_console_and_the_read_receipt_comes_back(site, browser):
    ann_ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    ann = ann_ctx.new_page()
    sign_in(ann, site, user="bob", landing="/interviewer")
    sup_ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    sup = sup_ctx.new_page()
    sign_in(sup, site)
    sup.click("nav a[href=\"/supervisor/interviewers\"]")
    sup.wait_for_url("**/supervisor/interviewers")
    sup.select_option("#message-to", str(site["bob"]))
    sup.click("#message-body")
    sup.keyboard.type("李强：请先回拨预约个案", delay=20)
    sup.keyboard.press("Enter")
    sup.wait_for_selector("text=消息已发送")
    # The open console shows it within a heartbeat or two, without a reload.
    sent_at = time.monotonic()
    ann.wait_for_selector("#inbox .msg:has-text('李强：请先回拨预约个案')", timeout=20000)
    assert time.monotonic() - sent_at < 15
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    ann.screenshot(path=str(SCREENSHOTS / "console-message.png"))
    ann.locator("#inbox .msg button").click()
    ann.wait_for_selector("#inbox", state="hidden")
    sup.reload()
    receipts = sup.locator("#sent tbody tr").first.locator("[data-k=receipts]").inner_text()
    assert "已读 1/1" in receipts and "李强" in receipts
    sup.screenshot(path=str(SCREENSHOTS / "interviewers-messages.png"), full_page=True)
    ann_ctx.close()
    sup_ctx.close()


def test_live_table_follows_the_interview_question_in_place(site, browser):
    from sqlalchemy import update

    from cati.models import Interview, Study
    from cati.models.agents import AgentStatus
    from cati.services import agents
    from cati.services.interviews import save_answers, start_interview
    from cati.services.scheduling import next_case

    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = ctx.new_page()
    sign_in(page, site, user="ann", landing="/interviewer")  # ann is signed in (her console stays open)
    now = datetime.now(UTC)
    with transaction(site["factory"]) as s:
        claim = next_case(s, s.get(Study, site["study_id"]), site["ann"], now)
        iv = start_interview(s, s.get(Case, claim.case_id), site["ann"], now - timedelta(minutes=3))
        save_answers(s, iv, {"INTRO": None, "CONSENT": 1}, user_id=site["ann"], now=now)
        agents.set_state(s, site["ann"], AgentStatus.TALKING, now, case_id=claim.case_id)
        iv_id, first = iv.id, iv.current_question
    sup_ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    sup = sup_ctx.new_page()
    sign_in(sup, site)
    sup.goto(site["url"] + "/supervisor/interviewers")
    row = f'#agents tr[data-uid="{site["ann"]}"]'
    sup.wait_for_selector(f'{row} [data-k=question]:text-is("{first}")')
    assert re.fullmatch(r"3:\d\d", sup.inner_text(f"{row} [data-k=interview-time]"))
    sup.evaluate(f"document.querySelector('{row}').dataset.mark = 'same-node'")
    sup.focus(f"{row} select[name=reason]")
    with transaction(site["factory"]) as s:
        s.execute(update(Interview).where(Interview.id == iv_id).values(current_question="A1"))
    sup.wait_for_selector(f'{row} [data-k=question]:text-is("A1")', timeout=20000)
    # Patched in place: the same row element, and the focused pause-reason list kept its focus.
    assert sup.evaluate(f"document.querySelector('{row}').dataset.mark") == "same-node"
    assert sup.evaluate("document.activeElement.name") == "reason"
    sup_ctx.close()
    ctx.close()


def test_quota_target_typed_on_the_quota_screen(site, page):
    from cati.models import Enterprise

    sign_in(page, site)
    page.click("nav a[href=\"/supervisor/quotas\"]")
    page.wait_for_url("**/supervisor/quotas")
    box = page.locator(f'#enterprise-targets tr[data-eid="{site["ins"]}"] input[name=target]')
    box.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("35", delay=40)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=配额目标 20 → 35")
    assert page.locator(f'#enterprise-targets tr[data-eid="{site["ins"]}"] input[name=target]').input_value() == "35"
    with site["factory"]() as s:
        assert s.get(Enterprise, site["ins"]).quota_target == 35


def test_qc_review_form_on_the_case_page(site, page):
    from cati.models import Interview, InterviewStatus, QCReview

    cid = site["bank_cases"][6]
    with transaction(site["factory"]) as s:
        iv = Interview(study_id=site["study_id"], case_id=cid, interviewer_id=site["bob"],
                       status=InterviewStatus.COMPLETE, ended_at=datetime.now(UTC))
        s.add(iv)
        s.flush()
        iv_id = iv.id
    sign_in(page, site)
    page.goto(site["url"] + f"/supervisor/case/{cid}")
    form = page.locator(f"#review-{iv_id}")
    form.locator("select[name=score_opening]").select_option("4")
    form.locator("select[name=score_coding]").select_option("2")
    form.locator("select[name=backcheck]").select_option("discrepancy")
    form.locator("button").click()
    page.wait_for_selector("text=回访结果为否认或不一致时须填写说明")  # nothing saved without the note
    form = page.locator(f"#review-{iv_id}")
    form.locator("select[name=score_opening]").select_option("4")
    form.locator("select[name=score_coding]").select_option("2")
    form.locator("select[name=backcheck]").select_option("discrepancy")
    form.locator("input[name=note]").click()
    page.keyboard.type("受访者说 A2 答的是 2", delay=20)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=质检记录已保存")
    row = page.locator(f"#reviews-{iv_id} tbody tr").first
    assert row.locator("[data-k=score]").inner_text() == "60"
    assert row.locator("[data-k=backcheck]").inner_text() == "回答不一致"
    with site["factory"]() as s:
        assert s.scalar(select(QCReview.scores).where(QCReview.interview_id == iv_id)) == {"opening": 4, "coding": 2}
